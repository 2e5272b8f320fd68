# The upgrade path: install version 1.0, fill it (experiments, sticky assignments,
# metrics), ALTER EXTENSION abtest UPDATE, and find everything as it was.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;

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
});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'abtest'}), '1.0',
	'version 1.0 installed');
$node->poll_query_until('postgres', q{
	SELECT (SELECT count(*) FROM abtest.assignments) = 2000
	   AND (SELECT coalesce(sum(query_count), 0) FROM abtest.branch_metrics) = 500})
  or die 'the flush worker did not write assignments and metrics';

my $state = q{
	SELECT (SELECT string_agg(name || ':' || state, ',' ORDER BY name) FROM abtest.experiments) || ' | ' ||
	       (SELECT count(*) FROM abtest.assignments) || ' | ' ||
	       (SELECT string_agg(branch || ':' || query_count || ':' || assigned_users, ',' ORDER BY branch)
	          FROM ab_branch_metrics('up')) || ' | ' ||
	       (SELECT string_agg(branch || ':' || count, ',') FROM ab_event_metrics('up'))};
my $before = $node->safe_psql('postgres', $state);

$node->safe_psql('postgres', 'ALTER EXTENSION abtest UPDATE');
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'abtest'}), '1.1',
	'updated to 1.1');
is($node->safe_psql('postgres', $state), $before, 'experiments, assignments and metrics are unchanged');
is($node->safe_psql('postgres', q{SELECT count(*) FROM routed WHERE ab_route_user('up', user_id) <> branch}),
	'0', 'every user keeps their branch');
like($node->safe_psql('postgres', q{SELECT obj_description('abtest.assignments'::regclass)}),
	qr/assignment log/, 'the update applied its change');

# After a restart the updated extension still finds everything.
$node->restart;
is($node->safe_psql('postgres', $state), $before, 'and after a restart');

# A fresh install gets the default version through the same path.
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION abtest');
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'abtest'}), '1.1',
	'a new install is at 1.1');
is($node->safe_psql('fresh', q{SELECT obj_description('abtest.assignments'::regclass) IS NOT NULL}), 't',
	'with the 1.1 catalog');

$node->stop;
done_testing();
