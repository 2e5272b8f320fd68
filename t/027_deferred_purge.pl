# Deleting an experiment (catalog 1.6): ab_delete_experiment returns without deleting
# the experiment's assignment log and without locking it; the database's flush worker
# purges the rows afterwards in short batches, while routing and flushing go on. The
# purge survives a restart, waits for transactions that began before the delete, and
# a new experiment of the same name starts empty.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my ($a_users, $b_users) = (200000, 50000);
my $node = AbtestNode::new_node('purge', conf => "abtest.flush_interval = '100ms'\n");
$node->safe_psql('postgres', qq{
	SELECT ab_create_experiment('a', ARRAY['control', 'treatment'], ARRAY[100, 0]);
	SELECT ab_create_experiment('b', ARRAY['control', 'treatment']);
	SELECT ab_start('a'), ab_start('b');
	SELECT count(ab_route_user('a', 'u' || i)) FROM generate_series(1, $a_users) i;
	SELECT count(ab_route_user('b', 'u' || i)) FROM generate_series(1, $b_users) i;
});
AbtestNode::wait_for_log($node, $a_users + $b_users);
my $a_id = $node->safe_psql('postgres', q{SELECT id FROM abtest.experiments WHERE name = 'a'});
my $b_id = $node->safe_psql('postgres', q{SELECT id FROM abtest.experiments WHERE name = 'b'});
my $b_before = $node->safe_psql('postgres', qq{SELECT md5(string_agg(user_id || branch || assigned_at, ',' ORDER BY user_id))
	FROM abtest.assignments WHERE experiment_id = '$b_id'});
sub count_of
{
	my ($id) = @_;
	return $node->safe_psql('postgres', qq{SELECT count(*) FROM abtest.assignments WHERE experiment_id = '$id'});
}

# The delete takes no lock on the log: it returns while another session holds SHARE
# on abtest.assignments (which holds up flushes and the purge, as a long DELETE did).
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE abtest.assignments IN SHARE MODE');
my $started = time;
$node->safe_psql('postgres', q{SET statement_timeout = '10s'; SELECT ab_delete_experiment('a')});
my $elapsed = time - $started;
note(sprintf('ab_delete_experiment of %d logged users took %.1f ms (psql included)', $a_users, $elapsed * 1000));
pass('ab_delete_experiment returns while the log is locked in SHARE mode');
is($node->safe_psql('postgres', qq{SELECT name FROM abtest.deleted_experiments WHERE experiment_id = '$a_id'}), 'a',
	'the purge is pending in abtest.deleted_experiments');
is(count_of($a_id), $a_users, 'its rows are still there');

# A new experiment of the same name starts empty, even while the old rows are there:
# every user of the old 'a' had control; the new 'a' gives treatment to everyone.
$node->safe_psql('postgres', q{
	SELECT ab_create_experiment('a', ARRAY['control', 'treatment'], ARRAY[0, 100]);
	SELECT ab_start('a');
});
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM generate_series(1, 2000) i WHERE ab_route_user('a', 'u' || i) <> 'treatment'}),
	'0', 'a new experiment of the same name remembers none of the old one\'s users');
is($node->safe_psql('postgres', q{SELECT log_lookups FROM abtest.sticky_cache_stats}), '0',
	'and does not even look them up');
# The purge runs in batches of 10,000 rows in the order of the primary key, each its
# own transaction: a row locked by another session stops it half-way (its batch waits
# for the lock, gives up after the worker's lock_timeout and is tried again), with the
# batches before it done. A restart there resumes it at the worker's next start.
my $half = $a_users / 2;
my $row_holder = $node->background_psql('postgres');
$row_holder->query_safe(qq{BEGIN; SELECT user_id FROM abtest.assignments WHERE experiment_id = '$a_id'
	AND user_id = (SELECT user_id FROM abtest.assignments WHERE experiment_id = '$a_id' ORDER BY user_id OFFSET $half LIMIT 1)
	FOR UPDATE});
$holder->query_safe('COMMIT');
$holder->quit;
$node->poll_query_until('postgres', qq{SELECT count(*) = $half FROM abtest.assignments WHERE experiment_id = '$a_id'})
  or die 'the purge did not delete the batches before the locked row';
pass('the purge deleted the batches before a locked row, and waits at that one');
$node->restart;
$row_holder->quit;
# The shutdown ends the row holder's session before the worker stops: the worker may
# still finish a batch or two meanwhile.
my $left = count_of($a_id);
note("restarted with $left rows of the deleted experiment left");
ok($left > 0 && $left <= $half, 'after a restart in the middle of the purge, the rest is still there');
is($node->safe_psql('postgres', q{SELECT count(*) FROM abtest.deleted_experiments}), '1', 'and still pending');

# The worker starts with the database's next sticky routing; routing and flushing of
# another experiment go on during the purge.
my $log_offset = -s $node->logfile;
$started = time;
$node->safe_psql('postgres', q{SELECT count(ab_route_user('b', 'n' || i)) FROM generate_series(1, 5000) i});
$node->poll_query_until('postgres', qq{SELECT count(*) = $b_users + 5000 FROM abtest.assignments WHERE experiment_id = '$b_id'})
  or die 'new users of b were not flushed';
note(sprintf('5,000 new users of b routed and flushed in %.0f ms during the purge', (time - $started) * 1000));
$node->poll_query_until('postgres', qq{SELECT NOT EXISTS (SELECT FROM abtest.deleted_experiments)})
  or die 'the purge did not finish';
is(count_of($a_id), '0', 'every row of the deleted experiment is gone');
is($node->safe_psql('postgres', qq{SELECT md5(string_agg(user_id || branch || assigned_at, ',' ORDER BY user_id))
	FROM abtest.assignments WHERE experiment_id = '$b_id' AND user_id NOT LIKE 'n%'}),
	$b_before, 'the other experiment\'s rows are untouched');
ok($node->log_contains(qr/abtest: purged $left rows of deleted experiment "a" from abtest.assignments/, $log_offset),
	'the server log reports the purge');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id WHERE e.name = 'a'}),
	'2000', 'the new experiment of that name has only its own users');

# A transaction that began before the delete can still write a row of the experiment
# (a synchronous write with its routing cache of before the delete): the purge waits
# for it to end and removes that row too.
$node->safe_psql('postgres', q{
	SELECT ab_create_experiment('c', ARRAY['control', 'treatment']);
	SELECT ab_start('c');
});
my $c_id = $node->safe_psql('postgres', q{SELECT id FROM abtest.experiments WHERE name = 'c'});
my $old = $node->background_psql('postgres');
$old->query_safe(q{SET abtest.sticky_durability = sync; BEGIN; SELECT ab_route_user('c', 'x1')});
$node->safe_psql('postgres', q{SELECT ab_delete_experiment('c')});
$old->query(q{SELECT ab_route_user('c', 'x2')});  # the cache of before the delete, or an error
sleep 1;
is($node->safe_psql('postgres', qq{SELECT count(*) FROM abtest.deleted_experiments WHERE experiment_id = '$c_id'}),
	'1', 'the purge waits for a transaction that began before the delete');
$old->query(q{COMMIT});
$old->quit;
$node->poll_query_until('postgres', qq{SELECT NOT EXISTS (SELECT FROM abtest.deleted_experiments)})
  or die 'the purge did not finish after the older transaction ended';
is(count_of($c_id), '0', 'and removes the rows that transaction wrote');

# Nothing pending: the worker runs no purge query (it leaves when idle, as before).
$node->safe_psql('postgres', q{SELECT ab_route_user('b', 'idle')});
$node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'abtest flush worker'})
  or die 'the flush worker did not leave';
pass('with nothing to purge the flush worker leaves when its queue is empty');

$node->stop;
done_testing();
