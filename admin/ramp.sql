-- admin/ramp.sql: change an experiment's allocation, after showing who will change branch.
--
--   psql -v name=checkout_v2 -v allocation=50,50 -f admin/ramp.sql
--   psql -v name=checkout_v2 -v allocation='{"control": 80, "treatment": 20}' -v yes=1 -f admin/ramp.sql
--
-- allocation: percentages in branch order, or a JSON object as ab_set_allocation takes it
-- (branches left out get 0). Before anything changes the script shows the current and the
-- new split and who moves, then asks for confirmation (\prompt reads standard input when
-- psql runs a file with -f); -v yes=1 skips the question. Declining, or no answer, changes
-- nothing and exits with status 3.
--
-- Who moves follows abtest's rules (README, "Stickiness"):
--  * hash, percentage and modulo split a fixed space (10,000 hash buckets, or the values of
--    user_id mod divisor) into consecutive ranges in branch order: the script shows which
--    part of it changes branch. Under percentage the rollout's coverage draw is independent
--    of the allocation, so the share is of the users inside the coverage.
--  * growthbook without its own weights or ranges takes its weights from the allocation: the
--    share is of GrowthBook's hash values (0..9999, or 0..999 for hash_version 1), including
--    users who enter or leave the coverage.
--  * attribute, group and fixed do not use the allocation; round_robin only takes turns
--    over the branches allocated more than 0%.
--  * sticky experiments: a user already assigned keeps the branch (nobody in the assignment
--    log moves) and only new users get the new split; with allow_reassignment the users in
--    the log are re-bucketed at their next request, and the script counts exactly which of
--    them change branch (hash and percentage) or estimates it from the share (the others).
--
-- The transaction is REPEATABLE READ and holds no lock while it waits for the answer: if
-- another session changes the experiment meanwhile, applying fails with "could not
-- serialize access" and nothing changes. Run it again to see the new state.
\set ON_ERROR_STOP on
\set QUIET on
\set SHOW_CONTEXT never
\pset footer off

\if :{?name}
\else
  \warn 'usage: psql -v name=EXPERIMENT -v allocation=50,50 [-v yes=1] -f admin/ramp.sql'
  DO $$ BEGIN RAISE EXCEPTION 'admin/ramp.sql: the variable "name" is not set'; END $$;
\endif
\if :{?allocation}
\else
  \warn 'usage: psql -v name=EXPERIMENT -v allocation=50,50 [-v yes=1] -f admin/ramp.sql'
  DO $$ BEGIN RAISE EXCEPTION 'admin/ramp.sql: the variable "allocation" is not set'; END $$;
\endif
\if :{?yes} \else \set yes 0 \endif
-- psql's \if would take a value it cannot read as false, with only a message: refuse it.
SELECT :'yes'::boolean AS yes \gset

BEGIN ISOLATION LEVEL REPEATABLE READ;

SELECT id, state, strategy, strategy_params::text AS params, sticky, allow_reassignment AS reassign,
       branches::text AS branches, allocation::text AS allocation,
       CASE WHEN has_schema_privilege('abtest', 'USAGE') THEN has_table_privilege('abtest.assignments', 'SELECT')
            ELSE false END AS log_readable
  FROM ab_get_experiment(:'name') \gset cur_

-- The requested allocation as the JSON object ab_set_allocation takes.
SELECT btrim(:'allocation') LIKE '{%' AS json,
       cardinality(string_to_array(:'allocation', ',')) = cardinality(:'cur_branches'::text[]) AS list_fits
  \gset alloc_
\if :alloc_json
  SELECT btrim(:'allocation')::jsonb::text AS requested \gset
\elif :alloc_list_fits
  SELECT jsonb_object_agg(b.name, s.share)::text AS requested
    FROM unnest(:'cur_branches'::text[]) WITH ORDINALITY AS b(name, i)
    JOIN unnest(string_to_array(:'allocation', ',')::numeric[]) WITH ORDINALITY AS s(share, i) USING (i) \gset
\else
  SELECT format('admin/ramp.sql: %s shares for the %s branches %s; give one per branch in this order, '
                'or a JSON object: -v allocation=''{"%s": 50, ...}''',
                cardinality(string_to_array(:'allocation', ',')), cardinality(:'cur_branches'::text[]),
                :'cur_branches', (:'cur_branches'::text[])[1]) AS message \gset
  \warn :message
  DO $$ BEGIN RAISE EXCEPTION 'admin/ramp.sql: the allocation does not fit the branches'; END $$;
\endif

-- A dry run: abtest itself validates the allocation and normalises it (branches left out
-- get 0) before anyone is asked; the savepoint takes the change and its row lock back.
SAVEPOINT dry_run;
SELECT ab_set_allocation(:'name', :'requested'::jsonb) \gset dry_run_
SELECT allocation::text AS new_allocation FROM ab_get_experiment(:'name') \gset
ROLLBACK TO SAVEPOINT dry_run;

SELECT format('Experiment "%s": %s, strategy %s, %s.', :'name', :'cur_state', :'cur_strategy',
              CASE WHEN NOT :'cur_sticky'::boolean THEN 'not sticky'
                   WHEN :'cur_reassign'::boolean THEN 'sticky with allow_reassignment'
                   ELSE 'sticky' END) AS message \gset
\echo :message
SELECT CASE :'cur_state'
         WHEN 'draft' THEN 'The experiment is a draft: nobody is routed yet.'
         WHEN 'paused' THEN 'The experiment is paused: everyone gets the control until it is resumed; '
                            'the new allocation applies from then.'
         WHEN 'completed' THEN 'The experiment is completed: everyone gets the winner, the allocation is not used.'
         WHEN 'archived' THEN 'The experiment is archived: it is not routed.'
       END AS state_note \gset
\if :{?state_note}
\echo :state_note
\endif
\echo

-- The split, with the users in the assignment log per branch when there is one to read.
\if :cur_sticky
\if :cur_log_readable
SELECT u.branch, u.now || '%' AS now, u.new || '%' AS new,
       CASE WHEN u.new > u.now THEN '+' ELSE '' END || (u.new - u.now) AS change,
       (SELECT count(*) FROM abtest.assignments a WHERE a.experiment_id = :'cur_id' AND a.branch = u.branch)
         AS assigned_users
  FROM unnest(:'cur_branches'::text[], :'cur_allocation'::numeric[], :'new_allocation'::numeric[])
       WITH ORDINALITY AS u(branch, now, new, i)
 ORDER BY u.i;
\else
\set cur_log_readable 0
\endif
\else
\set cur_log_readable 0
\endif
\if :cur_log_readable
\else
SELECT u.branch, u.now || '%' AS now, u.new || '%' AS new,
       CASE WHEN u.new > u.now THEN '+' ELSE '' END || (u.new - u.now) AS change
  FROM unnest(:'cur_branches'::text[], :'cur_allocation'::numeric[], :'new_allocation'::numeric[])
       WITH ORDINALITY AS u(branch, now, new, i)
 ORDER BY u.i;
\endif

-- How the strategy uses the allocation; a completed or archived experiment uses none.
SELECT routed AND :'cur_strategy' IN ('hash', 'percentage', 'modulo') AS ranges,
       :'cur_strategy' IN ('hash', 'percentage') AS buckets,
       routed AND :'cur_strategy' = 'growthbook' AND NOT (:'cur_params'::jsonb ?| ARRAY['weights', 'ranges'])
         AS growthbook,
       routed AND :'cur_strategy' = 'round_robin' AS turns,
       routed AND (:'cur_strategy' IN ('attribute', 'group', 'fixed')
                   OR :'cur_strategy' = 'growthbook' AND :'cur_params'::jsonb ?| ARRAY['weights', 'ranges']) AS unused,
       :'cur_sticky'::boolean AND :'cur_reassign'::boolean AS rebucket,
       :'cur_sticky'::boolean AND :'cur_log_readable'::boolean AS count_log
  FROM (SELECT :'cur_state' IN ('draft', 'active', 'paused') AS routed) AS s
  \gset by_

\pset tuples_only on
\pset format unaligned
\if :by_ranges
  -- Each branch covers [start, next start) of the space, in branch order (the last one up
  -- to its end), exactly as the router maps a bucket or a modulo value: width_bucket finds
  -- the branch of a position, and a branch at 0% is an empty range.
  SELECT CASE WHEN :'cur_strategy' = 'modulo' THEN (:'cur_params'::jsonb ->> 'divisor')::numeric
              ELSE 10000 END AS space \gset
  SELECT (SELECT array_agg(s.start ORDER BY s.i)::text
            FROM (SELECT u.i, coalesce(sum(floor(u.share * 100 * :'space'::numeric / 10000))
                                         OVER (ORDER BY u.i ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS start
                    FROM unnest(:'cur_allocation'::numeric[]) WITH ORDINALITY AS u(share, i)) s) AS old_starts,
         (SELECT array_agg(s.start ORDER BY s.i)::text
            FROM (SELECT u.i, coalesce(sum(floor(u.share * 100 * :'space'::numeric / 10000))
                                         OVER (ORDER BY u.i ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS start
                    FROM unnest(:'new_allocation'::numeric[]) WITH ORDINALITY AS u(share, i)) s) AS new_starts
    \gset
  -- The space cut at every start of either split: each piece lies in one old and one new range.
  WITH point AS (SELECT DISTINCT unnest(:'old_starts'::numeric[] || :'new_starts'::numeric[]) AS lo),
  piece AS (SELECT lo, coalesce(lead(lo) OVER (ORDER BY lo), :'space'::numeric) AS hi FROM point),
  move AS (SELECT width_bucket(lo, :'old_starts'::numeric[]) AS f, width_bucket(lo, :'new_starts'::numeric[]) AS t,
                  lo, hi
             FROM piece WHERE hi > lo)
  SELECT coalesce(sum(hi - lo) / :'space'::numeric, 0) AS moved_share,
         to_char(100 * coalesce(sum(hi - lo) / :'space'::numeric, 0), 'FM990.00') || '%' AS moved,
         coalesce(string_agg(format('  %s -> %s: %s %s, %s%%', (:'cur_branches'::text[])[f],
                                    (:'cur_branches'::text[])[t],
                                    CASE WHEN :'cur_strategy' = 'modulo' THEN format('user_id mod %s', :'space')
                                         WHEN hi - lo = 1 THEN 'bucket' ELSE 'buckets' END,
                                    CASE WHEN hi - lo = 1 AND :'cur_strategy' = 'modulo' THEN format('= %s', lo)
                                         WHEN hi - lo = 1 THEN lo::text
                                         WHEN :'cur_strategy' = 'modulo' THEN format('in %s-%s', lo, hi - 1)
                                         ELSE format('%s-%s', lo, hi - 1) END,
                                    to_char(100 * (hi - lo) / :'space'::numeric, 'FM990.00')),
                             E'\n' ORDER BY lo), '  (none)') AS moves
    FROM move WHERE f <> t \gset
  SELECT CASE :'cur_strategy'
              WHEN 'percentage' THEN format(' (those inside the %s%% coverage)',
                                            coalesce(:'cur_params'::jsonb ->> 'coverage', '100'))
              ELSE '' END AS within \gset
\elif :by_growthbook
  -- GrowthBook's ranges from the allocation's weights (an equal split is exactly 1/n, as
  -- the strategy takes it), compared at every value its hash can take. A user outside
  -- every range is not in the experiment and sees the control; with "force" a user in a
  -- range sees the forced variation (the control when it names none).
  SELECT cardinality(:'cur_branches'::text[]) AS k,
         coalesce((:'cur_params'::jsonb ->> 'coverage')::float8, 1) AS coverage,
         CASE WHEN coalesce((:'cur_params'::jsonb ->> 'hash_version')::int, 2) = 1 THEN 1000 ELSE 10000 END AS space,
         coalesce(:'cur_params'::jsonb ->> 'force', '') AS force
    \gset gb_
  WITH arg AS (SELECT :'gb_k'::int AS k, :'gb_coverage'::float8 AS coverage,
                      ARRAY(SELECT (10000 / :'gb_k'::int + CASE WHEN i = 1 THEN 10000 % :'gb_k'::int ELSE 0 END) / 100.0
                              FROM generate_series(1, :'gb_k'::int) AS i) AS equal_split)
  SELECT ab_growthbook_bucket_ranges(k, coverage,
           CASE WHEN :'cur_allocation'::numeric[] = equal_split THEN ab_growthbook_equal_weights(k)
                ELSE ARRAY(SELECT (s / 100)::float8 FROM unnest(:'cur_allocation'::numeric[]) WITH ORDINALITY AS u(s, i)
                            ORDER BY i) END)::text AS old_ranges,
         ab_growthbook_bucket_ranges(k, coverage,
           CASE WHEN :'new_allocation'::numeric[] = equal_split THEN ab_growthbook_equal_weights(k)
                ELSE ARRAY(SELECT (s / 100)::float8 FROM unnest(:'new_allocation'::numeric[]) WITH ORDINALITY AS u(s, i)
                            ORDER BY i) END)::text AS new_ranges
    FROM arg \gset gb_
  WITH variation AS (SELECT v, ab_growthbook_choose_variation(v::float8 / :'gb_space'::int, :'gb_old_ranges'::float8[]) AS f,
                            ab_growthbook_choose_variation(v::float8 / :'gb_space'::int, :'gb_new_ranges'::float8[]) AS t
                       FROM generate_series(0, :'gb_space'::int - 1) AS v),
  hash AS (SELECT v, f, t,
                  CASE WHEN f < 0 THEN 0 WHEN force IS NULL THEN f WHEN force >= 0 AND force < :'gb_k'::int THEN force
                       ELSE 0 END AS fs,
                  CASE WHEN t < 0 THEN 0 WHEN force IS NULL THEN t WHEN force >= 0 AND force < :'gb_k'::int THEN force
                       ELSE 0 END AS ts
             FROM variation, (SELECT NULLIF(:'gb_force', '')::bigint AS force) AS forced),
  move AS (SELECT fs AS f, ts AS t, count(*) AS n, min(v) AS first FROM hash WHERE fs <> ts GROUP BY 1, 2)
  SELECT coalesce(sum(n)::numeric / :'gb_space'::int, 0) AS moved_share,
         to_char(100 * coalesce(sum(n)::numeric / :'gb_space'::int, 0), 'FM990.00') || '%' AS moved,
         coalesce(string_agg(format('  %s -> %s: %s%%', (:'cur_branches'::text[])[f + 1],
                                    (:'cur_branches'::text[])[t + 1],
                                    to_char(100 * n::numeric / :'gb_space'::int, 'FM990.00')), E'\n' ORDER BY first),
                  '  (none)')
           || (SELECT CASE WHEN count(*) > 0
                           THEN format(E'\n  and %s%% enter or leave the experiment, seeing the control before and after',
                                       to_char(100 * count(*)::numeric / :'gb_space'::int, 'FM990.00')) ELSE '' END
                 FROM hash WHERE (f < 0) <> (t < 0) AND fs = ts) AS moves,
         ' (of all users GrowthBook hashes, inside its coverage or not)' AS within
    FROM move \gset
\endif

\if :by_turns
  SELECT format(E'round_robin gives each new user the next turn among the branches allocated more than 0%%:\n'
                '  now %s; after the ramp %s.',
                (SELECT string_agg(b, ', ' ORDER BY i) FROM unnest(:'cur_branches'::text[], :'cur_allocation'::numeric[])
                   WITH ORDINALITY AS u(b, s, i) WHERE s > 0),
                (SELECT string_agg(b, ', ' ORDER BY i) FROM unnest(:'cur_branches'::text[], :'new_allocation'::numeric[])
                   WITH ORDINALITY AS u(b, s, i) WHERE s > 0))
    || CASE WHEN NOT :'cur_sticky'::boolean THEN E'\nNot sticky: every request takes a turn, before and after.'
            WHEN :'cur_reassign'::boolean THEN E'\nUsers already assigned are assigned again, by turn, at their next request.'
            ELSE E'\nUsers already assigned keep their branch (sticky): nobody in the assignment log moves.' END;
\elif :by_ranges
  \set by_split 1
\elif :by_growthbook
  \set by_split 1
\elif :by_unused
  SELECT format('Strategy %s%s does not use the allocation to route: nobody changes branch. '
                'ab_srm will expect the new split.', :'cur_strategy',
                CASE WHEN :'cur_strategy' = 'growthbook' THEN ' with its own weights or ranges' ELSE '' END);
\endif

\if :{?by_split}
  \if :cur_sticky
    \if :by_rebucket
      \if :by_count_log
        \if :by_buckets
          -- Exact: each logged user's bucket under the new split, as the router will re-bucket them.
          SELECT count(*) AS logged,
                 count(*) FILTER (WHERE a.branch IS DISTINCT FROM
                                  (:'cur_branches'::text[])[width_bucket(ab_bucket(:'name', a.user_id),
                                                                         :'new_starts'::int[])]) AS moving,
                 '' AS about
            FROM abtest.assignments a WHERE a.experiment_id = :'cur_id' \gset log_
        \else
          SELECT count(*) AS logged, round(count(*) * :'moved_share'::numeric) AS moving, 'about ' AS about
            FROM abtest.assignments a WHERE a.experiment_id = :'cur_id' \gset log_
        \endif
        SELECT format('Sticky with allow_reassignment: the %s users in the assignment log are re-bucketed at their '
                      'next request; %s%s of them change branch.', :'log_logged', :'log_about', :'log_moving');
      \else
        SELECT 'Sticky with allow_reassignment: users already assigned are re-bucketed at their next request '
               '(abtest.assignments is not readable by this role, so they are not counted).';
      \endif
      SELECT format(E'New users get the new split: %s of them%s land in another branch than under the old split:\n%s',
                    :'moved', :'within', :'moves');
    \else
      \if :by_count_log
        SELECT format('Sticky: the %s users in the assignment log keep their branch; none of them moves.',
                      count(*))
          FROM abtest.assignments a WHERE a.experiment_id = :'cur_id';
      \else
        SELECT 'Sticky: users already assigned keep their branch; none of them moves.';
      \endif
      SELECT format(E'New users get the new split: %s of them%s land in another branch than under the old split:\n%s',
                    :'moved', :'within', :'moves');
    \endif
  \else
    SELECT format(E'Not sticky: every request follows the allocation, so %s of the users in the experiment%s change branch at once:\n%s',
                  :'moved', :'within', :'moves');
  \endif
\endif

\if :by_turns
  \set by_srm_note 1
\elif :{?by_split}
  \set by_srm_note 1
\endif
\if :{?by_srm_note}
  SELECT 'ab_srm compares everyone counted so far with the current allocation: after a ramp the counts mix both '
         'splits, and a mismatch can be the ramp itself.';
\endif
\pset format aligned
\pset tuples_only off
\echo

\if :yes
  \set answer y
\else
  \prompt 'Apply the new allocation? [y/N] ' answer
\endif
SELECT lower(btrim(:'answer')) IN ('y', 'yes') AS confirmed \gset
\if :confirmed
  SELECT ab_set_allocation(:'name', :'requested'::jsonb) \gset applied_
  COMMIT;
  SELECT format('Applied: %s is now %s.', :'name',
                (SELECT string_agg(format('%s %s%%', b, s), ', ' ORDER BY i)
                   FROM unnest(branches, allocation) WITH ORDINALITY AS u(b, s, i))) AS message
    FROM ab_get_experiment(:'name') \gset
  \echo :message
\else
  ROLLBACK;
  \echo 'Not applied: nothing changed.'
  DO $$ BEGIN RAISE EXCEPTION 'admin/ramp.sql: declined, the allocation is unchanged'; END $$;
\endif
