// Write-behind of new sticky assignments: one queue per database that uses abtest,
// drained into abtest.assignments by that database's flush worker (flush_worker.cpp).
//
// A queue is a list of 64 kB chunks of variable-length records, taken from one pool
// shared by every database (abtest.assignment_queue_size in all) and given back as the
// worker writes them; each queue has its own LWLock (a backend appends its staged
// batch of up to 8 kB under it, staged_assignments.hpp, and the worker takes batches).
// The worker is started on demand by the backend that finds none running, and leaves
// when its queue has stayed empty for 3 s, so an idle database has no worker (and DROP
// DATABASE, which waits 5 s for other sessions, is not blocked by one).
//
// A database claims a slot (its queue, and its metrics state in metrics_store.hpp) on
// first use. There is one slot per possible backend (MaxBackends), and the slot of a
// database that no process is connected to and that has nothing unwritten can be
// reclaimed, so a database is never refused a slot: at most MaxBackends databases can
// have a process connected at once.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "glue/pg.hpp"
#include "glue/shmem/sticky_cache.hpp"

namespace abtest::glue {

// User ids longer than this are written synchronously rather than queued.
constexpr std::size_t kMaxQueuedUserId = 1024;

// One queued assignment: a 20-byte header, then the user id, padded to a multiple of
// 8. The experiment is the slot's while the slot is at `epoch` (SlotExperimentAt), and
// the cache key is the user id's hash again (sticky::KeyOf): a record of a user id of
// up to 12 bytes takes 32 bytes, so that the default pool holds about two million.
struct QueuedAssignment {
  TimestampTz assigned_at;
  std::int32_t slot;
  std::uint32_t epoch;
  std::uint16_t user_length;  // at most kMaxQueuedUserId
  std::int8_t branch;
  std::uint8_t reassigned : 1;  // replaces a logged branch (allow_reassignment)
  std::uint8_t forgotten : 1;   // ab_clear_user_cache ran before it was flushed
  char user_id[FLEXIBLE_ARRAY_MEMBER];

  std::string_view user() const { return {user_id, user_length}; }
  Size length() const;
};
static_assert(kMaxQueuedUserId <= UINT16_MAX, "a queued user id's length fits its field");

// A record's size for a user id of `user_length` bytes.
constexpr Size RecordLength(std::size_t user_length) {
  return TYPEALIGN(8, offsetof(QueuedAssignment, user_id) + user_length);
}
inline Size QueuedAssignment::length() const { return RecordLength(user_length); }

// Visits the records packed one after the other in `bytes` bytes from `records` (a
// batch taken from a queue, or a backend's own overflow batch).
template <typename Visit>
void ForEachRecordIn(char* records, Size bytes, Visit&& visit) {
  for (Size at = 0; at < bytes;) {
    auto* record = reinterpret_cast<QueuedAssignment*>(records + at);
    at += record->length();
    visit(*record);
  }
}

Size AssignmentQueueShmemSize();
void AssignmentQueueRequestLocks();
void AssignmentQueueShmemInit();

// Clears of single users (ab_clear_user_cache) forget the user in the cache, then mark
// the user's queued records forgotten; records a backend still keeps for itself
// (staged_assignments.hpp) are out of that reach. So a clear is counted when it begins
// and when it ends, and a backend's batch is checked against the cache record by record
// only when a clear may have overlapped the time since its last append.
struct UserClearCounts {
  std::uint64_t begun;
  std::uint64_t done;
};
UserClearCounts ReadUserClearCounts();
// Counts that make EnqueueRecords check every record (begun != done: as if a clear ran).
constexpr UserClearCounts kCheckEveryRecord{1, 0};
// Counts a clear as begun for its lifetime, and as done after it.
class UserClearScope {
 public:
  UserClearScope();
  ~UserClearScope();
  UserClearScope(const UserClearScope&) = delete;
  UserClearScope& operator=(const UserClearScope&) = delete;
};

// Appends the records packed in `records` (`bytes` bytes, the oldest first) for this
// database under one hold of the queue's lock, instead of one per record. When a user
// clear began since `since` was read (or was running then), each record is first asked
// `still_cached` and left out if its cache entry is gone. Never waits: when the pool is
// used up it wakes the worker, and the records that found no room are handed to
// `left_over`, the oldest first, after the lock is released. Returns how many records
// were appended.
int EnqueueRecords(char* records, Size bytes, const UserClearCounts& since,
                   bool (*still_cached)(const QueuedAssignment&), void (*left_over)(const QueuedAssignment&),
                   bool quiet);

// Fills a record of RecordLength(user_id.size()) bytes (for a backend's own batch, in
// the same format).
void FillRecord(QueuedAssignment* record, const StickyKey& key, int branch, TimestampTz assigned_at, bool reassigned,
                std::string_view user_id);

// How many databases can hold a slot at once: abtest.max_databases, or MaxBackends
// when it is 0 (the default).
int DatabaseSlots();

// The queue of this database, claimed on first use (it is also the database's slot
// for metrics); -1 only when abtest.max_databases is set below the number of
// databases in use at once.
int ClaimDatabaseQueue();
// Starts the database's flush worker unless one runs: metrics to write (metrics_store.hpp).
// `quiet`: no WARNING when no worker slot is free (the query store's callers may not
// raise even that).
void RequestFlushWorker(int queue, bool quiet = false);
// The same, and wakes a running worker now rather than at its next interval: a warm
// start to do (warm_start.hpp).
void WakeFlushWorker(int queue);

// A purge of deleted experiments' log rows may be waiting (log_purge.hpp): set by a
// committed ab_delete_experiment (which starts or wakes the worker) and at a worker's
// start, taken by the worker, which reads abtest.deleted_experiments only then. While
// set, the worker does not leave and the launcher starts one.
void RequestPurge(int queue);
bool TakePurgeRequest(int queue);

// Marks every queued record of this database for `user_id` as forgotten.
void ForgetQueuedUser(std::string_view user_id);

// When the oldest assignment still waiting in a queue of the cluster was queued (the
// first record of each queue); 0 when every queue is empty. The queue of a dropped
// database is left out: no worker will ever write it.
TimestampTz OldestQueuedAt();

// The pool all queues take their chunks from: the bytes of the chunks held by queues
// (whole chunks, so a little more than the records' bytes) and the pool's size.
struct QueuePoolUse {
  Size in_use;
  Size size;
};
QueuePoolUse ReadQueuePoolUse();

// Worker side. The queue of `database`, or -1.
int QueueOfDatabase(Oid database);
// Registers the running worker (latch, pid) and clears it at exit; false when another
// worker is attached already (this one then leaves).
bool AttachWorker(int queue);
// Whether the queue holds records to write.
bool QueueHasRecords(int queue);
// Moves up to `capacity` bytes of whole records into `buffer`; returns the bytes moved.
Size TakeBatch(int queue, char* buffer, Size capacity);
// Whether a database that has records waiting could not start its worker for lack of
// a background worker slot: the worker of queue `queue` then hands its slot over.
bool WorkerShouldYield(int queue);
// Detaches the worker (it leaves next) and lets its database start another only
// after a flush interval.
void YieldWorker(int queue);
// Launcher side (queue_launcher.hpp): the databases whose queue or counters wait
// for a flush worker that does not run, and starting one (quietly).
std::vector<Oid> DatabasesWaitingForWorker();
void StartWorkerFor(Oid database);
// Detaches the worker if the queue is empty, no metrics wait and no purge is requested, under the queue's lock, so that a record
// appended later finds no worker and starts one: nothing is ever stranded.
bool DetachWorkerIfIdle(int queue);

extern int max_databases;           // GUC abtest.max_databases (0: MaxBackends)
extern int assignment_queue_size;   // GUC abtest.assignment_queue_size (kB, shared by all databases)
extern int flush_interval_ms;       // GUC abtest.flush_interval

}  // namespace abtest::glue
