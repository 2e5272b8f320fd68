# Helpers shared by abtest's TAP tests: a node with abtest preloaded, an experiment
# with a logged audience, and waiting for the flush worker.
package AbtestNode;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use Test::More;

# A started node with abtest in shared_preload_libraries and extra settings;
# allows_streaming => 1 for a physical standby, 'logical' for a publisher.
sub new_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => $opts{allows_streaming} // 0);
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'abtest'\n" . ($opts{conf} // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION abtest');
	return $node;
}

# Waits until the assignment log holds at least $count rows.
sub wait_for_log
{
	my ($node, $count) = @_;
	$node->poll_query_until('postgres', "SELECT count(*) >= $count FROM abtest.assignments")
	  or die "the flush worker did not write $count assignments";
}

# Creates and starts the sticky experiment $name with $branches (an array ref), routes
# $users users ($prefix . 1 .. $users) with sticky_durability = sync, so that the log
# holds them at once, and returns the experiment's id.
sub logged_experiment
{
	my ($node, $name, $branches, $prefix, $users) = @_;
	my $array = join(', ', map { "'$_'" } @$branches);
	$node->safe_psql('postgres', qq{
		SET abtest.sticky_durability = sync;
		SELECT ab_create_experiment('$name', ARRAY[$array]);
		SELECT ab_start('$name');
		SELECT count(ab_route_user('$name', '$prefix' || g)) FROM generate_series(1, $users) g;
	});
	return $node->safe_psql('postgres', qq{SELECT id FROM abtest.experiments WHERE name = '$name'});
}

1;
