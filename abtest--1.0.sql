\echo Use "CREATE EXTENSION abtest" to load this file. \quit

-- The catalog lives in schema abtest; the functions in the extension's schema
-- (public by default), so that they are callable unqualified.
CREATE SCHEMA abtest;

CREATE TABLE abtest.experiments (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name               text NOT NULL UNIQUE,
    description        text,
    owner              text,
    tags               text[] NOT NULL DEFAULT '{}',
    state              text NOT NULL DEFAULT 'draft'
                       CHECK (state IN ('draft', 'active', 'paused', 'completed', 'archived')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    completed_at       timestamptz,
    winner             text,
    sticky             boolean NOT NULL DEFAULT true,
    allow_reassignment boolean NOT NULL DEFAULT false,
    included_groups    text[] NOT NULL DEFAULT '{}',
    excluded_groups    text[] NOT NULL DEFAULT '{}',
    min_sample_size    bigint NOT NULL DEFAULT 100,
    confidence_level   double precision NOT NULL DEFAULT 0.95,
    auto_complete      boolean NOT NULL DEFAULT false,
    max_duration       interval,
    salt               text NOT NULL,
    strategy           text NOT NULL DEFAULT 'hash',
    strategy_params    jsonb NOT NULL DEFAULT '{}',
    is_default         boolean NOT NULL DEFAULT false
);

-- At most one default experiment per database.
CREATE UNIQUE INDEX experiments_single_default ON abtest.experiments ((true)) WHERE is_default;

CREATE TABLE abtest.branches (
    experiment_id uuid NOT NULL REFERENCES abtest.experiments (id) ON DELETE CASCADE,
    position      integer NOT NULL CHECK (position >= 0),
    name          text NOT NULL,
    allocation    numeric(5, 2) NOT NULL CHECK (allocation BETWEEN 0 AND 100),
    PRIMARY KEY (experiment_id, position),
    UNIQUE (experiment_id, name)
);

SELECT pg_catalog.pg_extension_config_dump('abtest.experiments', '');
SELECT pg_catalog.pg_extension_config_dump('abtest.branches', '');

-- The assignment log: which branch each user of a sticky experiment got, and since
-- when. The truth behind the shared-memory cache, and the exposure log analysts join
-- to their own tables. Written by the flush worker (or the routing transaction with
-- abtest.sticky_durability = sync).
CREATE TABLE abtest.assignments (
    experiment_id uuid NOT NULL,
    user_id       text NOT NULL,
    branch        text NOT NULL,
    assigned_at   timestamptz NOT NULL,
    PRIMARY KEY (experiment_id, user_id)
);
CREATE INDEX assignments_user_id ON abtest.assignments (user_id);
SELECT pg_catalog.pg_extension_config_dump('abtest.assignments', '');

-- Metrics: the totals of the shared-memory counters as of the last flush (every
-- abtest.flush_interval, and at a clean shutdown), from which the counters continue
-- after a restart. Read them with ab_branch_metrics() and ab_event_metrics(), which
-- add what was recorded since. The histogram's buckets are described in the README.
CREATE TABLE abtest.branch_metrics (
    experiment_id     uuid NOT NULL REFERENCES abtest.experiments (id) ON DELETE CASCADE,
    branch            text NOT NULL,
    query_count       bigint NOT NULL,
    success_count     bigint NOT NULL,
    latency_sum       double precision NOT NULL,
    latency_mean      double precision NOT NULL,
    latency_m2        double precision NOT NULL,  -- sum of squared deviations from the mean
    min_latency_ms    double precision,
    max_latency_ms    double precision,
    first_query       timestamptz,
    last_query        timestamptz,
    latency_histogram bigint[] NOT NULL,
    exposures         bigint NOT NULL,
    assigned_users    bigint NOT NULL,
    -- running minimum of the always-valid p-value against the control (ab_compare)
    sequential_p_value double precision NOT NULL DEFAULT 1,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (experiment_id, branch)
);
SELECT pg_catalog.pg_extension_config_dump('abtest.branch_metrics', '');

CREATE TABLE abtest.event_metrics (
    experiment_id uuid NOT NULL REFERENCES abtest.experiments (id) ON DELETE CASCADE,
    branch        text NOT NULL,
    event_name    text NOT NULL,
    count         bigint NOT NULL,
    sum           double precision NOT NULL,
    mean          double precision NOT NULL,
    m2            double precision NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (experiment_id, branch, event_name)
);
SELECT pg_catalog.pg_extension_config_dump('abtest.event_metrics', '');

-- One row per experiment with everything about it; also the document the C++ core
-- reads and writes (to_jsonb of a row).
CREATE VIEW abtest.experiment_overview AS
SELECT e.id, e.name, e.description, e.owner, e.tags, e.state,
       array_agg(b.name ORDER BY b.position) AS branches,
       array_agg(b.allocation ORDER BY b.position) AS allocation,
       e.created_at, e.started_at, e.completed_at, e.winner,
       e.sticky, e.allow_reassignment, e.included_groups, e.excluded_groups,
       e.min_sample_size, e.confidence_level, e.auto_complete, e.max_duration,
       e.salt, e.strategy, e.strategy_params, e.is_default
  FROM abtest.experiments e
  JOIN abtest.branches b ON b.experiment_id = e.id
 GROUP BY e.id;

-- Any change to the catalog, through these functions or by hand, reaches every
-- backend's routing cache when it commits.
CREATE FUNCTION abtest.catalog_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'abtest_catalog_changed' LANGUAGE C;

CREATE TRIGGER experiments_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON abtest.experiments
    FOR EACH STATEMENT EXECUTE FUNCTION abtest.catalog_changed();
CREATE TRIGGER branches_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON abtest.branches
    FOR EACH STATEMENT EXECUTE FUNCTION abtest.catalog_changed();

-- Experiments -------------------------------------------------------------------

CREATE FUNCTION ab_create_experiment(name text, branches text[], allocation numeric[] DEFAULT NULL,
                                     description text DEFAULT NULL, owner text DEFAULT NULL,
                                     tags text[] DEFAULT '{}')
    RETURNS uuid AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_set_allocation(name text, allocation jsonb)
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_configure(name text, sticky boolean DEFAULT NULL, included_groups text[] DEFAULT NULL,
                             excluded_groups text[] DEFAULT NULL, min_sample_size bigint DEFAULT NULL,
                             confidence_level double precision DEFAULT NULL,
                             allow_reassignment boolean DEFAULT NULL, auto_complete boolean DEFAULT NULL,
                             max_duration interval DEFAULT NULL, salt text DEFAULT NULL)
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_set_assignment(name text, strategy text, params jsonb DEFAULT '{}')
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_start(name text) RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_pause(name text) RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_complete(name text, winner text DEFAULT NULL)
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_archive(name text) RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_set_state(name text, state text) RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_delete_experiment(name text) RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_set_default_experiment(name text)
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_get_experiment(name text) RETURNS abtest.experiment_overview
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found_row abtest.experiment_overview;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'experiment name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO found_row FROM abtest.experiment_overview o WHERE o.name = ab_get_experiment.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment "%" does not exist', name USING ERRCODE = 'undefined_object',
            HINT = 'List the experiments with SELECT name FROM ab_list_experiments().';
    END IF;
    RETURN found_row;
END
$$;

CREATE FUNCTION ab_list_experiments() RETURNS SETOF abtest.experiment_overview
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM abtest.experiment_overview ORDER BY created_at, name
$$;

-- Routing -----------------------------------------------------------------------

CREATE FUNCTION ab_route_user(experiment text, user_id text, groups text[] DEFAULT '{}',
                              attributes jsonb DEFAULT '{}', session_id text DEFAULT NULL)
    RETURNS text AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION ab_route_default(user_id text, groups text[] DEFAULT '{}',
                                 attributes jsonb DEFAULT '{}', session_id text DEFAULT NULL)
    RETURNS text AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION ab_bucket(experiment text, user_id text)
    RETURNS integer AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL RESTRICTED;

CREATE FUNCTION ab_clear_sticky_cache(experiment text)
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_clear_user_cache(user_id text)
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_sticky_cache_stats(
    OUT entries bigint, OUT capacity bigint, OUT hits bigint, OUT misses bigint, OUT log_lookups bigint,
    OUT evictions bigint, OUT queued bigint, OUT flushed bigint, OUT sync_writes bigint,
    OUT last_flush timestamptz)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

-- The sticky cache, cluster-wide: its fill, hit rate, log lookups, evictions and the
-- write-behind queue (queued - flushed = waiting to be written).
CREATE VIEW abtest.sticky_cache_stats AS SELECT * FROM ab_sticky_cache_stats();

-- Metrics -----------------------------------------------------------------------

CREATE FUNCTION ab_record_query(experiment text, branch text, latency_ms double precision, success boolean)
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION ab_record_event(experiment text, branch text, event_name text, value double precision DEFAULT 1)
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION ab_branch_metrics(experiment text)
    RETURNS TABLE(branch text, query_count bigint, success_count bigint, failure_count bigint,
                  success_rate double precision, error_rate double precision, avg_latency_ms double precision,
                  min_latency_ms double precision, max_latency_ms double precision,
                  p50_latency_ms double precision, p95_latency_ms double precision,
                  p99_latency_ms double precision, first_query timestamptz, last_query timestamptz,
                  exposures bigint, assigned_users bigint)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_event_metrics(experiment text)
    RETURNS TABLE(branch text, event_name text, count bigint, sum double precision, mean double precision,
                  stddev double precision)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_summary(experiment text)
    RETURNS TABLE(experiment text, branch_count integer, total_queries bigint, best_branch text,
                  best_success_rate double precision, avg_latency_ms double precision, duration interval)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_all_summaries()
    RETURNS TABLE(experiment text, branch_count integer, total_queries bigint, best_branch text,
                  best_success_rate double precision, avg_latency_ms double precision, duration interval)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_stats()
    RETURNS TABLE(total_experiments integer, active_experiments integer, total_branches integer,
                  experiments_tracked integer, total_branches_tracked integer, total_queries_recorded bigint)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_clear_metrics(experiment text) RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_clear_all_metrics() RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

-- Analysis ----------------------------------------------------------------------
-- Differences are b - a; the first branch of an experiment is its control.

CREATE FUNCTION ab_compare(experiment text, branch_a text, branch_b text)
    RETURNS TABLE(branch_a text, branch_b text, sample_size_a bigint, sample_size_b bigint,
                  success_rate_a double precision, success_rate_b double precision,
                  success_rate_diff double precision, relative_lift double precision,
                  ci_low double precision, ci_high double precision, p_value double precision,
                  is_significant boolean, confidence double precision, prob_b_beats_a double precision,
                  sequential_p_value double precision, avg_latency_a double precision,
                  avg_latency_b double precision, latency_diff double precision,
                  latency_p_value double precision)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_compare_event(experiment text, branch_a text, branch_b text, event_name text)
    RETURNS TABLE(count_a bigint, count_b bigint, mean_a double precision, mean_b double precision,
                  diff double precision, relative_lift double precision, ci_low double precision,
                  ci_high double precision, p_value double precision, is_significant boolean,
                  confidence double precision)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_compare_all(experiment text)
    RETURNS TABLE(branch_a text, branch_b text, sample_size_a bigint, sample_size_b bigint,
                  success_rate_a double precision, success_rate_b double precision,
                  success_rate_diff double precision, relative_lift double precision,
                  ci_low double precision, ci_high double precision, p_value double precision,
                  adjusted_p_value double precision, is_significant boolean,
                  prob_b_beats_a double precision, sequential_p_value double precision)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_srm(experiment text)
    RETURNS TABLE(chi_square double precision, degrees_of_freedom integer, p_value double precision,
                  mismatch boolean)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_sample_size(baseline_rate double precision, minimum_detectable_effect double precision,
                               alpha double precision DEFAULT 0.05, power double precision DEFAULT 0.8)
    RETURNS bigint AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION ab_report(experiment text) RETURNS SETOF text AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

-- Privileges --------------------------------------------------------------------
-- Routing is for every role (the functions read the catalog as its owner). Managing
-- experiments, forgetting assignments and reading statistics is not: grant EXECUTE
-- on these to an admin or analyst role (README, "Privileges"). The catalog tables,
-- which hold user ids, are readable only by their owner unless granted.
REVOKE ALL ON ALL TABLES IN SCHEMA abtest FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
    ab_create_experiment(text, text[], numeric[], text, text, text[]),
    ab_set_allocation(text, jsonb),
    ab_configure(text, boolean, text[], text[], bigint, double precision, boolean, boolean, interval, text),
    ab_set_assignment(text, text, jsonb),
    ab_start(text), ab_pause(text), ab_complete(text, text), ab_archive(text), ab_set_state(text, text),
    ab_delete_experiment(text), ab_set_default_experiment(text),
    ab_get_experiment(text), ab_list_experiments(),
    ab_clear_sticky_cache(text), ab_clear_user_cache(text),
    ab_sticky_cache_stats(),
    ab_branch_metrics(text), ab_event_metrics(text), ab_summary(text), ab_all_summaries(), ab_stats(),
    ab_clear_metrics(text), ab_clear_all_metrics(),
    ab_compare(text, text, text), ab_compare_event(text, text, text, text), ab_compare_all(text),
    ab_srm(text), ab_sample_size(double precision, double precision, double precision, double precision),
    ab_report(text),
    abtest.catalog_changed()
  FROM PUBLIC;
