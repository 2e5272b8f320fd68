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
    abtest.catalog_changed()
  FROM PUBLIC;
