-- Analysis in SQL: comparisons, multiple branches, sample ratio, sample size, the
-- report, degenerate inputs and auto-completion.

SELECT ab_create_experiment('an', ARRAY['control', 'treatment', 'third']) IS NOT NULL AS created;
SELECT ab_configure('an', min_sample_size => 50);

-- No data: defined values and NULLs, never NaN or an error.
SELECT * FROM ab_compare('an', 'control', 'treatment');
SELECT * FROM ab_compare_event('an', 'control', 'treatment', 'revenue');
SELECT branch_b, p_value, adjusted_p_value, is_significant FROM ab_compare_all('an');
SELECT * FROM ab_srm('an');

-- control converts 90 of 100 queries, treatment 96 of 100, third 90 of 100.
SELECT count(ab_record_query('an', 'control', 10 + g % 5, g > 10)) FROM generate_series(1, 100) g;
SELECT count(ab_record_query('an', 'treatment', 8 + g % 3, g > 4)) FROM generate_series(1, 100) g;
SELECT count(ab_record_query('an', 'third', 10 + g % 5, g > 10)) FROM generate_series(1, 100) g;

SELECT branch_a, branch_b, sample_size_a, sample_size_b, success_rate_a, success_rate_b,
       round(success_rate_diff::numeric, 12) AS diff, round(relative_lift::numeric, 12) AS lift,
       round(ci_low::numeric, 10) AS ci_low, round(ci_high::numeric, 10) AS ci_high,
       round(p_value::numeric, 10) AS p_value, is_significant, round(confidence::numeric, 10) AS confidence,
       round(prob_b_beats_a::numeric, 4) AS prob_b_beats_a, sequential_p_value <= 1 AS seq_valid,
       avg_latency_a, avg_latency_b, latency_diff, latency_p_value < 1e-6 AS latency_differs
  FROM ab_compare('an', 'control', 'treatment');

-- Against a branch that converts alike, and in both directions.
SELECT p_value, success_rate_diff, is_significant FROM ab_compare('an', 'control', 'third');
SELECT round(a.success_rate_diff::numeric, 12) = round(-b.success_rate_diff::numeric, 12) AS antisymmetric,
       round(a.p_value::numeric, 12) = round(b.p_value::numeric, 12) AS same_p
  FROM ab_compare('an', 'control', 'treatment') a, ab_compare('an', 'treatment', 'control') b;

-- Every branch against the control: Holm adjusts, significance is decided on it.
SELECT branch_a, branch_b, round(p_value::numeric, 10) AS p_value,
       round(adjusted_p_value::numeric, 10) AS adjusted_p_value, is_significant
  FROM ab_compare_all('an');

-- Rates of 0 and 1 and zero variance.
SELECT ab_create_experiment('edge', ARRAY['a', 'b']) IS NOT NULL AS created;
SELECT count(ab_record_query('edge', 'a', 5, true)) FROM generate_series(1, 20) g;
SELECT count(ab_record_query('edge', 'b', 5, true)) FROM generate_series(1, 20) g;
SELECT success_rate_a, success_rate_b, p_value, ci_low, ci_high, relative_lift, prob_b_beats_a,
       sequential_p_value, latency_p_value
  FROM ab_compare('edge', 'a', 'b');
SELECT count(ab_record_query('edge', 'a', 5, false)) FROM generate_series(1, 20) g;
SELECT success_rate_a, success_rate_b, relative_lift IS NOT NULL AS has_lift, p_value < 0.001 AS tiny_p
  FROM ab_compare('edge', 'a', 'b');

-- Events: Welch's t-test; one observation has no variance.
SELECT ab_record_event('an', 'control', 'revenue', v) FROM unnest(ARRAY[10, 12, 11, 13, 9]::float8[]) v;
SELECT ab_record_event('an', 'treatment', 'revenue', v) FROM unnest(ARRAY[15, 14, 16, 18, 13, 17]::float8[]) v;
SELECT ab_record_event('an', 'third', 'revenue', 42);
SELECT count_a, count_b, mean_a, round(mean_b::numeric, 10) AS mean_b, round(diff::numeric, 10) AS diff,
       round(relative_lift::numeric, 10) AS lift, round(ci_low::numeric, 8) AS ci_low,
       round(ci_high::numeric, 8) AS ci_high, round(p_value::numeric, 10) AS p_value, is_significant
  FROM ab_compare_event('an', 'control', 'treatment', 'revenue');
SELECT count_a, count_b, mean_b, p_value, is_significant FROM ab_compare_event('an', 'control', 'third', 'revenue');
SELECT count_a, count_b, mean_a, mean_b, p_value FROM ab_compare_event('an', 'control', 'treatment', 'nothing');

-- Sample ratio: exposures of a non-sticky experiment against its allocation.
SELECT ab_create_experiment('ratio', ARRAY['a', 'b'], ARRAY[50, 50]) IS NOT NULL AS created;
SELECT ab_configure('ratio', sticky => false);
SELECT ab_start('ratio');
SELECT count(ab_route_user('ratio', 'u' || g)) FROM generate_series(1, 2000) g;
SELECT degrees_of_freedom, p_value > 0.001 AS plausible, mismatch FROM ab_srm('ratio');
SELECT ab_set_allocation('ratio', '{"a": 90, "b": 10}');
SELECT count(ab_route_user('ratio', 'v' || g)) FROM generate_series(1, 2000) g;
SELECT degrees_of_freedom, p_value < 0.001 AS tiny, mismatch FROM ab_srm('ratio');
-- Users in a branch allocated 0%: the statistic is infinite, so NULL; p = 0, a mismatch.
SELECT ab_set_allocation('ratio', '{"a": 100, "b": 0}');
SELECT * FROM ab_srm('ratio');

-- Sample size, the textbook example and the formula's reference.
SELECT ab_sample_size(0.10, 0.02) AS n_default, ab_sample_size(0.10, 0.02, 0.01, 0.9) AS n_strict;
SELECT ceil(power(1.959963984540054 * sqrt(2 * 0.11 * 0.89) + 0.8416212335729143 * sqrt(0.1 * 0.9 + 0.12 * 0.88), 2)
            / power(0.02, 2)) AS reference;

-- Refusals.
SELECT ab_sample_size(0, 0.1);
SELECT ab_sample_size(0.5, 0.6);
SELECT ab_sample_size(0.5, 0.1, 1.5);
SELECT ab_sample_size(NULL, 0.1);
SELECT * FROM ab_compare('an', 'control', 'nope');
SELECT * FROM ab_compare('nope', 'a', 'b');
SELECT * FROM ab_compare_event('an', 'control', 'treatment', NULL);
SELECT * FROM ab_srm(NULL);
-- A branch is not compared with itself.
SELECT * FROM ab_compare('an', 'control', 'control');
SELECT * FROM ab_compare('an', 'third', 'third');
SELECT * FROM ab_compare_event('an', 'treatment', 'treatment', 'revenue');

-- At the bounds of what recording accepts (latencies of 0, 1e-160, 5e-324 and
-- 1,000,000 ms; event values of ±1e15 and denormals): every comparison, the sample
-- ratio and the report stay finite. Squares of such variances underflow or overflow;
-- Welch's degrees of freedom do not depend on their scale.
SELECT ab_create_experiment('extreme', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT count(ab_record_query('extreme', 'control', CASE WHEN g % 2 = 0 THEN 1e-160 ELSE 0 END, g % 3 = 0)),
       count(ab_record_query('extreme', 'treatment', CASE WHEN g % 2 = 0 THEN 1e6 ELSE 5e-324 END, g % 4 = 0))
  FROM generate_series(1, 200) g;
SELECT count(ab_record_event('extreme', 'control', 'revenue', CASE WHEN g % 2 = 0 THEN 1e15 ELSE -1e15 END)),
       count(ab_record_event('extreme', 'treatment', 'revenue', CASE WHEN g % 2 = 0 THEN 5e-324 ELSE 1e-160 END))
  FROM generate_series(1, 200) g;
SELECT round(avg_latency_a::numeric, 6) AS avg_a, round(avg_latency_b::numeric, 6) AS avg_b,
       round(latency_diff::numeric, 6) AS latency_diff, latency_p_value < 1e-6 AS latency_differs
  FROM ab_compare('extreme', 'control', 'treatment');
SELECT mean_a, mean_b, relative_lift, p_value, is_significant
  FROM ab_compare_event('extreme', 'control', 'treatment', 'revenue');
SELECT mean_a, mean_b, relative_lift, round(p_value::numeric, 6) AS p_value, is_significant
  FROM ab_compare_event('extreme', 'treatment', 'control', 'revenue');
SELECT f, count(*) FILTER (WHERE v::text ~* 'infinity|nan') AS non_finite, count(*) AS values
  FROM (SELECT 'ab_compare' AS f, value AS v FROM ab_compare('extreme', 'control', 'treatment') r, jsonb_each(to_jsonb(r))
        UNION ALL SELECT 'ab_compare reversed', value FROM ab_compare('extreme', 'treatment', 'control') r, jsonb_each(to_jsonb(r))
        UNION ALL SELECT 'ab_compare_event', value
                    FROM ab_compare_event('extreme', 'control', 'treatment', 'revenue') r, jsonb_each(to_jsonb(r))
        UNION ALL SELECT 'ab_compare_all', value FROM ab_compare_all('extreme') r, jsonb_each(to_jsonb(r))
        UNION ALL SELECT 'ab_branch_metrics', value FROM ab_branch_metrics('extreme') r, jsonb_each(to_jsonb(r))
        UNION ALL SELECT 'ab_event_metrics', value FROM ab_event_metrics('extreme') r, jsonb_each(to_jsonb(r))
        UNION ALL SELECT 'ab_srm', value FROM ab_srm('extreme') r, jsonb_each(to_jsonb(r))
        UNION ALL SELECT 'ab_report', to_jsonb(line) FROM ab_report('extreme') line) s
 GROUP BY f ORDER BY f;

-- The report: what a person reads in psql.
SELECT ab_start('an');
SELECT line FROM ab_report('an') AS line WHERE line NOT LIKE 'Started %';
SELECT line FROM ab_report('edge') AS line;

-- Auto-complete: the flush worker completes an experiment once the always-valid
-- p-value of its best branch against the control decides it.
SELECT ab_create_experiment('auto', ARRAY['control', 'better']) IS NOT NULL AS created;
SELECT ab_configure('auto', auto_complete => true, min_sample_size => 100);
SELECT ab_start('auto');
SELECT count(ab_record_query('auto', 'control', 1, g % 2 = 0)) FROM generate_series(1, 2000) g;
SELECT count(ab_record_query('auto', 'better', 1, g % 10 <> 0)) FROM generate_series(1, 2000) g;
CREATE FUNCTION wait_for_state(name text, wanted text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    current text;
BEGIN
    FOR i IN 1 .. 300 LOOP
        SELECT state INTO current FROM abtest.experiments e WHERE e.name = wait_for_state.name;
        EXIT WHEN current = wanted;
        PERFORM pg_sleep(0.1);
        PERFORM pg_stat_clear_snapshot();
    END LOOP;
    RETURN current;
END
$$;
SELECT wait_for_state('auto', 'completed') AS state;
SELECT state, winner FROM ab_get_experiment('auto');

-- No difference: it keeps running.
SELECT ab_create_experiment('same', ARRAY['control', 'twin']) IS NOT NULL AS created;
SELECT ab_configure('same', auto_complete => true);
SELECT ab_start('same');
SELECT count(ab_record_query('same', b, 1, g % 2 = 0)) FROM generate_series(1, 1000) g, unnest(ARRAY['control', 'twin']) b;
SELECT pg_sleep(2.5);
SELECT state, winner FROM ab_get_experiment('same');

-- At max_duration, undecided: completed without a winner.
SELECT ab_create_experiment('expiring', ARRAY['control', 'twin']) IS NOT NULL AS created;
SELECT ab_configure('expiring', auto_complete => true, max_duration => '1 millisecond');
SELECT ab_start('expiring');
SELECT count(ab_record_query('expiring', b, 1, g % 2 = 0)) FROM generate_series(1, 200) g, unnest(ARRAY['control', 'twin']) b;
SELECT wait_for_state('expiring', 'completed') AS state;
SELECT state, winner FROM ab_get_experiment('expiring');

SELECT ab_delete_experiment(name) FROM unnest(ARRAY['an', 'edge', 'ratio', 'auto', 'same', 'expiring', 'extreme']) name;
DROP FUNCTION wait_for_state(text, text);
