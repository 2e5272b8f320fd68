#include "core/comparison.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/sequential.hpp"
#include "core/statistics.hpp"

namespace abtest {
namespace {

Conversions ConversionsOf(const QueryCounters& q) {
  return Conversions{static_cast<std::int64_t>(q.successes), static_cast<std::int64_t>(q.queries())};
}

SampleMoments SampleMomentsOf(const RunningMoments& m) {
  return SampleMoments{static_cast<std::int64_t>(m.count), m.mean, m.Variance().value_or(0)};
}

bool Significant(const std::optional<double>& p, const AnalysisSettings& settings, std::uint64_t n_a,
                 std::uint64_t n_b) {
  return p && IsSignificant(*p, settings.confidence_level, static_cast<std::int64_t>(n_a),
                            static_cast<std::int64_t>(n_b), settings.min_sample_size);
}

double PreviousAt(const std::vector<double>& values, std::size_t i) { return i < values.size() ? values[i] : 1; }

}  // namespace

void RequireDistinctBranches(const std::string& experiment, const std::string& branch_a,
                             const std::string& branch_b, const std::string& hint) {
  if (branch_a == branch_b)
    throw Error(ErrorKind::kInvalidParameter,
                "cannot compare branch " + Quoted(branch_a) + " of experiment " + Quoted(experiment) + " with itself",
                {},
                !hint.empty() ? hint
                              : "Name two different branches; ab_compare_all('" + experiment +
                                    "') compares every branch with the control.");
}

QueryComparison CompareQueries(const QueryCounters& a, const QueryCounters& b, const AnalysisSettings& settings,
                               double previous_sequential_p) {
  QueryComparison result;
  result.sample_size_a = a.queries();
  result.sample_size_b = b.queries();
  result.success_rate_a = a.SuccessRate();
  result.success_rate_b = b.SuccessRate();
  result.success_rate_diff = result.success_rate_b - result.success_rate_a;
  Conversions conversions_a = ConversionsOf(a), conversions_b = ConversionsOf(b);
  if (auto test = CompareProportions(conversions_a, conversions_b, settings.confidence_level)) {
    result.relative_lift = test->relative_lift;
    result.ci_low = test->ci_lower;
    result.ci_high = test->ci_upper;
    result.p_value = test->p_value;
    result.confidence = test->confidence;
  }
  result.is_significant = Significant(result.p_value, settings, result.sample_size_a, result.sample_size_b);
  result.prob_b_beats_a = ProbabilityBBeatsA(conversions_a, conversions_b);
  result.sequential_p_value = UpdateSequentialPValue(std::clamp(previous_sequential_p, 0.0, 1.0), conversions_a,
                                                     conversions_b, settings.mixing_variance);
  result.avg_latency_a = a.AverageLatency();
  result.avg_latency_b = b.AverageLatency();
  result.latency_diff = result.avg_latency_b - result.avg_latency_a;
  if (auto test = CompareMeans(SampleMomentsOf(a.latency), SampleMomentsOf(b.latency), settings.confidence_level))
    result.latency_p_value = test->p_value;
  return result;
}

EventComparison CompareEvents(const RunningMoments& a, const RunningMoments& b, const AnalysisSettings& settings) {
  EventComparison result;
  result.count_a = a.count;
  result.count_b = b.count;
  if (a.count > 0) result.mean_a = a.mean;
  if (b.count > 0) result.mean_b = b.mean;
  if (result.mean_a && result.mean_b) {
    result.diff = *result.mean_b - *result.mean_a;
    // A mean as close to 0 as a denormal makes the ratio overflow: no lift, like a mean of 0.
    if (*result.mean_a != 0 && std::isfinite(*result.diff / *result.mean_a))
      result.relative_lift = *result.diff / *result.mean_a;
  }
  if (auto test = CompareMeans(SampleMomentsOf(a), SampleMomentsOf(b), settings.confidence_level)) {
    result.ci_low = test->ci_lower;
    result.ci_high = test->ci_upper;
    result.p_value = test->p_value;
    result.confidence = test->confidence;
  }
  result.is_significant = Significant(result.p_value, settings, a.count, b.count);
  return result;
}

std::vector<QueryLatencyComparison> CompareQueryLatencies(
    const std::vector<std::pair<RunningMoments, RunningMoments>>& log_latencies, const AnalysisSettings& settings) {
  std::vector<QueryLatencyComparison> results(log_latencies.size());
  std::vector<double> p_values;
  for (std::size_t i = 0; i < log_latencies.size(); ++i) {
    const RunningMoments& a = log_latencies[i].first;
    const RunningMoments& b = log_latencies[i].second;
    QueryLatencyComparison& row = results[i];
    // Logs of latencies within [1 us, 1e6 ms] differ by at most ln(1e9); the check is
    // for moments from anywhere else.
    if (a.count > 0 && b.count > 0 && std::isfinite(std::expm1(b.mean - a.mean)))
      row.relative_change = std::expm1(b.mean - a.mean);
    if (auto test = CompareMeans(SampleMomentsOf(a), SampleMomentsOf(b), settings.confidence_level)) {
      row.p_value = test->p_value;
      p_values.push_back(test->p_value);
    }
  }
  std::vector<double> adjusted = HolmAdjust(p_values);
  std::size_t next = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    QueryLatencyComparison& row = results[i];
    if (!row.p_value) continue;
    row.adjusted_p_value = adjusted[next++];
    row.is_significant =
        Significant(row.adjusted_p_value, settings, log_latencies[i].first.count, log_latencies[i].second.count);
  }
  return results;
}

std::vector<ControlComparison> CompareAllToControl(const std::vector<QueryCounters>& branches,
                                                   const AnalysisSettings& settings,
                                                   const std::vector<double>& previous_sequential_p) {
  std::vector<ControlComparison> results;
  if (branches.empty()) return results;
  std::vector<double> p_values;
  for (std::size_t i = 1; i < branches.size(); ++i) {
    ControlComparison row;
    row.branch = static_cast<int>(i);
    row.comparison = CompareQueries(branches[0], branches[i], settings, PreviousAt(previous_sequential_p, i));
    if (row.comparison.p_value) p_values.push_back(*row.comparison.p_value);
    results.push_back(row);
  }
  std::vector<double> adjusted = HolmAdjust(p_values);
  std::size_t next = 0;
  for (ControlComparison& row : results) {
    if (!row.comparison.p_value) continue;
    row.adjusted_p_value = adjusted[next++];
    row.is_significant = Significant(row.adjusted_p_value, settings, row.comparison.sample_size_a,
                                     row.comparison.sample_size_b);
  }
  return results;
}

AutoCompleteDecision DecideAutoComplete(const std::vector<QueryCounters>& branches,
                                        const std::vector<double>& sequential_p, const AnalysisSettings& settings,
                                        bool past_max_duration) {
  AutoCompleteDecision decision;
  std::size_t challengers = branches.empty() ? 0 : branches.size() - 1;
  if (challengers > 0) {
    double alpha = (1 - settings.confidence_level) / static_cast<double>(challengers);
    const QueryCounters& control = branches[0];
    auto enough = [&](const QueryCounters& q) {
      return static_cast<std::int64_t>(q.queries()) >= settings.min_sample_size;
    };
    auto decisive = [&](std::size_t i) {
      return enough(control) && enough(branches[i]) && PreviousAt(sequential_p, i) < alpha;
    };
    std::size_t best = 1;
    for (std::size_t i = 2; i < branches.size(); ++i)
      if (branches[i].SuccessRate() > branches[best].SuccessRate()) best = i;
    if (branches[best].SuccessRate() > control.SuccessRate() && decisive(best)) {
      decision.complete = true;
      decision.winner = static_cast<int>(best);
      return decision;
    }
    bool control_wins = true;
    for (std::size_t i = 1; i < branches.size(); ++i)
      control_wins = control_wins && branches[i].SuccessRate() < control.SuccessRate() && decisive(i);
    if (control_wins) {
      decision.complete = true;
      decision.winner = 0;
      return decision;
    }
  }
  decision.complete = past_max_duration;
  return decision;
}

}  // namespace abtest
