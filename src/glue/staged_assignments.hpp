// New sticky assignments of this backend on their way to its database's write-behind
// queue (shmem/assignment_queue.hpp). Appending each record alone cost a new user about
// as much as its cache store (an exclusive hold of the queue's lock, which the flush
// worker on the other core takes too, for 32 bytes): so a backend keeps its new records
// here and appends them in batches, with one hold of the lock, when kBatchBytes are
// kept, when the oldest is kMaxAgeMs old at the next new user, and at the end of the
// transaction, before it commits. Until appended, their cache entries are pending (never
// evicted), as queued ones are.
#pragma once

#include <string_view>

#include "glue/shmem/assignment_queue.hpp"

namespace abtest::glue::staged {

// Keeps a record; true when the kept batch is due for its append.
bool Keep(const StickyKey& key, int branch, TimestampTz assigned_at, bool reassigned, std::string_view user_id);

bool Empty();

// Appends the kept records to the queue (EnqueueRecords, which asks `still_cached` about
// each when a user clear may have missed them); `left_over` is called for each record
// that found no room in the pool, the oldest first. Nothing is kept afterwards. Returns
// how many records were appended.
int Append(bool quiet, bool (*still_cached)(const QueuedAssignment&), void (*left_over)(const QueuedAssignment&));

}  // namespace abtest::glue::staged
