-- The log lookup of a cache miss: a probe of abtest.assignments' primary key through
-- the access method, kept open for the transaction. It finds what the log holds,
-- stays out of the way of DDL in the same transaction, survives subtransaction
-- aborts without leaking (a leak would show as a WARNING here), works for any role,
-- and falls back to its SQL statement when the primary key is gone.

SELECT ab_create_experiment('looked', ARRAY['control', 'treatment'], ARRAY[100, 0]) IS NOT NULL AS created;
SELECT ab_start('looked');
-- The first call finds the log empty: the cache is complete, misses ask nothing.
SELECT ab_route_user('looked', 'first') AS first;
-- Rows the cache does not know (as after a restart with more users than it holds)...
INSERT INTO abtest.assignments (experiment_id, user_id, branch, assigned_at)
SELECT id, 'x' || i, 'treatment', now() FROM abtest.experiments, generate_series(1, 20) i WHERE name = 'looked';
-- ...and a rolled-back clear, after which every miss looks the log up.
BEGIN;
SELECT ab_clear_sticky_cache('looked');
ROLLBACK;

SELECT log_lookups AS lookups_before FROM abtest.sticky_cache_stats \gset
SELECT ab_route_user('looked', 'x' || i) AS logged, count(*) FROM generate_series(1, 3) i GROUP BY 1;
SELECT ab_route_user('looked', 'nobody') AS not_logged;
SELECT log_lookups - :lookups_before AS lookups FROM abtest.sticky_cache_stats;

-- DDL after a lookup in the same transaction: the kept scan is closed before it.
BEGIN;
SELECT ab_route_user('looked', 'x4') AS before_reindex;
REINDEX TABLE abtest.assignments;
SELECT ab_route_user('looked', 'x5') AS after_reindex;
ALTER TABLE abtest.assignments ALTER COLUMN branch SET STATISTICS 100;
SELECT ab_route_user('looked', 'x6') AS after_alter;
COMMIT;

-- Subtransactions: the scan opened in one that aborts, in one that commits, and
-- around SAVEPOINT, ROLLBACK TO and RELEASE.
DO $$
DECLARE
    got text;
BEGIN
    BEGIN
        got := ab_route_user('looked', 'x7');
        RAISE EXCEPTION 'roll back the subtransaction that opened the scan';
    EXCEPTION WHEN raise_exception THEN
        RAISE NOTICE 'x7: %', got;
    END;
    RAISE NOTICE 'x8 after the abort: %', ab_route_user('looked', 'x8');
    BEGIN
        got := ab_route_user('looked', 'x9');
    EXCEPTION WHEN others THEN
        RAISE;
    END;
    RAISE NOTICE 'x9 in a committed subtransaction: %, x10 after it: %', got, ab_route_user('looked', 'x10');
END
$$;
BEGIN;
SAVEPOINT s;
SELECT ab_route_user('looked', 'x11') AS in_savepoint;
ROLLBACK TO s;
SELECT ab_route_user('looked', 'x12') AS after_rollback_to;
SAVEPOINT t;
SELECT ab_route_user('looked', 'x13') AS in_savepoint;
RELEASE t;
SELECT ab_route_user('looked', 'x14') AS after_release;
COMMIT;

-- An error of the routing transaction after a lookup: nothing is left behind.
BEGIN;
SELECT ab_route_user('looked', 'x15') AS before_error;
SELECT 1 / 0;
ROLLBACK;
SELECT ab_route_user('looked', 'x16') AS after_error;

-- Any role: the probe checks no privilege on the catalog, as the statement ran as its owner.
CREATE ROLE regress_abtest_lookup;
SET ROLE regress_abtest_lookup;
SELECT ab_route_user('looked', 'x17') AS as_application_role;
RESET ROLE;
DROP ROLE regress_abtest_lookup;

-- Without the primary key the statement answers (rolled back: the log needs its key).
BEGIN;
ALTER TABLE abtest.assignments DROP CONSTRAINT assignments_pkey;
SELECT ab_route_user('looked', 'x18') AS without_primary_key;
ROLLBACK;
SELECT ab_route_user('looked', 'x19') AS with_it_again;

-- The transaction's own rows are found (a row committed by another session after a
-- REPEATABLE READ snapshot is too: specs/log_lookup_race.spec).
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) AS rows_seen FROM abtest.assignments WHERE user_id = 'x20';
INSERT INTO abtest.assignments (experiment_id, user_id, branch, assigned_at)
SELECT id, 'own', 'treatment', now() FROM abtest.experiments WHERE name = 'looked';
SELECT ab_route_user('looked', 'own') AS own_row, ab_route_user('looked', 'x20') AS logged;
COMMIT;

SELECT ab_delete_experiment('looked');
