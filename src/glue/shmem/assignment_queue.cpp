#include "glue/shmem/assignment_queue.hpp"

#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/shmem/shared_state.hpp"

extern "C" {
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "storage/proc.h"
}

namespace abtest::glue {

int max_databases = 4;
int assignment_queue_size = 16384;
int flush_interval_ms = 1000;

namespace {

struct Queue {
  LWLock* lock;
  Oid database;            // InvalidOid: free
  bool worker_starting;    // registered, not yet attached
  TimestampTz starting_since;
  pid_t worker_pid;        // 0: none
  Latch* worker_latch;
  std::uint64_t head;      // bytes ever appended
  std::uint64_t tail;      // bytes ever taken
  Size capacity;
  Size data_offset;        // from the start of the shared area
};

struct QueueArea {
  LWLock* claim_lock;  // guards claiming a queue for a database
  Queue queues[FLEXIBLE_ARRAY_MEMBER];
};

QueueArea* area = nullptr;

Size Capacity() { return MAXALIGN(static_cast<Size>(assignment_queue_size) * 1024); }
Size HeaderSize() { return MAXALIGN(offsetof(QueueArea, queues) + sizeof(Queue) * max_databases); }
char* DataOf(Queue& queue) { return reinterpret_cast<char*>(area) + queue.data_offset; }

Size RecordLength(std::size_t user_length) { return TYPEALIGN(8, sizeof(QueuedAssignment) + user_length); }

int ClaimQueueLocked() {
  int free_queue = -1;
  LWLockAcquire(area->claim_lock, LW_SHARED);
  for (int i = 0; i < max_databases; ++i)
    if (area->queues[i].database == MyDatabaseId) {
      LWLockRelease(area->claim_lock);
      return i;
    }
  LWLockRelease(area->claim_lock);
  LWLockAcquire(area->claim_lock, LW_EXCLUSIVE);
  for (int i = 0; i < max_databases; ++i) {
    if (area->queues[i].database == MyDatabaseId) {
      LWLockRelease(area->claim_lock);
      return i;
    }
    if (free_queue < 0 && area->queues[i].database == InvalidOid) free_queue = i;
  }
  if (free_queue >= 0) area->queues[free_queue].database = MyDatabaseId;
  LWLockRelease(area->claim_lock);
  return free_queue;
}

// A queue claimed by a database that was dropped serves another one: what it still
// holds is garbage, and so are the dropped database's metrics state.
int ReclaimQueueOfDroppedDatabase() {
  for (int i = 0; i < max_databases; ++i) {
    LWLockAcquire(area->claim_lock, LW_SHARED);
    Oid database = area->queues[i].database;
    LWLockRelease(area->claim_lock);
    if (database == InvalidOid || database == MyDatabaseId || catalog::DatabaseExists(database)) continue;
    bool reclaimed = false;
    LWLockAcquire(area->claim_lock, LW_EXCLUSIVE);
    Queue& queue = area->queues[i];
    LWLockAcquire(queue.lock, LW_EXCLUSIVE);
    if (queue.database == database && queue.worker_pid == 0) {
      queue.database = MyDatabaseId;
      queue.head = queue.tail = 0;
      queue.worker_starting = false;
      metrics::ForgetDatabase(i);
      reclaimed = true;
    }
    LWLockRelease(queue.lock);
    LWLockRelease(area->claim_lock);
    if (reclaimed) return i;
  }
  return -1;
}


// Starts this database's flush worker unless one runs or is starting. Called with
// the queue's lock held exclusively.
void EnsureWorkerLocked(Queue& queue, bool quiet = false) {
  constexpr long kStartTimeoutMs = 10000;  // a worker that never attached is tried again
  if (queue.worker_pid != 0) return;
  if (queue.worker_starting &&
      !TimestampDifferenceExceeds(queue.starting_since, GetCurrentTimestamp(), kStartTimeoutMs))
    return;
  BackgroundWorker worker;
  memset(&worker, 0, sizeof worker);
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
  worker.bgw_restart_time = BGW_NEVER_RESTART;  // the next backend that queues starts a new one
  snprintf(worker.bgw_library_name, BGW_MAXLEN, "abtest");
  snprintf(worker.bgw_function_name, BGW_MAXLEN, "abtest_flush_worker_main");
  snprintf(worker.bgw_name, BGW_MAXLEN, "abtest flush worker for database %u", MyDatabaseId);
  snprintf(worker.bgw_type, BGW_MAXLEN, "abtest flush worker");
  worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
  if (RegisterDynamicBackgroundWorker(&worker, nullptr)) {
    queue.worker_starting = true;
    queue.starting_since = GetCurrentTimestamp();
  }
  else if (!quiet)
    ereport(WARNING, (errmsg("abtest could not start a flush worker for database %u", MyDatabaseId),
                      errhint("Raise max_worker_processes; until then new sticky assignments are written "
                              "synchronously when the queue is full.")));
}

void WakeWorkerLocked(Queue& queue) {
  if (queue.worker_latch != nullptr) SetLatch(queue.worker_latch);
}

// At exit: clears the queue's worker only if it is still this process. A worker that
// detached when idle may have been succeeded already; clearing its successor would
// let a third one start beside it.
void DetachWorker(int, Datum arg) {
  Queue& queue = area->queues[DatumGetInt32(arg)];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  if (queue.worker_pid == MyProcPid) {
    queue.worker_pid = 0;
    queue.worker_latch = nullptr;
  }
  LWLockRelease(queue.lock);
}

}  // namespace

Size AssignmentQueueShmemSize() { return add_size(HeaderSize(), mul_size(max_databases, Capacity())); }

void AssignmentQueueRequestLocks() { RequestNamedLWLockTranche("abtest assignment queues", max_databases + 1); }

void AssignmentQueueShmemInit() {
  bool found = false;
  area = static_cast<QueueArea*>(ShmemInitStruct("abtest assignment queues", AssignmentQueueShmemSize(), &found));
  if (found) return;
  LWLockPadded* locks = GetNamedLWLockTranche("abtest assignment queues");
  area->claim_lock = &locks[0].lock;
  for (int i = 0; i < max_databases; ++i) {
    Queue& queue = area->queues[i];
    queue.lock = &locks[i + 1].lock;
    queue.database = InvalidOid;
    queue.worker_starting = false;
    queue.worker_pid = 0;
    queue.worker_latch = nullptr;
    queue.head = queue.tail = 0;
    queue.capacity = Capacity();
    queue.data_offset = HeaderSize() + static_cast<Size>(i) * Capacity();
  }
}

int ClaimDatabaseQueue() {
  static int claimed = -1;  // a claim is never given back: a backend (of one database) remembers it
  if (claimed >= 0) return claimed;
  claimed = ClaimQueueLocked();
  if (claimed < 0) claimed = ReclaimQueueOfDroppedDatabase();
  return claimed;
}

void RequestFlushWorker(int index, bool quiet) {
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  EnsureWorkerLocked(queue, quiet);
  LWLockRelease(queue.lock);
}

void WakeFlushWorker(int index) {
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  EnsureWorkerLocked(queue);
  WakeWorkerLocked(queue);
  LWLockRelease(queue.lock);
}

EnqueueResult Enqueue(const StickyKey& key, const pg_uuid_t& experiment, int branch, TimestampTz assigned_at,
                      bool reassigned, std::string_view user_id) {
  if (user_id.size() > kMaxQueuedUserId) return EnqueueResult::kNoQueue;
  int index = ClaimDatabaseQueue();
  if (index < 0) return EnqueueResult::kNoQueue;
  Queue& queue = area->queues[index];
  Size length = RecordLength(user_id.size());

  // When full, wake the worker and wait for room, at most two flush intervals.
  for (int waited_ms = 0;; waited_ms += 10) {
    LWLockAcquire(queue.lock, LW_EXCLUSIVE);
    EnsureWorkerLocked(queue);
    Size position = queue.head % queue.capacity;
    Size to_end = queue.capacity - position;
    Size needed = length <= to_end ? length : to_end + length;  // a record never wraps
    if (queue.capacity - (queue.head - queue.tail) >= needed) {
      char* data = DataOf(queue);
      if (length > to_end) {
        reinterpret_cast<QueuedAssignment*>(data + position)->length = 0;  // padding to the end
        queue.head += to_end;
        position = 0;
      }
      auto* record = reinterpret_cast<QueuedAssignment*>(data + position);
      record->length = static_cast<std::uint32_t>(length);
      record->slot = key.slot;
      record->epoch = key.epoch;
      record->branch = static_cast<std::int16_t>(branch);
      record->reassigned = reassigned;
      record->forgotten = 0;
      record->user_high = key.user_high;
      record->user_low = key.user_low;
      record->assigned_at = assigned_at;
      record->experiment = experiment;
      record->user_length = static_cast<std::uint32_t>(user_id.size());
      record->reserved = 0;
      memcpy(reinterpret_cast<char*>(record + 1), user_id.data(), user_id.size());
      queue.head += length;
      if (queue.head - queue.tail > queue.capacity / 2) WakeWorkerLocked(queue);
      LWLockRelease(queue.lock);
      return EnqueueResult::kQueued;
    }
    WakeWorkerLocked(queue);
    LWLockRelease(queue.lock);
    if (waited_ms >= 2 * flush_interval_ms) return EnqueueResult::kFull;
    pg_usleep(10000L);
  }
}

void ForgetQueuedUser(std::uint64_t user_high, std::uint64_t user_low) {
  int index = QueueOfDatabase(MyDatabaseId);
  if (index < 0) return;
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  char* data = DataOf(queue);
  for (std::uint64_t at = queue.tail; at < queue.head;) {
    auto* record = reinterpret_cast<QueuedAssignment*>(data + at % queue.capacity);
    if (record->length == 0) {
      at += queue.capacity - at % queue.capacity;
      continue;
    }
    if (record->user_high == user_high && record->user_low == user_low) record->forgotten = 1;
    at += record->length;
  }
  LWLockRelease(queue.lock);
}

TimestampTz OldestQueuedAt() {
  TimestampTz oldest = 0;
  for (int i = 0; i < max_databases; ++i) {
    Queue& queue = area->queues[i];
    LWLockAcquire(area->claim_lock, LW_SHARED);
    Oid database = queue.database;
    LWLockRelease(area->claim_lock);
    if (database == InvalidOid) continue;
    TimestampTz queued_at = 0;
    LWLockAcquire(queue.lock, LW_SHARED);
    if (queue.database == database && queue.tail < queue.head) {
      char* data = DataOf(queue);
      auto* record = reinterpret_cast<QueuedAssignment*>(data + queue.tail % queue.capacity);
      if (record->length == 0) record = reinterpret_cast<QueuedAssignment*>(data);  // padding: the ring goes on at 0
      queued_at = record->assigned_at;
    }
    LWLockRelease(queue.lock);
    if (queued_at != 0 && (oldest == 0 || queued_at < oldest) && catalog::DatabaseExists(database)) oldest = queued_at;
  }
  return oldest;
}

int QueueOfDatabase(Oid database) {
  LWLockAcquire(area->claim_lock, LW_SHARED);
  int found = -1;
  for (int i = 0; i < max_databases; ++i)
    if (area->queues[i].database == database) found = i;
  LWLockRelease(area->claim_lock);
  return found;
}

bool AttachWorker(int index) {
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  queue.worker_starting = false;
  bool attached = queue.worker_pid == 0;
  if (attached) {
    queue.worker_pid = MyProcPid;
    queue.worker_latch = MyLatch;
  }
  LWLockRelease(queue.lock);
  if (attached) on_shmem_exit(DetachWorker, Int32GetDatum(index));
  return attached;
}

Size TakeBatch(int index, char* buffer, Size capacity) {
  Queue& queue = area->queues[index];
  Size taken = 0;
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  char* data = DataOf(queue);
  while (queue.tail < queue.head) {
    Size position = queue.tail % queue.capacity;
    auto* record = reinterpret_cast<QueuedAssignment*>(data + position);
    if (record->length == 0) {
      queue.tail += queue.capacity - position;
      continue;
    }
    if (taken + record->length > capacity) break;
    memcpy(buffer + taken, record, record->length);
    taken += record->length;
    queue.tail += record->length;
  }
  LWLockRelease(queue.lock);
  return taken;
}

bool DetachWorkerIfIdle(int index) {
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  bool idle = queue.tail == queue.head && !metrics::IsDirty(queue.database) && !WarmStartPending(queue.database);
  if (idle) {
    queue.worker_pid = 0;
    queue.worker_latch = nullptr;
  }
  LWLockRelease(queue.lock);
  return idle;
}

}  // namespace abtest::glue
