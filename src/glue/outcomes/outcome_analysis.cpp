#include "glue/outcomes/outcome_analysis.hpp"

#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/outcomes/exposure_query.hpp"
#include "glue/outcomes/outcome_query.hpp"
#include "glue/sql/analysis.hpp"

namespace abtest::glue::outcomes {
namespace {

double Number(const std::optional<std::string>& cell) { return cell ? std::strtod(cell->c_str(), nullptr) : 0; }

std::int64_t Count(const std::optional<std::string>& cell) { return cell ? std::strtoll(cell->c_str(), nullptr, 10) : 0; }

Component ComponentOf(const SimpleMetric& metric) {
  Component component;
  component.source = ResolveSource(metric);
  component.aggregation = metric.aggregation;
  component.window = metric.conversion_window;
  component.cap = metric.cap;
  component.cap_percentile = metric.cap_percentile;
  return component;
}

std::vector<Component> ComponentsOf(const Metric& metric) {
  std::vector<Component> components = {ComponentOf(metric.simple)};
  if (metric.denominator) components.push_back(ComponentOf(*metric.denominator));
  return components;
}

std::vector<QueryParam> ExperimentParam(const CompiledExperiment& experiment) {
  return {QueryParam{UUIDOID, experiment.model().id}};
}

// The branch's position, or -1 for a name the experiment no longer has.
int PositionOf(const CompiledExperiment& experiment, const std::string& branch) {
  const std::vector<Branch>& branches = experiment.model().branches;
  for (std::size_t i = 0; i < branches.size(); ++i)
    if (branches[i].name == branch) return static_cast<int>(i);
  return -1;
}

// Fixes each percentile cap at its value now, for the query over time.
void FixPercentileCaps(const CompiledExperiment& experiment, std::vector<Component>& components) {
  bool any = false;
  for (const Component& c : components) any |= c.cap_percentile.has_value() && !c.cap;
  if (!any) return;
  std::vector<Row> rows = RunAsCaller(CapsQuery(components), ExperimentParam(experiment));
  for (std::size_t i = 0; i < components.size(); ++i)
    if (!rows.empty() && rows[0][i]) components[i].cap = Number(rows[0][i]);
}

std::string ArrayLiteral(const std::vector<std::string>& elements) {
  std::string literal = "{";
  for (std::size_t i = 0; i < elements.size(); ++i) literal += (i ? ",\"" : "\"") + elements[i] + "\"";
  return literal + "}";
}

}  // namespace

void RequireAssignmentLog(const CompiledExperiment& experiment) {
  if (!experiment.model().config.sticky)
    throw Error(ErrorKind::kWrongState,
                "experiment " + Quoted(experiment.name()) + " has no assignment log to analyse (it is not sticky)",
                "The analysis joins abtest.assignments, where only sticky experiments log their users.",
                "Make it sticky with ab_configure(" + experiment.name() + ", sticky => true) before users are routed.");
}

OutcomeSettings OutcomeSettingsOf(const CompiledExperiment& experiment) {
  AnalysisSettings analysis = SettingsOf(experiment);
  OutcomeSettings settings;
  settings.confidence_level = analysis.confidence_level;
  settings.min_sample_size = analysis.min_sample_size;
  settings.mixing_variance = analysis.mixing_variance;
  return settings;
}

std::vector<OutcomeRow> Analyze(const CompiledExperiment& experiment, const Metric& metric,
                                const std::optional<std::string>& cuped_window) {
  RequireAssignmentLog(experiment);
  if (metric.ratio && cuped_window)
    throw Error(ErrorKind::kNotSupported, "CUPED is not available for ratio metric " + Quoted(metric.name), {},
                "Analyse it with cuped => false, or its numerator and denominator with CUPED each.");
  std::vector<Component> components = ComponentsOf(metric);
  std::vector<Row> rows = RunAsCaller(PerBranchQuery(components, cuped_window), ExperimentParam(experiment));
  std::size_t branches = experiment.model().branches.size();
  std::vector<UserValueStats> values(branches);
  std::vector<RatioStats> ratios(branches);
  for (const Row& row : rows) {
    int position = row[0] ? PositionOf(experiment, *row[0]) : -1;
    if (position < 0) continue;
    std::int64_t users = Count(row[1]);
    double mean_a = Number(row[2]), var_a = Number(row[3]), mean_b = Number(row[4]), var_b = Number(row[5]),
           cov = Number(row[6]);
    values[static_cast<std::size_t>(position)] = UserValueStats{users, mean_a, var_a, mean_b, var_b, cov};
    ratios[static_cast<std::size_t>(position)] = RatioStats{users, mean_a, mean_b, var_a, var_b, cov};
  }
  OutcomeSettings settings = OutcomeSettingsOf(experiment);
  if (metric.ratio) return AnalyzeRatios(ratios, settings);
  return AnalyzeMeans(values, cuped_window.has_value(), settings);
}

std::optional<Start> StartOf(const CompiledExperiment& experiment) {
  std::optional<std::string> document = catalog::QueryAsOwner(
      "SELECT jsonb_build_object('started_at', started_at::text, "
      "'elapsed', extract(epoch FROM now() - started_at))::text FROM abtest.experiments WHERE id = $1::uuid",
      {experiment.model().id.c_str()});
  nlohmann::json fields = nlohmann::json::parse(document.value_or("{}"));
  if (!fields["started_at"].is_string()) return std::nullopt;
  return Start{fields["started_at"].get<std::string>(),
               fields["elapsed"].is_number() ? fields["elapsed"].get<double>() : 0};
}

OverTime AnalyzeOverTime(const CompiledExperiment& experiment, const Metric& metric, const std::string& step,
                         double step_seconds) {
  RequireAssignmentLog(experiment);
  std::optional<Start> start = StartOf(experiment);
  if (!start)
    throw Error(ErrorKind::kWrongState, "experiment " + Quoted(experiment.name()) + " has not started", {},
                "Start it with ab_start; the analysis over time runs from its start.");
  if (start->elapsed_seconds / step_seconds > kMaxOverTimeSteps)
    throw Error(ErrorKind::kProgramLimit,
                "step " + step + " gives more than " + std::to_string(kMaxOverTimeSteps) + " points for experiment " +
                    Quoted(experiment.name()),
                {}, "Choose a longer step.");

  OverTime result;
  std::vector<Row> bounds = RunAsCaller(
      "SELECT t::pg_catalog.text, extract(epoch FROM t)::pg_catalog.float8 FROM ("
      "SELECT t FROM pg_catalog.generate_series($1::pg_catalog.timestamptz + $2::pg_catalog.interval, "
      "pg_catalog.now(), $2::pg_catalog.interval) AS t WHERE t < pg_catalog.now() "
      "UNION ALL SELECT pg_catalog.now()) AS b ORDER BY b.t",
      {QueryParam{TIMESTAMPTZOID, start->started_at}, QueryParam{INTERVALOID, step}});
  for (const Row& row : bounds) {
    result.at.push_back(row[0].value_or(""));
    result.at_epoch.push_back(Number(row[1]));
  }

  std::vector<Component> components = ComponentsOf(metric);
  FixPercentileCaps(experiment, components);
  std::vector<Row> rows = RunAsCaller(OverTimeQuery(components),
                                      {QueryParam{UUIDOID, experiment.model().id},
                                       QueryParam{TIMESTAMPTZARRAYOID, ArrayLiteral(result.at)}});
  std::size_t branches = experiment.model().branches.size();
  std::size_t steps = result.at.size();
  // increments[branch][step - 1]
  std::vector<std::vector<CumulativeSums>> increments(branches, std::vector<CumulativeSums>(steps));
  for (const Row& row : rows) {
    int position = row[0] ? PositionOf(experiment, *row[0]) : -1;
    std::int64_t step_number = Count(row[1]);
    if (position < 0 || step_number < 1 || static_cast<std::size_t>(step_number) > steps) continue;
    CumulativeSums& at = increments[static_cast<std::size_t>(position)][static_cast<std::size_t>(step_number - 1)];
    at.users += Count(row[2]);
    at.sum_n += Number(row[3]);
    at.sum_nn += Number(row[4]);
    at.sum_d += Number(row[5]);
    at.sum_dd += Number(row[6]);
    at.sum_nd += Number(row[7]);
  }
  OutcomeSettings settings = OutcomeSettingsOf(experiment);
  std::vector<CumulativeSums> running(branches);
  for (std::size_t k = 0; k < steps; ++k) {
    std::vector<UserValueStats> values;
    std::vector<RatioStats> ratios;
    for (std::size_t b = 0; b < branches; ++b) {
      CumulativeSums& sums = running[b];
      const CumulativeSums& step_sums = increments[b][k];
      sums.users += step_sums.users;
      sums.sum_n += step_sums.sum_n;
      sums.sum_nn += step_sums.sum_nn;
      sums.sum_d += step_sums.sum_d;
      sums.sum_dd += step_sums.sum_dd;
      sums.sum_nd += step_sums.sum_nd;
      values.push_back(UserValueStatsOf(sums));
      ratios.push_back(RatioStatsOf(sums));
    }
    result.rows.push_back(metric.ratio ? AnalyzeRatios(ratios, settings) : AnalyzeMeans(values, false, settings));
  }
  return result;
}

}  // namespace abtest::glue::outcomes
