-- abtest 1.2 -> 1.3: outcome analysis on the application's own tables. A metric is a
-- catalog object over a table or view (identifiers, never SQL text); the analysis gives
-- every user of an experiment's assignment log one value and compares the branches.
-- Follows the rules of abtest--1.0--1.1.sql: only ALTER and CREATE, nothing dropped.
\echo Use "ALTER EXTENSION abtest UPDATE TO '1.3'" to load this file. \quit

-- A metric: a simple metric aggregates one source per user; a ratio metric divides two
-- simple metrics. The source is kept by OID (regclass), so renaming it keeps the metric.
CREATE TABLE abtest.metrics (
    name              text PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('simple', 'ratio')),
    source            regclass,
    user_column       name,
    time_column       name,
    value_column      name,
    aggregation       text CHECK (aggregation IN ('sum', 'count', 'any', 'max')),
    conversion_window interval,
    cap               double precision,
    cap_percentile    double precision CHECK (cap_percentile > 0 AND cap_percentile < 1),
    numerator         text REFERENCES abtest.metrics (name),
    denominator       text REFERENCES abtest.metrics (name),
    description       text,
    higher_is_better  boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (cap IS NULL OR cap_percentile IS NULL),
    CHECK (CASE kind
             WHEN 'simple' THEN source IS NOT NULL AND user_column IS NOT NULL AND time_column IS NOT NULL
                                AND aggregation IS NOT NULL AND numerator IS NULL AND denominator IS NULL
             ELSE numerator IS NOT NULL AND denominator IS NOT NULL AND source IS NULL
           END)
);
COMMENT ON TABLE abtest.metrics IS 'Metrics over the application''s tables (ab_define_metric, ab_define_ratio_metric)';
SELECT pg_catalog.pg_extension_config_dump('abtest.metrics', '');

CREATE TABLE abtest.experiment_metrics (
    experiment_id uuid NOT NULL REFERENCES abtest.experiments (id) ON DELETE CASCADE,
    metric        text NOT NULL REFERENCES abtest.metrics (name),
    role          text NOT NULL DEFAULT 'goal' CHECK (role IN ('goal', 'guardrail', 'secondary')),
    attached_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment_id, metric)
);
COMMENT ON TABLE abtest.experiment_metrics IS 'Metrics attached to experiments (ab_attach_metric), analysed by ab_report';
SELECT pg_catalog.pg_extension_config_dump('abtest.experiment_metrics', '');
REVOKE ALL ON abtest.metrics, abtest.experiment_metrics FROM PUBLIC;

-- Every metric with its definition, whether its source still exists, and where it is used.
CREATE VIEW abtest.metric_overview AS
SELECT m.name, m.kind, m.source,
       CASE WHEN m.kind = 'simple' THEN EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = m.source) END
           AS source_exists,
       m.user_column, m.time_column, m.value_column, m.aggregation, m.conversion_window,
       m.cap, m.cap_percentile, m.numerator, m.denominator, m.description, m.higher_is_better,
       m.created_at,
       coalesce((SELECT array_agg(e.name || ' (' || em.role || ')' ORDER BY e.name)
                   FROM abtest.experiment_metrics em JOIN abtest.experiments e ON e.id = em.experiment_id
                  WHERE em.metric = m.name), '{}') AS attached_to
  FROM abtest.metrics m;
COMMENT ON VIEW abtest.metric_overview IS 'Metrics, their sources and the experiments they are attached to';

CREATE FUNCTION ab_define_metric(name text, source regclass, user_column name, time_column name,
                                 value_column name DEFAULT NULL, aggregation text DEFAULT 'sum',
                                 conversion_window interval DEFAULT NULL, cap double precision DEFAULT NULL,
                                 cap_percentile double precision DEFAULT NULL, description text DEFAULT NULL,
                                 higher_is_better boolean DEFAULT true)
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_define_ratio_metric(name text, numerator text, denominator text, description text DEFAULT NULL,
                                       higher_is_better boolean DEFAULT true)
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_drop_metric(name text) RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_attach_metric(experiment text, metric text, role text DEFAULT 'goal')
    RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_detach_metric(experiment text, metric text) RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ab_analyze(experiment text, metric text, cuped boolean DEFAULT false,
                           cuped_window interval DEFAULT '14 days')
    RETURNS TABLE (branch text, users bigint, mean double precision, stddev double precision,
                   diff double precision, diff_ci_low double precision, diff_ci_high double precision,
                   relative_lift double precision, lift_ci_low double precision, lift_ci_high double precision,
                   p_value double precision, adjusted_p_value double precision, is_significant boolean,
                   prob_beats_control double precision, sequential_p_value double precision,
                   variance_reduction double precision)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
CREATE FUNCTION ab_analyze_over_time(experiment text, metric text, step interval DEFAULT '1 day')
    RETURNS TABLE (at timestamptz, branch text, users bigint, mean double precision,
                   diff double precision, diff_ci_low double precision, diff_ci_high double precision)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION ab_analyze(text, text, boolean, interval) IS 'One value per user of the experiment, compared between branches';
COMMENT ON FUNCTION ab_analyze_over_time(text, text, interval) IS 'The cumulative analysis at each step since the start';

-- Defining metrics administers the catalog; the analysis follows ab_compare. None is
-- for PUBLIC: grant EXECUTE to an admin or analyst role (README, "Privileges").
REVOKE EXECUTE ON FUNCTION
    ab_define_metric(text, regclass, name, name, name, text, interval, double precision, double precision, text,
                     boolean),
    ab_define_ratio_metric(text, text, text, text, boolean),
    ab_drop_metric(text), ab_attach_metric(text, text, text), ab_detach_metric(text, text),
    ab_analyze(text, text, boolean, interval), ab_analyze_over_time(text, text, interval)
  FROM PUBLIC;
