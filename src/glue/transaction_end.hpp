// Which end of a transaction an XactEvent is, for the transaction callbacks of the
// glue (sticky.cpp, shmem/metrics_store.cpp, hooks/statement_timing.cpp,
// worker/log_purge.cpp, branches/entered_branch.cpp): each acts at a commit, at an
// abort, or at any end, PREPARE TRANSACTION included, whether of a backend's
// transaction or a parallel worker's.
#pragma once

#include "glue/pg.hpp"

namespace abtest::glue {

inline bool Commits(XactEvent event) { return event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT; }

inline bool Aborts(XactEvent event) { return event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT; }

// Over in this backend: committed, aborted or prepared.
inline bool Ends(XactEvent event) { return Commits(event) || Aborts(event) || event == XACT_EVENT_PREPARE; }

}  // namespace abtest::glue
