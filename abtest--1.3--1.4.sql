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
