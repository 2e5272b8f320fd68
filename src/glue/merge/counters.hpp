// The counters an analysis reads: this server's, from shared memory, or those of
// several servers, merged from sources the caller names.
//
// Every analysis of recorded counters (ab_branch_metrics, ab_event_metrics,
// ab_summary, ab_compare, ab_compare_all, ab_compare_event, ab_srm) has a second form
// with a last argument `sources regclass[]`: tables, views or foreign tables of the
// shape of abtest.branch_metrics_export (abtest.event_metrics_export for the event
// analyses), typically one postgres_fdw foreign table per primary over its export view.
// Their rows of the experiment are read in one statement, as the caller (the caller's
// privileges, row-level security and user mappings apply), checked and merged by the
// core (core/merge.hpp); the analysis then runs on them exactly as on this server's.
#pragma once

#include <vector>

#include "core/router.hpp"
#include "glue/pg.hpp"
#include "glue/shmem/metrics_store.hpp"

namespace abtest::glue::merge {

// Whether the call passed sources: the function's form with argument `sources` (0-based).
inline bool HasSources(FunctionCallInfo fcinfo, int sources) { return PG_NARGS() > sources; }

// Every branch of the experiment in branch order (zeros where none). Merged counters
// carry no running minimum of the always-valid p-value (sequential_p is 1): a look at
// them is a look of its own.
std::vector<metrics::BranchSnapshot> Branches(FunctionCallInfo fcinfo, const CompiledExperiment& experiment,
                                              int sources);

// The experiment's events, one per branch and name, in no particular order.
std::vector<metrics::EventSnapshot> Events(FunctionCallInfo fcinfo, const CompiledExperiment& experiment, int sources);

// At most this many sources in one call (54000 above it).
constexpr int kMaxSources = 1000;

}  // namespace abtest::glue::merge
