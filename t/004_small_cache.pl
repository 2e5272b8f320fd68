# A sticky cache smaller than the number of users: stickiness still holds (the
# cache evicts persisted entries and looks them up in the log again), and the
# statistics view shows the evictions. Twice: with 1,024 entries every lock partition
# has one set (a key has a single choice), with 4,096 four (a key's second choice
# takes it when the first is fuller, and a lookup must find it there), and with 4,096
# users are forgotten and an experiment cleared while some of their entries live in
# their second choice.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AbtestNode;

for my $capacity (1024, 4096)
{
	my $node = AbtestNode::new_node("small_$capacity", conf => "abtest.sticky_cache_size = $capacity\nabtest.flush_interval = 100ms\n");
	if ($capacity == 4096)
	{
		# A quarter full in one statement, before any flush: a key goes to the emptier of
		# its two sets, so many keys live in their second choice, and every one of them
		# must be found there again (no set overflows at this load: simulated, fewer than
		# 1 in 20,000 runs would, so nothing is evicted, written uncached or looked up).
		$node->safe_psql('postgres', q{
			SELECT ab_create_experiment('roomy', ARRAY['control', 'treatment']);
			SELECT ab_start('roomy');
			CREATE TABLE roomy AS SELECT i, ab_route_user('roomy', 'r' || i) AS branch FROM generate_series(1, 1000) i;
			SELECT ab_set_allocation('roomy', '{"control": 100, "treatment": 0}');
		});
		is($node->safe_psql('postgres', q{SELECT count(*) FROM roomy WHERE branch <> ab_route_user('roomy', 'r' || i)}),
			'0', '1,000 users in 4,096 entries: nobody changed branch after a ramp');
		is($node->safe_psql('postgres', q{
			SELECT format('%s %s %s %s', entries, evictions, log_lookups, sync_writes) FROM abtest.sticky_cache_stats}),
			'1000 0 0 0', '... with every user cached: no eviction, no log lookup, nothing written uncached');
		AbtestNode::wait_for_log($node, 1000);
		$node->safe_psql('postgres', q{SELECT ab_clear_sticky_cache('roomy')});
	}
	$node->safe_psql('postgres', q{
		SELECT ab_create_experiment('crowded', ARRAY['control', 'treatment']);
		SELECT ab_start('crowded');
	});
	# Route in slices so that the worker keeps up and entries become evictable.
	for my $slice (0 .. 19)
	{
		my ($from, $to) = ($slice * 1000 + 1, $slice * 1000 + 1000);
		$node->safe_psql('postgres', qq{
			CREATE TABLE IF NOT EXISTS routed (i int, branch text);
			INSERT INTO routed SELECT i, ab_route_user('crowded', 'u' || i) FROM generate_series($from, $to) i;
		});
	}
	AbtestNode::wait_for_log($node, 20000);
	is($node->safe_psql('postgres', 'SELECT count(*) FROM abtest.assignments'), '20000', 'every user is logged once');

	$node->safe_psql('postgres', q{SELECT ab_set_allocation('crowded', '{"control": 100, "treatment": 0}')});
	is($node->safe_psql('postgres', q{SELECT count(*) FROM routed WHERE branch <> ab_route_user('crowded', 'u' || i)}),
		'0', "with $capacity cache entries for 20000 users, nobody changed branch after a ramp");

	my ($entries, $shown_capacity, $evictions, $lookups) = split /\|/, $node->safe_psql('postgres',
		'SELECT entries, capacity, evictions, log_lookups FROM abtest.sticky_cache_stats');
	is($shown_capacity, $capacity, 'the cache has the configured capacity');
	ok($entries <= $capacity, "it holds at most its capacity ($entries entries)");
	ok($evictions > 0, "it evicted persisted entries ($evictions)");
	ok($lookups > 0, "and looked evicted users up in the log ($lookups)");

	if ($capacity == 4096)
	{
		# Forgetting users: each is gone from the cache and the log, and routed again
		# logged once and sticky from then on, wherever its entry landed.
		$node->safe_psql('postgres', q{SELECT ab_clear_user_cache('u' || i) FROM generate_series(1, 3000) i});
		is($node->safe_psql('postgres', q{SELECT count(*) FROM abtest.assignments WHERE user_id IN (SELECT 'u' || i FROM generate_series(1, 3000) i)}),
			'0', 'forgotten users are gone from the log');
		$node->safe_psql('postgres', q{
			CREATE TABLE rerouted AS SELECT i, ab_route_user('crowded', 'u' || i) AS branch FROM generate_series(1, 3000) i});
		is($node->safe_psql('postgres', q{SELECT count(*) FROM rerouted WHERE branch <> ab_route_user('crowded', 'u' || i)}),
			'0', 'forgotten users routed again keep their new branch');
		# A cleared experiment leaves stale entries behind, in first and second choices:
		# new users of another experiment take their ways, and nobody changes branch.
		$node->safe_psql('postgres', q{
			SELECT ab_create_experiment('brief', ARRAY['a', 'b']);
			SELECT ab_start('brief');
			SELECT count(ab_route_user('brief', 'b' || i)) FROM generate_series(1, 2000) i;
			SELECT ab_clear_sticky_cache('brief');
			SELECT ab_create_experiment('later', ARRAY['x', 'y']);
			SELECT ab_start('later');
			CREATE TABLE later AS SELECT i, ab_route_user('later', 'l' || i) AS branch FROM generate_series(1, 2000) i;
		});
		AbtestNode::wait_for_log($node, 20000 + 2000);
		is($node->safe_psql('postgres', q{
			SELECT count(*) FROM later WHERE branch <> ab_route_user('later', 'l' || i)}),
			'0', 'a cleared experiment\'s entries make room; the next experiment\'s users stay put');
		is($node->safe_psql('postgres', q{
			SELECT count(*) FROM routed WHERE i > 3000 AND branch <> ab_route_user('crowded', 'u' || i)}),
			'0', 'and the remaining users of the first experiment too');
		is($node->safe_psql('postgres', q{
			SELECT count(*) || ' ' || count(DISTINCT (experiment_id, user_id)) FROM abtest.assignments}),
			'22000 22000', 'every user of both live experiments logged exactly once');
	}

	$node->stop;
}
done_testing();
