-- admin/complete.sql: complete an experiment with a winner, after confirmation.
--
--   psql -v name=checkout_v2 -v winner=treatment -f admin/complete.sql
--   psql -v name=checkout_v2 -v winner= -v yes=1 -f admin/complete.sql     (no winner)
--
-- Completing cannot be undone (only archiving follows): from then on every user gets the
-- winner (with an empty winner, the control), nobody is counted, and auto-complete stops.
-- The script shows the verdict of ab_report when the role may run it, then asks for
-- confirmation (\prompt reads standard input when psql runs a file with -f); -v yes=1
-- skips the question. Declining, or no answer, changes nothing and exits with status 3.
-- REPEATABLE READ, no lock while it waits: a concurrent change to the experiment makes
-- the completion fail ("could not serialize access") and changes nothing.
\set ON_ERROR_STOP on
\set QUIET on
\set SHOW_CONTEXT never
\pset footer off

\if :{?name}
\else
  \warn 'usage: psql -v name=EXPERIMENT -v winner=BRANCH [-v yes=1] -f admin/complete.sql   (-v winner= for none)'
  DO $$ BEGIN RAISE EXCEPTION 'admin/complete.sql: the variable "name" is not set'; END $$;
\endif
\if :{?winner}
\else
  \warn 'usage: psql -v name=EXPERIMENT -v winner=BRANCH [-v yes=1] -f admin/complete.sql   (-v winner= for none)'
  DO $$ BEGIN RAISE EXCEPTION 'admin/complete.sql: the variable "winner" is not set'; END $$;
\endif
\if :{?yes} \else \set yes 0 \endif
-- psql's \if would take a value it cannot read as false, with only a message: refuse it.
SELECT :'yes'::boolean AS yes \gset

BEGIN ISOLATION LEVEL REPEATABLE READ;

SELECT state, branches[1] AS control,
       has_function_privilege('ab_report(text)', 'EXECUTE') AS may_report
  FROM ab_get_experiment(:'name') \gset cur_

-- A dry run: abtest itself refuses an unknown winner or a state that cannot complete,
-- before anyone is asked; the savepoint takes it back.
SAVEPOINT dry_run;
SELECT ab_complete(:'name', NULLIF(:'winner', '')) \gset dry_run_
ROLLBACK TO SAVEPOINT dry_run;

\if :cur_may_report
  -- The report's verdict and warnings: from "Verdict" on, without the tables.
  \pset tuples_only on
  \pset format unaligned
  SELECT line FROM (SELECT line, ordinality AS i, min(ordinality) FILTER (WHERE line LIKE 'Verdict%') OVER () AS first
                      FROM ab_report(:'name') WITH ORDINALITY AS r(line)) r
   WHERE i >= first ORDER BY i;
  \pset format aligned
  \pset tuples_only off
  \echo
\endif
SELECT format('%s is %s. Completing it makes every user get %s, for good.', :'name', :'cur_state',
              CASE WHEN :'winner' = '' THEN format('the control %s (no winner)', :'cur_control')
                   ELSE format('the winner %s', :'winner') END) AS message \gset
\echo :message

\if :yes
  \set answer y
\else
  \prompt 'Complete it? [y/N] ' answer
\endif
SELECT lower(btrim(:'answer')) IN ('y', 'yes') AS confirmed \gset
\if :confirmed
  SELECT ab_complete(:'name', NULLIF(:'winner', '')) \gset done_
  COMMIT;
  SELECT format('%s: %s -> %s at %s, winner %s.', name, :'cur_state', state, date_trunc('second', completed_at),
                coalesce(winner, '(none)')) AS message
    FROM ab_get_experiment(:'name') \gset
  \echo :message
\else
  ROLLBACK;
  \echo 'Not completed: nothing changed.'
  DO $$ BEGIN RAISE EXCEPTION 'admin/complete.sql: declined, the experiment is unchanged'; END $$;
\endif
