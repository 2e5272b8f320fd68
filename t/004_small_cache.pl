# A sticky cache smaller than the number of users: stickiness still holds (the
# cache evicts persisted entries and looks them up in the log again), and the
# statistics view shows the evictions.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $node = AbtestNode::new_node('small', conf => "abtest.sticky_cache_size = 1024\nabtest.flush_interval = 100ms\n");
$node->safe_psql('postgres', q{
	SELECT ab_create_experiment('crowded', ARRAY['control', 'treatment']);
	SELECT ab_start('crowded');
});
# Route in slices so that the worker keeps up and entries become evictable.
for my $slice (0 .. 19)
{
	my ($from, $to) = ($slice * 1000 + 1, $slice * 1000 + 1000);
	$node->safe_psql('postgres', qq{
		CREATE TABLE IF NOT EXISTS routed (i int, branch text);
		INSERT INTO routed SELECT i, ab_route_user('crowded', 'u' || i) FROM generate_series($from, $to) i;
	});
}
AbtestNode::wait_for_log($node, 20000);
is($node->safe_psql('postgres', 'SELECT count(*) FROM abtest.assignments'), '20000', 'every user is logged once');

$node->safe_psql('postgres', q{SELECT ab_set_allocation('crowded', '{"control": 100, "treatment": 0}')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM routed WHERE branch <> ab_route_user('crowded', 'u' || i)}),
	'0', 'with 1024 cache entries for 20000 users, nobody changed branch after a ramp');

my ($entries, $capacity, $evictions, $lookups) = split /\|/, $node->safe_psql('postgres',
	'SELECT entries, capacity, evictions, log_lookups FROM abtest.sticky_cache_stats');
is($capacity, '1024', 'the cache has the configured capacity');
ok($entries <= 1024, "it holds at most its capacity ($entries entries)");
ok($evictions > 0, "it evicted persisted entries ($evictions)");
ok($lookups > 0, "and looked evicted users up in the log ($lookups)");

$node->stop;
done_testing();
