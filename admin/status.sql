-- admin/status.sql: a status board of every experiment, oldest first.
--
--   psql -f admin/status.sql
--
-- Per experiment: state; age (since created) and running (since started, to completion
-- or now, pauses included); the allocation; the traffic: exposures (routing calls of users
-- in the experiment), assigned users (sticky experiments) and recorded queries; the
-- sample-ratio p-value of ab_srm, over assigned users when sticky and exposures otherwise
-- ("!" when it reports a mismatch, p < 0.001; after a ramp the counts mix allocations); and
-- the verdict on the recorded queries as ab_report gives it (Holm-adjusted, both branches
-- at min_sample_size). The verdict does not analyse attached metrics: admin/report.sql
-- does. Read-only; needs the analyst's grants (README, "Privileges").
\set ON_ERROR_STOP on
\set QUIET on
\set SHOW_CONTEXT never
\pset footer off

WITH e AS (
  SELECT e.*, now() - e.created_at AS age, coalesce(e.completed_at, now()) - e.started_at AS running
    FROM ab_list_experiments() e)
SELECT e.name AS experiment, e.state,
       (SELECT CASE WHEN i >= interval '1 day' THEN to_char(i, 'FMDD"d" FMHH24"h"')
                    WHEN i >= interval '1 hour' THEN to_char(i, 'FMHH24"h" FMMI"m"')
                    ELSE to_char(i, 'FMMI"m"') END
          FROM (VALUES (e.age)) AS v(i)) AS age,
       (SELECT CASE WHEN i IS NULL THEN ''
                    WHEN i >= interval '1 day' THEN to_char(i, 'FMDD"d" FMHH24"h"')
                    WHEN i >= interval '1 hour' THEN to_char(i, 'FMHH24"h" FMMI"m"')
                    ELSE to_char(i, 'FMMI"m"') END
          FROM (VALUES (e.running)) AS v(i)) AS running,
       array_to_string(ARRAY(SELECT trim_scale(a) FROM unnest(e.allocation) WITH ORDINALITY AS u(a, i) ORDER BY i), '/')
         AS allocation,
       m.exposures, m.assigned, m.queries,
       CASE WHEN s.p_value IS NULL THEN ''
            WHEN s.p_value < 0.0001 THEN '<0.0001'
            ELSE to_char(s.p_value, 'FM0.0000') END || CASE WHEN s.mismatch THEN ' !' ELSE '' END AS srm_p,
       CASE e.state
         WHEN 'draft' THEN 'not started'
         WHEN 'archived' THEN 'archived'
         WHEN 'completed' THEN coalesce('winner ' || e.winner, 'no winner: everyone gets ' || e.branches[1])
         ELSE CASE WHEN s.mismatch THEN 'sample ratio mismatch: find the cause before trusting results'
                   WHEN m.queries = 0 THEN 'no queries recorded yet'
                   WHEN best.branch_b IS NOT NULL
                     THEN format('%s %s %s by %s pp (Holm p %s)', best.branch_b,
                                 CASE WHEN best.success_rate_diff > 0 THEN 'beats' ELSE 'is worse than' END,
                                 best.branch_a, to_char(100 * best.success_rate_diff, 'FMSG990.00'),
                                 CASE WHEN best.adjusted_p_value < 0.0001 THEN '<0.0001'
                                      ELSE to_char(best.adjusted_p_value, 'FM0.0000') END)
                   ELSE 'no significant difference yet' END
       END AS verdict
  FROM e
  CROSS JOIN LATERAL (SELECT coalesce(sum(b.exposures), 0) AS exposures, coalesce(sum(b.assigned_users), 0) AS assigned,
                             coalesce(sum(b.query_count), 0) AS queries
                        FROM ab_branch_metrics(e.name) b) m
  CROSS JOIN LATERAL ab_srm(e.name) s
  LEFT JOIN LATERAL (SELECT c.* FROM ab_compare_all(e.name) c WHERE c.is_significant
                      ORDER BY abs(c.success_rate_diff) DESC LIMIT 1) best ON true
 ORDER BY e.created_at, e.name;
