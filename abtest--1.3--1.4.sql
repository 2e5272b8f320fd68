-- abtest 1.3 -> 1.4: database branches and more than one primary.
-- Follows the rules of abtest--1.0--1.1.sql: only ALTER and CREATE, nothing dropped.
\echo Use "ALTER EXTENSION abtest UPDATE TO '1.4'" to load this file. \quit

-- A subscriber of logical replication applies changes with session_replication_role =
-- replica, which skips ordinary triggers: the routing caches of a subscriber must still
-- hear of every catalog change, so these triggers fire in every replication role.
ALTER TABLE abtest.experiments ENABLE ALWAYS TRIGGER experiments_changed;
ALTER TABLE abtest.branches ENABLE ALWAYS TRIGGER branches_changed;
ALTER TABLE abtest.forced_users ENABLE ALWAYS TRIGGER forced_users_changed;
