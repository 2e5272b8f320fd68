# Shared memory outlives DROP DATABASE: the experiment slots and the write-behind
# queue (with its metrics state) of a dropped database serve the next database
# instead of staying taken until a restart.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

my $node = AbtestNode::new_node('dropped',
	conf => "abtest.max_databases = 1\nabtest.max_experiments = 16\nabtest.flush_interval = '100ms'\n");

# The first database takes every experiment slot and the only queue.
$node->safe_psql('postgres', 'CREATE DATABASE first_db');
$node->safe_psql('first_db', q{
	CREATE EXTENSION abtest;
	SELECT ab_create_experiment('e' || i, ARRAY['control', 'treatment']) FROM generate_series(1, 16) i;
	SELECT ab_start('e' || i) FROM generate_series(1, 16) i;
	SELECT ab_route_user('e' || i, 'someone') FROM generate_series(1, 16) i;
	SELECT ab_record_query('e1', 'control', 12.5, true);
});
$node->poll_query_until('first_db', q{SELECT count(*) = 16 FROM abtest.assignments})
  or die 'the first database\'s assignments were not written';
my ($code, $out, $err) = $node->psql('postgres', q{
	CREATE DATABASE second_db;
	\c second_db
	CREATE EXTENSION abtest;
	SELECT ab_create_experiment('later', ARRAY['control', 'treatment']);
	SELECT ab_start('later');
	SELECT ab_route_user('later', 'u1');
});
like($err, qr/54000|abtest shared memory is full/, 'while the first database exists, a second one finds no slot');

$node->safe_psql('postgres', 'DROP DATABASE first_db WITH (FORCE)');
$node->safe_psql('second_db', q{
	SELECT count(ab_route_user('later', 'u' || i)) FROM generate_series(1, 100) i;
	SELECT ab_record_query('later', 'control', 10, true);
});
pass('after DROP DATABASE, the second database routes sticky users and records metrics');
$node->poll_query_until('second_db', q{SELECT count(*) = 100 FROM abtest.assignments})
  or die 'the second database\'s assignments were not written';
is($node->safe_psql('second_db', 'SELECT sync_writes FROM abtest.sticky_cache_stats'), '0',
	'through the reclaimed write-behind queue, not synchronously');
is($node->safe_psql('second_db', q{SELECT query_count FROM ab_branch_metrics('later') WHERE branch = 'control'}), '1',
	'with its own metrics, none of the dropped database\'s');

$node->stop;
done_testing();
