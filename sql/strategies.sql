-- Assignment strategies: hash (default), modulo, attribute, group, percentage, fixed, round_robin.

SELECT ab_create_experiment('strat', ARRAY['a', 'b', 'c'], ARRAY[50, 25, 25]) IS NOT NULL AS created;
SELECT ab_start('strat');
-- The strategies alone are tested here; stickiness would keep users routed before (sticky.sql).
SELECT ab_configure('strat', sticky => false);

-- modulo: a numeric user id uses its value mod N; ranges as the seed: floor(share * N / 100).
SELECT ab_set_assignment('strat', 'modulo', '{"divisor": 4}');
SELECT i AS user_id, ab_route_user('strat', i::text) FROM generate_series(0, 7) i;
-- a non-numeric id uses its hash mod N, so it is still deterministic
SELECT ab_route_user('strat', 'alice') = ab_route_user('strat', 'alice') AS deterministic;
SELECT ab_route_user('strat', 'u' || i) AS branch, count(*) FROM generate_series(1, 4000) i GROUP BY 1 ORDER BY 1;

-- attribute: the mapped branch, else the first branch (the control).
SELECT ab_set_assignment('strat', 'attribute', '{"name": "country", "mapping": {"DE": "b", "FR": "c", "7": "c", "true": "b"}}');
SELECT ab_route_user('strat', 'u1', attributes => '{"country": "DE"}') AS de,
       ab_route_user('strat', 'u1', attributes => '{"country": "FR"}') AS fr,
       ab_route_user('strat', 'u1', attributes => '{"country": "US"}') AS us,
       ab_route_user('strat', 'u1', attributes => '{"country": 7}') AS number,
       ab_route_user('strat', 'u1', attributes => '{"country": true}') AS bool,
       ab_route_user('strat', 'u1', attributes => '{"country": ["DE"]}') AS array_value,
       ab_route_user('strat', 'u1') AS missing,
       ab_route_user('strat', 'u1', attributes => NULL) AS null_attributes;
\set VERBOSITY terse
SELECT ab_route_user('strat', 'u1', attributes => '["DE"]');
\set VERBOSITY default

-- group: the user's first group that is mapped, else the control.
SELECT ab_set_assignment('strat', 'group', '{"mapping": {"beta": "b", "vip": "c"}}');
SELECT ab_route_user('strat', 'u1', ARRAY['vip', 'beta']) AS vip_first,
       ab_route_user('strat', 'u1', ARRAY['other', 'beta']) AS beta,
       ab_route_user('strat', 'u1', ARRAY['other']) AS unmapped,
       ab_route_user('strat', 'u1') AS no_groups;

-- percentage: a rollout. Only `coverage` percent of users (an independent draw) enter
-- the split; the rest get the control. Raising coverage keeps everyone already in.
SELECT ab_set_allocation('strat', '{"a": 0, "b": 100, "c": 0}');
SELECT ab_set_assignment('strat', 'percentage', '{"coverage": 10}');
CREATE TEMP TABLE at10 AS SELECT i, ab_route_user('strat', 'u' || i) AS branch FROM generate_series(1, 20000) i;
SELECT abs(avg((branch = 'b')::int) - 0.10) < 0.01 AS about_ten_percent FROM at10;
SELECT ab_set_assignment('strat', 'percentage', '{"coverage": 50}');
SELECT abs(avg((ab_route_user('strat', 'u' || i) = 'b')::int) - 0.50) < 0.015 AS about_half
  FROM generate_series(1, 20000) i;
SELECT count(*) AS dropped_out FROM at10 WHERE branch = 'b' AND ab_route_user('strat', 'u' || i) <> 'b';
SELECT ab_set_assignment('strat', 'percentage', '{}');
SELECT DISTINCT ab_route_user('strat', 'u' || i) AS full_coverage FROM generate_series(1, 1000) i;

-- fixed: always that branch.
SELECT ab_set_assignment('strat', 'fixed', '{"branch": "c"}');
SELECT DISTINCT ab_route_user('strat', 'u' || i) AS fixed FROM generate_series(1, 1000) i;

-- round_robin: the next branch in turn, counted across all sessions; 0% branches skipped.
SELECT ab_set_allocation('strat', '{"a": 50, "b": 0, "c": 50}');
SELECT ab_set_assignment('strat', 'round_robin');
CREATE TEMP TABLE turns AS SELECT i, ab_route_user('strat', 'same-user') AS branch FROM generate_series(1, 6) i;
SELECT count(DISTINCT branch) AS branches_used, count(*) FILTER (WHERE branch = 'b') AS skipped_b FROM turns;
SELECT bool_and(t.branch <> n.branch) AS alternates FROM turns t JOIN turns n ON n.i = t.i + 1;

-- hash again: the default strategy.
SELECT ab_set_assignment('strat', 'hash');
SELECT ab_set_allocation('strat', '{"a": 50, "b": 25, "c": 25}');
SELECT ab_route_user('strat', 'u' || i) AS branch, count(*) FROM generate_series(1, 20000) i GROUP BY 1 ORDER BY 1;

SELECT ab_delete_experiment('strat');
