# A clean restart keeps every sticky assignment: those flushed before, and those
# still queued at shutdown (the flush worker writes everything when it is stopped).
# After it, the first routing call has the flush worker load the log into the cache
# (warm start): then neither returning nor new users cost a log lookup.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

# The flush worker waits 10 minutes: what is queued stays queued until the restart.
my $node = AbtestNode::new_node('restart', conf => "abtest.flush_interval = '10min'\n");

# The first users are written synchronously, in their transaction.
$node->safe_psql('postgres', q{
	SET abtest.sticky_durability = sync;
	SELECT ab_create_experiment('ramp', ARRAY['control', 'treatment'], ARRAY[90, 10]);
	SELECT ab_start('ramp');
	CREATE TABLE routed AS SELECT i, ab_route_user('ramp', 'u' || i) AS branch FROM generate_series(1, 5000) i;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM abtest.assignments'), '5000',
	'sync durability writes assignments in the routing transaction');

# More users, written behind: still queued when the server restarts.
$node->safe_psql('postgres', q{
	INSERT INTO routed SELECT i, ab_route_user('ramp', 'u' || i) FROM generate_series(5001, 8000) i;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM abtest.assignments'), '5000',
	'the new assignments are still queued before the restart');
my $log_offset = -s $node->logfile;
$node->restart;

is($node->safe_psql('postgres', 'SELECT count(*) FROM abtest.assignments'),
	'8000', 'every assignment survived the clean restart, queued ones too');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM routed r JOIN abtest.assignments a ON a.user_id = 'u' || r.i WHERE a.branch <> r.branch}),
	'0', 'the log holds the branches that were returned');

# The first call finds the log non-empty: a log lookup, and a warm start.
is($node->safe_psql('postgres', q{SELECT ab_route_user('ramp', 'u1') = branch FROM routed WHERE i = 1}),
	't', 'the first user after the restart keeps the branch');
$node->wait_for_log(qr/abtest: loaded 8000 sticky assignments of experiment "ramp" into the cache/, $log_offset);
pass('the flush worker loaded the 8000 logged assignments into the cache');
my $lookups = $node->safe_psql('postgres', 'SELECT log_lookups FROM abtest.sticky_cache_stats');

# With a changed allocation, everyone keeps their branch, from the cache.
$node->safe_psql('postgres', q{SELECT ab_set_allocation('ramp', '{"control": 10, "treatment": 90}')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM routed WHERE branch <> ab_route_user('ramp', 'u' || i)}),
	'0', 'no user changed branch after the restart and the ramp');
is($node->safe_psql('postgres', 'SELECT log_lookups FROM abtest.sticky_cache_stats'),
	$lookups, 'returning users came from the warmed cache, without log lookups');

# New users after the ramp get the new split.
my $treated = $node->safe_psql('postgres', q{
	SELECT avg((ab_route_user('ramp', 'new' || i) = 'treatment')::int) BETWEEN 0.87 AND 0.93
	  FROM generate_series(1, 5000) i});
is($treated, 't', 'new users follow the new allocation');
is($node->safe_psql('postgres', 'SELECT log_lookups FROM abtest.sticky_cache_stats'),
	$lookups, 'and cost no log lookup: the warmed cache vouches for the log');

$node->stop;
done_testing();
