-- Analyses across primaries, on one server: a run recorded in two parts, each part's
-- counters exported (as two primaries export theirs) and merged, analyses like the run
-- recorded whole. Then every kind of source a caller may pass, and what is refused.

CREATE FUNCTION merged_error(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- A change to a source, then a call reading it; everything rolled back.
CREATE FUNCTION merged_refusal(change text, call text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE change;
    EXECUTE call;
    RAISE EXCEPTION 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- The columns in which two calls differ, row by row: numbers by more than 1e-9 of the
-- larger, anything else at all; a difference (a column named *diff) of two equal means is
-- rounding: 1e-12 absolute there. Times of recording (which differ between the runs) left out.
CREATE FUNCTION merged_differences(whole text, merged text)
    RETURNS TABLE (n bigint, key text, whole_value jsonb, merged_value jsonb) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH w AS (SELECT row_number() OVER () AS n, to_jsonb(r) AS j FROM %s r),
             m AS (SELECT row_number() OVER () AS n, to_jsonb(r) AS j FROM %s r)
        SELECT coalesce(w.n, m.n), e.key, w.j -> e.key, m.j -> e.key
          FROM w FULL JOIN m ON w.n = m.n,
               LATERAL jsonb_each(coalesce(w.j, '{}') || coalesce(m.j, '{}')) e
         WHERE e.key NOT IN ('first_query', 'last_query', 'duration')
           AND CASE WHEN jsonb_typeof(w.j -> e.key) = 'number' AND jsonb_typeof(m.j -> e.key) = 'number'
                    THEN abs((w.j ->> e.key)::float8 - (m.j ->> e.key)::float8)
                         > 1e-9 * greatest(abs((w.j ->> e.key)::float8), abs((m.j ->> e.key)::float8))
                           + CASE WHEN e.key LIKE '%%diff' THEN 1e-12 ELSE 0 END
                    ELSE (w.j -> e.key) IS DISTINCT FROM (m.j -> e.key) END$q$, whole, merged);
END
$$;

SELECT ab_create_experiment('mx', ARRAY['control', 'treatment', 'third']) IS NOT NULL AS created;
SELECT ab_start('mx');
CREATE TABLE mx_records AS
SELECT i, (ARRAY['control', 'treatment', 'third'])[1 + i % 3] AS branch,
       ((i * 7919) % 1000) / 10.0 + 0.5 AS latency, (i * 31) % 10 < 8 - i % 3 AS success,
       ((i * 104729) % 997) / 3.0 - 100 AS value
  FROM generate_series(1, 3000) i;

-- Part one, exported.
SELECT count(ab_record_query('mx', branch, latency, success)), count(ab_record_event('mx', branch, 'buy', value))
  FROM mx_records WHERE i % 5 < 2;
SELECT count(ab_route_user('mx', 'u' || i)) FROM generate_series(1, 400) i;
CREATE TABLE mx_east AS SELECT * FROM abtest.branch_metrics_export WHERE experiment = 'mx';
CREATE TABLE mx_east_events AS SELECT * FROM abtest.event_metrics_export WHERE experiment = 'mx';
SELECT ab_clear_metrics('mx');
-- Part two, other users, exported.
SELECT count(ab_record_query('mx', branch, latency, success)), count(ab_record_event('mx', branch, 'buy', value))
  FROM mx_records WHERE i % 5 >= 2;
SELECT count(ab_route_user('mx', 'u' || i)) FROM generate_series(401, 1000) i;
CREATE TABLE mx_west AS SELECT * FROM abtest.branch_metrics_export WHERE experiment = 'mx';
CREATE TABLE mx_west_events AS SELECT * FROM abtest.event_metrics_export WHERE experiment = 'mx';
SELECT ab_clear_metrics('mx');
SELECT ab_clear_sticky_cache('mx');
-- The whole run on this server's counters.
SELECT count(ab_record_query('mx', branch, latency, success)), count(ab_record_event('mx', branch, 'buy', value))
  FROM mx_records ORDER BY 1;
SELECT count(ab_route_user('mx', 'u' || i)) FROM generate_series(1, 1000) i;

-- What the export holds: every branch, the columns of abtest.branch_metrics.
SELECT experiment, branch, query_count, success_count, array_length(latency_histogram, 1) > 0 AS has_buckets,
       exposures, assigned_users
  FROM mx_east ORDER BY branch;
SELECT experiment, branch, event_name, count FROM mx_west_events ORDER BY branch;

-- Merged equals whole: every column of every analysis (1e-9 relative).
SELECT * FROM merged_differences($$ab_branch_metrics('mx')$$,
                                 $$ab_branch_metrics('mx', ARRAY['mx_east', 'mx_west']::regclass[])$$);
SELECT * FROM merged_differences($$ab_event_metrics('mx')$$,
                                 $$ab_event_metrics('mx', ARRAY['mx_east_events', 'mx_west_events']::regclass[])$$);
SELECT * FROM merged_differences($$ab_summary('mx')$$, $$ab_summary('mx', '{mx_east, mx_west}')$$);
SELECT * FROM merged_differences($$ab_compare('mx', 'control', 'treatment')$$,
                                 $$ab_compare('mx', 'control', 'treatment', '{mx_east, mx_west}')$$);
SELECT * FROM merged_differences($$ab_compare('mx', 'third', 'treatment')$$,
                                 $$ab_compare('mx', 'third', 'treatment', '{mx_west, mx_east}')$$);
SELECT * FROM merged_differences($$ab_compare_all('mx')$$, $$ab_compare_all('mx', '{mx_east, mx_west}')$$);
SELECT * FROM merged_differences($$ab_compare_event('mx', 'control', 'third', 'buy')$$,
                                 $$ab_compare_event('mx', 'control', 'third', 'buy', '{mx_east_events, mx_west_events}')$$);
SELECT * FROM merged_differences($$ab_srm('mx')$$, $$ab_srm('mx', '{mx_east, mx_west}')$$);
-- Percentiles from the summed histograms: exactly those of the whole run.
SELECT w.branch, w.p50_latency_ms = m.p50_latency_ms AS p50, w.p95_latency_ms = m.p95_latency_ms AS p95,
       w.p99_latency_ms = m.p99_latency_ms AS p99, w.query_count, m.exposures, m.assigned_users
  FROM ab_branch_metrics('mx') w JOIN ab_branch_metrics('mx', '{mx_east, mx_west}') m USING (branch);
-- The earliest and latest query of the parts.
SELECT bool_and(m.first_query = (SELECT min(first_query) FROM (SELECT * FROM mx_east UNION ALL SELECT * FROM mx_west) p
                                  WHERE p.branch = m.branch)) AS first_is_earliest,
       bool_and(m.last_query = (SELECT max(last_query) FROM (SELECT * FROM mx_east UNION ALL SELECT * FROM mx_west) p
                                 WHERE p.branch = m.branch)) AS last_is_latest
  FROM ab_branch_metrics('mx', '{mx_east, mx_west}') m;
-- One source: this server's own export view is the live counters.
SELECT * FROM merged_differences($$ab_compare_all('mx')$$, $$ab_compare_all('mx', '{abtest.branch_metrics_export}')$$);

-- A source holds rows of other experiments, and rows of a branch twice: all merge.
SELECT ab_create_experiment('other', ARRAY['a', 'b']) IS NOT NULL AS created;
CREATE TABLE mx_both AS SELECT * FROM mx_east UNION ALL SELECT * FROM mx_west;
UPDATE mx_both SET experiment_id = (SELECT id FROM abtest.experiments WHERE name = 'other'), branch = 'a'
 WHERE branch = 'third';
SELECT branch, query_count, assigned_users FROM ab_branch_metrics('mx', '{mx_both}');
SELECT branch, query_count FROM ab_branch_metrics('other', '{mx_both}');

-- Refused, each with its SQLSTATE, naming the source.
CREATE TABLE mx_bad AS SELECT * FROM mx_east;
CREATE TABLE mx_narrow AS SELECT experiment_id, branch, query_count FROM mx_east;
CREATE TABLE mx_int (LIKE mx_east);
ALTER TABLE mx_int ALTER COLUMN query_count TYPE integer;
CREATE SEQUENCE mx_sequence;
SELECT s AS statement, merged_error(s) AS result FROM unnest(ARRAY[
  $q$SELECT * FROM ab_compare('mx', 'control', 'treatment', NULL)$q$,
  $q$SELECT * FROM ab_compare('mx', 'control', 'treatment', '{}')$q$,
  $q$SELECT * FROM ab_compare('mx', 'control', 'treatment', ARRAY[NULL::regclass])$q$,
  $q$SELECT * FROM ab_compare('mx', 'control', 'treatment', '{mx_east, mx_east}')$q$,
  $q$SELECT * FROM ab_compare('mx', 'control', 'treatment', '{mx_narrow}')$q$,
  $q$SELECT * FROM ab_compare('mx', 'control', 'treatment', '{mx_int}')$q$,
  $q$SELECT * FROM ab_compare('mx', 'control', 'treatment', '{mx_sequence}')$q$,
  $q$SELECT * FROM ab_compare('mx', 'control', 'treatment', ARRAY['4294967295'::oid::regclass])$q$,
  $q$SELECT * FROM ab_compare('mx', 'control', 'treatment', '{mx_east_events}')$q$,
  $q$SELECT * FROM ab_compare_event('mx', 'control', 'third', 'buy', '{mx_east}')$q$,
  $q$SELECT * FROM ab_compare('nope', 'control', 'treatment', '{mx_east}')$q$,
  $q$SELECT * FROM ab_compare('mx', 'control', 'control', '{mx_east}')$q$,
  $q$SELECT * FROM ab_compare('mx', 'control', 'treatment', ARRAY(SELECT 'mx_east'::regclass FROM generate_series(1, 1001)))$q$
]) AS s;
-- Rows no primary could have exported.
SELECT s AS change, merged_refusal(s, $$SELECT * FROM ab_compare_all('mx', '{mx_bad}')$$) AS result
  FROM unnest(ARRAY[
  $q$UPDATE mx_bad SET branch = 'fourth' WHERE branch = 'third'$q$,
  $q$UPDATE mx_bad SET branch = NULL WHERE branch = 'third'$q$,
  $q$UPDATE mx_bad SET latency_mean = 'NaN' WHERE branch = 'third'$q$,
  $q$UPDATE mx_bad SET latency_m2 = '-Infinity' WHERE branch = 'third'$q$,
  $q$UPDATE mx_bad SET query_count = -1 WHERE branch = 'third'$q$,
  $q$UPDATE mx_bad SET success_count = query_count + 1 WHERE branch = 'third'$q$,
  $q$UPDATE mx_bad SET latency_histogram[1] = latency_histogram[1] + 1 WHERE branch = 'third'$q$,
  $q$UPDATE mx_bad SET latency_histogram[2] = NULL WHERE branch = 'third'$q$,
  $q$UPDATE mx_bad SET latency_histogram = '{{1,2},{3,4}}' WHERE branch = 'third'$q$,
  $q$UPDATE mx_bad SET min_latency_ms = NULL WHERE branch = 'third'$q$,
  $q$UPDATE mx_bad SET max_latency_ms = 2e6 WHERE branch = 'third'$q$,
  $q$UPDATE mx_bad SET exposures = NULL WHERE branch = 'third'$q$,
  $q$UPDATE mx_bad SET first_query = '-infinity' WHERE branch = 'third'$q$,
  $q$INSERT INTO mx_bad SELECT experiment_id, experiment, branch, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, '{}',
       9223372036854775807, 0 FROM mx_bad WHERE branch = 'third'$q$
]) AS s;
SELECT merged_error($$SELECT * FROM ab_branch_metrics('mx', '{mx_bad}')$$) AS rolled_back;
SELECT s AS change, merged_refusal(s, $$SELECT * FROM ab_event_metrics('mx', '{mx_east_events}')$$) AS result
  FROM unnest(ARRAY[
  $q$UPDATE mx_east_events SET m2 = -1$q$,
  $q$UPDATE mx_east_events SET mean = 1e300$q$,
  $q$UPDATE mx_east_events SET count = NULL$q$,
  $q$UPDATE mx_east_events SET event_name = repeat('e', 64)$q$,
  $q$UPDATE mx_east_events SET event_name = ''$q$
]) AS s;

-- Sources are read as the caller: its privileges apply.
CREATE ROLE regress_merged_analyst;
GRANT EXECUTE ON FUNCTION ab_compare(text, text, text, regclass[]) TO regress_merged_analyst;
SET ROLE regress_merged_analyst;
SELECT merged_error($$SELECT * FROM ab_compare('mx', 'control', 'treatment', '{mx_east}')$$) AS without_select;
RESET ROLE;
GRANT SELECT ON mx_east TO regress_merged_analyst;
SET ROLE regress_merged_analyst;
SELECT sample_size_a, sample_size_b FROM ab_compare('mx', 'control', 'treatment', '{mx_east}');
SELECT merged_error($$SELECT * FROM abtest.branch_metrics_export$$) AS export_is_not_public;
RESET ROLE;
REVOKE ALL ON mx_east FROM regress_merged_analyst;
REVOKE EXECUTE ON FUNCTION ab_compare(text, text, text, regclass[]) FROM regress_merged_analyst;
DROP ROLE regress_merged_analyst;

SELECT ab_delete_experiment('mx'), ab_delete_experiment('other');
DROP TABLE mx_records, mx_east, mx_west, mx_east_events, mx_west_events, mx_both, mx_bad, mx_narrow, mx_int;
DROP SEQUENCE mx_sequence;
DROP FUNCTION merged_error(text), merged_refusal(text, text), merged_differences(text, text);
