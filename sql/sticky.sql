-- Sticky assignments: a user keeps their first branch through allocation ramps;
-- the assignment log abtest.assignments records who got what; clears forget.

-- wait_for_log(experiment, n): waits (up to 60 s) until the flush worker has logged n rows.
CREATE FUNCTION wait_for_log(experiment text, expected bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    logged bigint;
BEGIN
    FOR attempt IN 1 .. 600 LOOP
        SELECT count(*) INTO logged FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id
         WHERE e.name = experiment;
        EXIT WHEN logged >= expected;
        PERFORM pg_sleep(0.1);
        PERFORM pg_stat_clear_snapshot();
    END LOOP;
    RETURN logged;
END
$$;

SELECT ab_create_experiment('ramp', ARRAY['control', 'treatment'], ARRAY[90, 10]) IS NOT NULL AS created;
SELECT ab_start('ramp');

-- 10% -> 50% -> 90%: nobody routed before changes branch.
CREATE TABLE at10 AS SELECT i, ab_route_user('ramp', 'u' || i) AS branch FROM generate_series(1, 5000) i;
SELECT abs(avg((branch = 'treatment')::int) - 0.10) < 0.02 AS about_ten_percent FROM at10;
SELECT ab_set_allocation('ramp', '{"control": 50, "treatment": 50}');
SELECT count(*) AS changed_at_50 FROM at10 WHERE branch <> ab_route_user('ramp', 'u' || i);
CREATE TABLE at50 AS SELECT i, ab_route_user('ramp', 'v' || i) AS branch FROM generate_series(1, 5000) i;
SELECT abs(avg((branch = 'treatment')::int) - 0.50) < 0.03 AS new_users_at_half FROM at50;
SELECT ab_set_allocation('ramp', '{"control": 10, "treatment": 90}');
SELECT count(*) AS changed_at_90 FROM at10 WHERE branch <> ab_route_user('ramp', 'u' || i);
SELECT count(*) AS changed_at_90 FROM at50 WHERE branch <> ab_route_user('ramp', 'v' || i);

-- The log holds each user once, with the branch they got first.
SELECT wait_for_log('ramp', 10000) AS logged;
SELECT count(*) AS mismatches FROM at10 JOIN abtest.assignments a ON a.user_id = 'u' || at10.i
  JOIN abtest.experiments e ON e.id = a.experiment_id AND e.name = 'ramp'
 WHERE a.branch <> at10.branch;
SELECT count(*) AS without_time FROM abtest.assignments WHERE assigned_at IS NULL;

-- allow_reassignment: an allocation change re-buckets users, and the log follows.
SELECT ab_create_experiment('rebucket', ARRAY['control', 'treatment'], ARRAY[100, 0]) IS NOT NULL AS created;
SELECT ab_start('rebucket');
SELECT ab_configure('rebucket', allow_reassignment => true);
SELECT DISTINCT ab_route_user('rebucket', 'r' || i) AS before FROM generate_series(1, 200) i;
SELECT ab_set_allocation('rebucket', '{"control": 0, "treatment": 100}');
SELECT DISTINCT ab_route_user('rebucket', 'r' || i) AS after FROM generate_series(1, 200) i;
SELECT ab_configure('rebucket', allow_reassignment => false);
SELECT ab_set_allocation('rebucket', '{"control": 100, "treatment": 0}');
SELECT DISTINCT ab_route_user('rebucket', 'r' || i) AS kept FROM generate_series(1, 200) i;
SELECT wait_for_log('rebucket', 200) AS logged;
SELECT branch, count(*) FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id
 WHERE e.name = 'rebucket' GROUP BY 1;

-- Not sticky: routing follows the allocation, nothing is logged.
SELECT ab_create_experiment('loose', ARRAY['control', 'treatment'], ARRAY[100, 0]) IS NOT NULL AS created;
SELECT ab_start('loose');
SELECT ab_configure('loose', sticky => false);
SELECT DISTINCT ab_route_user('loose', 'l' || i) FROM generate_series(1, 100) i;
SELECT ab_set_allocation('loose', '{"control": 0, "treatment": 100}');
SELECT DISTINCT ab_route_user('loose', 'l' || i) FROM generate_series(1, 100) i;

-- abtest.sticky_durability = sync: the assignment is in the log when the call returns.
SET abtest.sticky_durability = sync;
SELECT ab_create_experiment('durable', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_start('durable');
CREATE TEMP TABLE routed AS SELECT ab_route_user('durable', 'd1') AS branch;
SELECT r.branch = a.branch AS logged_at_once FROM routed r, abtest.assignments a WHERE a.user_id = 'd1';
BEGIN;
SELECT ab_route_user('durable', 'd2') IS NOT NULL AS routed;
ROLLBACK;
SELECT count(*) AS rolled_back_row FROM abtest.assignments WHERE user_id = 'd2';
RESET abtest.sticky_durability;

-- Write-behind: the new users of a transaction that rolls back keep their branch and are
-- logged all the same. A backend appends its new records to the queue in batches of
-- 8 kB (256 here, during the statement) and the rest at the abort.
SELECT ab_create_experiment('aborted', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_start('aborted');
BEGIN;
SELECT count(ab_route_user('aborted', 'a' || i)) AS routed FROM generate_series(1, 300) i;
ROLLBACK;
SELECT wait_for_log('aborted', 300) AS logged_after_rollback;
SELECT count(*) AS changed_branch FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id
 WHERE e.name = 'aborted' AND a.branch <> ab_route_user('aborted', a.user_id);

-- ab_clear_user_cache forgets a user everywhere (deletion requests).
SELECT count(*) AS before_clear FROM abtest.assignments WHERE user_id IN ('u1', 'r1');
SELECT ab_clear_user_cache('u1');
SELECT ab_clear_user_cache('r1');
SELECT count(*) AS after_clear FROM abtest.assignments WHERE user_id IN ('u1', 'r1');

-- ab_clear_sticky_cache forgets an experiment's assignments: cache and log. After it,
-- users are assigned afresh by the current allocation.
SELECT ab_clear_sticky_cache('ramp');
SELECT count(*) AS ramp_rows FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id
 WHERE e.name = 'ramp';
SELECT abs(avg((ab_route_user('ramp', 'u' || i) = 'treatment')::int) - 0.90) < 0.02 AS reassigned_at_90
  FROM generate_series(1, 5000) i;

-- A rolled-back clear forgets nothing.
SELECT wait_for_log('ramp', 5000) AS logged;
CREATE TABLE before_clear AS SELECT user_id, branch FROM abtest.assignments a
  JOIN abtest.experiments e ON e.id = a.experiment_id WHERE e.name = 'ramp';
BEGIN;
SELECT ab_clear_sticky_cache('ramp');
ROLLBACK;
SELECT ab_set_allocation('ramp', '{"control": 50, "treatment": 50}');
SELECT count(*) AS changed_after_rolled_back_clear FROM before_clear WHERE branch <> ab_route_user('ramp', user_id);

-- ab_delete_experiment removes its assignments too: since 1.6 the flush worker purges
-- them after the commit, in batches, while the experiment waits in
-- abtest.deleted_experiments.
BEGIN;
SELECT ab_delete_experiment('ramp');
SELECT name FROM abtest.deleted_experiments;
COMMIT;
DO $$
BEGIN
    FOR attempt IN 1 .. 600 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM abtest.assignments a
                               WHERE NOT EXISTS (SELECT 1 FROM abtest.experiments e WHERE e.id = a.experiment_id));
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT count(*) AS orphans FROM abtest.assignments a
 WHERE NOT EXISTS (SELECT 1 FROM abtest.experiments e WHERE e.id = a.experiment_id);

-- The statistics view (cluster-wide counters; only their shape and sanity here).
SELECT capacity >= 1024 AS has_capacity, hits > 0 AS has_hits, misses > 0 AS has_misses,
       queued >= flushed AS consistent, last_flush IS NOT NULL AS flushed_once
  FROM abtest.sticky_cache_stats;
-- Why writes were synchronous, and the queue pool (1.5): nothing here filled the cache
-- or the pool (64 MB by default).
SELECT uncached_writes, overflow_writes, queue_bytes BETWEEN 0 AND queue_capacity_bytes AS pool_within,
       queue_capacity_bytes = pg_size_bytes(current_setting('abtest.assignment_queue_size')) AS pool_configured
  FROM abtest.sticky_cache_stats;

DROP TABLE at10, at50, before_clear;
SELECT ab_delete_experiment(name) FROM abtest.experiments ORDER BY name;
DROP FUNCTION wait_for_log(text, bigint);
