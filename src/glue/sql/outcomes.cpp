// SQL-callable outcome analysis: metrics over the application's tables
// (ab_define_metric, ab_define_ratio_metric, ab_drop_metric, ab_attach_metric,
// ab_detach_metric) and their analysis (ab_analyze, ab_analyze_over_time). The report
// functions are in report.cpp.

#include "core/error.hpp"
#include "core/names.hpp"
#include "core/outcome_metric.hpp"
#include "glue/args.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/experiment_arg.hpp"
#include "glue/guard.hpp"
#include "glue/outcomes/metric_catalog.hpp"
#include "glue/outcomes/outcome_analysis.hpp"
#include "glue/result_set.hpp"
#include "glue/sql/outcome_args.hpp"

using namespace abtest;
using namespace abtest::glue;

namespace {

std::string MetricName(FunctionCallInfo fcinfo, int n) {
  std::string name = TextArg(fcinfo, n, "metric name");
  ValidateName("metric name", name);
  return name;
}


}  // namespace

// ab_define_metric(name, source, user_column, time_column, value_column, aggregation,
//                  conversion_window, cap, cap_percentile, description, higher_is_better)
ABTEST_SQL_FUNCTION(ab_define_metric) {
  outcomes::SimpleMetric metric;
  metric.name = MetricName(fcinfo, 0);
  if (PG_ARGISNULL(1)) RefuseNull("source");
  metric.source = PG_GETARG_OID(1);
  metric.user_column = NameArg(fcinfo, 2, "user_column");
  metric.time_column = NameArg(fcinfo, 3, "time_column");
  if (!PG_ARGISNULL(4)) metric.value_column = NameArg(fcinfo, 4, "value_column");
  metric.aggregation = ParseAggregation(metric.name, TextArg(fcinfo, 5, "aggregation"));
  if (!PG_ARGISNULL(6)) metric.conversion_window = ForwardIntervalArg(fcinfo, 6, ("conversion_window of metric " + Quoted(metric.name)).c_str()).text;
  if (!PG_ARGISNULL(7)) metric.cap = PG_GETARG_FLOAT8(7);
  if (!PG_ARGISNULL(8)) metric.cap_percentile = PG_GETARG_FLOAT8(8);
  ValidateCaps(metric.name, metric.cap, metric.cap_percentile);
  std::optional<std::string> description = OptionalTextArg(fcinfo, 9);
  if (PG_ARGISNULL(10)) RefuseNull("higher_is_better");
  bool higher_is_better = PG_GETARG_BOOL(10);
  outcomes::DefineSimple(metric, description, higher_is_better);
  PG_RETURN_VOID();
}

// ab_define_ratio_metric(name, numerator, denominator, description, higher_is_better)
ABTEST_SQL_FUNCTION(ab_define_ratio_metric) {
  std::string name = MetricName(fcinfo, 0);
  std::string numerator = TextArg(fcinfo, 1, "numerator");
  std::string denominator = TextArg(fcinfo, 2, "denominator");
  std::optional<std::string> description = OptionalTextArg(fcinfo, 3);
  if (PG_ARGISNULL(4)) RefuseNull("higher_is_better");
  outcomes::DefineRatio(name, numerator, denominator, description, PG_GETARG_BOOL(4));
  PG_RETURN_VOID();
}

ABTEST_SQL_FUNCTION(ab_drop_metric) {
  outcomes::Drop(TextArg(fcinfo, 0, "metric name"));
  PG_RETURN_VOID();
}

// ab_attach_metric(experiment, metric, role): attaching again changes the role.
ABTEST_SQL_FUNCTION(ab_attach_metric) {
  RequirePreloaded();
  Experiment experiment = catalog::LoadForUpdate(TextArg(fcinfo, 0, "experiment name"));
  std::string metric = TextArg(fcinfo, 1, "metric name");
  MetricRole role = ParseMetricRole(metric, TextArg(fcinfo, 2, "role"));
  outcomes::Attach(experiment.id, metric, role);
  PG_RETURN_VOID();
}

ABTEST_SQL_FUNCTION(ab_detach_metric) {
  RequirePreloaded();
  Experiment experiment = catalog::LoadForUpdate(TextArg(fcinfo, 0, "experiment name"));
  outcomes::Detach(experiment.id, experiment.name, TextArg(fcinfo, 1, "metric name"));
  PG_RETURN_VOID();
}

// ab_analyze(experiment, metric, cuped, cuped_window): one row per branch, control first.
ABTEST_SQL_FUNCTION(ab_analyze) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  outcomes::Metric metric = outcomes::Load(TextArg(fcinfo, 1, "metric name"));
  if (PG_ARGISNULL(2)) RefuseNull("cuped");
  std::optional<std::string> cuped_window;
  if (PG_GETARG_BOOL(2)) cuped_window = ForwardIntervalArg(fcinfo, 3, "cuped_window").text;
  std::vector<OutcomeRow> rows = outcomes::Analyze(experiment, metric, cuped_window);

  ResultSet result(fcinfo);
  constexpr int kColumns = 16;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const OutcomeRow& row = rows[i];
    Datum values[kColumns];
    bool nulls[kColumns] = {};
    values[0] = TextDatum(experiment.branch(static_cast<int>(i)));
    values[1] = Int64GetDatum(row.users);
    SetNullableFloat8(values, nulls, 2, row.mean);
    SetNullableFloat8(values, nulls, 3, row.stddev);
    SetNullableFloat8(values, nulls, 4, row.diff);
    SetNullableFloat8(values, nulls, 5, row.diff_ci_low);
    SetNullableFloat8(values, nulls, 6, row.diff_ci_high);
    SetNullableFloat8(values, nulls, 7, row.relative_lift);
    SetNullableFloat8(values, nulls, 8, row.lift_ci_low);
    SetNullableFloat8(values, nulls, 9, row.lift_ci_high);
    SetNullableFloat8(values, nulls, 10, row.p_value);
    SetNullableFloat8(values, nulls, 11, row.adjusted_p_value);
    values[12] = BoolGetDatum(row.is_significant);
    nulls[12] = i == 0;
    SetNullableFloat8(values, nulls, 13, row.prob_beats_control);
    SetNullableFloat8(values, nulls, 14, row.sequential_p_value);
    SetNullableFloat8(values, nulls, 15, row.variance_reduction);
    result.Add(values, nulls);
  }
  return static_cast<Datum>(0);
}

// ab_analyze_over_time(experiment, metric, step): the cumulative analysis at each step.
ABTEST_SQL_FUNCTION(ab_analyze_over_time) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  outcomes::Metric metric = outcomes::Load(TextArg(fcinfo, 1, "metric name"));
  ForwardInterval step = ForwardIntervalArg(fcinfo, 2, "step");
  outcomes::OverTime over_time = outcomes::AnalyzeOverTime(experiment, metric, step.text, step.seconds);

  ResultSet result(fcinfo);
  constexpr int kColumns = 7;
  for (std::size_t k = 0; k < over_time.at.size(); ++k) {
    Datum at = TimestampTzDatum(over_time.at[k]);
    for (std::size_t i = 0; i < over_time.rows[k].size(); ++i) {
      const OutcomeRow& row = over_time.rows[k][i];
      Datum values[kColumns];
      bool nulls[kColumns] = {};
      values[0] = at;
      values[1] = TextDatum(experiment.branch(static_cast<int>(i)));
      values[2] = Int64GetDatum(row.users);
      SetNullableFloat8(values, nulls, 3, row.mean);
      SetNullableFloat8(values, nulls, 4, row.diff);
      SetNullableFloat8(values, nulls, 5, row.diff_ci_low);
      SetNullableFloat8(values, nulls, 6, row.diff_ci_high);
      result.Add(values, nulls);
    }
  }
  return static_cast<Datum>(0);
}

