# A database's shared state (its write-behind queue and metrics state) is reclaimed
# when the database is dropped, or when no process is connected to it and it has
# nothing unwritten; a database that comes back loads its totals again, exactly.
# abtest.max_databases = 1 forces the reclaim (the default, one slot per possible
# connection, never has to refuse: see t/025_many_databases.pl).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $node = AbtestNode::new_node('dropped',
	conf => "abtest.max_databases = 1\nabtest.max_experiments = 16\nabtest.flush_interval = '100ms'\n");

sub setup_database
{
	my ($name, $experiment) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $name");
	$node->safe_psql($name, qq{
		CREATE EXTENSION abtest;
		SELECT ab_create_experiment('$experiment', ARRAY['control', 'treatment']);
		SELECT ab_start('$experiment');
	});
}

# Waits until no process is connected to the database (its flush worker has left).
sub wait_until_idle
{
	my ($name) = @_;
	$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = '$name'")
	  or die "$name still has connections";
}

setup_database('first_db', 'e1');
setup_database('second_db', 'later');
$node->safe_psql('first_db', q{
	SELECT count(ab_route_user('e1', 'u' || i)) FROM generate_series(1, 50) i;
	SELECT ab_record_query('e1', 'control', 12.5, true);
});
$node->poll_query_until('first_db', q{SELECT count(*) = 50 FROM abtest.assignments})
  or die 'the first database\'s assignments were not written';

# While first_db has a connection, its slot stays.
my $holder = $node->background_psql('first_db');
$holder->query_safe('SELECT 1');
my ($code, $out, $err) = $node->psql('second_db', q{SELECT ab_record_query('later', 'control', 1, true)});
like($err, qr/no room for another database/, 'the only slot is held while first_db has a connection');
like($err, qr/abtest\.max_databases to 0/, 'and the hint says how to never be refused');
$holder->quit;
wait_until_idle('first_db');

# Idle and written: second_db reclaims the slot.
$node->safe_psql('second_db', q{
	SELECT count(ab_route_user('later', 'u' || i)) FROM generate_series(1, 100) i;
	SELECT ab_record_query('later', 'control', 10, true);
});
pass('once first_db is idle, second_db routes sticky users and records metrics');
$node->poll_query_until('second_db', q{SELECT count(*) = 100 FROM abtest.assignments})
  or die 'the second database\'s assignments were not written';
is($node->safe_psql('second_db', 'SELECT sync_writes FROM abtest.sticky_cache_stats'), '0',
	'through the reclaimed write-behind queue, not synchronously');
is($node->safe_psql('second_db', q{SELECT query_count FROM ab_branch_metrics('later') WHERE branch = 'control'}), '1',
	'with its own metrics, none of first_db\'s');
wait_until_idle('second_db');

# first_db comes back: its totals are loaded again, not lost and not doubled.
$node->safe_psql('first_db', q{SELECT ab_record_query('e1', 'control', 7.5, true)});
is($node->safe_psql('first_db', q{SELECT query_count || ' ' || exposures FROM ab_branch_metrics('e1') WHERE branch = 'control'}),
	$node->safe_psql('first_db', q{SELECT count(*) FILTER (WHERE branch = 'control') FROM abtest.assignments}) =~ s/^/2 /r,
	'first_db takes the slot back with its persisted totals, counted once');
is($node->safe_psql('first_db', q{SELECT count(*) FROM (SELECT ab_route_user('e1', 'u' || i) FROM generate_series(1, 50) i) s}),
	'50', 'and its sticky users are still there');
wait_until_idle('first_db');
is($node->safe_psql('first_db', q{SELECT query_count FROM abtest.branch_metrics WHERE branch = 'control'}), '2',
	'and the flush wrote 2 queries before leaving');

# A dropped database's slot is reclaimed even though it may hold unwritten state.
$node->safe_psql('postgres', 'DROP DATABASE second_db WITH (FORCE)');
$node->safe_psql('first_db', q{SELECT ab_record_query('e1', 'control', 5, true)});
pass('after DROP DATABASE, the slot serves the next database');

$node->stop;
done_testing();
