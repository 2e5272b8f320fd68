-- admin/report.sql: an experiment's report (ab_report), optionally also as an HTML page.
--
--   psql -v name=checkout_v2 -f admin/report.sql
--   psql -v name=checkout_v2 -v html=checkout_v2.html -f admin/report.sql
--
-- The text report: state, allocation, per branch users, queries, success and the
-- comparison with the control, intervals, verdict, warnings, and a section per attached
-- metric. With -v html=FILE the self-contained page of ab_report_html is written to FILE
-- (on the machine where psql runs). Read-only; needs the analyst's grants.
\set ON_ERROR_STOP on
\set QUIET on
\set SHOW_CONTEXT never

\if :{?name}
\else
  \warn 'usage: psql -v name=EXPERIMENT [-v html=FILE.html] -f admin/report.sql'
  DO $$ BEGIN RAISE EXCEPTION 'admin/report.sql: the variable "name" is not set'; END $$;
\endif

\pset tuples_only on
\pset format unaligned
SELECT line FROM ab_report(:'name') AS r(line);
\if :{?html}
  -- A file name, not SQL: interpolated into \o as it is, spaces and all.
  \o :html
  SELECT ab_report_html(:'name');
  \o
  SELECT format(E'\nHTML report written to %s', :'html') AS message \gset
  \echo :message
\endif
