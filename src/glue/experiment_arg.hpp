// The experiment named by a SQL argument, from the backend's compiled cache: what
// every hot-path function (routing, recording) starts with.
#pragma once

#include "core/router.hpp"
#include "glue/pg.hpp"

namespace abtest::glue {

// Refuses NULL and unknown names (42704, with a hint). Remembers the answer per call
// site (fn_extra), so a query calling it a million times looks the name up once.
const CompiledExperiment& RequireExperiment(FunctionCallInfo fcinfo, int n);

// The position of the experiment's branch named by argument n; refuses NULL and
// unknown names (42704 naming both).
int RequireBranch(FunctionCallInfo fcinfo, const CompiledExperiment& experiment, int n);

}  // namespace abtest::glue
