-- The routing cache: every change to the catalog is seen at the next call, including
-- changes made by hand, and a dropped and re-created extension starts clean.

SELECT ab_create_experiment('cached', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_start('cached');
-- Configuration alone is tested here; stickiness would keep users routed before (sticky.sql).
SELECT ab_configure('cached', sticky => false);
SELECT ab_route_user('cached', 'u' || i) AS branch, count(*) FROM generate_series(1, 2000) i GROUP BY 1 ORDER BY 1;

-- Through the API.
SELECT ab_set_allocation('cached', '{"control": 0, "treatment": 100}');
SELECT DISTINCT ab_route_user('cached', 'u' || i) AS after_api_change FROM generate_series(1, 500) i;

-- By hand: the statement trigger invalidates the caches too.
UPDATE abtest.branches SET allocation = CASE name WHEN 'control' THEN 100 ELSE 0 END
 WHERE experiment_id = (SELECT id FROM abtest.experiments WHERE name = 'cached');
SELECT DISTINCT ab_route_user('cached', 'u' || i) AS after_manual_change FROM generate_series(1, 500) i;
UPDATE abtest.experiments SET state = 'paused' WHERE name = 'cached';
SELECT ab_route_user('cached', 'u1') AS paused_by_hand;

-- Within one statement, several experiments are routed side by side.
SELECT ab_create_experiment('cached_2', ARRAY['x', 'y'], ARRAY[0, 100]) IS NOT NULL AS created;
SELECT ab_start('cached_2');
SELECT ab_route_user(CASE WHEN i % 2 = 0 THEN 'cached' ELSE 'cached_2' END, 'u' || i) AS branch, count(*)
  FROM generate_series(1, 1000) i GROUP BY 1 ORDER BY 1;

-- A catalog edited by hand into something invalid is reported, not routed.
\set VERBOSITY terse
UPDATE abtest.experiments SET strategy = 'bogus' WHERE name = 'cached_2';
SELECT ab_route_user('cached_2', 'u1');
UPDATE abtest.experiments SET strategy = 'hash' WHERE name = 'cached_2';
SELECT ab_route_user('cached_2', 'u1') AS repaired;
\set VERBOSITY default

-- DROP EXTENSION leaves nothing behind; CREATE starts from an empty catalog.
DROP EXTENSION abtest;
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'abtest';
SELECT count(*) AS functions FROM pg_proc WHERE proname LIKE 'ab\_%' OR proname = 'catalog_changed';
CREATE EXTENSION abtest;
\set VERBOSITY terse
SELECT ab_route_user('cached', 'u1');
\set VERBOSITY default
SELECT ab_create_experiment('cached', ARRAY['control', 'treatment'], ARRAY[100, 0]) IS NOT NULL AS created;
SELECT ab_start('cached');
SELECT ab_route_user('cached', 'u1') AS fresh;
SELECT ab_delete_experiment(name) FROM abtest.experiments ORDER BY name;
