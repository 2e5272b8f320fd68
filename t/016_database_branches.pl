# Database branches under real load: every statement of an entered transaction is one
# query of its branch, exactly, with two concurrent pgbench clients; failures by
# statement_timeout and division by zero are counted; the counts survive a clean
# restart; and behind PgBouncer in transaction pooling mode a branch's settings never
# reach another client's transaction.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $node = AbtestNode::new_node('branches', conf => "abtest.flush_interval = '100ms'\n");
$node->safe_psql('postgres', q{
	SELECT ab_create_experiment('tuning', ARRAY['baseline', 'tuned']);
	SELECT ab_configure('tuning', sticky => false);
	SELECT ab_set_branch_settings('tuning', 'tuned', '{"work_mem": "96MB", "enable_seqscan": false}');
	SELECT ab_start('tuning');
	CREATE TABLE items AS SELECT g AS id, md5(g::text) AS label FROM generate_series(1, 10000) g;
	ALTER TABLE items ADD PRIMARY KEY (id);
	CREATE TABLE zero AS SELECT 0 AS x;
	CREATE TABLE seen (client text, work_mem text);
});

# 1. Two clients, 3,000 transactions each: ab_enter, then three statements. The
#    statement that enters is not a query of the branch; COMMIT is not either.
my $transactions = 3000;
$node->pgbench(
	"--no-vacuum --client=2 --jobs=2 --transactions=$transactions",
	0, [qr{processed: 6000/6000}], [qr{^$}],
	'two clients run entered transactions',
	{
		'entered' => q{
\set uid random(1, 100000)
\set id random(1, 10000)
BEGIN;
SELECT ab_enter('tuning', 'user' || :uid);
SELECT label FROM items WHERE id = :id;
SELECT count(*) FROM items WHERE id BETWEEN :id AND :id + 10;
UPDATE items SET label = label WHERE id = :id;
COMMIT;
}
	});
is($node->safe_psql('postgres', q{
	SELECT sum(query_count) || ' ' || sum(success_count) || ' ' || sum(exposures) FROM ab_branch_metrics('tuning')}),
	'18000 18000 6000', 'three queries per transaction, every one a success, one exposure per transaction');
is($node->safe_psql('postgres', q{
	SELECT bool_and(query_count = 3 * exposures) FROM ab_branch_metrics('tuning')}),
	't', 'each branch has exactly three queries per exposure');
my $split = $node->safe_psql('postgres', q{SELECT p_value > 0.001 FROM ab_srm('tuning')});
is($split, 't', 'the split passes the sample-ratio check');
is($node->safe_psql('postgres', q{
	SELECT string_agg(calls::text, ' ' ORDER BY query) FROM (
	  SELECT left(query, 20) AS query, sum(calls) AS calls FROM ab_query_metrics('tuning') GROUP BY 1) q}),
	'6000 6000 6000', 'each of the three statements is one query id, called once per transaction');
is($node->safe_psql('postgres', q{
	SELECT (SELECT sum(calls) FROM ab_query_metrics('tuning')) = (SELECT sum(query_count) FROM ab_branch_metrics('tuning'))}),
	't', 'the query store holds every statement the branch counters hold');

# 2. Failures: a statement_timeout and a division by zero each count as a failure of
#    the branch, with the time until the error; the statement after a rolled-back
#    savepoint still counts.
$node->safe_psql('postgres', q{SELECT ab_clear_metrics('tuning')});
my $failing = '';
for my $i (1 .. 10)
{
	$failing .= qq{
BEGIN;
SELECT ab_enter('tuning', 'fail$i');
SET LOCAL statement_timeout = '50ms';
SELECT pg_sleep(0.2);
ROLLBACK;
BEGIN;
SELECT ab_enter('tuning', 'fail$i');
SAVEPOINT s;
SELECT 1 / x FROM zero;
ROLLBACK TO SAVEPOINT s;
SELECT 1;
COMMIT;
};
}
$node->psql('postgres', $failing, on_error_stop => 0);
is($node->safe_psql('postgres', q{
	SELECT sum(query_count) || ' ' || sum(failure_count) FROM ab_branch_metrics('tuning')}),
	'30 20', 'ten timeouts and ten divisions by zero are failures, ten selects successes');
cmp_ok($node->safe_psql('postgres', q{SELECT max(max_latency_ms) FROM ab_branch_metrics('tuning')}), '>=', 50,
	'a timed-out statement counts the time until the timeout');
is($node->safe_psql('postgres', q{
	SELECT string_agg(left(query, 14) || ':' || calls || ':' || failures, ' ' ORDER BY query COLLATE "C")
	  FROM (SELECT query, sum(calls) AS calls, sum(failures) AS failures
	          FROM ab_query_metrics('tuning') GROUP BY 1) q}),
	'SELECT 1:10:0 SELECT 1 / x F:10:10 SELECT pg_slee:10:10',
	'per query id: the timeouts, the divisions by zero, the selects after the savepoint');

# A slowdown that only one query feels: the branches differ by a custom setting that
# the slow query reads; the other query is the same in both. Users interleave at random.
$node->safe_psql('postgres', q{
	SELECT ab_create_experiment('sleepy', ARRAY['fast', 'slow']);
	SELECT ab_configure('sleepy', sticky => false);
	SELECT ab_set_branch_settings('sleepy', 'fast', '{"myapp.pause": "0.002"}');
	SELECT ab_set_branch_settings('sleepy', 'slow', '{"myapp.pause": "0.020"}');
	SELECT ab_start('sleepy');
});
# The pauses are ten times apart: a loaded 2-core VM with coarse timers once stretched
# pg_sleep(0.001) to most of pg_sleep(0.004), and the check must not depend on timer slack.
$node->pgbench(
	"--no-vacuum --client=2 --jobs=2 --transactions=200",
	0, [qr{processed: 400/400}], [qr{^$}],
	'two clients in a slowed and a normal branch',
	{
		'sleepy' => q{
\set uid random(1, 1000000)
\set id random(1, 10000)
BEGIN;
SELECT ab_enter('sleepy', 'user' || :uid);
SELECT pg_sleep(current_setting('myapp.pause')::float8);
SELECT label FROM items WHERE id = :id;
COMMIT;
}
	});
my $slowed = $node->safe_psql('postgres', q{
	SELECT format('%s %s %s', relative_change > 1, adjusted_p_value < 0.001, is_significant)
	  FROM ab_compare_queries('sleepy', 'fast', 'slow') WHERE query LIKE 'SELECT pg_sleep%'});
is($slowed, 't t t', 'the slowed query (2 ms, 20 ms): its geometric mean more than doubled, significant')
  or diag($node->safe_psql('postgres', q{
	SELECT format('calls %s/%s, mean %s/%s ms, p95 %s/%s ms, change %s, adjusted p %s', calls_a, calls_b,
	              mean_ms_a, mean_ms_b, p95_ms_a, p95_ms_b, relative_change, adjusted_p_value)
	  FROM ab_compare_queries('sleepy', 'fast', 'slow') WHERE query LIKE 'SELECT pg_sleep%'}));

# A/A: the same statements in two branches with the same settings show no difference.
$node->safe_psql('postgres', q{
	SELECT ab_create_experiment('same', ARRAY['a', 'b']);
	SELECT ab_configure('same', sticky => false);
	SELECT ab_start('same');
});
$node->pgbench(
	"--no-vacuum --client=2 --jobs=2 --transactions=400",
	0, [qr{processed: 800/800}], [qr{^$}],
	'two clients in an A/A experiment',
	{
		'same' => q{
\set uid random(1, 1000000)
\set id random(1, 10000)
BEGIN;
SELECT ab_enter('same', 'user' || :uid);
SELECT pg_sleep(0.0005);
SELECT label FROM items WHERE id = :id;
COMMIT;
}
	});
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || bool_and(adjusted_p_value > 0.001) FROM ab_compare_queries('same', 'a', 'b')}),
	'2 true', 'A/A: neither query differs');

# 3. A clean restart keeps every count, per branch and per query.
my $per_query = q{
	SELECT string_agg(format('%s %s %s %s %s %s %s', branch, queryid, calls, failures, mean_ms, stddev_ms, p99_ms),
	                  E'\n' ORDER BY branch, queryid) FROM ab_query_metrics('tuning')};
$node->poll_query_until('postgres', q{
	SELECT (SELECT sum(calls) FROM abtest.query_metrics) = (SELECT sum(calls) FROM ab_query_metrics('tuning'))
	                                                      + (SELECT sum(calls) FROM ab_query_metrics('sleepy'))
	                                                      + (SELECT sum(calls) FROM ab_query_metrics('same'))})
  or die 'the flush worker did not write the query store';
pass('the flush worker writes the query store to abtest.query_metrics');
my $queries_before = $node->safe_psql('postgres', $per_query);
my $before = $node->safe_psql('postgres', q{
	SELECT string_agg(concat_ws(':', branch, query_count, success_count, failure_count, exposures,
	                            round(avg_latency_ms::numeric, 9)), ',' ORDER BY branch) FROM ab_branch_metrics('tuning')});
$node->restart;
is($node->safe_psql('postgres', q{
	SELECT string_agg(concat_ws(':', branch, query_count, success_count, failure_count, exposures,
	                            round(avg_latency_ms::numeric, 9)), ',' ORDER BY branch) FROM ab_branch_metrics('tuning')}),
	$before, 'a clean restart keeps the branches\' query counts');
is($node->safe_psql('postgres', $per_query), $queries_before, 'and every query\'s metrics to the last bit');
$node->safe_psql('postgres', q{SELECT ab_clear_metrics('sleepy')});
is($node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM ab_query_metrics('sleepy')) || ' ' || (SELECT count(*) FROM abtest.query_metrics q
	   JOIN abtest.experiments e ON e.id = q.experiment_id WHERE e.name = 'sleepy')}),
	'0 0', 'clearing an experiment\'s metrics clears its queries, in memory and in the table');

# 4. PgBouncer in transaction pooling mode, two server connections for eight clients:
#    half of them enter a branch in every transaction, half never do. A client that
#    never enters always sees the defaults, whichever connection it gets.
my $bouncer_dir = PostgreSQL::Test::Utils::tempdir();
my $bouncer_port = PostgreSQL::Test::Cluster::get_free_port();
my $host = $node->host;
my $port = $node->port;
open my $ini, '>', "$bouncer_dir/pgbouncer.ini" or die $!;
print $ini qq{[databases]
postgres = host=$host port=$port dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $bouncer_dir/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 50
logfile = $bouncer_dir/pgbouncer.log
pidfile = $bouncer_dir/pgbouncer.pid
};
close $ini;
open my $users, '>', "$bouncer_dir/userlist.txt" or die $!;
print $users qq{"$ENV{USER}" ""\n"postgres" ""\n};
close $users;
system('pgbouncer', '-d', "$bouncer_dir/pgbouncer.ini") == 0 or die 'pgbouncer did not start';
END
{
	if (defined $bouncer_dir && -f "$bouncer_dir/pgbouncer.pid")
	{
		my $pid = slurp_file("$bouncer_dir/pgbouncer.pid");
		chomp $pid;
		kill 'TERM', $pid if $pid;
	}
}
my $through_bouncer = "host=127.0.0.1 port=$bouncer_port dbname=postgres";
for (1 .. 50)
{
	last if system("psql -X -q -d '$through_bouncer' -c 'SELECT 1' >/dev/null 2>&1") == 0;
	sleep 0.1;
}
my $bench = sub {
	my ($name, $script, $clients) = @_;
	my $file = "$bouncer_dir/$name.sql";
	open my $f, '>', $file or die $!;
	print $f $script;
	close $f;
	return IPC::Run::start(
		[ 'pgbench', '--no-vacuum', "--client=$clients", "--jobs=$clients", '--transactions=400',
		  '-f', $file, '-d', $through_bouncer ],
		'>', "$bouncer_dir/$name.out", '2>', "$bouncer_dir/$name.err");
};
my $entering = $bench->('entering', q{
\set uid random(1, 100000)
BEGIN;
SELECT ab_enter('tuning', 'pooled' || :uid);
INSERT INTO seen SELECT 'entering:' || ab_enter('tuning', 'pooled' || :uid), current_setting('work_mem');
COMMIT;
}, 4);
my $bystanders = $bench->('bystanders', q{
INSERT INTO seen SELECT 'bystander', current_setting('work_mem');
SELECT current_setting('enable_seqscan');
}, 4);
$entering->finish;
$bystanders->finish;
is($entering->result(0) . $bystanders->result(0), '00', 'both pgbench runs through PgBouncer finished')
  or diag(slurp_file("$bouncer_dir/entering.err") . slurp_file("$bouncer_dir/bystanders.err"));
is($node->safe_psql('postgres', q{
	SELECT string_agg(client || ' ' || work_mem || ' ' || n, ', ' ORDER BY client, work_mem)
	  FROM (SELECT client, work_mem, count(*) AS n FROM seen GROUP BY 1, 2) s
	 WHERE client = 'bystander'}),
	'bystander 4MB 1600', 'no bystander transaction ever saw a branch\'s setting');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE work_mem = CASE client WHEN 'entering:tuned' THEN '96MB' ELSE '4MB' END)
	       || ' ' || count(*)
	  FROM seen WHERE client LIKE 'entering:%'}),
	'1600 1600', 'every entered transaction saw exactly its own branch\'s settings');

$node->stop;
done_testing();
