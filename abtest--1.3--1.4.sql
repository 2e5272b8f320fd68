-- abtest 1.3 -> 1.4: database branches and more than one primary.
-- Follows the rules of abtest--1.0--1.1.sql: only ALTER and CREATE, nothing dropped.
\echo Use "ALTER EXTENSION abtest UPDATE TO '1.4'" to load this file. \quit

-- A subscriber of logical replication applies changes with session_replication_role =
-- replica, which skips ordinary triggers: the routing caches of a subscriber must still
-- hear of every catalog change, so these triggers fire in every replication role.
ALTER TABLE abtest.experiments ENABLE ALWAYS TRIGGER experiments_changed;
ALTER TABLE abtest.branches ENABLE ALWAYS TRIGGER branches_changed;
ALTER TABLE abtest.forced_users ENABLE ALWAYS TRIGGER forced_users_changed;

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
                  exposures bigint, assigned_users bigint)
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
