// The measured statements of this backend not yet in shared memory. The executor hooks
// (glue/hooks/statement_timing.hpp) add each statement here, in backend-local memory;
// the batch reaches the branch's counters (metrics_store.hpp) and the query store
// (query_metrics.hpp) at the end of the transaction, when it is full, and before any
// read of either, so that a transaction sees its own statements. Shared memory is thus
// locked once per transaction and query, not once per statement, as the exposures are
// (metrics::CountExposure).
//
// Nothing here allocates, raises or fails: transaction-abort callbacks add and publish.
#pragma once

#include <cstdint>

#include "core/query_latency.hpp"
#include "glue/pg.hpp"
#include "glue/shmem/metrics_store.hpp"

extern "C" {
#include "portability/instr_time.h"
}

namespace abtest::glue::pending_queries {

// Whether the query store's entry of (branch, queryid) had its text when this backend
// last published into it, and none was removed since: a statement of that query then
// need not copy its text when it starts. False when in doubt.
bool HasStoredText(const metrics::BranchHandle& branch, std::uint64_t queryid) noexcept;

// One statement that ended at `end` (INSTR_TIME, the clock of its latency). `text`
// (nullptr: none), `text_len` bytes of it or, when negative, up to its NUL: copied,
// at most query_metrics::kQueryTextBytes bytes, when the batch has no text for the
// query yet. `queryid` 0: counted by the branch only.
void Add(const metrics::BranchHandle& branch, std::uint64_t queryid, const QuerySample& sample, const instr_time& end,
         const char* text, int text_len) noexcept;

// Moves the batch into shared memory. Statements of a branch whose entry is gone (its
// experiment deleted or its metrics cleared since) are dropped, as before.
void Publish() noexcept;

}  // namespace abtest::glue::pending_queries
