// Inputs of the outcome reports for the unit tests (outcome_report_test.cpp,
// html_report_test.cpp): rows as ab_analyze returns them, and a whole sample page.
#pragma once

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "core/html_report.hpp"
#include "core/outcome.hpp"
#include "core/outcome_report.hpp"

namespace abtest::sample {

inline OutcomeRow ControlRow(std::int64_t users, double mean, double stddev) {
  OutcomeRow row;
  row.users = users;
  row.mean = mean;
  row.stddev = stddev;
  return row;
}

// A challenger `diff` away from a control of mean `control_mean`, with an interval of
// +-halfwidth; significant when the interval excludes 0 (Holm p chosen to match).
inline OutcomeRow ChallengerRow(std::int64_t users, double control_mean, double stddev, double diff,
                                double halfwidth) {
  OutcomeRow row;
  row.users = users;
  row.mean = control_mean + diff;
  row.stddev = stddev;
  row.diff = diff;
  row.diff_ci_low = diff - halfwidth;
  row.diff_ci_high = diff + halfwidth;
  if (control_mean != 0) {
    row.relative_lift = diff / control_mean;
    row.lift_ci_low = (diff - halfwidth) / control_mean;
    row.lift_ci_high = (diff + halfwidth) / control_mean;
  }
  const bool excludes_zero = diff - halfwidth > 0 || diff + halfwidth < 0;
  row.p_value = excludes_zero ? 0.004 : 0.31;
  row.adjusted_p_value = excludes_zero ? 0.008 : 0.62;
  row.is_significant = excludes_zero;
  row.prob_beats_control = diff > 0 ? 0.97 : 0.21;
  row.sequential_p_value = excludes_zero ? 0.03 : 1.0;
  return row;
}

inline MetricReport Metric(const std::string& name, const std::string& role, bool higher_is_better,
                           std::vector<std::string> branches, std::vector<OutcomeRow> rows) {
  MetricReport metric;
  metric.name = name;
  metric.role = role;
  metric.higher_is_better = higher_is_better;
  metric.branches = std::move(branches);
  metric.rows = std::move(rows);
  return metric;
}

// `steps` daily cumulative points from 2024-05-01 whose diff drifts towards `final_diff`
// and whose interval narrows like 1/sqrt(users).
inline std::vector<TimePoint> DailySeries(int steps, double final_diff, double final_halfwidth,
                                          std::int64_t final_users) {
  std::vector<TimePoint> points;
  for (int k = 1; k <= steps; ++k) {
    TimePoint p;
    p.at_epoch = 1714557600.0 + 86400.0 * k;  // 2024-05-01 10:00 UTC + k days
    char at[64];
    std::snprintf(at, sizeof at, "2024-05-%02d 10:00:00+00", 1 + k);
    p.at = at;
    const double fraction = static_cast<double>(k) / steps;
    p.users = static_cast<std::int64_t>(final_users * fraction);
    const double wobble = 0.35 * final_diff * std::sin(1.7 * k) * (1 - fraction);
    p.diff = final_diff * (0.6 + 0.4 * fraction) + wobble;
    const double halfwidth = final_halfwidth / std::sqrt(fraction);
    p.diff_ci_low = *p.diff - halfwidth;
    p.diff_ci_high = *p.diff + halfwidth;
    points.push_back(p);
  }
  return points;
}

// Three branches, a goal where "one_page" is better, a guardrail (lower is better) where
// "two_step" got worse, a ratio metric without lifts, and a metric whose source is gone.
inline HtmlReportInput SampleInput() {
  HtmlReportInput input;
  input.experiment = "checkout_v2";
  input.description = "One-page checkout against the current three-step flow";
  input.state = "active";
  input.strategy = "hash";
  input.started_at = "2024-05-01 10:00:00+00";
  input.generated_at = "2024-05-15 09:30:00+00";
  input.confidence_level = 0.95;
  input.min_sample_size = 100;
  input.users_source = "assigned users";
  input.branches = {{"control", 5000, 10012}, {"one_page", 2500, 4975}, {"two_step", 2500, 5013}};
  input.sample_ratio = SampleRatioCheck{0.41, 2, 0.81, false};
  const std::vector<std::string> names = {"control", "one_page", "two_step"};

  MetricReport revenue = Metric("revenue", "goal", true, names,
                                {ControlRow(10012, 24.31, 41.2), ChallengerRow(4975, 24.31, 42.0, 1.618, 0.9731),
                                 ChallengerRow(5013, 24.31, 40.8, 0.3472, 1.046)});
  revenue.description = "Order amount per user within 7 days of assignment";
  revenue.cuped = true;
  for (OutcomeRow& row : revenue.rows) row.variance_reduction = 0.284;
  revenue.over_time = {{}, DailySeries(14, 1.618, 0.9731, 4975), DailySeries(14, 0.3472, 1.046, 5013)};

  MetricReport latency = Metric("page_load_ms", "guardrail", false, names,
                                {ControlRow(10012, 812.0, 240.0), ChallengerRow(4975, 812.0, 236.0, -6.13, 9.27),
                                 ChallengerRow(5013, 812.0, 251.0, 21.37, 9.58)});
  latency.description = "Median page load of the checkout, lower is better";
  latency.over_time = {{}, DailySeries(14, -6.13, 9.27, 4975), DailySeries(14, 21.37, 9.58, 5013)};

  MetricReport per_order = Metric("items_per_order", "secondary", true, names,
                                  {ControlRow(10012, 2.31, 1.1), ChallengerRow(4975, 2.31, 1.2, 0.0812, 0.0493),
                                   ChallengerRow(5013, 2.31, 1.1, -0.0107, 0.0496)});
  per_order.ratio = true;
  // As when the control's ratio is 0 somewhere along the way: no lifts, diffs only.
  for (OutcomeRow& row : per_order.rows) row.relative_lift = row.lift_ci_low = row.lift_ci_high = std::nullopt;
  per_order.over_time = {{}, DailySeries(14, 0.0812, 0.0493, 4975), DailySeries(14, -0.0107, 0.0496, 5013)};

  MetricReport refunds = Metric("refund_rate", "guardrail", false, names, {});
  refunds.error = "the source table public.refunds of metric refund_rate was dropped";

  input.metrics = {revenue, latency, per_order, refunds};
  return input;
}

}  // namespace abtest::sample
