#include "glue/outcomes/metric_reports.hpp"

#include <string>


#include "core/error.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"
#include "glue/outcomes/metric_catalog.hpp"
#include "glue/outcomes/outcome_analysis.hpp"

extern "C" {
#include "utils/resowner.h"
}

namespace abtest::glue::outcomes {
namespace {

// Runs `work` in a subtransaction, as a PL/pgSQL block with an EXCEPTION clause does:
// on an error the subtransaction is rolled back (its locks, memory and snapshots
// released) and the error's message returned.
template <typename Work>
std::optional<std::string> InSubtransaction(Work&& work) {
  MemoryContext context = CurrentMemoryContext;
  ResourceOwner owner = CurrentResourceOwner;
  PgCall([&] {
    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(context);
  });
  std::optional<std::string> failure;
  try {
    work();
  } catch (const PgError& e) {
    failure = e.data()->message ? e.data()->message : "unknown error";
  } catch (const Error& e) {
    failure = e.what();
  }
  PgCall([&] {
    if (failure) RollbackAndReleaseCurrentSubTransaction();
    else ReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(context);
    CurrentResourceOwner = owner;
  });
  return failure;
}

// The step for about kReportPoints points since the start: the shortest of these
// that is long enough.
std::optional<std::pair<std::string, double>> ReportStep(const CompiledExperiment& experiment) {
  std::optional<Start> start = StartOf(experiment);
  if (!start) return std::nullopt;
  const double seconds = start->elapsed_seconds;
  static const std::pair<const char*, double> kSteps[] = {
      {"1 minute", 60},     {"5 minutes", 300},    {"15 minutes", 900}, {"1 hour", 3600},     {"3 hours", 10800},
      {"6 hours", 21600},   {"12 hours", 43200},   {"1 day", 86400},    {"2 days", 172800},   {"7 days", 604800},
      {"14 days", 1209600}, {"30 days", 2592000},  {"90 days", 7776000}, {"365 days", 31536000}};
  for (const auto& [text, length] : kSteps)
    if (seconds / length <= kReportPoints) return std::make_pair(std::string(text), length);
  return std::make_pair(std::string("3650 days"), 315360000.0);
}

}  // namespace

std::vector<MetricReport> AttachedMetricReports(const CompiledExperiment& experiment, bool over_time) {
  std::vector<MetricReport> reports;
  if (!catalog::HasOutcomeCatalog()) return reports;
  std::optional<std::pair<std::string, double>> step;
  if (over_time) step = ReportStep(experiment);
  for (const Attached& attached : AttachedMetrics(experiment.model().id)) {
    MetricReport report;
    report.name = attached.metric;
    report.role = MetricRoleName(attached.role);
    for (const Branch& branch : experiment.model().branches) report.branches.push_back(branch.name);
    report.error = InSubtransaction([&] {
      Metric metric = Load(attached.metric);
      report.description = metric.description;
      report.higher_is_better = metric.higher_is_better;
      report.ratio = metric.ratio;
      report.rows = Analyze(experiment, metric, std::nullopt);
      if (!step) return;
      OverTime points = AnalyzeOverTime(experiment, metric, step->first, step->second);
      report.over_time.assign(report.branches.size(), {});
      for (std::size_t k = 0; k < points.at.size(); ++k)
        for (std::size_t i = 1; i < points.rows[k].size() && i < report.over_time.size(); ++i) {
          const OutcomeRow& row = points.rows[k][i];
          report.over_time[i].push_back(
              TimePoint{points.at_epoch[k], points.at[k], row.users, row.diff, row.diff_ci_low, row.diff_ci_high});
        }
    });
    if (report.error) {
      report.rows.clear();
      report.over_time.clear();
    }
    reports.push_back(std::move(report));
  }
  return reports;
}

}  // namespace abtest::glue::outcomes
