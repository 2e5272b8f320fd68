# A burst larger than the write-behind queue and the sticky cache (both made small
# here): one statement routes 30,000 new users of a round-robin experiment (where a
# user who lost their assignment would get the next turn, likely another branch) and,
# in the same statement, each user again 5,000 rows later, while the queue is full and
# the cache evicts. Every user stays sticky, is logged exactly once, and once the log
# has caught up, returning users are answered without surprises.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $users = 30000;
my $node = AbtestNode::new_node('burst',
	conf => "abtest.assignment_queue_size = '128kB'\nabtest.sticky_cache_size = 16384\nabtest.flush_interval = '500ms'\n");
$node->safe_psql('postgres', q{
	SELECT ab_create_experiment('burst', ARRAY['control', 'treatment']);
	SELECT ab_set_assignment('burst', 'round_robin');
	SELECT ab_start('burst');
});
$node->safe_psql('postgres', qq{
	CREATE TABLE routed AS
	SELECT i, ab_route_user('burst', 'u' || i) AS branch,
	       CASE WHEN i > 5000 THEN ab_route_user('burst', 'u' || (i - 5000)) END AS again
	  FROM generate_series(1, $users) i ORDER BY i;
});
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM routed r JOIN routed earlier ON earlier.i = r.i - 5000 WHERE r.again <> earlier.branch}),
	'0', 'within the burst, every user routed again got the same branch');

my ($queued, $sync_writes, $evictions) = split /\|/,
  $node->safe_psql('postgres', 'SELECT queued, sync_writes, evictions FROM abtest.sticky_cache_stats');
ok($evictions > 0, "the cache evicted ($evictions) during the burst");
ok($queued < $users, "the queue could not take every user ($queued queued, $sync_writes written synchronously)");
# The statistics say why (1.5): the routing backend wrote the users the full queue pool
# could not take, and the pool is the configured 128 kB.
my ($overflow_writes, $uncached_writes, $pool) = split /\|/, $node->safe_psql('postgres',
	'SELECT overflow_writes, uncached_writes, queue_capacity_bytes FROM abtest.sticky_cache_stats');
ok($overflow_writes > 0, "the statistics show the writes of a full queue pool ($overflow_writes)");
is($overflow_writes + $uncached_writes, $sync_writes,
	"every synchronous write was one of a full pool or a full cache set ($uncached_writes)");
is($queued + $sync_writes, $users, 'every new user was either queued or written synchronously, once');
is($pool, 128 * 1024, 'the pool has its configured size');

AbtestNode::wait_for_log($node, $users);
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || count(DISTINCT user_id) FROM abtest.assignments}),
	"$users $users", 'every user is logged exactly once');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM routed r JOIN abtest.assignments a ON a.user_id = 'u' || r.i WHERE a.branch <> r.branch}),
	'0', 'with the branch the user was given');

# Afterwards: a second pass finds everyone, from the cache or the log.
my $lookups_before = $node->safe_psql('postgres', 'SELECT log_lookups FROM abtest.sticky_cache_stats');
is($node->safe_psql('postgres', q{SELECT count(*) FROM routed WHERE branch <> ab_route_user('burst', 'u' || i)}),
	'0', 'after the burst every returning user keeps the branch');
my $lookups = $node->safe_psql('postgres', 'SELECT log_lookups FROM abtest.sticky_cache_stats') - $lookups_before;
ok($lookups <= $users, "a returning user costs at most one log lookup ($lookups for $users users)");

# A cache large enough again (restart with the default size): the warm start loads
# the log, and returning users cost no log lookup at all.
$node->append_conf('postgresql.conf', "abtest.sticky_cache_size = -1\n");
$node->restart;
$node->safe_psql('postgres', q{SELECT ab_route_user('burst', 'u1')});
$node->poll_query_until('postgres', q{SELECT entries >= 30000 FROM abtest.sticky_cache_stats})
  or die 'the warm start did not load the log';
# (the first call, which asked for the load, looked its user up)
$lookups_before = $node->safe_psql('postgres', 'SELECT log_lookups FROM abtest.sticky_cache_stats');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE branch <> ab_route_user('burst', 'u' || i)) FROM routed}) . ' ' .
	($node->safe_psql('postgres', 'SELECT log_lookups FROM abtest.sticky_cache_stats') - $lookups_before),
	'0 0', 'once the warm start has loaded the log, returning users keep their branch without a log lookup');

$node->stop;
done_testing();
