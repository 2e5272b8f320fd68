# The upgrade path: install version 1.0, fill it (experiments, sticky assignments,
# metrics, a grant), ALTER EXTENSION abtest UPDATE through 1.1, 1.2, 1.3, 1.4 and 1.5 to 1.6, and find
# everything as it was. The library of this build works with the 1.0 catalog too.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'abtest'\nabtest.flush_interval = '100ms'\n");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION abtest VERSION '1.0';
	SELECT ab_create_experiment('up', ARRAY['control', 'treatment'], ARRAY[70, 30]);
	SELECT ab_start('up');
	CREATE TABLE routed AS SELECT 'u' || g AS user_id, ab_route_user('up', 'u' || g) AS branch
	  FROM generate_series(1, 2000) g;
	SELECT count(ab_record_query('up', 'control', g, g % 3 <> 0)) FROM generate_series(1, 500) g;
	SELECT ab_record_event('up', 'treatment', 'revenue', 42);
	CREATE ROLE upgrade_admin;
	GRANT EXECUTE ON FUNCTION ab_configure(text, boolean, text[], text[], bigint, double precision, boolean,
	                                       boolean, interval, text) TO upgrade_admin;
	SELECT ab_configure('up', min_sample_size => 200);
	GRANT USAGE ON SCHEMA abtest TO upgrade_admin;
	GRANT SELECT ON abtest.sticky_cache_stats TO upgrade_admin;
	GRANT EXECUTE ON FUNCTION ab_sticky_cache_stats(), ab_branch_metrics(text) TO upgrade_admin;
});
# 1.4 returns a column more from both (oldest_queued, latency_sum_ms): this build
# gives a 1.0 catalog the rows it declares.
is($node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM abtest.sticky_cache_stats) || ' ' ||
	       (SELECT string_agg(branch || ':' || query_count, ',') FROM ab_branch_metrics('up'))}),
	'1 control:500,treatment:0', 'this build reads the statistics of a 1.0 catalog');
is($node->safe_psql('postgres', q{SELECT min_sample_size FROM abtest.experiments WHERE name = 'up'}), '200',
	'this build configures a 1.0 catalog');
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'abtest'}), '1.0',
	'version 1.0 installed');
$node->poll_query_until('postgres', q{
	SELECT (SELECT count(*) FROM abtest.assignments) = 2000
	   AND (SELECT coalesce(sum(query_count), 0) FROM abtest.branch_metrics) = 500})
  or die 'the flush worker did not write assignments and metrics';

# A 1.0 catalog has no abtest.deleted_experiments: ab_delete_experiment deletes the
# experiment's log rows itself, before it returns, as before 1.6.
my $gone_id = AbtestNode::logged_experiment($node, 'gone', [qw(control treatment)], 'g', 300);
like($node->safe_psql('postgres', qq{
	SELECT ab_delete_experiment('gone');
	SELECT count(*) || ' ' || (to_regclass('abtest.deleted_experiments') IS NULL)
	  FROM abtest.assignments WHERE experiment_id = '$gone_id'}),
	qr/^\s*0 true$/, 'on a 1.0 catalog the delete removes the log rows at once');

my $state = q{
	SELECT (SELECT string_agg(name || ':' || state, ',' ORDER BY name) FROM abtest.experiments) || ' | ' ||
	       (SELECT count(*) FROM abtest.assignments) || ' | ' ||
	       (SELECT string_agg(branch || ':' || query_count || ':' || assigned_users, ',' ORDER BY branch)
	          FROM ab_branch_metrics('up')) || ' | ' ||
	       (SELECT string_agg(branch || ':' || count, ',') FROM ab_event_metrics('up'))};
my $before = $node->safe_psql('postgres', $state);

$node->safe_psql('postgres', 'ALTER EXTENSION abtest UPDATE');
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'abtest'}), '1.6',
	'updated to 1.6');
is($node->safe_psql('postgres', $state), $before, 'experiments, assignments and metrics are unchanged');
is($node->safe_psql('postgres', q{SELECT count(*) FROM routed WHERE ab_route_user('up', user_id) <> branch}),
	'0', 'every user keeps their branch');
like($node->safe_psql('postgres', q{SELECT obj_description('abtest.assignments'::regclass)}),
	qr/assignment log/, 'the update applied its change');
is($node->safe_psql('postgres', q{
	SELECT has_function_privilege('upgrade_admin', 'ab_configure(text, boolean, text[], text[], bigint,
	  double precision, boolean, boolean, interval, text, jsonb, text, numeric[])', 'EXECUTE')}),
	't', 'the grant on ab_configure survives its new arguments');
$node->safe_psql('postgres', q{
	SELECT ab_configure('up', condition => '{"country": "DE"}');
	SELECT ab_force('up', 'qa', 'treatment');
});
is($node->safe_psql('postgres', q{
	SELECT ab_route_user('up', 'qa') || ' ' || (SELECT reason FROM ab_explain('up', 'new', attributes => '{"country": "FR"}'))}),
	'treatment condition', 'targeting works after the update');
is($node->safe_psql('postgres', q{SELECT count(*) FROM routed WHERE ab_route_user('up', user_id) <> branch}),
	'0', 'sticky users keep their branch whatever the new condition says');

# 1.4: the statistics have their new columns, and the grants on them survive.
is($node->safe_psql('postgres', q{
	SELECT (SELECT latency_sum_ms FROM ab_branch_metrics('up') WHERE branch = 'control') || ' ' ||
	       (SELECT (oldest_queued IS NULL)::text FROM abtest.sticky_cache_stats) || ' ' ||
	       concat_ws(',', has_function_privilege('upgrade_admin', 'ab_sticky_cache_stats()', 'EXECUTE'),
	                 has_function_privilege('upgrade_admin', 'ab_branch_metrics(text)', 'EXECUTE'),
	                 has_table_privilege('upgrade_admin', 'abtest.sticky_cache_stats', 'SELECT'),
	                 has_function_privilege('public', 'ab_branch_metrics(text)', 'EXECUTE'))}),
	'125250 true t,t,t,f', 'latency_sum_ms and oldest_queued are there, the grants on them kept, none for PUBLIC');

# 1.5: the statistics say why writes were synchronous and how full the queue pool is;
# the grants survive the second change of the function's row too.
is($node->safe_psql('postgres', q{
	SELECT uncached_writes || ' ' || overflow_writes || ' ' || (queue_bytes <= queue_capacity_bytes) || ' ' ||
	       queue_capacity_bytes FROM abtest.sticky_cache_stats}),
	'0 0 true ' . 64 * 1024 * 1024, 'uncached_writes, overflow_writes and the queue pool are there');

# 1.4: the catalog's invalidation triggers fire on a logical-replication subscriber too.
is($node->safe_psql('postgres', q{
	SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger
	 WHERE tgrelid IN ('abtest.experiments'::regclass, 'abtest.branches'::regclass,
	                   'abtest.forced_users'::regclass) AND NOT tgisinternal}),
	'branches_changed:A,branches_replicated:R,experiments_changed:A,experiments_replicated:R,'
	  . 'forced_users_changed:A,forced_users_replicated:R',
	'the catalog triggers fire in every replication role, per row in a subscriber\'s apply worker');

# 1.4: per-query metrics of database branches have their table, dumped with the catalog.
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM ab_query_metrics('up')}) . ' ' . $node->safe_psql('postgres', q{
	SELECT 'abtest.query_metrics'::regclass::oid = ANY (extconfig) FROM pg_extension WHERE extname = 'abtest'}),
	'0 t', 'the update creates abtest.query_metrics, registered for pg_dump');

# 1.6: a deleted experiment's log is purged by the flush worker after the commit; the
# pending purges have their table, dumped with the catalog and readable by its owner only.
is($node->safe_psql('postgres', q{
	SELECT ('abtest.deleted_experiments'::regclass::oid = ANY (extconfig)) || ' ' ||
	       has_table_privilege('public', 'abtest.deleted_experiments', 'SELECT')
	  FROM pg_extension WHERE extname = 'abtest'}),
	'true false', 'the update creates abtest.deleted_experiments, registered for pg_dump');
my $later_id = AbtestNode::logged_experiment($node, 'later_gone', [qw(control treatment)], 'g', 300);
like($node->safe_psql('postgres', q{
	BEGIN;
	SELECT ab_delete_experiment('later_gone');
	SELECT name FROM abtest.deleted_experiments;
	COMMIT;}), qr/^\s*later_gone$/, 'on 1.6 the delete records the purge');
$node->poll_query_until('postgres', qq{
	SELECT NOT EXISTS (SELECT FROM abtest.assignments WHERE experiment_id = '$later_id')
	   AND NOT EXISTS (SELECT FROM abtest.deleted_experiments)})
  or die 'the flush worker did not purge the deleted experiment\'s log';
pass('and the flush worker purges its log');

# The outcome analysis of 1.3 reads the log that 1.0 wrote.
$node->safe_psql('postgres', q{
	CREATE TABLE visits AS SELECT user_id, now() AS at FROM routed WHERE user_id LIKE 'u1%';
	SELECT ab_define_metric('visited', 'visits', 'user_id', 'at', aggregation => 'any');
});
is($node->safe_psql('postgres', q{SELECT sum(users) || ' ' || (sum(mean * users) > 0) FROM ab_analyze('up', 'visited')}),
	'2000 true', 'the analysis reads the assignment log written before the update');

# After a restart the updated extension still finds everything.
$node->restart;
is($node->safe_psql('postgres', $state), $before, 'and after a restart');

# A fresh install gets the default version through the same path.
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION abtest');
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'abtest'}), '1.6',
	'a new install is at 1.6');
is($node->safe_psql('fresh', q{SELECT obj_description('abtest.metrics'::regclass) IS NOT NULL}), 't',
	'with the 1.3 catalog');

$node->stop;
done_testing();
