// ab_analyze and ab_analyze_over_time for one experiment and metric: the metric's
// sources resolved, the one statement run as the caller (exposure_query.hpp), and the
// per-branch statistics handed to the core (core/outcome.hpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/outcome.hpp"
#include "core/router.hpp"
#include "glue/outcomes/metric_catalog.hpp"

namespace abtest::glue::outcomes {

// 55000 for an experiment without an assignment log (not sticky), with a hint.
void RequireAssignmentLog(const CompiledExperiment& experiment);

OutcomeSettings OutcomeSettingsOf(const CompiledExperiment& experiment);

// When the experiment started (as PostgreSQL prints it) and the seconds since, at the
// transaction's now(); nullopt when it has not started.
struct Start {
  std::string started_at;
  double elapsed_seconds = 0;
};
std::optional<Start> StartOf(const CompiledExperiment& experiment);

// One row per branch, the control first. cuped_window: the pre-period with CUPED.
std::vector<OutcomeRow> Analyze(const CompiledExperiment& experiment, const Metric& metric,
                                const std::optional<std::string>& cuped_window);

struct OverTime {
  std::vector<std::string> at;               // each boundary as PostgreSQL prints it
  std::vector<double> at_epoch;              // and in seconds since 1970
  std::vector<std::vector<OutcomeRow>> rows; // per boundary, one row per branch
};

// `step` as PostgreSQL prints the interval, `step_seconds` its length.
OverTime AnalyzeOverTime(const CompiledExperiment& experiment, const Metric& metric, const std::string& step,
                         double step_seconds);

// At most this many boundaries in one call.
constexpr int kMaxOverTimeSteps = 10000;

}  // namespace abtest::glue::outcomes
