# Metrics in shared memory: concurrent recording loses no update, a clean restart
# keeps every count, sum and percentile, a crash loses at most what was not flushed,
# and two databases keep their counters apart.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $node = AbtestNode::new_node('metrics', conf => "abtest.flush_interval = '100ms'\n");
$node->safe_psql('postgres', q{
	SELECT ab_create_experiment('e', ARRAY['control', 'treatment']);
	SELECT ab_start('e');
});

# Two pgbench clients record into the same branches at once: every call counts.
my $transactions = 5000;
$node->pgbench(
	"--no-vacuum --client=2 --jobs=2 --transactions=$transactions",
	0, [qr{processed: 10000/10000}], [qr{^$}],
	'two clients record concurrently',
	{
		'record' => q{
\set lat random(1, 1000)
\set ok random(0, 3)
SELECT ab_record_query('e', 'control', :lat / 10.0, :ok > 0);
SELECT ab_record_event('e', 'treatment', 'revenue', :lat);
SELECT ab_route_user('e', 'user' || :lat);
}
	});
is($node->safe_psql('postgres', q{
	SELECT query_count, success_count + failure_count FROM ab_branch_metrics('e') WHERE branch = 'control'}),
	'10000|10000', 'no query count was lost');
is($node->safe_psql('postgres', q{SELECT count FROM ab_event_metrics('e')}), '10000', 'no event was lost');
is($node->safe_psql('postgres', q{SELECT sum(exposures) FROM ab_branch_metrics('e')}), '10000',
	'every routing call counted as an exposure');
$node->poll_query_until('postgres', q{
	SELECT sum(assigned_users) = (SELECT count(*) FROM abtest.assignments) FROM ab_branch_metrics('e')})
  or die 'assigned users differ from the users in the log';
pass('assigned users are the users the assignment log holds');

# A known set of latencies: percentiles within 2% of percentile_disc over the same values.
$node->safe_psql('postgres', q{
	SELECT ab_create_experiment('lat', ARRAY['a', 'b']);
	CREATE TABLE latencies AS SELECT (random() * random() * 5000)::float8 AS ms FROM generate_series(1, 20000);
	SELECT count(ab_record_query('lat', 'a', ms, ms < 2000)) FROM latencies;
});
my $within = $node->safe_psql('postgres', q{
	WITH exact AS (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
	                      percentile_disc(0.95) WITHIN GROUP (ORDER BY ms) AS p95,
	                      percentile_disc(0.99) WITHIN GROUP (ORDER BY ms) AS p99 FROM latencies)
	SELECT abs(m.p50_latency_ms - e.p50) <= 0.02 * e.p50 AND abs(m.p95_latency_ms - e.p95) <= 0.02 * e.p95
	       AND abs(m.p99_latency_ms - e.p99) <= 0.02 * e.p99
	  FROM ab_branch_metrics('lat') m, exact e WHERE m.branch = 'a'});
is($within, 't', 'p50, p95 and p99 are within 2% of percentile_disc');

# Exposures counted late in a long transaction, after the flush worker wrote the
# first one and left, still reach the table.
$node->safe_psql('postgres', q{
	SELECT ab_route_user('e', 'late-1'), pg_sleep(0.5), ab_route_user('e', 'late-2'), ab_route_user('e', 'late-3')});
$node->poll_query_until('postgres', q{
	SELECT (SELECT sum(exposures) FROM abtest.branch_metrics m JOIN abtest.experiments x ON x.id = m.experiment_id
	         WHERE x.name = 'e') = (SELECT sum(exposures) FROM ab_branch_metrics('e'))})
  or die 'exposures counted at the end of a transaction were not written';
pass('exposures added at the end of a long transaction are written too');

# A clean restart: everything equal, to the last bit.
my $snapshot = q{
	SELECT string_agg(m::text, ';' ORDER BY m.branch) FROM (
	  SELECT branch, query_count, success_count, failure_count, avg_latency_ms, min_latency_ms, max_latency_ms,
	         p50_latency_ms, p95_latency_ms, p99_latency_ms, first_query, last_query, exposures, assigned_users
	    FROM ab_branch_metrics('e') UNION ALL
	  SELECT branch, query_count, success_count, failure_count, avg_latency_ms, min_latency_ms, max_latency_ms,
	         p50_latency_ms, p95_latency_ms, p99_latency_ms, first_query, last_query, exposures, assigned_users
	    FROM ab_branch_metrics('lat')) m};
my $events = q{SELECT string_agg(m::text, ';') FROM ab_event_metrics('e') m};
my $before = $node->safe_psql('postgres', $snapshot);
my $events_before = $node->safe_psql('postgres', $events);
$node->restart;
is($node->safe_psql('postgres', $snapshot), $before, 'a clean restart keeps every count, sum and percentile');
is($node->safe_psql('postgres', $events), $events_before, 'and every event count, sum, mean and stddev');

# Recording continues from the persisted totals, without counting them twice.
$node->safe_psql('postgres', q{SELECT ab_record_query('e', 'control', 1, true)});
is($node->safe_psql('postgres', q{SELECT query_count FROM ab_branch_metrics('e') WHERE branch = 'control'}),
	'10001', 'counters continue from the persisted totals');

# A crash (the postmaster killed) loses at most the last flush interval.
$node->poll_query_until('postgres', q{
	SELECT query_count = 10001 FROM abtest.branch_metrics m JOIN abtest.experiments e ON e.id = m.experiment_id
	 WHERE e.name = 'e' AND m.branch = 'control'})
  or die 'the flush worker did not write the counters';
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', q{SELECT query_count FROM ab_branch_metrics('e') WHERE branch = 'control'}),
	'10001', 'after a crash the flushed counts are back');

# Another database: its own counters, its own tables, its own worker.
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', q{
	CREATE EXTENSION abtest;
	SELECT ab_create_experiment('e', ARRAY['control', 'treatment']);
	SELECT ab_record_query('e', 'control', 3, true);
});
is($node->safe_psql('other', q{SELECT query_count FROM ab_branch_metrics('e') WHERE branch = 'control'}), '1',
	'a second database counts apart');
$node->poll_query_until('other', 'SELECT count(*) = 1 FROM abtest.branch_metrics')
  or die 'the second database was not flushed';
$node->restart;
is($node->safe_psql('other', q{SELECT query_count FROM ab_branch_metrics('e') WHERE branch = 'control'}), '1',
	'and persists apart');
is($node->safe_psql('postgres', q{SELECT query_count FROM ab_branch_metrics('e') WHERE branch = 'control'}),
	'10001', 'without touching the first');

$node->stop;
done_testing();
