# Without shared_preload_libraries: CREATE EXTENSION works, and every function that
# needs shared memory refuses with 55000 and says how to fix it. Nothing crashes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION abtest');
pass('CREATE EXTENSION works without preloading');

for my $call (
	q{SELECT ab_create_experiment('e', ARRAY['a', 'b'])},
	q{SELECT ab_route_user('e', 'u1')},
	q{SELECT ab_route_default('u1')},
	q{SELECT ab_bucket('e', 'u1')},
	q{SELECT * FROM abtest.sticky_cache_stats},
	q{SELECT * FROM ab_query_metrics_stats()})
{
	my ($ret, $stdout, $stderr) = $node->psql('postgres', "\\set VERBOSITY verbose\n$call");
	isnt($ret, 0, "refused: $call");
	like($stderr, qr/55000: abtest must be loaded via shared_preload_libraries/, 'with SQLSTATE 55000 and the reason');
	like($stderr, qr/HINT:  Add abtest to shared_preload_libraries/, 'and a hint');
}
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is still up');

# Catalog rows written by hand (as a restore does) go through the trigger without it.
$node->safe_psql('postgres', q{
	INSERT INTO abtest.experiments (name, salt) VALUES ('restored', 'restored');
	DELETE FROM abtest.experiments;
});
pass('the catalog trigger works without preloading');

$node->stop;
done_testing();
