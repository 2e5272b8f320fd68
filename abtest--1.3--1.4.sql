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
