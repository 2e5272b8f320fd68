-- admin/create.sql: create an experiment from psql variables, in one transaction.
--
--   psql -v name=checkout_v2 -v branches=control,treatment -f admin/create.sql
--   psql -v name=checkout_v2 -v branches=control,treatment -v allocation=90,10 \
--        -v description='One-page checkout' -v owner=payments -v tags=checkout,web \
--        -v sticky=true -v min_sample_size=1000 -v confidence_level=0.95 \
--        -v max_duration='28 days' -v auto_complete=false -v start=1 -f admin/create.sql
--
-- Required: name, branches (comma-separated, the first is the control; a branch whose
-- name holds a comma is given as an array literal: -v branches='{control,"a,b"}').
-- Optional: allocation (percentages in branch order, summing to 100; default an equal
-- split), description, owner, tags, sticky, allow_reassignment, min_sample_size,
-- confidence_level, max_duration, auto_complete (as ab_configure), start=1 to start it.
-- Every value reaches the server as a bound literal (:'var'), never as SQL text.
\set ON_ERROR_STOP on
\set QUIET on
\set SHOW_CONTEXT never
\pset footer off

\if :{?name}
\else
  \warn 'usage: psql -v name=EXPERIMENT -v branches=control,treatment [-v allocation=50,50] [-v description=...] [-v owner=...] [-v tags=a,b] [-v sticky=true|false] [-v start=1] -f admin/create.sql'
  DO $$ BEGIN RAISE EXCEPTION 'admin/create.sql: the variable "name" is not set'; END $$;
\endif
\if :{?branches}
\else
  \warn 'usage: psql -v name=EXPERIMENT -v branches=control,treatment [-v allocation=50,50] [-v description=...] [-v owner=...] [-v tags=a,b] [-v sticky=true|false] [-v start=1] -f admin/create.sql'
  DO $$ BEGIN RAISE EXCEPTION 'admin/create.sql: the variable "branches" is not set'; END $$;
\endif
-- Optional variables left unset become '' and then NULL: the function's default.
\if :{?allocation} \else \set allocation '' \endif
\if :{?description} \else \set description '' \endif
\if :{?owner} \else \set owner '' \endif
\if :{?tags} \else \set tags '' \endif
\if :{?sticky} \else \set sticky '' \endif
\if :{?allow_reassignment} \else \set allow_reassignment '' \endif
\if :{?min_sample_size} \else \set min_sample_size '' \endif
\if :{?confidence_level} \else \set confidence_level '' \endif
\if :{?max_duration} \else \set max_duration '' \endif
\if :{?auto_complete} \else \set auto_complete '' \endif
\if :{?start} \else \set start 0 \endif
-- psql's \if would take a value it cannot read as false, with only a message: refuse it.
SELECT :'start'::boolean AS start \gset

BEGIN;

-- A comma-separated list, or an array literal when it starts with '{'. Elements are
-- trimmed; an empty element reaches ab_create_experiment, which refuses it.
SELECT ab_create_experiment(
         :'name',
         CASE WHEN btrim(:'branches') LIKE '{%' THEN btrim(:'branches')::text[]
              ELSE ARRAY(SELECT btrim(b) FROM unnest(string_to_array(:'branches', ',')) WITH ORDINALITY AS u(b, i)
                          ORDER BY i) END,
         CASE WHEN btrim(:'allocation') = '' THEN NULL
              ELSE string_to_array(btrim(:'allocation', ' {}'), ',')::numeric[] END,
         description => NULLIF(:'description', ''),
         owner => NULLIF(:'owner', ''),
         tags => CASE WHEN btrim(:'tags') = '' THEN '{}'::text[]
                      ELSE ARRAY(SELECT btrim(t) FROM unnest(string_to_array(:'tags', ',')) WITH ORDINALITY AS u(t, i)
                                  ORDER BY i) END) AS id \gset created_

-- NULL leaves a setting as ab_create_experiment made it.
SELECT ab_configure(:'name',
         sticky => NULLIF(:'sticky', '')::boolean,
         allow_reassignment => NULLIF(:'allow_reassignment', '')::boolean,
         min_sample_size => NULLIF(:'min_sample_size', '')::bigint,
         confidence_level => NULLIF(:'confidence_level', '')::double precision,
         max_duration => NULLIF(:'max_duration', '')::interval,
         auto_complete => NULLIF(:'auto_complete', '')::boolean) \gset configured_

\if :start
  SELECT ab_start(:'name') \gset started_
\endif

COMMIT;

\pset expanded on
SELECT name, state, branches, allocation, sticky, allow_reassignment, description, owner, tags,
       min_sample_size, confidence_level, max_duration, auto_complete, strategy
  FROM ab_get_experiment(:'name');
\pset expanded off
\if :start
  SELECT format('Started: ab_route_user(%L, user_id) routes users now.', :'name') AS message \gset
\else
  SELECT format('Created as a draft. Start it with: psql -v name=%s -f admin/resume.sql', :'name') AS message \gset
\endif
\echo :message
