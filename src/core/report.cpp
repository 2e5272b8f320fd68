#include "core/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace abtest {
namespace {


std::string Points(double difference) { return FormatNumber("%+.2f pp", 100 * difference); }
std::string Percent(double rate) { return FormatNumber("%.2f%%", 100 * rate); }
std::string PValue(double p) { return p < 0.0001 ? std::string("<0.0001") : FormatNumber("%.4f", p); }
// "p = 0.0123", or "p < 0.0001" when it is that small.
std::string PClause(const char* name, double p) {
  return std::string(name) + (p < 0.0001 ? " < 0.0001" : " = " + FormatNumber("%.4f", p));
}

std::string Duration(double hours) {
  if (hours < 48) return FormatNumber("%.1f hours", hours);
  return FormatNumber("%.1f days", hours / 24);
}

std::string Pad(const std::string& text, std::size_t width, bool right = false) {
  if (text.size() >= width) return text;
  std::string padding(width - text.size(), ' ');
  return right ? padding + text : text + padding;
}

}  // namespace

std::string FormatNumber(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

std::string IntervalBar(double ci_low, double estimate, double ci_high, double low, double high, int width) {
  if (width < 3) width = 3;
  if (!(high > low)) {
    low -= 0.01;
    high += 0.01;
  }
  auto position = [&](double x) {
    double at = (x - low) / (high - low) * (width - 1);
    return static_cast<int>(std::lround(std::clamp(at, 0.0, static_cast<double>(width - 1))));
  };
  std::string bar(static_cast<std::size_t>(width), '-');
  int from = position(ci_low), to = position(ci_high);
  for (int i = from; i <= to; ++i) bar[static_cast<std::size_t>(i)] = '=';
  bar[static_cast<std::size_t>(from)] = '[';
  bar[static_cast<std::size_t>(to)] = ']';
  if (low <= 0 && 0 <= high) bar[static_cast<std::size_t>(position(0))] = '|';
  bar[static_cast<std::size_t>(position(estimate))] = '*';
  return bar;
}

std::vector<std::string> ReportLines(const ReportInput& input) {
  std::vector<std::string> lines;
  const AnalysisSettings& settings = input.settings;
  double alpha = 1 - settings.confidence_level;
  std::string level = FormatNumber("%.4g%%", 100 * settings.confidence_level);

  lines.push_back("Experiment \"" + input.experiment + "\": " + input.state + ", strategy " + input.strategy +
                  (input.sticky ? ", sticky" : ", not sticky"));
  std::string timing = input.started_at ? "Started " + *input.started_at : std::string("Not started");
  if (input.running_hours) timing += ", running " + Duration(*input.running_hours);
  if (input.max_duration_hours) timing += " (max duration " + Duration(*input.max_duration_hours) + ")";
  lines.push_back(timing);
  if (input.winner) lines.push_back("Winner: " + *input.winner);
  lines.push_back("Analysis: " + level + " confidence, at least " + std::to_string(settings.min_sample_size) +
                  " queries per branch, always-valid p-values with tau^2 = " +
                  FormatNumber("%g", settings.mixing_variance));
  lines.push_back("Unit: the query table below counts each recorded query as one observation; the metrics after it "
                  "count each user once (ab_analyze).");
  lines.push_back("");

  std::vector<QueryCounters> counters;
  std::vector<double> sequential;
  for (const ReportBranch& branch : input.branches) {
    counters.push_back(branch.queries);
    sequential.push_back(branch.sequential_p);
  }
  std::vector<ControlComparison> comparisons = CompareAllToControl(counters, settings, sequential);

  std::size_t name_width = 6;
  for (const ReportBranch& branch : input.branches) name_width = std::max(name_width, branch.name.size());
  lines.push_back(Pad("branch", name_width) + "   alloc      users    queries  success  " +
                  Pad("diff vs control [" + level + " CI]", 34) + "  p (Holm)  seq. p   P(better)   avg ms    p95 ms");
  for (std::size_t i = 0; i < input.branches.size(); ++i) {
    const ReportBranch& branch = input.branches[i];
    std::string line = Pad(branch.name, name_width) + " " + Pad(Percent(branch.allocation / 10000.0), 7, true) +
                       " " + Pad(std::to_string(branch.users), 10, true) + " " +
                       Pad(std::to_string(branch.queries.queries()), 10, true) + " " +
                       Pad(branch.queries.queries() > 0 ? Percent(branch.queries.SuccessRate()) : "-", 8, true) +
                       "  ";
    if (i == 0) {
      line += Pad("(control)", 34) + "  " + Pad("", 8) + "  " + Pad("", 7) + "  " + Pad("", 8);
    } else {
      const ControlComparison& row = comparisons[i - 1];
      const QueryComparison& c = row.comparison;
      std::string difference = c.ci_low ? Points(c.success_rate_diff) + " [" + FormatNumber("%+.2f", 100 * *c.ci_low) +
                                              ", " + FormatNumber("%+.2f", 100 * *c.ci_high) + "]"
                                        : std::string("-");
      line += Pad(difference, 34) + "  " + Pad(row.adjusted_p_value ? PValue(*row.adjusted_p_value) : "-", 8, true) +
              "  " + Pad(PValue(c.sequential_p_value), 7, true) + "  " + Pad(FormatNumber("%.4f", c.prob_b_beats_a), 8, true);
    }
    line += "  " + Pad(FormatNumber("%.2f", branch.queries.AverageLatency()), 8, true) + "  " +
            Pad(FormatNumber("%.2f", branch.p95_latency_ms), 8, true);
    lines.push_back(line);
  }

  // The intervals on one scale, so that they can be compared at a glance.
  double low = 0, high = 0;
  bool any_interval = false;
  for (const ControlComparison& row : comparisons)
    if (row.comparison.ci_low) {
      low = std::min(low, *row.comparison.ci_low);
      high = std::max(high, *row.comparison.ci_high);
      any_interval = true;
    }
  if (any_interval) {
    lines.push_back("");
    lines.push_back("Difference in success rate vs control, " + level + " intervals on one scale (" + Points(low) +
                    " .. " + Points(high) + ", | = no difference):");
    for (const ControlComparison& row : comparisons) {
      const ReportBranch& branch = input.branches[static_cast<std::size_t>(row.branch)];
      const QueryComparison& c = row.comparison;
      std::string bar = c.ci_low ? IntervalBar(*c.ci_low, c.success_rate_diff, *c.ci_high, low, high, kBarWidth)
                                 : std::string("(no data)");
      lines.push_back("  " + Pad(branch.name, name_width) + "  " + bar);
    }
  }

  // The verdict, on Holm-adjusted p-values; the always-valid p-value says whether it
  // holds up under continuous monitoring.
  lines.push_back("");
  const ControlComparison* best = nullptr;
  for (const ControlComparison& row : comparisons)
    if (row.is_significant && (best == nullptr || std::fabs(row.comparison.success_rate_diff) >
                                                       std::fabs(best->comparison.success_rate_diff)))
      best = &row;
  std::uint64_t total = 0;
  for (const QueryCounters& q : counters) total += q.queries();
  const std::string control = input.branches.empty() ? std::string("control") : input.branches[0].name;
  if (input.branches.size() < 2) {
    lines.push_back("Verdict: a single branch has nothing to be compared with.");
  } else if (total == 0) {
    lines.push_back("Verdict: no queries recorded yet.");
  } else if (best != nullptr) {
    const QueryComparison& c = best->comparison;
    const std::string& name = input.branches[static_cast<std::size_t>(best->branch)].name;
    lines.push_back("Verdict: " + name + (c.success_rate_diff > 0 ? " beats " : " is worse than ") + control + " by " +
                    Points(c.success_rate_diff) + " (" + PClause("Holm-adjusted p", *best->adjusted_p_value) +
                    ", below " + FormatNumber("%.4g", alpha) + ").");
    lines.push_back(c.sequential_p_value < alpha
                        ? "         It holds under continuous monitoring too (" +
                              PClause("always-valid p", c.sequential_p_value) + ")."
                        : "         Not yet conclusive if the results are watched continuously (" +
                              PClause("always-valid p", c.sequential_p_value) + "): keep it running to be sure.");
  } else {
    lines.push_back("Verdict: no significant difference from " + control + " yet.");
  }

  // The attached metrics, one value per user, and what they say.
  if (!input.metrics.empty()) {
    for (const MetricReport& metric : input.metrics) {
      lines.push_back("");
      for (const std::string& line : MetricReportLines(metric, settings.confidence_level)) lines.push_back(line);
    }
    lines.push_back("");
    Verdict verdict = DecideVerdict(input.metrics, input.sample_ratio);
    lines.push_back("Verdict on the metrics: " + verdict.headline);
    for (const std::string& warning : verdict.warnings) lines.push_back("  ! " + warning);
  }

  std::vector<std::string> warnings;
  if (input.sample_ratio && input.sample_ratio->mismatch) {
    // CheckSampleRatio gives an infinite chi-square for users in a branch allocated 0%:
    // say that rather than print "inf".
    const double chi_square = input.sample_ratio->chi_square;
    const std::string statistic = std::isfinite(chi_square) ? "chi-square = " + FormatNumber("%.2f", chi_square)
                                                            : std::string("users in a branch allocated 0%");
    warnings.push_back("Sample ratio mismatch: the " + input.users_source +
                       " per branch does not match the allocation (" + statistic + ", " +
                       PClause("p", input.sample_ratio->p_value) + "). Find the cause before trusting any result.");
  }
  for (const ReportBranch& branch : input.branches)
    if (static_cast<std::int64_t>(branch.queries.queries()) < settings.min_sample_size)
      warnings.push_back("Branch " + branch.name + " has " + std::to_string(branch.queries.queries()) +
                         " queries, fewer than min_sample_size (" + std::to_string(settings.min_sample_size) + ").");
  std::uint64_t users = 0;
  for (const ReportBranch& branch : input.branches) users += branch.users;
  const double per_user = users > 0 ? static_cast<double>(total + input.events) / static_cast<double>(users) : 0;
  if (per_user > kQueriesPerUserWarning)
    warnings.push_back("Users repeat: " + FormatNumber("%.1f", per_user) +
                       " recorded queries and events per user. The query-level p-values above treat each as "
                       "independent and are too small for such data; analyse per user with ab_analyze.");
  if (input.max_duration_hours && input.running_hours && *input.running_hours > *input.max_duration_hours &&
      input.state == "active")
    warnings.push_back("Running for " + Duration(*input.running_hours) + ", past its max duration of " +
                       Duration(*input.max_duration_hours) + ".");
  lines.push_back("");
  if (warnings.empty()) {
    lines.push_back("Warnings: none.");
  } else {
    lines.push_back("Warnings:");
    for (const std::string& warning : warnings) lines.push_back("  ! " + warning);
  }
  return lines;
}

}  // namespace abtest
