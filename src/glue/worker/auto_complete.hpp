// Auto-completion of experiments, for the flush worker.
#pragma once

namespace abtest::glue {

// Looks at every active experiment of this database with auto_complete and completes
// those that are decided. Call inside a transaction with an active snapshot; errors
// are PostgreSQL errors (no C++ frame is left to unwind when they are raised).
void CompleteDecidedExperiments();

}  // namespace abtest::glue
