-- Per-query metrics of database branches: the functions on an experiment without
-- recorded statements, their refusals, the table they persist to. (The statements
-- themselves are recorded by the executor hooks of ab_enter's transactions.)

CREATE FUNCTION query_metrics_error(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

SELECT ab_create_experiment('qm', ARRAY['control', 'treatment', 'third']) IS NOT NULL AS created;

-- Nothing recorded: no rows, whatever the branches.
SELECT * FROM ab_query_metrics('qm');
SELECT * FROM ab_compare_queries('qm', 'control', 'treatment');
SELECT * FROM ab_compare_queries('qm', 'third', 'control');
SELECT entries, capacity, not_counted FROM ab_query_metrics_stats();

-- Refusals name the object: unknown experiment or branch (42704), the same branch twice
-- (22023), NULL (22004).
SELECT s AS statement, query_metrics_error(s) AS result FROM unnest(ARRAY[
  $q$SELECT * FROM ab_query_metrics('nope')$q$,
  $q$SELECT * FROM ab_query_metrics(NULL)$q$,
  $q$SELECT * FROM ab_compare_queries('nope', 'control', 'treatment')$q$,
  $q$SELECT * FROM ab_compare_queries('qm', 'control', 'nope')$q$,
  $q$SELECT * FROM ab_compare_queries('qm', 'nope', 'control')$q$,
  $q$SELECT * FROM ab_compare_queries('qm', 'control', 'control')$q$,
  $q$SELECT * FROM ab_compare_queries('qm', NULL, 'control')$q$,
  $q$SELECT * FROM ab_compare_queries('qm', 'control', NULL)$q$
]) AS s;
-- with the hint
SELECT * FROM ab_compare_queries('qm', 'treatment', 'treatment');

-- The table: dumped with the catalog, readable by its owner only, emptied with the
-- experiment's metrics.
SELECT c.relname, c.oid = ANY (e.extconfig) AS dumped, has_table_privilege('public', c.oid, 'SELECT') AS public_reads
  FROM pg_extension e, pg_class c WHERE e.extname = 'abtest' AND c.oid = 'abtest.query_metrics'::regclass;
INSERT INTO abtest.query_metrics (experiment_id, branch, queryid, query, calls, failures, latency_sum, latency_mean,
                                  latency_m2, log_latency_sum, log_latency_mean, log_latency_m2, latency_histogram,
                                  usage, updated_at)
SELECT id, 'control', 42, 'SELECT 42', 0, 0, 0, 0, 0, 0, 0, 0, '{}', 0, now() FROM abtest.experiments WHERE name = 'qm';
BEGIN;
SELECT ab_clear_metrics('qm');
SELECT count(*) AS rows_in_the_clearing_transaction FROM abtest.query_metrics;
ROLLBACK;
SELECT count(*) AS rows_after_a_rolled_back_clear FROM abtest.query_metrics;
SELECT ab_clear_all_metrics();
SELECT count(*) AS rows_after_clear_all FROM abtest.query_metrics;
INSERT INTO abtest.query_metrics (experiment_id, branch, queryid, query, calls, failures, latency_sum, latency_mean,
                                  latency_m2, log_latency_sum, log_latency_mean, log_latency_m2, latency_histogram,
                                  usage, updated_at)
SELECT id, 'treatment', 7, NULL, 0, 0, 0, 0, 0, 0, 0, 0, '{}', 0, now() FROM abtest.experiments WHERE name = 'qm';
SELECT ab_delete_experiment('qm');
SELECT count(*) AS rows_after_delete FROM abtest.query_metrics;
SELECT entries FROM ab_query_metrics_stats();

DROP FUNCTION query_metrics_error(text);
