-- admin/resume.sql: resume a paused experiment, or start a draft, in one transaction.
--
--   psql -v name=checkout_v2 -f admin/resume.sql
--
-- Resuming keeps the original started_at, and sticky users get their branch again.
-- Refused (55000) for an experiment that is active, completed or archived, and (23P01)
-- when its namespace range overlaps an active experiment of the namespace.
\set ON_ERROR_STOP on
\set QUIET on
\set SHOW_CONTEXT never
\pset footer off

\if :{?name}
\else
  \warn 'usage: psql -v name=EXPERIMENT -f admin/resume.sql'
  DO $$ BEGIN RAISE EXCEPTION 'admin/resume.sql: the variable "name" is not set'; END $$;
\endif

BEGIN;
SELECT state FROM ab_get_experiment(:'name') \gset before_
SELECT ab_start(:'name') \gset done_
SELECT format(E'%s: %s -> %s, %s %s.\nUsers are routed by the allocation (%s)%s.',
              name, :'before_state', state,
              CASE :'before_state' WHEN 'draft' THEN 'started at' ELSE 'running since' END,
              date_trunc('second', started_at),
              (SELECT string_agg(format('%s %s%%', b, s), ', ' ORDER BY i)
                 FROM unnest(branches, allocation) WITH ORDINALITY AS u(b, s, i)),
              CASE WHEN sticky AND :'before_state' = 'paused' THEN '; users assigned before keep their branch'
                   ELSE '' END) AS message
  FROM ab_get_experiment(:'name') \gset
COMMIT;
\echo :message
