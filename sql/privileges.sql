-- Privileges: routing is for every role; administration, clearing and statistics need
-- an explicit GRANT; the catalog (user ids!) is not readable by PUBLIC.

CREATE FUNCTION sqlstate_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

CREATE ROLE regress_abtest_app;
CREATE ROLE regress_abtest_admin;
SELECT ab_create_experiment('priv', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_start('priv');

-- Which functions PUBLIC may execute.
SELECT p.oid::regprocedure AS function, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'abtest'
 ORDER BY p.oid::regprocedure::text;

-- SECURITY DEFINER functions pin their search_path.
SELECT p.oid::regprocedure AS function, p.proconfig
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'abtest'
 WHERE p.prosecdef ORDER BY p.oid::regprocedure::text;

-- An application role routes, with no privilege on the catalog.
SET ROLE regress_abtest_app;
SELECT ab_route_user('priv', 'u1') IS NOT NULL AS routed, ab_bucket('priv', 'u1') >= 0 AS bucket,
       ab_route_default('u1') IS NULL AS no_default;
SET abtest.sticky_durability = sync;  -- writes the log, as the catalog's owner
SELECT ab_route_user('priv', 'u2') IS NOT NULL AS routed_and_logged;
RESET abtest.sticky_durability;
-- Conditions and GrowthBook hashes are pure functions, for everyone.
SELECT ab_eval_condition('{"country": "DE"}', '{"country": "DE"}') AS condition_holds,
       ab_growthbook_hash('seed', 'u1', 2) BETWEEN 0 AND 1 AS hashed;
-- It records outcomes, too.
SELECT ab_record_query('priv', 'control', 12.5, true), ab_record_event('priv', 'treatment', 'purchase', 20);
-- It enters a database branch: ab_enter sets only what any session may SET.
SELECT ab_enter('priv', 'u3') IS NOT NULL AS entered_a_branch;
SELECT ab_leave();
-- and is refused everything else.
SELECT s AS statement, sqlstate_of(s) AS result FROM unnest(ARRAY[
  $q$SELECT ab_create_experiment('mine', ARRAY['a', 'b'])$q$,
  $q$SELECT ab_pause('priv')$q$,
  $q$SELECT ab_set_allocation('priv', '{"control": 100}')$q$,
  $q$SELECT ab_delete_experiment('priv')$q$,
  $q$SELECT ab_clear_user_cache('u1')$q$,
  $q$SELECT ab_clear_sticky_cache('priv')$q$,
  $q$SELECT * FROM ab_get_experiment('priv')$q$,
  $q$SELECT * FROM abtest.sticky_cache_stats$q$,
  $q$SELECT * FROM ab_branch_metrics('priv')$q$,
  $q$SELECT * FROM ab_event_metrics('priv')$q$,
  $q$SELECT * FROM ab_summary('priv')$q$,
  $q$SELECT * FROM ab_all_summaries()$q$,
  $q$SELECT * FROM ab_stats()$q$,
  $q$SELECT ab_clear_metrics('priv')$q$,
  $q$SELECT ab_clear_all_metrics()$q$,
  $q$SELECT * FROM ab_compare('priv', 'control', 'treatment')$q$,
  $q$SELECT * FROM ab_compare_event('priv', 'control', 'treatment', 'purchase')$q$,
  $q$SELECT * FROM ab_compare_all('priv')$q$,
  $q$SELECT * FROM ab_srm('priv')$q$,
  $q$SELECT ab_sample_size(0.1, 0.01)$q$,
  $q$SELECT * FROM ab_report('priv')$q$,
  $q$SELECT * FROM ab_query_metrics('priv')$q$,
  $q$SELECT * FROM ab_compare_queries('priv', 'control', 'treatment')$q$,
  $q$SELECT * FROM ab_query_metrics_stats()$q$,
  $q$SELECT * FROM abtest.query_metrics$q$,
  $q$SELECT * FROM ab_compare('priv', 'control', 'treatment', '{}')$q$,
  $q$SELECT * FROM ab_srm('priv', '{}')$q$,
  $q$SELECT * FROM ab_export_branch_metrics()$q$,
  $q$SELECT * FROM ab_export_event_metrics()$q$,
  $q$SELECT ab_configure('priv', condition => '{"country": "DE"}')$q$,
  $q$SELECT ab_force('priv', 'u1', 'treatment')$q$,
  $q$SELECT ab_unforce('priv', 'u1')$q$,
  $q$SELECT * FROM ab_explain('priv', 'u1')$q$,
  $q$SELECT ab_set_branch_settings('priv', 'control', '{"work_mem": "64MB"}')$q$,
  $q$SELECT * FROM abtest.forced_users$q$,
  $q$SELECT * FROM abtest.namespace_overview$q$,
  $q$SELECT * FROM abtest.branch_metrics$q$,
  $q$SELECT * FROM abtest.branch_metrics_export$q$,
  $q$DELETE FROM abtest.event_metrics$q$,
  $q$SELECT * FROM abtest.assignments$q$,
  $q$SELECT * FROM abtest.experiments$q$,
  $q$UPDATE abtest.branches SET allocation = 0$q$
]) AS s;
RESET ROLE;
-- What the application recorded was counted.
SELECT branch, query_count FROM ab_branch_metrics('priv');
SELECT branch, event_name, count FROM ab_event_metrics('priv');

-- A role granted EXECUTE administers without any privilege on the tables.
GRANT EXECUTE ON FUNCTION ab_pause(text), ab_start(text), ab_get_experiment(text) TO regress_abtest_admin;
SET ROLE regress_abtest_admin;
SELECT ab_pause('priv');
SELECT state FROM ab_get_experiment('priv');
SELECT ab_start('priv');
SELECT sqlstate_of($q$SELECT ab_delete_experiment('priv')$q$) AS not_granted;
RESET ROLE;

SELECT count(*) AS logged_for_app FROM abtest.assignments WHERE user_id = 'u2';
SELECT ab_delete_experiment('priv');
REVOKE EXECUTE ON FUNCTION ab_pause(text), ab_start(text), ab_get_experiment(text) FROM regress_abtest_admin;
DROP ROLE regress_abtest_app;
DROP ROLE regress_abtest_admin;
DROP FUNCTION sqlstate_of(text);
