# Helpers shared by abtest's TAP tests: a node with abtest preloaded, and waiting
# for the flush worker.
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

1;
