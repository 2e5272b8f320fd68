// Write-behind of new sticky assignments: one queue per database that uses abtest,
// drained into abtest.assignments by that database's flush worker (flush_worker.cpp).
//
// A queue is a ring of variable-length records in shared memory, guarded by its own
// LWLock (appends and batch takes copy a few hundred bytes under it). A database
// claims a queue on its first assignment; the worker is started on demand by the
// backend that finds none running, and leaves when a flush empties its queue, so an
// idle database has no worker (and DROP DATABASE is not blocked by one).
#pragma once

#include <cstdint>
#include <string_view>

#include "glue/pg.hpp"
#include "glue/shmem/sticky_cache.hpp"

namespace abtest::glue {

// User ids longer than this are written synchronously rather than queued.
constexpr std::size_t kMaxQueuedUserId = 1024;

// One queued assignment; `user_length` bytes of user id follow the header.
struct QueuedAssignment {
  std::uint32_t length;  // of the whole record, header included, a multiple of 8; 0 = padding to the end
  std::int32_t slot;
  std::uint32_t epoch;
  std::int16_t branch;
  std::uint8_t reassigned;  // replaces a logged branch (allow_reassignment)
  std::uint8_t forgotten;   // ab_clear_user_cache ran before it was flushed
  std::uint64_t user_high;
  std::uint64_t user_low;
  TimestampTz assigned_at;
  pg_uuid_t experiment;
  std::uint32_t user_length;
  std::uint32_t reserved;
  // char user_id[user_length];
};

enum class EnqueueResult { kQueued, kFull, kNoQueue };

Size AssignmentQueueShmemSize();
void AssignmentQueueRequestLocks();
void AssignmentQueueShmemInit();

// Appends for this database, waiting up to two flush intervals for room when full.
EnqueueResult Enqueue(const StickyKey& key, const pg_uuid_t& experiment, int branch, TimestampTz assigned_at,
                      bool reassigned, std::string_view user_id);

// The queue of this database, claimed on first use (it is also the database's slot
// for metrics); -1 when all abtest.max_databases are claimed by other databases.
int ClaimDatabaseQueue();
// Starts the database's flush worker unless one runs: metrics to write (metrics_store.hpp).
// `quiet`: no WARNING when no worker slot is free (the query store's callers may not
// raise even that).
void RequestFlushWorker(int queue, bool quiet = false);
// The same, and wakes a running worker now rather than at its next interval: a warm
// start to do (warm_start.hpp).
void WakeFlushWorker(int queue);

// Marks every queued record of this database for `user` as forgotten.
void ForgetQueuedUser(std::uint64_t user_high, std::uint64_t user_low);

// When the oldest assignment still waiting in a queue of the cluster was queued (the
// first record of each queue); 0 when every queue is empty. The queue of a dropped
// database is left out: no worker will ever write it.
TimestampTz OldestQueuedAt();

// Worker side. The queue of `database`, or -1.
int QueueOfDatabase(Oid database);
// Registers the running worker (latch, pid) and clears it at exit; false when another
// worker is attached already (this one then leaves).
bool AttachWorker(int queue);
// Moves up to `capacity` bytes of whole records into `buffer`; returns the bytes moved.
Size TakeBatch(int queue, char* buffer, Size capacity);
// Detaches the worker if the queue is empty and no metrics wait, under the queue's lock, so that a record
// appended later finds no worker and starts one: nothing is ever stranded.
bool DetachWorkerIfIdle(int queue);

extern int max_databases;           // GUC abtest.max_databases
extern int assignment_queue_size;   // GUC abtest.assignment_queue_size (kB per database)
extern int flush_interval_ms;       // GUC abtest.flush_interval

}  // namespace abtest::glue
