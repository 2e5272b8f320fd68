# Crashes: kill -9 of a backend in the middle of routing, and of the postmaster.
# The cluster comes back, the log holds everything flushed before the crash, its
# index is intact, and returning users keep their branch.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $node = AbtestNode::new_node('crash', conf => "restart_after_crash = on\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION amcheck;
	SELECT ab_create_experiment('crashy', ARRAY['control', 'treatment']);
	SELECT ab_start('crashy');
	CREATE TABLE routed AS SELECT i, ab_route_user('crashy', 'u' || i) AS branch FROM generate_series(1, 4000) i;
});
AbtestNode::wait_for_log($node, 4000);

# A backend killed while it routes a long query.
my ($stdout, $stderr) = ('', '');
my $long = IPC::Run::start(
	[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
	  q{SELECT count(ab_route_user('crashy', 'long' || i)) FROM generate_series(1, 50000000) i} ],
	'>', \$stdout, '2>', \$stderr);
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%generate_series(1, 50000000)%' AND pid <> pg_backend_pid()})
  or die 'the routing query did not start';
sleep 1;
my $victim = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE query LIKE '%generate_series(1, 50000000)%' AND pid <> pg_backend_pid()});
kill 'KILL', $victim;
$long->finish;
$node->poll_query_until('postgres', 'SELECT true') or die 'the cluster did not come back';
pass('the cluster came back after a backend was killed while routing');

is($node->safe_psql('postgres', q{SELECT count(*) FROM abtest.assignments WHERE user_id LIKE 'u%'}),
	'4000', 'assignments flushed before the crash are all there');
is($node->safe_psql('postgres', q{SELECT count(*) FROM routed WHERE branch <> ab_route_user('crashy', 'u' || i)}),
	'0', 'returning users keep their branch after the crash');
$node->safe_psql('postgres', q{SELECT bt_index_check('abtest.assignments_pkey', true)});
pass('the assignment log index is intact');

# The postmaster killed: flushed assignments survive, routing works afterwards.
$node->safe_psql('postgres', q{
	INSERT INTO routed SELECT i, ab_route_user('crashy', 'u' || i) FROM generate_series(4001, 6000) i;
});
AbtestNode::wait_for_log($node, 6000 + 0);
my $before = $node->safe_psql('postgres', q{SELECT count(*) FROM abtest.assignments WHERE user_id LIKE 'u%'});
my $log_offset = -s $node->logfile;
$node->kill9;
my $started = 0;
# The killed postmaster's children exit when they notice; until then a start fails.
for (1 .. 60)
{
	$node->{_pid} = undef;    # a failed start records the stale pid file's pid
	last if ($started = $node->start(fail_ok => 1));
	sleep 1;
}
ok($started, 'the cluster restarted after the postmaster was killed');
is($node->safe_psql('postgres', q{SELECT count(*) FROM abtest.assignments WHERE user_id LIKE 'u%'}),
	$before, 'everything flushed before the kill is in the log');
$node->safe_psql('postgres', q{SELECT bt_index_check('abtest.assignments_pkey', true)});
pass('the assignment log index is intact after the postmaster was killed');
$node->safe_psql('postgres', q{SELECT ab_set_allocation('crashy', '{"control": 100, "treatment": 0}')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM routed WHERE branch <> ab_route_user('crashy', 'u' || i)}),
	'0', 'returning users keep their branch after the postmaster crash and a ramp');
$node->wait_for_log(qr/abtest: loaded \d+ sticky assignments of experiment "crashy" into the cache/, $log_offset);
my $lookups = $node->safe_psql('postgres', 'SELECT log_lookups FROM abtest.sticky_cache_stats');
is($node->safe_psql('postgres', q{SELECT count(*) FROM routed WHERE branch <> ab_route_user('crashy', 'u' || i)}),
	'0', 'after the warm start too');
is($node->safe_psql('postgres', 'SELECT log_lookups FROM abtest.sticky_cache_stats'),
	$lookups, 'from the cache the flush worker loaded from the log');

$node->stop;
done_testing();
