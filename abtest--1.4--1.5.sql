-- abtest 1.4 -> 1.5: what makes sticky routing slow shows in the statistics (issue #12).
-- Like every upgrade script it only adds: it never drops or rewrites a table that holds
-- data.
\echo Use "ALTER EXTENSION abtest UPDATE TO '1.5'" to load this file. \quit

-- ab_sticky_cache_stats() and the view over it gain four last columns:
--   uncached_writes      of sync_writes: assignments written in the routing transaction
--                        because both cache sets of the user held only entries still
--                        waiting for the flush worker (the cache is too small for the
--                        burst: raise abtest.sticky_cache_size);
--   overflow_writes      of sync_writes: assignments a routing backend wrote itself, in
--                        batches, because the queue pool was full (the burst outran the
--                        flush workers: raise abtest.assignment_queue_size);
--   queue_bytes          bytes of the queue pool held by queues now (whole 64 kB chunks);
--   queue_capacity_bytes the pool's size (abtest.assignment_queue_size).
-- A function's result type changes only by DROP and CREATE (with the view over it
-- first); the grants that admins gave are kept, as in 1.4.
SELECT pg_catalog.set_config('abtest_upgrade.stats_grantees', coalesce((
           SELECT string_agg(a.grantee::regrole::text, ', ')
             FROM pg_proc p, aclexplode(p.proacl) a
            WHERE p.oid = 'ab_sticky_cache_stats()'::regprocedure AND a.privilege_type = 'EXECUTE'
              AND a.grantee <> 0 AND a.grantee <> p.proowner), ''), true);
SELECT pg_catalog.set_config('abtest_upgrade.stats_view_grantees', coalesce(string_agg(a.grantee::regrole::text, ', '), ''), true)
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.oid = 'abtest.sticky_cache_stats'::regclass AND a.privilege_type = 'SELECT'
   AND a.grantee <> 0 AND a.grantee <> c.relowner;

DROP VIEW abtest.sticky_cache_stats;
DROP FUNCTION ab_sticky_cache_stats();
CREATE FUNCTION ab_sticky_cache_stats(
    OUT entries bigint, OUT capacity bigint, OUT hits bigint, OUT misses bigint, OUT log_lookups bigint,
    OUT evictions bigint, OUT queued bigint, OUT flushed bigint, OUT sync_writes bigint,
    OUT last_flush timestamptz, OUT oldest_queued timestamptz, OUT uncached_writes bigint,
    OUT overflow_writes bigint, OUT queue_bytes bigint, OUT queue_capacity_bytes bigint)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
-- The sticky cache, cluster-wide: its fill, hit rate, log lookups, evictions, the
-- write-behind queue (queued - flushed = waiting to be written, since oldest_queued) and
-- its pool, and the writes a full cache or a full pool made synchronous.
CREATE VIEW abtest.sticky_cache_stats AS SELECT * FROM ab_sticky_cache_stats();

REVOKE EXECUTE ON FUNCTION ab_sticky_cache_stats() FROM PUBLIC;
REVOKE ALL ON abtest.sticky_cache_stats FROM PUBLIC;
DO $$
BEGIN
    IF current_setting('abtest_upgrade.stats_grantees') <> '' THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION ab_sticky_cache_stats() TO %s',
                       current_setting('abtest_upgrade.stats_grantees'));
    END IF;
    IF current_setting('abtest_upgrade.stats_view_grantees') <> '' THEN
        EXECUTE format('GRANT SELECT ON abtest.sticky_cache_stats TO %s',
                       current_setting('abtest_upgrade.stats_view_grantees'));
    END IF;
END
$$;
