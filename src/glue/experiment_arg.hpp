// The experiment named by a SQL argument, from the backend's compiled cache: what
// every hot-path function (routing, recording) starts with.
#pragma once

#include "core/router.hpp"
#include "glue/pg.hpp"

namespace abtest::glue {

// Refuses NULL and unknown names (42704, with a hint). Remembers the answer per call
// site (fn_extra), so a query calling it a million times looks the name up once.
const CompiledExperiment& RequireExperiment(FunctionCallInfo fcinfo, int n);

// The name of the experiment's branch as a text result. For the experiment that
// RequireExperiment just returned, the text is made once per call site and returned
// again (it lives as long as the call site, as a function may return a pointer into
// its arguments): a routing query returns a million names without allocating one.
// Otherwise a new text in the current memory context.
Datum BranchText(FunctionCallInfo fcinfo, const CompiledExperiment& experiment, int branch);

// The position of the experiment's branch named by argument n; refuses NULL and
// unknown names (42704 naming both).
int RequireBranch(FunctionCallInfo fcinfo, const CompiledExperiment& experiment, int n);

}  // namespace abtest::glue
