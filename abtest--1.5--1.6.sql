-- abtest 1.5 -> 1.6: deleting an experiment does not wait for its assignment log to be
-- deleted (issue #12). Like every upgrade script it only adds: it never drops or
-- rewrites a table that holds data.
\echo Use "ALTER EXTENSION abtest UPDATE TO '1.6'" to load this file. \quit

-- Experiments deleted while their rows of abtest.assignments are still being purged.
-- ab_delete_experiment removes the experiment from the catalog and adds its row here in
-- the same transaction; the database's flush worker then deletes the experiment's log
-- rows in short transactions of at most 10,000 rows each and removes the row here when
-- none is left and no transaction that could still write one is running. Kept by
-- pg_dump, so that a dump taken meanwhile finishes the purge after its restore. A
-- deleted experiment's id is never used again: nothing reads its leftover rows as a
-- user's branch.
CREATE TABLE abtest.deleted_experiments (
    experiment_id uuid PRIMARY KEY,
    name          text NOT NULL,
    deleted_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE abtest.deleted_experiments IS
    'Deleted experiments whose rows of abtest.assignments the flush worker is still purging';
SELECT pg_catalog.pg_extension_config_dump('abtest.deleted_experiments', '');
REVOKE ALL ON abtest.deleted_experiments FROM PUBLIC;
