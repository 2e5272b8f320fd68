-- Bad input: every refusal is an ERROR with a specific SQLSTATE that names the object,
-- and a refused or rolled-back change leaves everything as it was.

-- sqlstate_of(statement): the SQLSTATE and message of the error it raises, or 'ok'.
CREATE FUNCTION sqlstate_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

SELECT ab_create_experiment('err', ARRAY['control', 'treatment']) IS NOT NULL AS created;
-- Configuration alone is tested here; stickiness would keep users routed before (sticky.sql).
SELECT ab_configure('err', sticky => false);

SELECT s AS statement, sqlstate_of(s) AS result FROM unnest(ARRAY[
  -- NULLs
  $q$SELECT ab_create_experiment(NULL, ARRAY['a', 'b'])$q$,
  $q$SELECT ab_create_experiment('x', NULL)$q$,
  $q$SELECT ab_create_experiment('x', ARRAY['a', NULL])$q$,
  $q$SELECT ab_create_experiment('x', ARRAY['a', 'b'], ARRAY[50, NULL])$q$,
  $q$SELECT ab_start(NULL)$q$,
  $q$SELECT ab_route_user(NULL, 'u')$q$,
  $q$SELECT ab_route_user('err', NULL)$q$,
  $q$SELECT ab_bucket('err', NULL)$q$,
  $q$SELECT ab_set_allocation('err', NULL)$q$,
  $q$SELECT ab_set_assignment('err', NULL)$q$,
  $q$SELECT ab_set_state('err', NULL)$q$,
  $q$SELECT ab_clear_user_cache(NULL)$q$,
  $q$SELECT ab_get_experiment(NULL)$q$,
  -- names
  $q$SELECT ab_create_experiment('', ARRAY['a', 'b'])$q$,
  $q$SELECT ab_create_experiment(repeat('x', 201), ARRAY['a', 'b'])$q$,
  $q$SELECT ab_create_experiment(E'new\nline', ARRAY['a', 'b'])$q$,
  $q$SELECT ab_create_experiment('err', ARRAY['a', 'b'])$q$,
  $q$SELECT ab_create_experiment('x', ARRAY['a', 'a'])$q$,
  $q$SELECT ab_create_experiment('x', ARRAY['a', ''])$q$,
  $q$SELECT ab_create_experiment('x', ARRAY['only'])$q$,
  $q$SELECT ab_create_experiment('x', ARRAY[]::text[])$q$,
  $q$SELECT ab_create_experiment('x', (SELECT array_agg('b' || i) FROM generate_series(1, 101) i))$q$,
  $q$SELECT ab_create_experiment('x', ARRAY[['a', 'b'], ['c', 'd']])$q$,
  $q$SELECT ab_create_experiment('x', ARRAY['a', 'b'], tags => ARRAY['t', 't'])$q$,
  -- unknown objects
  $q$SELECT ab_start('nope')$q$,
  $q$SELECT ab_route_user('nope', 'u')$q$,
  $q$SELECT ab_bucket('nope', 'u')$q$,
  $q$SELECT ab_get_experiment('nope')$q$,
  $q$SELECT ab_delete_experiment('nope')$q$,
  $q$SELECT ab_set_default_experiment('nope')$q$,
  $q$SELECT ab_clear_sticky_cache('nope')$q$,
  $q$SELECT ab_set_allocation('err', '{"control": 50, "bogus": 50}')$q$,
  $q$SELECT ab_set_assignment('err', 'fixed', '{"branch": "bogus"}')$q$,
  -- allocations
  $q$SELECT ab_create_experiment('x', ARRAY['a', 'b'], ARRAY[-10, 110])$q$,
  $q$SELECT ab_create_experiment('x', ARRAY['a', 'b'], ARRAY[33.333, 66.667])$q$,
  $q$SELECT ab_create_experiment('x', ARRAY['a', 'b'], ARRAY[50, 49])$q$,
  $q$SELECT ab_create_experiment('x', ARRAY['a', 'b'], ARRAY[100])$q$,
  $q$SELECT ab_create_experiment('x', ARRAY['a', 'b'], ARRAY['NaN', 50]::numeric[])$q$,
  $q$SELECT ab_set_allocation('err', '{"control": 50, "treatment": 50.001}')$q$,
  $q$SELECT ab_set_allocation('err', '{"control": "50", "treatment": 50}')$q$,
  $q$SELECT ab_set_allocation('err', '{"control": 60, "treatment": 60}')$q$,
  $q$SELECT ab_set_allocation('err', '[50, 50]')$q$,
  $q$SELECT ab_set_allocation('err', '{"control": 1e400}')$q$,
  -- strategies
  $q$SELECT ab_set_assignment('err', 'random')$q$,
  $q$SELECT ab_set_assignment('err', 'modulo')$q$,
  $q$SELECT ab_set_assignment('err', 'modulo', '{"divisor": 0}')$q$,
  $q$SELECT ab_set_assignment('err', 'modulo', '{"divisor": 2.5}')$q$,
  $q$SELECT ab_set_assignment('err', 'hash', '{"typo": 1}')$q$,
  $q$SELECT ab_set_assignment('err', 'attribute', '{"name": "c"}')$q$,
  $q$SELECT ab_set_assignment('err', 'group', '{"mapping": {}}')$q$,
  $q$SELECT ab_set_assignment('err', 'percentage', '{"coverage": 150}')$q$,
  $q$SELECT ab_set_assignment('err', 'hash', '"scalar"')$q$,
  -- configuration
  $q$SELECT ab_configure('err', confidence_level => 1.5)$q$,
  $q$SELECT ab_configure('err', confidence_level => 'NaN')$q$,
  $q$SELECT ab_configure('err', min_sample_size => 0)$q$,
  $q$SELECT ab_configure('err', max_duration => '-1 day')$q$,
  $q$SELECT ab_configure('err', excluded_groups => ARRAY['g', NULL])$q$,
  $q$SELECT ab_configure('err', salt => '')$q$,
  -- transitions
  $q$SELECT ab_pause('err')$q$,
  $q$SELECT ab_complete('err')$q$,
  $q$SELECT ab_set_state('err', 'completed')$q$,
  $q$SELECT ab_set_state('err', 'draft')$q$,
  $q$SELECT ab_set_state('err', 'running')$q$,
  $q$SELECT ab_route_user('err', 'u')$q$
]) AS s;

-- Illegal transitions after starting, and a winner that is no branch.
SELECT ab_start('err');
SELECT s AS statement, sqlstate_of(s) AS result FROM unnest(ARRAY[
  $q$SELECT ab_start('err')$q$,
  $q$SELECT ab_complete('err', 'bogus')$q$
]) AS s;
SELECT state, winner FROM ab_get_experiment('err');

-- A refused change applies nothing.
SELECT ab_set_allocation('err', '{"control": 70, "treatment": 30}');
SELECT sqlstate_of($q$SELECT ab_configure('err', sticky => true, min_sample_size => -5)$q$);
SELECT sticky, min_sample_size, allocation FROM ab_get_experiment('err');

-- A rolled-back change leaves routing as it was.
CREATE TEMP TABLE before AS SELECT i, ab_route_user('err', 'u' || i) AS branch FROM generate_series(1, 2000) i;
BEGIN;
SELECT ab_set_allocation('err', '{"control": 0, "treatment": 100}');
SELECT DISTINCT ab_route_user('err', 'u' || i) AS inside_transaction FROM generate_series(1, 100) i;
ROLLBACK;
SELECT count(*) AS changed_after_rollback FROM before WHERE branch <> ab_route_user('err', 'u' || i);
BEGIN;
SELECT ab_delete_experiment('err');
ROLLBACK;
SELECT count(*) AS changed_after_rolled_back_delete FROM before WHERE branch <> ab_route_user('err', 'u' || i);

-- Names with quotes and unicode are names like any other.
SELECT ab_create_experiment('it''s "quoted" — 実験', ARRAY['контроль', '処理']) IS NOT NULL AS created;
SELECT ab_start('it''s "quoted" — 実験');
SELECT ab_route_user('it''s "quoted" — 実験', 'u' || i) AS branch, count(*) FROM generate_series(1, 1000) i GROUP BY 1 ORDER BY 1;
SELECT sqlstate_of($q$SELECT ab_complete('it''s "quoted" — 実験', 'treatment')$q$);

-- User ids and session ids: at most 2,048 bytes, refused above (22001) before anything
-- is looked up, cached, queued or counted. At the limit they route and are logged,
-- sticky or not, even when they do not compress.
SELECT ab_create_experiment('long_ids', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_start('long_ids');
CREATE TEMP TABLE ids AS
  SELECT repeat('u', 2048) AS repeated,
         (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 64) i) AS random;
SELECT octet_length(repeated) AS repeated_bytes, octet_length(random) AS random_bytes,
       octet_length(repeat('ユ', 683)) AS wide_bytes FROM ids;
SELECT ab_route_user('long_ids', repeated) = ab_route_user('long_ids', repeated) AS sticky_repeated,
       ab_route_user('long_ids', random) = ab_route_user('long_ids', random) AS sticky_random,
       ab_route_user('long_ids', NULL, session_id => 's' || left(random, 2047)) IS NOT NULL AS by_session,
       ab_bucket('long_ids', random) BETWEEN 0 AND 9999 AS bucket
  FROM ids;
SET abtest.sticky_durability = sync;
SELECT ab_route_user('long_ids', 'sync' || left(random, 2044)) IS NOT NULL AS routed_sync FROM ids;
RESET abtest.sticky_durability;
SELECT count(*) AS logged, max(octet_length(user_id)) AS longest
  FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id WHERE e.name = 'long_ids';
SELECT ab_set_default_experiment('long_ids');
CREATE VIEW long_ids_logged AS
  SELECT count(*) AS n FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id
   WHERE e.name = 'long_ids';
CREATE TEMP TABLE counts_before AS
  SELECT (SELECT n FROM long_ids_logged) AS logged,
         (SELECT sum(exposures) FROM ab_branch_metrics('long_ids')) AS exposures,
         (SELECT entries + queued FROM ab_sticky_cache_stats()) AS cached;
SELECT s AS statement, sqlstate_of(s) AS result FROM unnest(ARRAY[
  $q$SELECT ab_route_user('long_ids', repeat('u', 2049))$q$,
  $q$SELECT ab_route_user('long_ids', repeat('ユ', 683))$q$,
  $q$SELECT ab_route_user('long_ids', (SELECT random || 'x' FROM ids))$q$,
  $q$SELECT ab_route_user('long_ids', repeat('u', 10000000))$q$,
  $q$SELECT ab_route_user('long_ids', NULL, session_id => repeat('s', 2049))$q$,
  $q$SELECT ab_route_default(repeat('u', 2049))$q$,
  $q$SELECT ab_route_default(NULL, session_id => repeat('s', 2049))$q$,
  $q$SELECT ab_bucket('long_ids', repeat('u', 2049))$q$,
  $q$SELECT ab_clear_user_cache(repeat('u', 2049))$q$
]) AS s;
SELECT (SELECT n FROM long_ids_logged) = logged AS nothing_logged,
       (SELECT sum(exposures) FROM ab_branch_metrics('long_ids')) = exposures AS nothing_counted,
       (SELECT entries + queued FROM ab_sticky_cache_stats()) = cached AS nothing_cached
  FROM counts_before;
-- Not sticky: the same limit.
SELECT ab_configure('long_ids', sticky => false);
SELECT ab_route_user('long_ids', repeated) IS NOT NULL AS at_limit, ab_route_default(random) IS NOT NULL AS default_at_limit
  FROM ids;
SELECT sqlstate_of($q$SELECT ab_route_user('long_ids', repeat('u', 2049))$q$);
-- A user id at the limit is forgotten like any other.
SELECT ab_clear_user_cache(random) FROM ids;
SELECT count(*) AS logged_after_clear
  FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id, ids
 WHERE e.name = 'long_ids' AND a.user_id = ids.random;

DROP VIEW long_ids_logged;

SELECT ab_delete_experiment(name) FROM abtest.experiments ORDER BY name;
DROP FUNCTION sqlstate_of(text);
