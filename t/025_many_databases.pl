# Twenty databases route sticky users and record metrics at the same time, with
# abtest's default settings and only 4 background worker processes (the logical
# replication launcher and abtest's launcher take two): every database gets a slot,
# the flush workers take turns, and each database's log and counters come out exact.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $databases = 20;
my $users = 2000;
my $recorded = 1000;
my $node = AbtestNode::new_node('many', conf => "abtest.flush_interval = '200ms'\nmax_worker_processes = 4\n");

my @names = map { "tenant_$_" } 1 .. $databases;
for my $name (@names)
{
	$node->safe_psql('postgres', "CREATE DATABASE $name");
	$node->safe_psql($name, q{
		CREATE EXTENSION abtest;
		SELECT ab_create_experiment('checkout', ARRAY['control', 'treatment']);
		SELECT ab_start('checkout');
	});
}

# All at once: new users in batches, then recordings in the branch each user got.
my @runs;
for my $name (@names)
{
	my $script = join '', map {
		my $from = ($_ - 1) * 500 + 1;
		my $to = $_ * 500;
		"SELECT count(ab_route_user('checkout', 'user-' || i)) FROM generate_series($from, $to) i;\n"
	} 1 .. $users / 500;
	$script .= "SELECT count(ab_record_query('checkout', ab_route_user('checkout', 'user-' || i), 1 + i % 7, i % 10 <> 0)) "
	  . "FROM generate_series(1, $recorded) i;\n";
	my ($out, $err) = ('', '');
	push @runs, [ $name, \$out, \$err,
		IPC::Run::start([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($name) ],
			'<', \$script, '>', \$out, '2>', \$err) ];
}
my $failed = 0;
for my $run (@runs)
{
	my ($name, $out, $err, $handle) = @$run;
	$handle->finish;
	if ($handle->result != 0) { $failed++; diag("$name: $$err"); }
}
is($failed, 0, "$databases databases routed and recorded concurrently, none refused");

for my $name (@names)
{
	$node->poll_query_until($name, "SELECT count(*) = $users FROM abtest.assignments")
	  or diag("$name: its assignments were not all written");
}
my @wrong;
for my $name (@names)
{
	# The counters first: the sticky check below routes (and counts) again.
	my $counts = $node->safe_psql($name, q{
		SELECT sum(exposures) || ' ' || sum(query_count) || ' ' || sum(success_count)
		  FROM ab_branch_metrics('checkout')});
	my $log = $node->safe_psql($name, q{
		SELECT count(*) || ' ' || count(*) FILTER (WHERE a.branch = ab_route_user('checkout', a.user_id))
		  FROM abtest.assignments a});
	my $sync_writes = $node->safe_psql($name, 'SELECT sync_writes FROM abtest.sticky_cache_stats');
	my $result = "$log $counts $sync_writes";
	my $expected = join ' ', $users, $users, $users + $recorded, $recorded, $recorded * 9 / 10, 0;
	push @wrong, "$name: $result" if $result ne $expected;
}
is(join("\n", @wrong), '', "each database logged its $users users once, kept them sticky, and counted exactly");

# The counters reach each database's own tables too.
my @unwritten;
for my $name (@names)
{
	$node->poll_query_until($name,
		"SELECT coalesce(sum(query_count), 0) = $recorded FROM abtest.branch_metrics")
	  or push @unwritten, $name;
}
is("@unwritten", '', 'and every database\'s flush worker wrote its metrics');
ok($node->log_contains('could not start a flush worker for database'),
	'while databases waited for a worker slot (the turns were needed)');

$node->stop;
done_testing();
