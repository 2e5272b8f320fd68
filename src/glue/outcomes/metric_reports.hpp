// The attached metrics of an experiment, analysed for ab_report and ab_report_html.
#pragma once

#include <vector>

#include "core/outcome_report.hpp"
#include "core/router.hpp"

namespace abtest::glue::outcomes {

// Every attached metric (goals, then guardrails, then secondary ones), each analysed
// without CUPED in a subtransaction of its own: a metric whose analysis fails (its
// source dropped, no SELECT on it, a non-sticky experiment) carries the error's
// message instead of results, and the others are still reported. With `over_time`,
// the cumulative analysis at up to kReportPoints steps since the start.
std::vector<MetricReport> AttachedMetricReports(const CompiledExperiment& experiment, bool over_time);

// The report's time axis has at most this many points.
constexpr int kReportPoints = 40;

}  // namespace abtest::glue::outcomes
