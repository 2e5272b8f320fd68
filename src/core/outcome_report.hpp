// The results of ab_analyze for the metrics attached to an experiment, as the text
// report (ab_report) and the HTML report (ab_report_html) show them, and the verdict
// both state. Plain inputs, so that the wording and the decisions are unit-tested.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "core/outcome.hpp"
#include "core/statistics.hpp"

namespace abtest {

// One point of the cumulative analysis (ab_analyze_over_time) of one challenger.
struct TimePoint {
  double at_epoch = 0;      // seconds since 1970-01-01 UTC
  std::string at;           // as PostgreSQL prints it
  std::int64_t users = 0;   // the challenger's users at that instant
  std::optional<double> diff;
  std::optional<double> diff_ci_low;
  std::optional<double> diff_ci_high;
};

// One attached metric's analysis.
struct MetricReport {
  std::string name;
  std::string role;          // "goal", "guardrail" or "secondary"
  std::string description;   // may be empty
  bool higher_is_better = true;
  bool ratio = false;
  bool cuped = false;
  std::optional<std::string> error;  // the analysis failed (e.g. its source was dropped): shown instead
  std::vector<std::string> branches;  // names, the control first; parallel to rows
  std::vector<OutcomeRow> rows;
  // Per challenger (index 1.. of branches; entry 0 is empty), the cumulative points in time order.
  std::vector<std::vector<TimePoint>> over_time;
};

// What the results say, in words:
// - a sample-ratio mismatch comes first: the results cannot be trusted;
// - a guardrail significantly worse (in its direction) in a branch is a warning naming both;
// - a challenger significantly better on a goal, with no guardrail significantly worse
//   for it, is recommended (the one with the largest relative lift when several);
// - otherwise: keep running (or, without data, no data yet).
struct Verdict {
  std::string headline;                  // one sentence
  std::vector<std::string> warnings;     // one sentence each
  std::optional<int> recommended_branch; // index into branches
};

// How a challenger's row compares with the control in the metric's direction: better or
// worse only when significant (Holm); a significant row without a diff counts as neither.
enum class Effect { kNotSignificant, kBetter, kWorse };
Effect SignificantEffect(const OutcomeRow& row, bool higher_is_better);

// A statistic for people: about four significant digits, no exponent between 1e-3 and
// 1e6, "n/a" for a value that is missing or not finite. `sign` prefixes a '+' to
// positive values (differences). With `scale`, the decimals are those of a value of that
// magnitude, so that an estimate and its interval are written alike.
std::string FormatStatistic(std::optional<double> value, bool sign = false, std::optional<double> scale = {});

// The largest magnitude among the finite values, for FormatStatistic's `scale`.
double LargestMagnitude(std::initializer_list<std::optional<double>> values);

Verdict DecideVerdict(const std::vector<MetricReport>& metrics, const std::optional<SampleRatioCheck>& sample_ratio);

// The section of ab_report for one metric, lines without trailing newlines.
std::vector<std::string> MetricReportLines(const MetricReport& metric, double confidence_level);

}  // namespace abtest
