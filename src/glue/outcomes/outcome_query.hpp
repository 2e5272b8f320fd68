// The SQL of the analysis, written from identifiers only (quoted by PostgreSQL), never
// from SQL text a user gave. One statement per analysis: PostgreSQL joins the log to
// the facts and aggregates; the C++ side receives a few rows per branch.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/outcome_metric.hpp"
#include "glue/outcomes/metric_catalog.hpp"

namespace abtest::glue::outcomes {

// One simple metric as a query reads it: component i of the facts.
struct Component {
  ResolvedSource source;
  Aggregation aggregation = Aggregation::kSum;
  std::optional<std::string> window;  // interval text
  std::optional<double> cap;          // a fixed cap (from the metric, or a percentile computed before)
  std::optional<double> cap_percentile;
};

// ab_analyze. Parameter $1: the experiment's id (uuid). One row per branch with users:
//   branch, users, avg(a), var_samp(a), avg(b), var_samp(b), covar_samp(a, b)
// where a is the per-user value of component 0 and b the CUPED covariate (with
// cuped_window), or component 1 of a ratio, or 0.
std::string PerBranchQuery(const std::vector<Component>& components, const std::optional<std::string>& cuped_window);

// The cap of every component at now(): one row, one column per component (NULL
// without a cap, or when no user has a fact). Parameter $1 as above.
std::string CapsQuery(const std::vector<Component>& components);

// ab_analyze_over_time. Parameters $1 as above and $2 the step boundaries (timestamptz[]
// in order, the last one now()). Every component's cap must be fixed. Rows:
//   branch, step (1-based), users entering at that step, and the increments of
//   sum(a), sum(a^2), sum(b), sum(b^2), sum(a b) at that step
// where a and b are components 0 and 1 (b = 0 for a simple metric).
std::string OverTimeQuery(const std::vector<Component>& components);

}  // namespace abtest::glue::outcomes
