# Warm start: after a restart, the flush worker loads an experiment's log into the
# sticky cache. Clears that race with the load win (a forgotten user is not brought
# back), and a cache too small for the log stops the load without losing stickiness.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $users = 100000;
my $node = AbtestNode::new_node('warm', conf => "abtest.flush_interval = '100ms'\n");
# Everyone is assigned 'control'; then the allocation moves everything to
# 'treatment', so that a user who lost their assignment shows it.
$node->safe_psql('postgres', qq{
	SELECT ab_create_experiment('warm', ARRAY['control', 'treatment'], ARRAY[100, 0]);
	SELECT ab_start('warm');
	SELECT count(ab_route_user('warm', 'w' || i)) FROM generate_series(1, $users) i;
});
AbtestNode::wait_for_log($node, $users);
$node->safe_psql('postgres', q{SELECT ab_set_allocation('warm', '{"control": 0, "treatment": 100}')});

my $log_offset = -s $node->logfile;
$node->restart;
# The first call starts the load; the deletion request comes while it runs (or
# just before or after it: every order must forget the user).
is($node->safe_psql('postgres', q{SELECT ab_route_user('warm', 'w1')}), 'control',
	'the first returning user after the restart keeps the branch');
$node->safe_psql('postgres', q{SELECT ab_clear_user_cache('w90000')});
$node->wait_for_log(qr/abtest: loaded \d+ sticky assignments of experiment "warm" into the cache/, $log_offset);
pass('the flush worker loaded the log');
my $lookups = $node->safe_psql('postgres', 'SELECT log_lookups FROM abtest.sticky_cache_stats');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM generate_series(1, $users) i WHERE i <> 90000 AND ab_route_user('warm', 'w' || i) <> 'control'}),
	'0', 'every returning user keeps the branch');
is($node->safe_psql('postgres', q{SELECT ab_route_user('warm', 'w90000')}), 'treatment',
	'the user forgotten during the load is not brought back: a new assignment');
is($node->safe_psql('postgres', 'SELECT log_lookups FROM abtest.sticky_cache_stats'),
	$lookups, 'all from the cache, without log lookups');

# A clear of the whole experiment during a load ends it: afterwards everyone is new.
$log_offset = -s $node->logfile;
$node->restart;
$node->safe_psql('postgres', q{SELECT ab_route_user('warm', 'w2')});
$node->safe_psql('postgres', q{SELECT ab_clear_sticky_cache('warm')});
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM generate_series(1, 1000) i WHERE ab_route_user('warm', 'w' || i) <> 'treatment'}),
	'0', 'after a clear that raced with the load, users are assigned afresh');
$node->stop;

# A cache smaller than the log: the load stops at three quarters; the rest is looked up.
my $small = AbtestNode::new_node('warm_small',
	conf => "abtest.sticky_cache_size = 2048\nabtest.flush_interval = '100ms'\n");
$small->safe_psql('postgres', q{
	SELECT ab_create_experiment('big', ARRAY['control', 'treatment'], ARRAY[100, 0]);
	SELECT ab_start('big');
});
for my $slice (0 .. 9)
{
	my ($from, $to) = ($slice * 500 + 1, $slice * 500 + 500);
	$small->safe_psql('postgres', qq{SELECT count(ab_route_user('big', 'b' || i)) FROM generate_series($from, $to) i});
}
AbtestNode::wait_for_log($small, 5000);
$small->safe_psql('postgres', q{SELECT ab_set_allocation('big', '{"control": 0, "treatment": 100}')});
$log_offset = -s $small->logfile;
$small->restart;
$small->safe_psql('postgres', q{SELECT ab_route_user('big', 'b1')});
$small->wait_for_log(qr/abtest: stopped loading the sticky assignments of experiment "big" after \d+: the cache is three quarters full/,
	$log_offset);
pass('the load stopped when the cache was three quarters full');
is($small->safe_psql('postgres', q{
	SELECT count(*) FROM generate_series(1, 5000) i WHERE ab_route_user('big', 'b' || i) <> 'control'}),
	'0', 'every user keeps the branch, the ones left out of the cache through log lookups');
$small->stop;

done_testing();
