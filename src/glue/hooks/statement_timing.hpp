// Executor and utility hooks that time the statements of a transaction that entered a
// database branch (ab_enter), in the pattern of pg_stat_statements and auto_explain:
// every previous hook is chained, nested statements are told apart by a nesting level
// kept across errors, and a transaction that is not measured pays a load and a compare
// per statement, never a clock read.
//
// A statement is timed from executor start to executor end and recorded as one query
// of the branch: a success at executor end, a failure (error, cancel, statement
// timeout) with the time until its (sub)transaction aborted. Recorded into this
// backend's batch (glue/shmem/pending_queries.hpp): the statements reach shared memory
// at the end of their transaction, every 32 statements, and before this backend reads
// the metrics. Not timed: the statement
// that called ab_enter (it started before), statements started after ab_leave,
// nested statements unless abtest.track_nested, utility statements unless
// abtest.track_utility (transaction control never).
#pragma once

namespace abtest::glue::statement_timing {

extern bool track_nested;   // GUC abtest.track_nested
extern bool track_utility;  // GUC abtest.track_utility

// Called once from _PG_init, while shared_preload_libraries loads.
void InstallHooks();

}  // namespace abtest::glue::statement_timing
