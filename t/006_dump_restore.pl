# pg_dump of a database with experiments, assignments and metrics, restored into a
# new cluster: the catalog, the log and the metrics are equal, and routing returns
# the same branches. A purge of a deleted experiment's log that was still pending is
# dumped too, and finishes after the restore.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $old = AbtestNode::new_node('old');
$old->safe_psql('postgres', q{
	SET abtest.sticky_durability = sync;
	SELECT ab_create_experiment('kept', ARRAY['control', 'treatment', 'other'], ARRAY[80, 15, 5],
	                            'dumped and restored', 'team', ARRAY['t1']);
	SELECT ab_configure('kept', excluded_groups => ARRAY['staff'], min_sample_size => 500, salt => 'kept-salt');
	SELECT ab_set_assignment('kept', 'percentage', '{"coverage": 60}');
	SELECT ab_set_branch_settings('kept', 'treatment', '{"work_mem": "32MB", "search_path": "shop, public"}');
	SELECT ab_start('kept');
	SELECT ab_create_experiment('plain', ARRAY['a', 'b']);
	SELECT ab_start('plain');
	SELECT ab_configure('plain', sticky => false);
	SELECT ab_set_default_experiment('plain');
	CREATE TABLE routed AS
	  SELECT i, ab_route_user('kept', 'u' || i) AS kept, ab_route_user('plain', 'u' || i) AS plain
	    FROM generate_series(1, 3000) i;
	-- a ramp after the assignments: the restored log must still decide
	SELECT ab_set_allocation('kept', '{"control": 5, "treatment": 15, "other": 80}');
	SELECT count(ab_record_query('kept', 'treatment', i / 10.0, i % 4 <> 0)) FROM generate_series(1, 700) i;
	SELECT count(ab_record_event('kept', 'other', 'revenue', i)) FROM generate_series(1, 50) i;
	-- Metrics over the application's tables, a ratio among them, attached.
	CREATE SCHEMA shop;
	CREATE TABLE shop.orders (customer text, amount numeric, placed_at timestamptz);
	INSERT INTO shop.orders SELECT 'u' || i, i % 17, now() - interval '1 second' FROM generate_series(1, 3000, 3) i;
	SELECT ab_define_metric('revenue', 'shop.orders', 'customer', 'placed_at', 'amount', cap_percentile => 0.9);
	SELECT ab_define_metric('orders', 'shop.orders', 'customer', 'placed_at', aggregation => 'count');
	SELECT ab_define_ratio_metric('order_value', 'revenue', 'orders', 'per order');
	SELECT ab_attach_metric('kept', 'revenue');
	SELECT ab_attach_metric('kept', 'order_value', 'guardrail');
});
# The metrics are persisted by the flush worker: wait for them before dumping.
$old->poll_query_until('postgres', q{
	SELECT coalesce(sum(query_count), 0) = 700 FROM abtest.branch_metrics})
  or die 'the flush worker did not write the metrics';
$old->poll_query_until('postgres', q{SELECT coalesce(sum(count), 0) = 50 FROM abtest.event_metrics})
  or die 'the flush worker did not write the event metrics';

# A deleted experiment whose log is still being purged: a row locked by another
# session holds the purge's first batch back while the dump runs.
my $doomed_id = AbtestNode::logged_experiment($old, 'doomed', [qw(a b)], 'd', 500);
my $row_holder = $old->background_psql('postgres');
$row_holder->query_safe(qq{BEGIN; SELECT user_id FROM abtest.assignments
	WHERE experiment_id = '$doomed_id' AND user_id = 'd1' FOR UPDATE});
$old->safe_psql('postgres', q{SELECT ab_delete_experiment('doomed')});
my $doomed_rows = qq{SELECT count(*) FROM abtest.assignments WHERE experiment_id = '$doomed_id'};

my $dump = $old->basedir . '/abtest.dump';
$old->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $old->connstr('postgres') ], 'pg_dump');

my $new = AbtestNode::new_node('new');
$new->safe_psql('postgres', 'DROP EXTENSION abtest; CREATE DATABASE restored');
$new->command_ok([ 'pg_restore', '-d', $new->connstr('restored'), $dump ], 'pg_restore into a new cluster');

is($new->safe_psql('restored', q{SELECT name FROM abtest.deleted_experiments}), 'doomed',
	'the pending purge of a deleted experiment is restored');

my $catalog = q{
	SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', id, name, state, branches, allocation, salt,
	                         strategy, strategy_params, excluded_groups, is_default, branch_settings), E'\n' ORDER BY name)
	  FROM abtest.experiment_overview};
is($new->safe_psql('restored', $catalog), $old->safe_psql('postgres', $catalog), 'the catalog is equal');
my $log = q{SELECT md5(string_agg(format('%s|%s|%s|%s', experiment_id, user_id, branch, assigned_at), ','
	ORDER BY experiment_id, user_id)) FROM abtest.assignments WHERE experiment_id IN (SELECT id FROM abtest.experiments)};
is($new->safe_psql('restored', $log), $old->safe_psql('postgres', $log), 'the assignment log is equal');
is($new->safe_psql('restored', q{
	SELECT count(*) FROM routed
	 WHERE kept <> ab_route_user('kept', 'u' || i) OR plain <> ab_route_user('plain', 'u' || i)}),
	'0', 'routing returns the same branches after the restore');
is($new->safe_psql('restored', q{SELECT ab_route_default('u7') = (SELECT plain FROM routed WHERE i = 7)}),
	't', 'the default experiment is restored too');
my $metrics = q{
	SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s', branch, query_count, success_count, avg_latency_ms,
	                         p50_latency_ms, p99_latency_ms, first_query), E'\n' ORDER BY branch)
	  FROM ab_branch_metrics('kept')};
is($new->safe_psql('restored', $metrics), $old->safe_psql('postgres', $metrics),
	'the metrics are equal, percentiles included');
my $events = q{SELECT string_agg(format('%s|%s|%s|%s', branch, event_name, count, stddev), ',') FROM ab_event_metrics('kept')};
is($new->safe_psql('restored', $events), $old->safe_psql('postgres', $events), 'and the event metrics');

# The pending purge came along, with the rows it had not deleted yet; the restored
# database's flush worker (started by the routing above) finishes it.
is($old->safe_psql('postgres', $doomed_rows), '500', 'the dumped database still had the deleted experiment\'s rows');
$row_holder->quit;
is($new->safe_psql('restored', q{SELECT count(*) FROM abtest.experiments WHERE name = 'doomed'}), '0',
	'the deleted experiment is not restored');
$new->poll_query_until('restored', qq{
	SELECT ($doomed_rows) = 0 AND NOT EXISTS (SELECT FROM abtest.deleted_experiments)})
  or die 'the restored pending purge did not finish';
pass('the pending purge is restored and finishes');

my $outcomes = q{
	SELECT string_agg(format('%s|%s|%s|%s', name, source, numerator, attached_to), E'\n' ORDER BY name)
	  FROM abtest.metric_overview};
is($new->safe_psql('restored', $outcomes), $old->safe_psql('postgres', $outcomes),
	'the metrics over the application\'s tables and their attachments are restored');
my $analysis = q{SELECT string_agg(format('%s|%s|%s', branch, users, mean), ',') FROM ab_analyze('kept', 'revenue')};
is($new->safe_psql('restored', $analysis), $old->safe_psql('postgres', $analysis),
	'and analyse the same (the source found by its name, now under a new OID)');

$new->safe_psql('restored', 'DROP EXTENSION abtest');
is($new->safe_psql('restored', q{
	SELECT count(*) FROM pg_namespace WHERE nspname = 'abtest'}) .
	$new->safe_psql('restored', q{SELECT count(*) FROM pg_proc WHERE proname LIKE 'ab\_%'}),
	'00', 'DROP EXTENSION leaves nothing behind');

$old->stop;
$new->stop;
done_testing();
