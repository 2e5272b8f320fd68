// Branch comparisons as abtest reports them: the statistics of statistics.hpp and
// sequential.hpp applied to the counters of metrics.hpp, with the project's rules for
// significance, multiple branches and auto-completion. Differences are b - a.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/metrics.hpp"

namespace abtest {

// What an experiment's configuration says about its analysis.
struct AnalysisSettings {
  double confidence_level = 0.95;
  std::int64_t min_sample_size = 100;
  double mixing_variance = 1e-4;  // tau^2 of the always-valid p-value (sequential.hpp)
};

// A comparison is of two different branches: comparing one with itself is refused
// (kInvalidParameter), naming both the branch and the experiment. Branch names are
// unique within an experiment, so equal names are the same branch. `hint` replaces the
// default hint (which points to ab_compare_all).
void RequireDistinctBranches(const std::string& experiment, const std::string& branch_a,
                             const std::string& branch_b, const std::string& hint = {});

// ab_compare: success rates (a query is a trial, a success a conversion) and latency.
// Optional fields are NULL in SQL: no data to compute them from.
struct QueryComparison {
  std::uint64_t sample_size_a = 0;
  std::uint64_t sample_size_b = 0;
  double success_rate_a = 0;
  double success_rate_b = 0;
  double success_rate_diff = 0;
  std::optional<double> relative_lift;
  std::optional<double> ci_low;
  std::optional<double> ci_high;
  std::optional<double> p_value;  // two-proportion z-test, pooled
  bool is_significant = false;
  std::optional<double> confidence;
  double prob_b_beats_a = 0.5;
  double sequential_p_value = 1;
  double avg_latency_a = 0;
  double avg_latency_b = 0;
  double latency_diff = 0;
  std::optional<double> latency_p_value;  // Welch
};

// `previous_sequential_p` is the running minimum of earlier looks at this pair (1 when
// there were none): the result's sequential p-value never rises.
QueryComparison CompareQueries(const QueryCounters& a, const QueryCounters& b, const AnalysisSettings& settings,
                               double previous_sequential_p = 1);

// ab_compare_event: Welch's t-test on the values of one event. relative_lift is NULL when
// mean_a is 0, or so close to 0 that the ratio overflows.
struct EventComparison {
  std::uint64_t count_a = 0;
  std::uint64_t count_b = 0;
  std::optional<double> mean_a;
  std::optional<double> mean_b;
  std::optional<double> diff;
  std::optional<double> relative_lift;
  std::optional<double> ci_low;
  std::optional<double> ci_high;
  std::optional<double> p_value;
  bool is_significant = false;
  std::optional<double> confidence;
};

EventComparison CompareEvents(const RunningMoments& a, const RunningMoments& b, const AnalysisSettings& settings);

// ab_compare_queries: one query id in two branches, compared on the natural logarithm of
// the latencies of its successful calls (the moments QueryLatency::log_latency keeps).
// Latencies are right-skewed and effects on them multiplicative: on the log scale they
// are nearly symmetric and an effect is a shift, and the mean of the logs is the log of
// the geometric mean. Welch's t-test needs only mergeable moments, which shared memory
// holds; a rank test would need every value. Optional fields are NULL in SQL.
struct QueryLatencyComparison {
  // exp(mean_log_b - mean_log_a) - 1: the relative change of the geometric mean; needs a
  // successful call in each branch.
  std::optional<double> relative_change;
  // Welch on the log latencies; needs two successful calls in each branch and some
  // variance (CompareMeans).
  std::optional<double> p_value;
  std::optional<double> adjusted_p_value;  // Holm across the compared query ids that have a p-value
  // adjusted_p_value < 1 - confidence_level, and both branches have min_sample_size
  // successful calls (IsSignificant).
  bool is_significant = false;
};

// One result per pair of log-latency moments (a, b), in the order given.
std::vector<QueryLatencyComparison> CompareQueryLatencies(
    const std::vector<std::pair<RunningMoments, RunningMoments>>& log_latencies, const AnalysisSettings& settings);

// ab_compare_all: every branch against the control (index 0), p-values Holm-adjusted
// over the comparisons that have one; significance is decided on the adjusted value.
struct ControlComparison {
  int branch = 0;
  QueryComparison comparison;
  std::optional<double> adjusted_p_value;
  bool is_significant = false;
};

std::vector<ControlComparison> CompareAllToControl(const std::vector<QueryCounters>& branches,
                                                   const AnalysisSettings& settings,
                                                   const std::vector<double>& previous_sequential_p = {});

// Auto-completion, decided on always-valid p-values only (a naive p-value watched
// continuously would stop on noise). Each challenger is tested against the control at
// alpha / challengers (Bonferroni), both with at least min_sample_size queries:
// - the best challenger (highest success rate) beats the control: it wins;
// - every challenger is worse than the control, each significantly: the control wins;
// - otherwise, before max_duration: keep running; at max_duration: complete without
//   a winner.
struct AutoCompleteDecision {
  bool complete = false;
  std::optional<int> winner;
};

AutoCompleteDecision DecideAutoComplete(const std::vector<QueryCounters>& branches,
                                        const std::vector<double>& sequential_p, const AnalysisSettings& settings,
                                        bool past_max_duration);

}  // namespace abtest
