-- abtest 1.1 -> 1.2: targeting. Who is in an experiment: a GrowthBook condition over
-- the user's attributes, namespaces that keep experiments apart, forced users for QA,
-- the GrowthBook-compatible strategy, and ab_explain. Follows the rules of
-- abtest--1.0--1.1.sql: only ALTER and CREATE (OR REPLACE), nothing dropped.
\echo Use "ALTER EXTENSION abtest UPDATE TO '1.2'" to load this file. \quit

ALTER TABLE abtest.experiments
    ADD COLUMN condition       jsonb CHECK (condition IS NULL OR jsonb_typeof(condition) = 'object'),
    ADD COLUMN namespace       text,
    ADD COLUMN namespace_range numeric[]
        CHECK (namespace_range IS NULL OR (array_length(namespace_range, 1) = 2
               AND namespace_range[1] >= 0 AND namespace_range[1] < namespace_range[2]
               AND namespace_range[2] <= 1)),
    ADD CONSTRAINT experiments_namespace_range CHECK ((namespace IS NULL) = (namespace_range IS NULL));
COMMENT ON COLUMN abtest.experiments.condition IS 'Targeting condition (GrowthBook condition language) over the user''s attributes';
COMMENT ON COLUMN abtest.experiments.namespace IS 'Experiments of one namespace with disjoint ranges never share a user';

-- Users forced into a branch, for QA. Not exposures, never logged, never analysed.
CREATE TABLE abtest.forced_users (
    experiment_id uuid NOT NULL REFERENCES abtest.experiments (id) ON DELETE CASCADE,
    user_id       text NOT NULL,
    branch        text NOT NULL,
    forced_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment_id, user_id)
);
COMMENT ON TABLE abtest.forced_users IS 'Users forced into a branch (ab_force), for QA; they are not in the experiment''s counts';
SELECT pg_catalog.pg_extension_config_dump('abtest.forced_users', '');
REVOKE ALL ON abtest.forced_users FROM PUBLIC;
CREATE TRIGGER forced_users_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON abtest.forced_users
    FOR EACH STATEMENT EXECUTE FUNCTION abtest.catalog_changed();

-- The overview gains the targeting columns (at its end, so the view can be replaced).
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
         WHERE f.experiment_id = e.id) AS forced_users
  FROM abtest.experiments e
  JOIN abtest.branches b ON b.experiment_id = e.id
 GROUP BY e.id;

-- Each namespace's ranges: one row per active experiment in it, and one per free gap
-- (state 'free'). A paused experiment holds no range: resuming it is refused while an
-- active one overlaps.
CREATE VIEW abtest.namespace_overview AS
WITH used AS (
    SELECT namespace, namespace_range[1] AS range_start, namespace_range[2] AS range_end,
           name AS experiment, state
      FROM abtest.experiments
     WHERE namespace IS NOT NULL AND state = 'active'
), bounds AS (
    SELECT namespace, range_start,
           max(range_end) OVER (PARTITION BY namespace ORDER BY range_start, range_end
                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS covered_before
      FROM used
), gaps AS (
    SELECT namespace, coalesce(covered_before, 0) AS range_start, range_start AS range_end
      FROM bounds WHERE range_start > coalesce(covered_before, 0)
    UNION ALL
    SELECT namespace, max(range_end), 1 FROM used GROUP BY namespace HAVING max(range_end) < 1
)
SELECT namespace, range_start, range_end, experiment, state FROM used
UNION ALL
SELECT namespace, range_start, range_end, NULL, 'free' FROM gaps
ORDER BY 1, 2, 3;
COMMENT ON VIEW abtest.namespace_overview IS 'Each namespace''s used and free ranges';

-- Targeting -------------------------------------------------------------------------

-- ab_configure gains three arguments. An overload would make every call by name
-- ambiguous, so the function is replaced, and the EXECUTE grants of the old one are
-- given to the new one.
SELECT pg_catalog.set_config('abtest_upgrade.configure_grantees', coalesce(string_agg(a.grantee::regrole::text, ', '), ''), true)
  FROM pg_proc p, aclexplode(p.proacl) a
 WHERE p.oid = 'ab_configure(text, boolean, text[], text[], bigint, double precision, boolean, boolean, interval, text)'::regprocedure
   AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner;
DROP FUNCTION ab_configure(text, boolean, text[], text[], bigint, double precision, boolean, boolean, interval, text);
CREATE FUNCTION ab_configure(name text, sticky boolean DEFAULT NULL, included_groups text[] DEFAULT NULL,
                             excluded_groups text[] DEFAULT NULL, min_sample_size bigint DEFAULT NULL,
                             confidence_level double precision DEFAULT NULL,
                             allow_reassignment boolean DEFAULT NULL, auto_complete boolean DEFAULT NULL,
                             max_duration interval DEFAULT NULL, salt text DEFAULT NULL,
                             condition jsonb DEFAULT NULL, namespace text DEFAULT NULL,
                             namespace_range numeric[] DEFAULT NULL)
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_force(experiment text, user_id text, branch text)
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_unforce(experiment text, user_id text)
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_eval_condition(condition jsonb, attributes jsonb, saved_groups jsonb DEFAULT '{}')
    RETURNS boolean AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ab_growthbook_hash(seed text, value text, version integer)
    RETURNS double precision AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION ab_explain(experiment text, user_id text, groups text[] DEFAULT '{}',
                           attributes jsonb DEFAULT '{}', session_id text DEFAULT NULL)
    RETURNS TABLE(branch text, in_experiment boolean, reason text, bucket double precision, sticky boolean)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION ab_explain(text, text, text[], jsonb, text) IS 'Why a user gets a branch; counts and writes nothing';

-- ab_eval_condition and ab_growthbook_hash are pure functions: for everyone. The rest
-- administers or reads the catalog.
REVOKE EXECUTE ON FUNCTION
    ab_configure(text, boolean, text[], text[], bigint, double precision, boolean, boolean, interval, text,
                 jsonb, text, numeric[]),
    ab_force(text, text, text), ab_unforce(text, text),
    ab_explain(text, text, text[], jsonb, text)
  FROM PUBLIC;
DO $$
BEGIN
    IF current_setting('abtest_upgrade.configure_grantees') <> '' THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION ab_configure(text, boolean, text[], text[], bigint, '
                       'double precision, boolean, boolean, interval, text, jsonb, text, numeric[]) TO %s',
                       current_setting('abtest_upgrade.configure_grantees'));
    END IF;
END
$$;

-- GrowthBook's building blocks, to compare with an SDK from SQL (pure functions).
CREATE FUNCTION ab_growthbook_bucket_ranges(num_variations integer, coverage double precision DEFAULT 1,
                                            weights double precision[] DEFAULT NULL)
    RETURNS double precision[] AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ab_growthbook_choose_variation(n double precision, ranges double precision[])
    RETURNS integer AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ab_growthbook_in_namespace(hash_value text, namespace text, range_start double precision,
                                           range_end double precision)
    RETURNS boolean AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ab_growthbook_equal_weights(n integer)
    RETURNS double precision[] AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
