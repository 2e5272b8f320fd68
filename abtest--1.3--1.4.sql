-- abtest 1.3 -> 1.4: database branches and more than one primary.
-- Follows the rules of abtest--1.0--1.1.sql: only ALTER and CREATE, nothing dropped.
\echo Use "ALTER EXTENSION abtest UPDATE TO '1.4'" to load this file. \quit

-- A subscriber of logical replication applies changes with session_replication_role =
-- replica, which skips ordinary triggers: the routing caches of a subscriber must still
-- hear of every catalog change, so these triggers fire in every replication role.
ALTER TABLE abtest.experiments ENABLE ALWAYS TRIGGER experiments_changed;
ALTER TABLE abtest.branches ENABLE ALWAYS TRIGGER branches_changed;
ALTER TABLE abtest.forced_users ENABLE ALWAYS TRIGGER forced_users_changed;

-- Database branches: each branch may carry settings (a planner setting, a search path,
-- a statement timeout) that ab_enter applies to the rest of a transaction, like SET LOCAL.
ALTER TABLE abtest.branches
    ADD COLUMN settings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object');
COMMENT ON COLUMN abtest.branches.settings IS
    'Parameters ab_enter sets for the rest of the transaction (ab_set_branch_settings)';

-- The overview gains each branch's settings (at its end, so the view can be replaced):
-- an object from branch name to settings, with only the branches that have some.
CREATE OR REPLACE VIEW abtest.experiment_overview AS
SELECT e.id, e.name, e.description, e.owner, e.tags, e.state,
       array_agg(b.name ORDER BY b.position) AS branches,
       array_agg(b.allocation ORDER BY b.position) AS allocation,
       e.created_at, e.started_at, e.completed_at, e.winner,
       e.sticky, e.allow_reassignment, e.included_groups, e.excluded_groups,
       e.min_sample_size, e.confidence_level, e.auto_complete, e.max_duration,
       e.salt, e.strategy, e.strategy_params, e.is_default,
       e.condition, e.namespace, e.namespace_range,
       (SELECT jsonb_object_agg(f.user_id, f.branch) FROM abtest.forced_users f
         WHERE f.experiment_id = e.id) AS forced_users,
       coalesce(jsonb_object_agg(b.name, b.settings) FILTER (WHERE b.settings <> '{}'), '{}')
         AS branch_settings
  FROM abtest.experiments e
  JOIN abtest.branches b ON b.experiment_id = e.id
 GROUP BY e.id;

CREATE FUNCTION ab_set_branch_settings(experiment text, branch text, settings jsonb) RETURNS void
    AS 'MODULE_PATHNAME', 'ab_set_branch_settings' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_enter(experiment text, user_id text, groups text[] DEFAULT '{}',
                         attributes jsonb DEFAULT '{}', session_id text DEFAULT NULL) RETURNS text
    AS 'MODULE_PATHNAME', 'ab_enter' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION ab_leave() RETURNS void
    AS 'MODULE_PATHNAME', 'ab_leave' LANGUAGE C VOLATILE PARALLEL UNSAFE;
-- ab_enter and ab_leave are routing, for every role like ab_route_user; a branch's
-- settings are chosen by whoever manages experiments.
REVOKE EXECUTE ON FUNCTION ab_set_branch_settings(text, text, jsonb) FROM PUBLIC;

-- Monitoring (issue #14) ------------------------------------------------------------
-- Two values the Prometheus exporter (monitoring/postgres_exporter.yaml) needs and 1.3
-- did not return, each a new last column:
--   ab_sticky_cache_stats().oldest_queued   when the oldest assignment still waiting for
--                                           a flush worker was queued (NULL: none waits),
--                                           the worker's lag;
--   ab_branch_metrics().latency_sum_ms      the exact sum of the recorded latencies: an
--                                           average times a count can come out one unit
--                                           in the last place lower after a 0 ms query,
--                                           and a Prometheus counter must never decrease.
-- A function's result type changes only by DROP and CREATE (with the view over the
-- first): the grants that admins gave are kept, as for ab_configure in 1.2.
SELECT pg_catalog.set_config('abtest_upgrade.' || what, coalesce((
           SELECT string_agg(a.grantee::regrole::text, ', ')
             FROM pg_proc p, aclexplode(p.proacl) a
            WHERE p.oid = pg_catalog.to_regprocedure(signature) AND a.privilege_type = 'EXECUTE'
              AND a.grantee <> 0 AND a.grantee <> p.proowner), ''), true)
  FROM (VALUES ('stats_grantees', 'ab_sticky_cache_stats()'),
               ('branch_metrics_grantees', 'ab_branch_metrics(text)')) AS f(what, signature);
SELECT pg_catalog.set_config('abtest_upgrade.stats_view_grantees', coalesce(string_agg(a.grantee::regrole::text, ', '), ''), true)
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.oid = 'abtest.sticky_cache_stats'::regclass AND a.privilege_type = 'SELECT'
   AND a.grantee <> 0 AND a.grantee <> c.relowner;

DROP VIEW abtest.sticky_cache_stats;
DROP FUNCTION ab_sticky_cache_stats();
CREATE FUNCTION ab_sticky_cache_stats(
    OUT entries bigint, OUT capacity bigint, OUT hits bigint, OUT misses bigint, OUT log_lookups bigint,
    OUT evictions bigint, OUT queued bigint, OUT flushed bigint, OUT sync_writes bigint,
    OUT last_flush timestamptz, OUT oldest_queued timestamptz)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
-- The sticky cache, cluster-wide: its fill, hit rate, log lookups, evictions and the
-- write-behind queue (queued - flushed = waiting to be written, since oldest_queued).
CREATE VIEW abtest.sticky_cache_stats AS SELECT * FROM ab_sticky_cache_stats();

DROP FUNCTION ab_branch_metrics(text);
CREATE FUNCTION ab_branch_metrics(experiment text)
    RETURNS TABLE(branch text, query_count bigint, success_count bigint, failure_count bigint,
                  success_rate double precision, error_rate double precision, avg_latency_ms double precision,
                  min_latency_ms double precision, max_latency_ms double precision,
                  p50_latency_ms double precision, p95_latency_ms double precision,
                  p99_latency_ms double precision, first_query timestamptz, last_query timestamptz,
                  exposures bigint, assigned_users bigint, latency_sum_ms double precision)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

REVOKE EXECUTE ON FUNCTION ab_sticky_cache_stats(), ab_branch_metrics(text) FROM PUBLIC;
REVOKE ALL ON abtest.sticky_cache_stats FROM PUBLIC;
DO $$
BEGIN
    IF current_setting('abtest_upgrade.stats_grantees') <> '' THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION ab_sticky_cache_stats() TO %s',
                       current_setting('abtest_upgrade.stats_grantees'));
    END IF;
    IF current_setting('abtest_upgrade.branch_metrics_grantees') <> '' THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION ab_branch_metrics(text) TO %s',
                       current_setting('abtest_upgrade.branch_metrics_grantees'));
    END IF;
    IF current_setting('abtest_upgrade.stats_view_grantees') <> '' THEN
        EXECUTE format('GRANT SELECT ON abtest.sticky_cache_stats TO %s',
                       current_setting('abtest_upgrade.stats_view_grantees'));
    END IF;
END
$$;

-- Per-query metrics of database branches (issue #13) -------------------------------
-- What each statement of a transaction marked by ab_enter cost, per (experiment, branch,
-- query id): kept in shared memory (abtest.max_tracked_queries entries, the least used
-- evicted), written here by the flush worker with the branch metrics, merged back after
-- a restart, cleared with them. queryid is PostgreSQL's (join pg_stat_statements on it
-- for the normalized text); query is the raw text of the first statement seen with it.
CREATE TABLE abtest.query_metrics (
    experiment_id     uuid NOT NULL REFERENCES abtest.experiments (id) ON DELETE CASCADE,
    branch            text NOT NULL,
    queryid           bigint NOT NULL,
    query             text,
    calls             bigint NOT NULL,
    failures          bigint NOT NULL,
    -- of the successful calls' latency in ms, and of its natural log (Welford: m2 is the
    -- sum of squared deviations from the mean)
    latency_sum       double precision NOT NULL,
    latency_mean      double precision NOT NULL,
    latency_m2        double precision NOT NULL,
    log_latency_sum   double precision NOT NULL,
    log_latency_mean  double precision NOT NULL,
    log_latency_m2    double precision NOT NULL,
    min_latency_ms    double precision,
    max_latency_ms    double precision,
    latency_histogram bigint[] NOT NULL,
    usage             double precision NOT NULL,  -- the eviction score
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (experiment_id, branch, queryid)
);
COMMENT ON TABLE abtest.query_metrics IS
    'Per-query metrics of database branches as of the last flush; read ab_query_metrics() for live values';
SELECT pg_catalog.pg_extension_config_dump('abtest.query_metrics', '');
REVOKE ALL ON abtest.query_metrics FROM PUBLIC;

CREATE FUNCTION ab_query_metrics(experiment text)
    RETURNS TABLE(branch text, queryid bigint, query text, calls bigint, failures bigint,
                  mean_ms double precision, stddev_ms double precision, p50_ms double precision,
                  p95_ms double precision, p99_ms double precision)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_compare_queries(experiment text, branch_a text, branch_b text)
    RETURNS TABLE(queryid bigint, query text, calls_a bigint, calls_b bigint, mean_ms_a double precision,
                  mean_ms_b double precision, p95_ms_a double precision, p95_ms_b double precision,
                  relative_change double precision, p_value double precision,
                  adjusted_p_value double precision, is_significant boolean)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_query_metrics_stats(
    OUT entries bigint, OUT entries_all_databases bigint, OUT capacity bigint, OUT evicted bigint,
    OUT evictions bigint, OUT not_counted bigint)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ab_query_metrics(text), ab_compare_queries(text, text, text), ab_query_metrics_stats()
    FROM PUBLIC;

-- More than one primary (issue #14, part 3) -----------------------------------------
-- Experiments defined once, on a control primary, reach the others through a
-- publication of the catalog (README, "More than one server"). Everything of this block
-- is for that.

-- The apply worker of a subscription fires row triggers only, never statement triggers
-- (PostgreSQL's documentation, Logical Replication, Architecture): the statement
-- triggers above cover the initial copy and TRUNCATE,
-- these cover every INSERT, UPDATE and DELETE applied. Enabled for the replica role only,
-- so an ordinary session still pays for one statement trigger, not one per row.
CREATE TRIGGER experiments_replicated AFTER INSERT OR UPDATE OR DELETE ON abtest.experiments
    FOR EACH ROW EXECUTE FUNCTION abtest.catalog_changed();
CREATE TRIGGER branches_replicated AFTER INSERT OR UPDATE OR DELETE ON abtest.branches
    FOR EACH ROW EXECUTE FUNCTION abtest.catalog_changed();
CREATE TRIGGER forced_users_replicated AFTER INSERT OR UPDATE OR DELETE ON abtest.forced_users
    FOR EACH ROW EXECUTE FUNCTION abtest.catalog_changed();
ALTER TABLE abtest.experiments ENABLE REPLICA TRIGGER experiments_replicated;
ALTER TABLE abtest.branches ENABLE REPLICA TRIGGER branches_replicated;
ALTER TABLE abtest.forced_users ENABLE REPLICA TRIGGER forced_users_replicated;

-- Each primary keeps its own assignment log and counters; an analysis across primaries
-- merges their counters. These views export this primary's, live, with the columns of
-- abtest.branch_metrics and abtest.event_metrics (after the experiment's name): on an
-- analysis server, one postgres_fdw foreign table per primary over them is a source.
CREATE FUNCTION ab_export_branch_metrics()
    RETURNS TABLE (experiment_id uuid, experiment text, branch text, query_count bigint, success_count bigint,
                   latency_sum double precision, latency_mean double precision, latency_m2 double precision,
                   min_latency_ms double precision, max_latency_ms double precision, first_query timestamptz,
                   last_query timestamptz, latency_histogram bigint[], exposures bigint, assigned_users bigint)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_export_event_metrics()
    RETURNS TABLE (experiment_id uuid, experiment text, branch text, event_name text, count bigint,
                   sum double precision, mean double precision, m2 double precision)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE VIEW abtest.branch_metrics_export AS SELECT * FROM ab_export_branch_metrics();
CREATE VIEW abtest.event_metrics_export AS SELECT * FROM ab_export_event_metrics();
COMMENT ON VIEW abtest.branch_metrics_export IS 'This primary''s counters per branch, live and mergeable: a source of ab_compare(..., sources) on another server';
COMMENT ON VIEW abtest.event_metrics_export IS 'This primary''s event counters, live and mergeable: a source of ab_compare_event(..., sources)';

-- The analyses of recorded counters, over the merged counters of the sources (tables,
-- views or foreign tables of the shape of the export views, read as the caller): the
-- same functions, the same columns, one more argument.
CREATE FUNCTION ab_branch_metrics(experiment text, sources regclass[])
    RETURNS TABLE(branch text, query_count bigint, success_count bigint, failure_count bigint,
                  success_rate double precision, error_rate double precision, avg_latency_ms double precision,
                  min_latency_ms double precision, max_latency_ms double precision,
                  p50_latency_ms double precision, p95_latency_ms double precision,
                  p99_latency_ms double precision, first_query timestamptz, last_query timestamptz,
                  exposures bigint, assigned_users bigint, latency_sum_ms double precision)
    AS 'MODULE_PATHNAME', 'ab_branch_metrics' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_event_metrics(experiment text, sources regclass[])
    RETURNS TABLE(branch text, event_name text, count bigint, sum double precision, mean double precision,
                  stddev double precision)
    AS 'MODULE_PATHNAME', 'ab_event_metrics' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_summary(experiment text, sources regclass[])
    RETURNS TABLE(experiment text, branch_count integer, total_queries bigint, best_branch text,
                  best_success_rate double precision, avg_latency_ms double precision, duration interval)
    AS 'MODULE_PATHNAME', 'ab_summary' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_compare(experiment text, branch_a text, branch_b text, sources regclass[])
    RETURNS TABLE(branch_a text, branch_b text, sample_size_a bigint, sample_size_b bigint,
                  success_rate_a double precision, success_rate_b double precision,
                  success_rate_diff double precision, relative_lift double precision,
                  ci_low double precision, ci_high double precision, p_value double precision,
                  is_significant boolean, confidence double precision, prob_b_beats_a double precision,
                  sequential_p_value double precision, avg_latency_a double precision,
                  avg_latency_b double precision, latency_diff double precision,
                  latency_p_value double precision)
    AS 'MODULE_PATHNAME', 'ab_compare' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_compare_event(experiment text, branch_a text, branch_b text, event_name text, sources regclass[])
    RETURNS TABLE(count_a bigint, count_b bigint, mean_a double precision, mean_b double precision,
                  diff double precision, relative_lift double precision, ci_low double precision,
                  ci_high double precision, p_value double precision, is_significant boolean,
                  confidence double precision)
    AS 'MODULE_PATHNAME', 'ab_compare_event' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_compare_all(experiment text, sources regclass[])
    RETURNS TABLE(branch_a text, branch_b text, sample_size_a bigint, sample_size_b bigint,
                  success_rate_a double precision, success_rate_b double precision,
                  success_rate_diff double precision, relative_lift double precision,
                  ci_low double precision, ci_high double precision, p_value double precision,
                  adjusted_p_value double precision, is_significant boolean,
                  prob_b_beats_a double precision, sequential_p_value double precision)
    AS 'MODULE_PATHNAME', 'ab_compare_all' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_srm(experiment text, sources regclass[])
    RETURNS TABLE(chi_square double precision, degrees_of_freedom integer, p_value double precision,
                  mismatch boolean)
    AS 'MODULE_PATHNAME', 'ab_srm' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION ab_compare(text, text, text, regclass[]) IS 'ab_compare over the merged counters of several primaries';

-- Like the analyses on one server: for no one until granted (README, "Privileges"). An
-- analysis server's user mapping needs, on each primary, USAGE on schema abtest, SELECT
-- on the export views and EXECUTE on the export functions.
REVOKE EXECUTE ON FUNCTION
    ab_export_branch_metrics(), ab_export_event_metrics(),
    ab_branch_metrics(text, regclass[]), ab_event_metrics(text, regclass[]), ab_summary(text, regclass[]),
    ab_compare(text, text, text, regclass[]), ab_compare_event(text, text, text, text, regclass[]),
    ab_compare_all(text, regclass[]), ab_srm(text, regclass[])
  FROM PUBLIC;
REVOKE ALL ON abtest.branch_metrics_export, abtest.event_metrics_export FROM PUBLIC;
