#include "core/outcome_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/report.hpp"

namespace abtest {
namespace {


bool Finite(const std::optional<double>& value) { return value && std::isfinite(*value); }

std::string SignedPercent(double fraction) { return FormatNumber("%+.2f%%", 100 * fraction); }

// "Holm p = 0.0123", or "Holm p < 0.0001" when it is that small.
std::string HolmClause(const std::optional<double>& p) {
  if (!Finite(p)) return "no p-value";
  return *p < 0.0001 ? std::string("Holm p < 0.0001") : "Holm p = " + FormatNumber("%.4f", *p);
}

// The size of a challenger's effect in words: the lift when there is one, else the diff.
std::string EffectClause(const OutcomeRow& row) {
  std::string size = Finite(row.relative_lift) ? "lift " + SignedPercent(*row.relative_lift)
                                               : "diff " + FormatStatistic(row.diff, true);
  return size + ", " + HolmClause(row.adjusted_p_value);
}

const std::string& BranchName(const MetricReport& metric, std::size_t index) {
  static const std::string unknown = "?";
  return index < metric.branches.size() ? metric.branches[index] : unknown;
}

std::string ControlName(const MetricReport& metric) {
  return metric.branches.empty() ? std::string("control") : metric.branches[0];
}

std::string GuardrailWarning(const MetricReport& metric, std::size_t branch) {
  return "Guardrail " + metric.name + " is significantly worse in " + BranchName(metric, branch) + " than in " +
         ControlName(metric) + " (" + EffectClause(metric.rows[branch]) + ").";
}

std::int64_t TotalUsers(const MetricReport& metric) {
  std::int64_t total = 0;
  for (const OutcomeRow& row : metric.rows) total += row.users;
  return total;
}

std::string Pad(const std::string& text, std::size_t width, bool right) {
  if (text.size() >= width) return text;
  std::string padding(width - text.size(), ' ');
  return right ? padding + text : text + padding;
}

// An interval "estimate [low, high]" or just the estimate when the interval is missing.
std::string WithInterval(const std::string& estimate, const std::string& low, const std::string& high,
                         bool has_interval) {
  return has_interval ? estimate + " [" + low + ", " + high + "]" : estimate;
}

}  // namespace

Effect SignificantEffect(const OutcomeRow& row, bool higher_is_better) {
  if (!row.is_significant || !Finite(row.diff) || *row.diff == 0) return Effect::kNotSignificant;
  return (*row.diff > 0) == higher_is_better ? Effect::kBetter : Effect::kWorse;
}

std::string FormatStatistic(std::optional<double> value, bool sign, std::optional<double> scale) {
  if (!Finite(value)) return "n/a";
  const double v = *value;
  const double magnitude = Finite(scale) && *scale != 0 ? std::fabs(*scale) : std::fabs(v);
  if (magnitude == 0) return "0";
  if (magnitude >= 1e6 || magnitude < 1e-3) return v == 0 ? "0" : FormatNumber(sign ? "%+.3e" : "%.3e", v);
  const int decimals = std::clamp(3 - static_cast<int>(std::floor(std::log10(magnitude))), 0, 6);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, sign && v != 0 ? "%+.*f" : "%.*f", decimals, v);
  return buffer;
}

double LargestMagnitude(std::initializer_list<std::optional<double>> values) {
  double largest = 0;
  for (const auto& value : values)
    if (Finite(value)) largest = std::max(largest, std::fabs(*value));
  return largest;
}

Verdict DecideVerdict(const std::vector<MetricReport>& metrics, const std::optional<SampleRatioCheck>& sample_ratio) {
  Verdict verdict;
  std::size_t branch_count = 0;
  for (const MetricReport& metric : metrics) branch_count = std::max(branch_count, metric.rows.size());
  // A challenger that got worse on a guardrail or a goal is never recommended.
  std::vector<bool> blocked(branch_count, false);
  bool any_analysed = false, any_users = false, any_goal = false;

  for (const MetricReport& metric : metrics) {
    if (metric.error) {
      verdict.warnings.push_back("Metric " + metric.name + " could not be analysed: " + *metric.error);
      continue;
    }
    any_analysed = true;
    any_users = any_users || TotalUsers(metric) > 0;
    any_goal = any_goal || metric.role == "goal";
    for (std::size_t i = 1; i < metric.rows.size(); ++i) {
      if (SignificantEffect(metric.rows[i], metric.higher_is_better) != Effect::kWorse) continue;
      if (metric.role == "guardrail") {
        verdict.warnings.push_back(GuardrailWarning(metric, i));
        blocked[i] = true;
      } else if (metric.role == "goal") {
        verdict.warnings.push_back(BranchName(metric, i) + " is significantly worse than " + ControlName(metric) +
                                   " on the goal " + metric.name + " (" + EffectClause(metric.rows[i]) + ").");
        blocked[i] = true;
      }
    }
  }

  // The best significantly better (challenger, goal): the largest lift in the metric's
  // direction; a row without a lift ranks below every row with one.
  const MetricReport* best_metric = nullptr;
  std::size_t best_branch = 0;
  double best_score = -std::numeric_limits<double>::max();
  bool blocked_candidate = false;
  for (const MetricReport& metric : metrics) {
    if (metric.error || metric.role != "goal") continue;
    for (std::size_t i = 1; i < metric.rows.size(); ++i) {
      const OutcomeRow& row = metric.rows[i];
      if (SignificantEffect(row, metric.higher_is_better) != Effect::kBetter) continue;
      if (blocked[i]) {
        blocked_candidate = true;
        continue;
      }
      const double score = Finite(row.relative_lift)
                               ? (metric.higher_is_better ? *row.relative_lift : -*row.relative_lift)
                               : -std::numeric_limits<double>::max() / 2;
      if (best_metric == nullptr || score > best_score) {
        best_metric = &metric;
        best_branch = i;
        best_score = score;
      }
    }
  }

  const std::string control = metrics.empty() ? std::string("the control") : ControlName(metrics.front());
  if (sample_ratio && sample_ratio->mismatch) {
    const std::string p = sample_ratio->p_value < 0.0001 ? std::string("p < 0.0001")
                                                         : "p = " + FormatNumber("%.4f", sample_ratio->p_value);
    verdict.headline = "Sample ratio mismatch (" + p +
                       "): the users per branch do not match the allocation, so no result can be trusted until "
                       "the cause is found.";
  } else if (metrics.empty()) {
    verdict.headline = "No metric attached: define one with ab_define_metric and attach it with ab_attach_metric "
                       "to get a verdict.";
  } else if (!any_analysed) {
    verdict.headline = "No metric could be analysed (see the warnings).";
  } else if (!any_users) {
    verdict.headline = "No data yet: no user is in the experiment.";
  } else if (!any_goal) {
    verdict.headline = "No goal metric attached: attach one with role 'goal' to get a recommendation.";
  } else if (best_metric != nullptr) {
    verdict.recommended_branch = static_cast<int>(best_branch);
    verdict.headline = "Recommend " + BranchName(*best_metric, best_branch) + ": significantly better than " +
                       ControlName(*best_metric) + " on " + best_metric->name + " (" +
                       EffectClause(best_metric->rows[best_branch]) + ").";
  } else if (blocked_candidate) {
    verdict.headline = "No recommendation: a challenger is significantly better on a goal but worse on a guardrail "
                       "or another goal (see the warnings).";
  } else {
    verdict.headline = "Keep running: no challenger is significantly better than " + control +
                       " on a goal metric yet.";
  }
  return verdict;
}

std::vector<std::string> MetricReportLines(const MetricReport& metric, double confidence_level) {
  std::vector<std::string> lines;
  const std::string level = FormatNumber("%.4g%%", 100 * confidence_level);

  std::string heading = "Metric " + metric.name + ": " + metric.role + ", " +
                        (metric.higher_is_better ? "higher is better" : "lower is better");
  if (metric.ratio) heading += ", ratio";
  if (metric.cuped) {
    heading += ", CUPED";
    if (!metric.rows.empty() && Finite(metric.rows[0].variance_reduction))
      heading += " (variance reduced by " + FormatNumber("%.1f%%", 100 * *metric.rows[0].variance_reduction) + ")";
  }
  lines.push_back(heading);
  if (!metric.description.empty()) lines.push_back("  " + metric.description);
  if (metric.error) {
    lines.push_back("  Not analysed: " + *metric.error);
    return lines;
  }
  if (metric.rows.empty()) {
    lines.push_back("  No branches to analyse.");
    return lines;
  }

  // The table, columns as wide as their widest cell; numbers right-aligned.
  std::vector<std::vector<std::string>> table;
  table.push_back({"branch", "users", "mean", "diff vs control [" + level + " CI]", "lift [" + level + " CI]",
                   "p (Holm)", "significant"});
  for (std::size_t i = 0; i < metric.rows.size(); ++i) {
    const OutcomeRow& row = metric.rows[i];
    std::vector<std::string> cells = {BranchName(metric, i), std::to_string(row.users), FormatStatistic(row.mean)};
    if (i == 0) {
      cells.insert(cells.end(), {"(control)", "", "", ""});
    } else {
      const double scale = LargestMagnitude({row.diff, row.diff_ci_low, row.diff_ci_high});
      cells.push_back(WithInterval(FormatStatistic(row.diff, true, scale),
                                   FormatStatistic(row.diff_ci_low, true, scale),
                                   FormatStatistic(row.diff_ci_high, true, scale),
                                   Finite(row.diff) && Finite(row.diff_ci_low) && Finite(row.diff_ci_high)));
      cells.push_back(Finite(row.relative_lift)
                          ? WithInterval(SignedPercent(*row.relative_lift),
                                         Finite(row.lift_ci_low) ? SignedPercent(*row.lift_ci_low) : "",
                                         Finite(row.lift_ci_high) ? SignedPercent(*row.lift_ci_high) : "",
                                         Finite(row.lift_ci_low) && Finite(row.lift_ci_high))
                          : std::string("n/a"));
      cells.push_back(!Finite(row.adjusted_p_value) ? std::string("n/a")
                      : *row.adjusted_p_value < 0.0001 ? std::string("<0.0001")
                                                       : FormatNumber("%.4f", *row.adjusted_p_value));
      switch (SignificantEffect(row, metric.higher_is_better)) {
        case Effect::kBetter: cells.push_back("yes, better"); break;
        case Effect::kWorse: cells.push_back("yes, worse"); break;
        case Effect::kNotSignificant: cells.push_back(Finite(row.adjusted_p_value) ? "no" : "n/a"); break;
      }
    }
    table.push_back(cells);
  }
  std::vector<std::size_t> widths(table[0].size(), 0);
  for (const auto& cells : table)
    for (std::size_t c = 0; c < cells.size(); ++c) widths[c] = std::max(widths[c], cells[c].size());
  const std::vector<bool> right = {false, true, true, false, false, true, false};
  for (const auto& cells : table) {
    std::string line = " ";
    for (std::size_t c = 0; c < cells.size(); ++c) line += " " + Pad(cells[c], widths[c], right[c]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(line);
  }

  // The intervals on one scale: of the lift when every challenger with an interval has
  // one of its lift, else of the diff.
  bool lift_scale = true, any_interval = false;
  for (std::size_t i = 1; i < metric.rows.size(); ++i) {
    const OutcomeRow& row = metric.rows[i];
    if (Finite(row.diff_ci_low) && Finite(row.diff_ci_high) && Finite(row.diff)) {
      any_interval = true;
      if (!(Finite(row.relative_lift) && Finite(row.lift_ci_low) && Finite(row.lift_ci_high))) lift_scale = false;
    }
  }
  if (any_interval) {
    struct Interval {
      double low, estimate, high;
    };
    std::vector<std::optional<Interval>> intervals(metric.rows.size());
    double low = 0, high = 0;
    for (std::size_t i = 1; i < metric.rows.size(); ++i) {
      const OutcomeRow& row = metric.rows[i];
      if (lift_scale && Finite(row.relative_lift) && Finite(row.lift_ci_low) && Finite(row.lift_ci_high))
        intervals[i] = Interval{*row.lift_ci_low, *row.relative_lift, *row.lift_ci_high};
      else if (!lift_scale && Finite(row.diff) && Finite(row.diff_ci_low) && Finite(row.diff_ci_high))
        intervals[i] = Interval{*row.diff_ci_low, *row.diff, *row.diff_ci_high};
      if (intervals[i]) {
        low = std::min(low, intervals[i]->low);
        high = std::max(high, intervals[i]->high);
      }
    }
    std::string scale = lift_scale ? SignedPercent(low) + " .. " + SignedPercent(high)
                                   : FormatStatistic(low, true, LargestMagnitude({low, high})) + " .. " +
                                         FormatStatistic(high, true, LargestMagnitude({low, high}));
    lines.push_back("  " + std::string(lift_scale ? "Lift" : "Difference") + " vs control, " + level +
                    " intervals on one scale (" + scale + ", | = no difference):");
    for (std::size_t i = 1; i < metric.rows.size(); ++i) {
      std::string bar = intervals[i] ? IntervalBar(intervals[i]->low, intervals[i]->estimate, intervals[i]->high, low,
                                                   high, kBarWidth)
                                     : std::string("(no interval)");
      lines.push_back("    " + Pad(BranchName(metric, i), widths[0], false) + "  " + bar);
    }
  }

  if (TotalUsers(metric) == 0) lines.push_back("  No users yet.");
  if (metric.role == "guardrail")
    for (std::size_t i = 1; i < metric.rows.size(); ++i)
      if (SignificantEffect(metric.rows[i], metric.higher_is_better) == Effect::kWorse)
        lines.push_back("  ! " + GuardrailWarning(metric, i));
  return lines;
}

}  // namespace abtest
