# Soak: two pgbench clients for ABTEST_SOAK_SECONDS (default 60) mixing sticky
# routing, recording and admin changes (ramps of the routed experiment, pauses and
# starts of another). Afterwards: no error but the expected ones, every counter equal
# to the calls made, every sticky user still on their first branch, nothing lost
# across a restart.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $seconds = $ENV{ABTEST_SOAK_SECONDS} // 60;
my $node = AbtestNode::new_node('soak',
	conf => "abtest.flush_interval = '200ms'\nabtest.sticky_cache_size = 16384\ntrack_functions = all\n");
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

$node->safe_psql('postgres', q{
	SELECT ab_create_experiment('soak', ARRAY['control', 'treatment'], ARRAY[90, 10]);
	SELECT ab_start('soak');
	SELECT ab_create_experiment('toggled', ARRAY['control', 'treatment']);
	SELECT ab_start('toggled');
	-- The first branch each routing call returned, per user: what stickiness must keep.
	CREATE TABLE first_branch (user_id text PRIMARY KEY, branch text NOT NULL);
	CREATE TABLE expected_errors (sqlstate text, at timestamptz DEFAULT clock_timestamp());
	-- Admin changes race each other by design: a pause of a paused experiment is
	-- refused (55000), which is the only error expected.
	CREATE FUNCTION soak_toggle() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
	    IF (SELECT state FROM abtest.experiments WHERE name = 'toggled') = 'active' THEN
	        PERFORM ab_pause('toggled');
	    ELSE
	        PERFORM ab_start('toggled');
	    END IF;
	EXCEPTION WHEN object_not_in_prerequisite_state THEN
	    INSERT INTO expected_errors (sqlstate) VALUES (SQLSTATE);
	END
	$$;
});

# Users come from a pool of 50,000, larger than the cache: evictions and log lookups too.
my %scripts = (
	'route@10' => q{
\set uid random(1, 50000)
INSERT INTO first_branch VALUES ('u' || :uid, ab_route_user('soak', 'u' || :uid)) ON CONFLICT DO NOTHING;
},
	'record@10' => q{
\set lat random(1, 2000)
SELECT ab_record_query('toggled', 'control', :lat / 10.0, :lat % 7 <> 0);
SELECT ab_record_event('toggled', 'treatment', 'revenue', :lat);
},
	'ramp@1' => q{
\set share random(10, 90)
SELECT ab_set_allocation('soak', jsonb_build_object('control', 100 - :share, 'treatment', :share));
},
	'toggle@1' => q{
SELECT soak_toggle();
});
my ($stdout, $stderr);
my $pgbench = IPC::Run::run(
	[ 'pgbench', '--no-vacuum', '--client=2', '--jobs=2', "--time=$seconds",
	  map({ ('--file', write_script($_, $scripts{$_})) } sort keys %scripts),
	  '--host', $node->host, '--port', $node->port, 'postgres' ],
	'>', \$stdout, '2>', \$stderr);
ok($pgbench, "pgbench ran $seconds s with 2 clients") or diag($stderr);
unlike($stderr, qr/ERROR|FATAL|PANIC|aborted/, 'no client saw an unexpected error') or diag($stderr);

# Calls made, per script, from pgbench's report.
my %transactions;
while ($stdout =~ /SQL script \d+: \S*?(\w+)\.sql\n - weight: \d+ \(targets [^)]*\)\n - (\d+) transactions/g)
{
	$transactions{$1} = $2;
}
my $total = 0;
$total += $_ for values %transactions;
ok($total > 0, "transactions: " . join(', ', map { "$_ $transactions{$_}" } sort keys %transactions));

# The calls the server executed, counted by PostgreSQL itself (pg_stat_user_functions):
# pgbench's transaction counts leave out a client's last transaction when time is up.
my %calls = map { split /\|/ } split /\n/, $node->safe_psql('postgres', q{
	SELECT funcname, calls FROM pg_stat_user_functions
	 WHERE funcname IN ('ab_record_query', 'ab_record_event', 'ab_route_user')});
ok($calls{ab_record_query} >= $transactions{record},
	"the server ran $calls{ab_record_query} ab_record_query calls for $transactions{record} finished transactions");
is($node->safe_psql('postgres', q{SELECT query_count FROM ab_branch_metrics('toggled') WHERE branch = 'control'}),
	$calls{ab_record_query}, 'every ab_record_query call was counted');
is($node->safe_psql('postgres', q{SELECT count FROM ab_event_metrics('toggled')}),
	$calls{ab_record_event}, 'every ab_record_event call was counted');
is($node->safe_psql('postgres', q{SELECT sum(exposures) FROM ab_branch_metrics('soak')}),
	$calls{ab_route_user}, 'every routing call was counted as an exposure');

# Stickiness through every ramp: each user still gets their first branch, and the log
# (once flushed) holds it.
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM first_branch WHERE ab_route_user('soak', user_id) <> branch}),
	'0', 'no sticky user changed branch through the ramps');
$node->poll_query_until('postgres', q{
	SELECT queued = flushed FROM abtest.sticky_cache_stats})
  or die 'the flush worker did not catch up';
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM first_branch f
	  LEFT JOIN abtest.assignments a ON a.user_id = f.user_id
	   AND a.experiment_id = (SELECT id FROM abtest.experiments WHERE name = 'soak')
	 WHERE a.branch IS DISTINCT FROM f.branch}),
	'0', 'the assignment log holds every first branch');

my $errors = $node->safe_psql('postgres', 'SELECT count(*) FROM expected_errors');
ok($errors >= 0, "expected refusals of racing admin changes: $errors");
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $started, 'the server never restarted');
my $log = slurp_file($node->logfile);
unlike($log, qr/PANIC|server process .* was terminated|TRAP:/, 'no backend crashed');

# And a clean restart keeps the counters exactly.
my $counts = q{SELECT string_agg(query_count || '/' || exposures, ',' ORDER BY branch) FROM ab_branch_metrics('toggled')};
my $before = $node->safe_psql('postgres', $counts);
$node->restart;
is($node->safe_psql('postgres', $counts), $before, 'the counters survive a clean restart');
is($node->safe_psql('postgres', q{SELECT count(*) FROM first_branch WHERE ab_route_user('soak', user_id) <> branch}),
	'0', 'and so does stickiness');

# On stderr, so that the test command's output shows the figures the README quotes.
diag("figures: soak of $seconds s, transactions " . join(', ', map { "$_ $transactions{$_}" } sort keys %transactions)
	  . "; server-side calls " . join(', ', map { "$_ $calls{$_}" } sort keys %calls)
	  . "; expected refusals $errors");
$node->stop;
done_testing();

# Writes a pgbench script to the test's temp dir and returns its path; the name
# (weight suffix kept for pgbench) shows in its report.
sub write_script
{
	my ($name, $body) = @_;
	my ($base, $weight) = split /@/, $name;
	my $path = PostgreSQL::Test::Utils::tempdir() . "/$base.sql";
	open my $fh, '>', $path or die "cannot write $path: $!";
	print $fh $body;
	close $fh;
	return "$path\@$weight";
}
