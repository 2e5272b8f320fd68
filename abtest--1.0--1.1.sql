-- abtest 1.0 -> 1.1: the pattern every later version follows.
--
-- An update script changes the catalog in place with ALTER/CREATE OR REPLACE and never
-- drops or rewrites a table that holds data (experiments, branches, assignments,
-- metrics): ALTER EXTENSION abtest UPDATE must keep everything. New tables are
-- registered with pg_extension_config_dump, new functions get their privileges here
-- (REVOKE ... FROM PUBLIC for anything that is not routing or recording), and the
-- shared library stays compatible with every version's SQL, so that the update can run
-- while the server runs. t/008_upgrade.pl installs 1.0, fills it, updates and compares.
\echo Use "ALTER EXTENSION abtest UPDATE TO '1.1'" to load this file. \quit

-- 1.1 documents the catalog where psql's \d+ and \df+ show it.
COMMENT ON SCHEMA abtest IS 'abtest catalog: experiments, branches, the assignment log and persisted metrics';
COMMENT ON TABLE abtest.experiments IS 'One row per experiment; change it through the ab_* functions';
COMMENT ON TABLE abtest.branches IS 'Branches of each experiment in order (the first is the control), allocation in percent';
COMMENT ON TABLE abtest.assignments IS 'Sticky assignment log: the branch each user got and since when (written behind by the flush worker)';
COMMENT ON TABLE abtest.branch_metrics IS 'Query metrics per branch as of the last flush; read ab_branch_metrics() for live values';
COMMENT ON TABLE abtest.event_metrics IS 'Event metrics per branch and event as of the last flush; read ab_event_metrics() for live values';
COMMENT ON FUNCTION ab_route_user(text, text, text[], jsonb, text) IS 'The branch of a user in an experiment';
COMMENT ON FUNCTION ab_record_query(text, text, double precision, boolean) IS 'Counts one query outcome of a branch';
COMMENT ON FUNCTION ab_record_event(text, text, text, double precision) IS 'Counts one event of a branch with its value';
COMMENT ON FUNCTION ab_report(text) IS 'An experiment''s state and results, as text for psql';
