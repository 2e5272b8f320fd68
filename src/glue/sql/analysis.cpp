// SQL-callable analysis: ab_compare, ab_compare_event, ab_compare_all, ab_srm,
// ab_sample_size, ab_report and ab_report_html. The statistics are the core's (comparison.hpp,
// report.hpp); this file gathers counters and catalog facts and shapes the rows. The
// comparisons and ab_srm read this server's counters, or, with a sources argument,
// several servers' merged (merge/counters.hpp): the same code analyses both.

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/comparison.hpp"
#include "core/error.hpp"
#include "core/html_report.hpp"
#include "core/lifecycle.hpp"
#include "core/report.hpp"
#include "core/sample_size.hpp"
#include "core/sequential.hpp"
#include "core/statistics.hpp"
#include "core/strategy.hpp"
#include "glue/sql/analysis.hpp"
#include "glue/args.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/experiment_arg.hpp"
#include "glue/outcomes/metric_reports.hpp"
#include "glue/guard.hpp"
#include "glue/merge/counters.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/result_set.hpp"
#include "glue/shmem/shared_state.hpp"

namespace abtest::glue {

double sequential_mixing_variance = kDefaultMixingVariance;

namespace {


// The experiment's timing, from its catalog row: started_at as text, hours since then
// and max_duration in hours (each absent when NULL).
struct Timing {
  std::optional<std::string> started_at;
  std::optional<double> running_hours;
  std::optional<double> max_duration_hours;
};

Timing TimingOf(const CompiledExperiment& experiment) {
  std::optional<std::string> document = catalog::QueryAsOwner(
      "SELECT jsonb_build_object('started_at', started_at::text, "
      "  'running_hours', extract(epoch FROM clock_timestamp() - started_at) / 3600, "
      "  'max_duration_hours', extract(epoch FROM max_duration) / 3600) "
      "FROM abtest.experiments WHERE id = $1::uuid",
      {experiment.model().id.c_str()});
  Timing timing;
  if (!document) return timing;
  nlohmann::json fields = nlohmann::json::parse(*document);
  if (fields["started_at"].is_string()) timing.started_at = fields["started_at"].get<std::string>();
  if (fields["running_hours"].is_number()) timing.running_hours = fields["running_hours"].get<double>();
  if (fields["max_duration_hours"].is_number()) timing.max_duration_hours = fields["max_duration_hours"].get<double>();
  return timing;
}

// Users per branch for the sample-ratio check, from the shared-memory counters, so
// that it reflects every routed user at once: the users assigned to each branch of a
// sticky experiment, the exposures of any other. Only users in the experiment are
// counted (README, "Who is in an experiment").
std::vector<std::int64_t> ObservedUsers(const CompiledExperiment& experiment,
                                        const std::vector<metrics::BranchSnapshot>& branches) {
  std::vector<std::int64_t> observed(branches.size(), 0);
  bool sticky = experiment.model().config.sticky;
  for (std::size_t i = 0; i < branches.size(); ++i)
    observed[i] = static_cast<std::int64_t>(sticky ? branches[i].assigned_users : branches[i].exposures);
  return observed;
}

// What ObservedUsers counts, in words for the reports.
const char* UsersSourceOf(const CompiledExperiment& experiment) {
  return experiment.model().config.sticky ? "assigned users" : "exposures";
}

// The observed users per branch against the experiment's allocation.
std::optional<SampleRatioCheck> SampleRatioOf(const CompiledExperiment& experiment,
                                              const std::vector<std::int64_t>& users) {
  std::vector<int> shares;
  for (const Branch& branch : experiment.model().branches) shares.push_back(branch.allocation);
  return CheckSampleRatio(users, shares);
}

std::vector<QueryCounters> CountersOf(const std::vector<metrics::BranchSnapshot>& branches) {
  std::vector<QueryCounters> counters;
  for (const metrics::BranchSnapshot& branch : branches) counters.push_back(branch.queries);
  return counters;
}

// The comparison's columns shared by ab_compare and ab_compare_all, from `first` on:
// sample_size_a .. relative_lift, ci_low, ci_high, p_value.
int SetProportionColumns(Datum* values, bool* nulls, int first, const QueryComparison& c) {
  int column = first;
  values[column++] = Int64GetDatum(static_cast<std::int64_t>(c.sample_size_a));
  values[column++] = Int64GetDatum(static_cast<std::int64_t>(c.sample_size_b));
  values[column++] = Float8GetDatum(c.success_rate_a);
  values[column++] = Float8GetDatum(c.success_rate_b);
  values[column++] = Float8GetDatum(c.success_rate_diff);
  SetNullableFloat8(values, nulls, column++, c.relative_lift);
  SetNullableFloat8(values, nulls, column++, c.ci_low);
  SetNullableFloat8(values, nulls, column++, c.ci_high);
  SetNullableFloat8(values, nulls, column++, c.p_value);
  return column;
}

}  // namespace

AnalysisSettings SettingsOf(const CompiledExperiment& experiment) {
  AnalysisSettings settings;
  settings.confidence_level = experiment.model().config.confidence_level;
  settings.min_sample_size = experiment.model().config.min_sample_size;
  settings.mixing_variance = sequential_mixing_variance;
  return settings;
}

namespace {

// One look at every branch against the control: lowers each running minimum of the
// always-valid p-value and returns them (index 0, the control, is 1).
std::vector<double> LookAtSequentialP(const CompiledExperiment& experiment,
                                      const std::vector<metrics::BranchSnapshot>& branches) {
  AnalysisSettings settings = SettingsOf(experiment);
  std::vector<double> minimums(branches.size(), 1.0);
  for (std::size_t i = 1; i < branches.size(); ++i) {
    QueryComparison c = CompareQueries(branches[0].queries, branches[i].queries, settings, branches[i].sequential_p);
    minimums[i] = metrics::LowerSequentialP(experiment, static_cast<int>(i), c.sequential_p_value);
  }
  return minimums;
}

}  // namespace

std::optional<AutoCompleteDecision> AutoCompleteDecisionFor(const CompiledExperiment& experiment) {
  const Experiment& model = experiment.model();
  if (model.state != State::kActive || !model.config.auto_complete) return std::nullopt;
  std::vector<metrics::BranchSnapshot> branches = metrics::ReadBranches(experiment);
  std::vector<double> sequential = LookAtSequentialP(experiment, branches);
  std::vector<QueryCounters> counters = CountersOf(branches);
  Timing timing = TimingOf(experiment);
  bool past_max_duration = timing.max_duration_hours && timing.running_hours &&
                           *timing.running_hours >= *timing.max_duration_hours;
  return DecideAutoComplete(counters, sequential, SettingsOf(experiment), past_max_duration);
}

}  // namespace abtest::glue

using namespace abtest;
using namespace abtest::glue;

ABTEST_SQL_FUNCTION(ab_compare) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  int a = RequireBranch(fcinfo, experiment, 1);
  int b = RequireBranch(fcinfo, experiment, 2);
  RequireDistinctBranches(experiment.name(), experiment.branch(a), experiment.branch(b));
  std::vector<metrics::BranchSnapshot> branches = merge::Branches(fcinfo, experiment, 3);
  const metrics::BranchSnapshot& snapshot_a = branches[static_cast<std::size_t>(a)];
  const metrics::BranchSnapshot& snapshot_b = branches[static_cast<std::size_t>(b)];
  // Against the control, this look joins the running minimum of earlier ones; a look at
  // merged counters is one of its own (nowhere to keep a minimum for them).
  bool against_control = a == 0 && b != 0 && !merge::HasSources(fcinfo, 3);
  QueryComparison c = CompareQueries(snapshot_a.queries, snapshot_b.queries, SettingsOf(experiment),
                                     against_control ? snapshot_b.sequential_p : 1);
  if (against_control) c.sequential_p_value = metrics::LowerSequentialP(experiment, b, c.sequential_p_value);

  ResultSet rows(fcinfo);
  constexpr int kColumns = 19;
  Datum values[kColumns];
  bool nulls[kColumns] = {};
  values[0] = TextDatum(experiment.branch(a));
  values[1] = TextDatum(experiment.branch(b));
  int column = SetProportionColumns(values, nulls, 2, c);
  values[column++] = BoolGetDatum(c.is_significant);
  SetNullableFloat8(values, nulls, column++, c.confidence);
  values[column++] = Float8GetDatum(c.prob_b_beats_a);
  values[column++] = Float8GetDatum(c.sequential_p_value);
  values[column++] = Float8GetDatum(c.avg_latency_a);
  values[column++] = Float8GetDatum(c.avg_latency_b);
  values[column++] = Float8GetDatum(c.latency_diff);
  SetNullableFloat8(values, nulls, column++, c.latency_p_value);
  rows.Add(values, nulls);
  return static_cast<Datum>(0);
}

ABTEST_SQL_FUNCTION(ab_compare_event) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  int a = RequireBranch(fcinfo, experiment, 1);
  int b = RequireBranch(fcinfo, experiment, 2);
  RequireDistinctBranches(experiment.name(), experiment.branch(a), experiment.branch(b));
  std::string event_name = TextArg(fcinfo, 3, "event_name");
  std::vector<metrics::EventSnapshot> events = merge::Events(fcinfo, experiment, 4);
  RunningMoments moments_a, moments_b;
  for (const metrics::EventSnapshot& event : events) {
    if (event_name != event.name) continue;
    if (event.position == a) moments_a = event.moments;
    if (event.position == b) moments_b = event.moments;
  }
  EventComparison c = CompareEvents(moments_a, moments_b, SettingsOf(experiment));

  ResultSet rows(fcinfo);
  constexpr int kColumns = 11;
  Datum values[kColumns];
  bool nulls[kColumns] = {};
  values[0] = Int64GetDatum(static_cast<std::int64_t>(c.count_a));
  values[1] = Int64GetDatum(static_cast<std::int64_t>(c.count_b));
  SetNullableFloat8(values, nulls, 2, c.mean_a);
  SetNullableFloat8(values, nulls, 3, c.mean_b);
  SetNullableFloat8(values, nulls, 4, c.diff);
  SetNullableFloat8(values, nulls, 5, c.relative_lift);
  SetNullableFloat8(values, nulls, 6, c.ci_low);
  SetNullableFloat8(values, nulls, 7, c.ci_high);
  SetNullableFloat8(values, nulls, 8, c.p_value);
  values[9] = BoolGetDatum(c.is_significant);
  SetNullableFloat8(values, nulls, 10, c.confidence);
  rows.Add(values, nulls);
  return static_cast<Datum>(0);
}

// Every branch against the control, Holm-adjusted.
ABTEST_SQL_FUNCTION(ab_compare_all) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  std::vector<metrics::BranchSnapshot> branches = merge::Branches(fcinfo, experiment, 1);
  std::vector<double> sequential = merge::HasSources(fcinfo, 1) ? std::vector<double>(branches.size(), 1.0)
                                                                : LookAtSequentialP(experiment, branches);
  std::vector<QueryCounters> counters = CountersOf(branches);
  std::vector<ControlComparison> comparisons = CompareAllToControl(counters, SettingsOf(experiment), sequential);

  ResultSet rows(fcinfo);
  constexpr int kColumns = 15;
  for (const ControlComparison& row : comparisons) {
    Datum values[kColumns];
    bool nulls[kColumns] = {};
    values[0] = TextDatum(experiment.branch(0));
    values[1] = TextDatum(experiment.branch(row.branch));
    int column = SetProportionColumns(values, nulls, 2, row.comparison);
    SetNullableFloat8(values, nulls, column++, row.adjusted_p_value);
    values[column++] = BoolGetDatum(row.is_significant);
    values[column++] = Float8GetDatum(row.comparison.prob_b_beats_a);
    values[column++] = Float8GetDatum(row.comparison.sequential_p_value);
    rows.Add(values, nulls);
  }
  return static_cast<Datum>(0);
}

ABTEST_SQL_FUNCTION(ab_srm) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  std::optional<SampleRatioCheck> check =
      SampleRatioOf(experiment, ObservedUsers(experiment, merge::Branches(fcinfo, experiment, 1)));
  ResultSet rows(fcinfo);
  Datum values[4];
  // Users in a branch allocated 0% make the statistic infinite: NULL, with p = 0 and a mismatch.
  bool nulls[4] = {!check || !std::isfinite(check->chi_square), !check, !check, false};
  values[0] = Float8GetDatum(check ? check->chi_square : 0);
  values[1] = Int32GetDatum(check ? check->degrees_of_freedom : 0);
  values[2] = Float8GetDatum(check ? check->p_value : 0);
  values[3] = BoolGetDatum(check && check->mismatch);
  rows.Add(values, nulls);
  return static_cast<Datum>(0);
}

ABTEST_SQL_FUNCTION(ab_sample_size) {
  SampleSizeRequest request;
  request.baseline_rate = Float8Arg(fcinfo, 0, "baseline_rate");
  request.mde = Float8Arg(fcinfo, 1, "minimum_detectable_effect");
  request.alpha = Float8Arg(fcinfo, 2, "alpha");
  request.power = Float8Arg(fcinfo, 3, "power");
  PG_RETURN_INT64(RequiredSampleSize(request));
}

ABTEST_SQL_FUNCTION(ab_report) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  const Experiment& model = experiment.model();
  std::vector<metrics::BranchSnapshot> branches = metrics::ReadBranches(experiment);
  Timing timing = TimingOf(experiment);

  ReportInput input;
  input.experiment = model.name;
  input.state = StateName(model.state);
  input.strategy = StrategyName(model.strategy.kind);
  input.sticky = model.config.sticky;
  input.started_at = timing.started_at;
  input.running_hours = timing.running_hours;
  input.max_duration_hours = timing.max_duration_hours;
  input.winner = model.winner;
  input.settings = SettingsOf(experiment);
  input.users_source = UsersSourceOf(experiment);
  std::vector<std::int64_t> users = ObservedUsers(experiment, branches);
  for (std::size_t i = 0; i < branches.size(); ++i) {
    ReportBranch branch;
    branch.name = experiment.branch(static_cast<int>(i));
    branch.allocation = model.branches[i].allocation;
    branch.queries = branches[i].queries;
    branch.users = static_cast<std::uint64_t>(users[i]);
    const QueryCounters& q = branches[i].queries;
    branch.p95_latency_ms = LatencyQuantile(branches[i].histogram, q.queries(), 0.95, q.min_latency_ms,
                                            q.max_latency_ms);
    branch.sequential_p = i == 0 ? 1 : branches[i].sequential_p;
    input.branches.push_back(branch);
  }
  input.sample_ratio = SampleRatioOf(experiment, users);
  pg_uuid_t id = UuidFromText(model.id);
  for (const metrics::EventSnapshot& event : metrics::ReadEvents(&id)) input.events += event.moments.count;
  input.metrics = outcomes::AttachedMetricReports(experiment, false);

  std::vector<std::string> lines = ReportLines(input);
  ResultSet rows(fcinfo, TEXTOID);
  for (const std::string& line : lines) {
    Datum value = TextDatum(line);
    bool null = false;
    rows.Add(&value, &null);
  }
  return static_cast<Datum>(0);
}

// ab_report_html(experiment): one self-contained page; the metrics with their
// cumulative effect over time.
ABTEST_SQL_FUNCTION(ab_report_html) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  const Experiment& model = experiment.model();
  std::vector<metrics::BranchSnapshot> branches = metrics::ReadBranches(experiment);
  Timing timing = TimingOf(experiment);

  HtmlReportInput input;
  input.experiment = model.name;
  input.description = model.description.value_or("");
  input.state = StateName(model.state);
  input.strategy = StrategyName(model.strategy.kind);
  input.started_at = timing.started_at;
  input.winner = model.winner;
  input.generated_at = catalog::TransactionTime();
  input.confidence_level = model.config.confidence_level;
  input.min_sample_size = model.config.min_sample_size;
  input.users_source = UsersSourceOf(experiment);
  std::vector<std::int64_t> users = ObservedUsers(experiment, branches);
  for (std::size_t i = 0; i < branches.size(); ++i)
    input.branches.push_back(HtmlBranch{experiment.branch(static_cast<int>(i)), model.branches[i].allocation, users[i]});
  input.sample_ratio = SampleRatioOf(experiment, users);
  input.metrics = outcomes::AttachedMetricReports(experiment, true);
  return TextResult(ReportHtml(input));
}
