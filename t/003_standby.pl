# A hot standby routes the same users to the same branches as the primary, reading
# the replicated log; its own new assignments stay in its memory.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $primary = AbtestNode::new_node('primary', allows_streaming => 1);
$primary->safe_psql('postgres', q{
	SELECT ab_create_experiment('replicated', ARRAY['control', 'treatment'], ARRAY[80, 20]);
	SELECT ab_start('replicated');
	CREATE TABLE routed AS SELECT i, ab_route_user('replicated', 'u' || i) AS branch FROM generate_series(1, 3000) i;
});
AbtestNode::wait_for_log($primary, 3000);
# A ramp after the assignments: the standby must use the log, not the new split.
$primary->safe_psql('postgres', q{SELECT ab_set_allocation('replicated', '{"control": 20, "treatment": 80}')});

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', q{SELECT count(*) FROM routed WHERE branch <> ab_route_user('replicated', 'u' || i)}),
	'0', 'the standby routes every user of the primary to the same branch');
is($standby->safe_psql('postgres', 'SELECT log_lookups FROM abtest.sticky_cache_stats'),
	'3000', 'it found them in the replicated log');

my $fresh = $standby->safe_psql('postgres', q{
	SELECT string_agg(ab_route_user('replicated', 'standby-user' || i), ',' ORDER BY i) FROM generate_series(1, 50) i});
is($standby->safe_psql('postgres', q{
	SELECT string_agg(ab_route_user('replicated', 'standby-user' || i), ',' ORDER BY i) FROM generate_series(1, 50) i}),
	$fresh, 'new users on the standby are sticky in its memory');
is($primary->safe_psql('postgres', q{SELECT count(*) FROM abtest.assignments WHERE user_id LIKE 'standby-user%'}),
	'0', 'and are not written anywhere');

$standby->stop;
$primary->stop;
done_testing();
