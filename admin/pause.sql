-- admin/pause.sql: pause an experiment, in one transaction.
--
--   psql -v name=checkout_v2 -f admin/pause.sql
--
-- While paused every user gets the control (a forced user the forced branch), nobody is
-- counted as an exposure or assigned, and sticky assignments are kept: resuming
-- (admin/resume.sql) gives everyone their branch back and keeps the original start.
\set ON_ERROR_STOP on
\set QUIET on
\set SHOW_CONTEXT never
\pset footer off

\if :{?name}
\else
  \warn 'usage: psql -v name=EXPERIMENT -f admin/pause.sql'
  DO $$ BEGIN RAISE EXCEPTION 'admin/pause.sql: the variable "name" is not set'; END $$;
\endif

BEGIN;
SELECT state FROM ab_get_experiment(:'name') \gset before_
SELECT ab_pause(:'name') \gset done_
SELECT format(E'%s: %s -> %s. Every user gets "%s" (the control) and nobody is counted until it is resumed:\n'
              '  psql -v name=%s -f admin/resume.sql', name, :'before_state', state, branches[1], name) AS message
  FROM ab_get_experiment(:'name') \gset
COMMIT;
\echo :message
