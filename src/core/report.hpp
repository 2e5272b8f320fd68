// ab_report: an experiment's state and results as lines of text for a person in psql.
// Everything is computed here from plain inputs, so that the layout is unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/comparison.hpp"
#include "core/metrics.hpp"
#include "core/outcome_report.hpp"
#include "core/statistics.hpp"

namespace abtest {

struct ReportBranch {
  std::string name;
  int allocation = 0;  // basis points
  QueryCounters queries;
  std::uint64_t users = 0;      // assigned users (sticky) or exposures
  double p95_latency_ms = 0;
  double sequential_p = 1;      // running minimum against the control (1 for the control)
};

struct ReportInput {
  std::string experiment;
  std::string state;
  std::string strategy;
  bool sticky = true;
  std::optional<std::string> started_at;   // as PostgreSQL prints it
  std::optional<double> running_hours;     // since started_at
  std::optional<double> max_duration_hours;
  std::optional<std::string> winner;
  AnalysisSettings settings;
  std::vector<ReportBranch> branches;      // the first is the control
  std::optional<SampleRatioCheck> sample_ratio;
  std::string users_source;                // what "users" counts, for the SRM warning
  std::uint64_t events = 0;                // ab_record_event calls, all branches
  std::vector<MetricReport> metrics;       // attached metrics, analysed per user (ab_analyze)
};

// Above this many recorded queries and events per assigned user, the report warns that
// the query-level p-values treat a user's repeated queries as independent.
constexpr double kQueriesPerUserWarning = 2;

// The lines, without trailing newlines.
std::vector<std::string> ReportLines(const ReportInput& input);

// printf-style text of one number, for report lines.
std::string FormatNumber(const char* format, double value);

// Width of the interval bars of the reports.
constexpr int kBarWidth = 41;

// The text bar of a confidence interval on the shared scale [low, high]: '-' outside
// the interval, '=' inside, '[' and ']' at its ends, '|' at zero and '*' at the point
// estimate. `width` characters.
std::string IntervalBar(double ci_low, double estimate, double ci_high, double low, double high, int width);

}  // namespace abtest
