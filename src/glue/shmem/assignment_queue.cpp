#include "glue/shmem/assignment_queue.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/shmem/shared_state.hpp"

extern "C" {
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
}

namespace abtest::glue {

int max_databases = 0;
int assignment_queue_size = 65536;
int flush_interval_ms = 1000;

namespace {

// The queues share one pool of chunks: a database takes chunks as its queue grows
// and gives each back once the worker has written it, so one busy database may use
// the whole pool and an idle one holds none. A record never spans two chunks.
constexpr Size kChunkBytes = 64 * 1024;

struct Chunk {
  std::int32_t next;  // the queue's next chunk, or -1
  std::uint32_t used; // bytes of records in it
};

struct Queue {
  LWLock* lock;
  Oid database;            // InvalidOid: free; changed under claim_lock and lock
  bool worker_starting;    // registered, not yet attached
  TimestampTz starting_since;
  TimestampTz retry_after; // a registration failed: not before then (no free worker slot)
  bool wants_worker;       // a registration failed: a running worker of another database yields
  bool purge_requested;    // abtest.deleted_experiments may hold a purge to do (log_purge.hpp)
  pid_t worker_pid;        // 0: none
  Latch* worker_latch;
  std::int32_t first_chunk;  // read from (the oldest records), -1: none
  std::int32_t last_chunk;   // appended to, -1: none
  std::uint32_t read_offset; // in first_chunk
  std::uint64_t appended;    // bytes ever appended
  std::uint64_t taken;       // bytes ever taken
};

struct QueueArea {
  LWLock* claim_lock;  // guards which database holds which queue
  slock_t pool_mutex;  // guards the free list
  std::int32_t free_chunk;  // head of the free list, -1: none
  std::int32_t free_count;
  std::int32_t chunk_count;
  pg_atomic_uint64 user_clears_begun;  // see UserClearCounts
  pg_atomic_uint64 user_clears_done;
  Size chunks_offset;  // of the Chunk headers, from the start of the area
  Size data_offset;    // of the chunks' bytes
  Queue queues[FLEXIBLE_ARRAY_MEMBER];
};

QueueArea* area = nullptr;

int ChunkCount() {
  return static_cast<int>(std::max<Size>(2, static_cast<Size>(assignment_queue_size) * 1024 / kChunkBytes));
}
Size HeaderSize() { return MAXALIGN(offsetof(QueueArea, queues) + sizeof(Queue) * DatabaseSlots()); }
Size ChunkHeadersSize() { return MAXALIGN(sizeof(Chunk) * ChunkCount()); }
Chunk& ChunkAt(int index) {
  return reinterpret_cast<Chunk*>(reinterpret_cast<char*>(area) + area->chunks_offset)[index];
}
char* ChunkData(int index) {
  return reinterpret_cast<char*>(area) + area->data_offset + static_cast<Size>(index) * kChunkBytes;
}

int TakeFreeChunk() {
  SpinLockAcquire(&area->pool_mutex);
  int chunk = area->free_chunk;
  if (chunk >= 0) {
    area->free_chunk = ChunkAt(chunk).next;
    --area->free_count;
  }
  SpinLockRelease(&area->pool_mutex);
  if (chunk >= 0) {
    ChunkAt(chunk).next = -1;
    ChunkAt(chunk).used = 0;
  }
  return chunk;
}

void ReturnChunk(int chunk) {
  SpinLockAcquire(&area->pool_mutex);
  ChunkAt(chunk).next = area->free_chunk;
  area->free_chunk = chunk;
  ++area->free_count;
  SpinLockRelease(&area->pool_mutex);
}

// Maps a chunk into this process's page tables in one call, the first time this
// backend appends to it. A process maps shared memory page by page on first touch;
// in a virtual machine a fault costs microseconds (12 to 23 µs a page on the 2-core
// bench VM: 200 to 400 ns per queued record), and one MADV_POPULATE_WRITE over the
// chunk's 16 pages costs about half of their 16 faults. It changes no byte: another process reading
// or writing the chunk meanwhile is unaffected.
// Without the call (a kernel before 5.14), the pages fault in as before.
void MapChunkOnce(int chunk) {
#ifdef MADV_POPULATE_WRITE
  static std::vector<bool> mapped;  // by this process, per chunk of the pool
  if (mapped.empty()) mapped.resize(static_cast<std::size_t>(area->chunk_count), false);
  if (mapped[static_cast<std::size_t>(chunk)]) return;
  mapped[static_cast<std::size_t>(chunk)] = true;
  static const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  auto start = reinterpret_cast<std::uintptr_t>(ChunkData(chunk)) & ~(page - 1);
  auto end = reinterpret_cast<std::uintptr_t>(ChunkData(chunk)) + kChunkBytes;
  (void)madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_WRITE);
#else
  (void)chunk;
#endif
}

// Gives every chunk of the queue back. Called with its lock held exclusively.
void EmptyQueueLocked(Queue& queue) {
  for (int chunk = queue.first_chunk; chunk >= 0;) {
    int next = ChunkAt(chunk).next;
    ReturnChunk(chunk);
    chunk = next;
  }
  queue.first_chunk = queue.last_chunk = -1;
  queue.read_offset = 0;
  queue.taken = queue.appended;
}

// Visits the queue's records from the oldest; `visit` returns false to stop. Called
// with its lock held.
template <typename Visit>
void ForEachRecordLocked(Queue& queue, Visit&& visit) {
  std::uint32_t offset = queue.read_offset;
  for (int chunk = queue.first_chunk; chunk >= 0; chunk = ChunkAt(chunk).next, offset = 0)
    for (std::uint32_t at = offset; at < ChunkAt(chunk).used;) {
      auto* record = reinterpret_cast<QueuedAssignment*>(ChunkData(chunk) + at);
      if (!visit(*record)) return;
      at += static_cast<std::uint32_t>(record->length());
    }
}

// Whether nothing of the database that holds the queue lives only in memory, and
// no process of it could be using the queue: its state can go (see ClaimQueue).
bool ReclaimableLocked(const Queue& queue, bool database_exists) {
  if (queue.worker_pid != 0 || queue.worker_starting) return false;
  if (!database_exists) return true;  // dropped: what it still holds is garbage
  return !InRecovery() && queue.appended == queue.taken && !metrics::IsDirtyAt(static_cast<int>(&queue - area->queues)) &&
         CountDBBackends(queue.database) == 0 && !WarmStartPending(queue.database) && !queue.purge_requested;
}

// Hands queue `index` from its database to this one. Called with claim_lock held
// exclusively: the database that left cannot claim a queue meanwhile.
void ReassignLocked(int index) {
  Queue& queue = area->queues[index];
  Oid former = queue.database;
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  EmptyQueueLocked(queue);
  queue.database = MyDatabaseId;
  queue.worker_starting = false;
  queue.wants_worker = false;
  queue.purge_requested = false;
  queue.retry_after = 0;
  LWLockRelease(queue.lock);
  // Its counters were written (it was not dirty) or it was dropped: a later use
  // loads them from the tables again.
  metrics::ForgetDatabase(index, former);
}

// The queue of this database, claimed on first use: a free one, else the one of a
// database that is gone or that no process uses and that has nothing unwritten.
int ClaimQueue() {
  LWLockAcquire(area->claim_lock, LW_SHARED);
  for (int i = 0; i < DatabaseSlots(); ++i)
    if (area->queues[i].database == MyDatabaseId) {
      LWLockRelease(area->claim_lock);
      return i;
    }
  LWLockRelease(area->claim_lock);

  // Which databases still exist is a catalog question: asked without a lock held.
  std::vector<Oid> dropped;
  std::vector<Oid> held;
  LWLockAcquire(area->claim_lock, LW_SHARED);
  for (int i = 0; i < DatabaseSlots(); ++i)
    if (area->queues[i].database != InvalidOid) held.push_back(area->queues[i].database);
  LWLockRelease(area->claim_lock);
  bool all_taken = static_cast<int>(held.size()) == DatabaseSlots();
  if (all_taken)
    for (Oid database : held)
      if (!catalog::DatabaseExists(database)) dropped.push_back(database);

  LWLockAcquire(area->claim_lock, LW_EXCLUSIVE);
  int chosen = -1;
  for (int i = 0; i < DatabaseSlots(); ++i) {
    if (area->queues[i].database == MyDatabaseId) {
      LWLockRelease(area->claim_lock);
      return i;
    }
    if (chosen < 0 && area->queues[i].database == InvalidOid) chosen = i;
  }
  if (chosen >= 0) {
    area->queues[chosen].database = MyDatabaseId;
  } else {
    for (int i = 0; i < DatabaseSlots() && chosen < 0; ++i) {
      const Queue& queue = area->queues[i];
      bool exists = std::find(dropped.begin(), dropped.end(), queue.database) == dropped.end();
      if (ReclaimableLocked(queue, exists)) chosen = i;
    }
    if (chosen >= 0) ReassignLocked(chosen);
  }
  LWLockRelease(area->claim_lock);
  return chosen;
}

// Starts the flush worker of the queue's database unless one runs or is starting.
// Called with the queue's lock held exclusively. When no worker slot is free
// (max_worker_processes), it tries again after a flush interval, the launcher tries
// too (queue_launcher.hpp), and a worker of another database yields its slot after a
// few writes (WorkerShouldYield): the queue keeps the records meanwhile.
void EnsureWorkerLocked(Queue& queue, bool quiet = false) {
  constexpr long kStartTimeoutMs = 10000;  // a worker that never attached is tried again
  if (queue.worker_pid != 0) return;
  TimestampTz now = GetCurrentTimestamp();
  if (queue.worker_starting && !TimestampDifferenceExceeds(queue.starting_since, now, kStartTimeoutMs)) return;
  if (queue.retry_after != 0 && now < queue.retry_after) return;
  BackgroundWorker worker;
  memset(&worker, 0, sizeof worker);
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
  worker.bgw_restart_time = BGW_NEVER_RESTART;  // the next backend that queues starts a new one
  snprintf(worker.bgw_library_name, BGW_MAXLEN, "abtest");
  snprintf(worker.bgw_function_name, BGW_MAXLEN, "abtest_flush_worker_main");
  snprintf(worker.bgw_name, BGW_MAXLEN, "abtest flush worker for database %u", queue.database);
  snprintf(worker.bgw_type, BGW_MAXLEN, "abtest flush worker");
  worker.bgw_main_arg = ObjectIdGetDatum(queue.database);
  if (RegisterDynamicBackgroundWorker(&worker, nullptr)) {
    queue.worker_starting = true;
    queue.starting_since = now;
    queue.retry_after = 0;
    return;
  }
  queue.wants_worker = true;
  queue.retry_after = TimestampTzPlusMilliseconds(now, flush_interval_ms);
  // Once a minute per backend at most: a routing query over many users would
  // otherwise repeat it for each.
  static TimestampTz last_warning = 0;
  if (quiet || (last_warning != 0 && !TimestampDifferenceExceeds(last_warning, now, 60000))) return;
  last_warning = now;
  ereport(WARNING, (errmsg("abtest could not start a flush worker for database %u: no free background worker slot",
                           queue.database),
                    errhint("Raise max_worker_processes. Meanwhile the workers of other databases take turns, and "
                            "new sticky assignments are written synchronously when the queue is full.")));
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

int DatabaseSlots() { return max_databases > 0 ? max_databases : MaxBackends; }

Size AssignmentQueueShmemSize() {
  return add_size(add_size(HeaderSize(), ChunkHeadersSize()), mul_size(ChunkCount(), kChunkBytes));
}

void AssignmentQueueRequestLocks() { RequestNamedLWLockTranche("abtest assignment queues", DatabaseSlots() + 1); }

void AssignmentQueueShmemInit() {
  bool found = false;
  area = static_cast<QueueArea*>(ShmemInitStruct("abtest assignment queues", AssignmentQueueShmemSize(), &found));
  if (found) return;
  LWLockPadded* locks = GetNamedLWLockTranche("abtest assignment queues");
  area->claim_lock = &locks[0].lock;
  SpinLockInit(&area->pool_mutex);
  area->chunk_count = ChunkCount();
  area->chunks_offset = HeaderSize();
  area->data_offset = HeaderSize() + ChunkHeadersSize();
  area->free_chunk = -1;
  area->free_count = 0;
  pg_atomic_init_u64(&area->user_clears_begun, 0);
  pg_atomic_init_u64(&area->user_clears_done, 0);
  for (int i = area->chunk_count - 1; i >= 0; --i) ReturnChunk(i);
  for (int i = 0; i < DatabaseSlots(); ++i) {
    Queue& queue = area->queues[i];
    queue.lock = &locks[i + 1].lock;
    queue.database = InvalidOid;
    queue.worker_starting = false;
    queue.starting_since = 0;
    queue.retry_after = 0;
    queue.wants_worker = false;
    queue.purge_requested = false;
    queue.worker_pid = 0;
    queue.worker_latch = nullptr;
    queue.first_chunk = queue.last_chunk = -1;
    queue.read_offset = 0;
    queue.appended = queue.taken = 0;
  }
}

int ClaimDatabaseQueue() {
  // A claim holds while this backend lives: a queue is only reclaimed from a
  // database that no process is connected to.
  static int claimed = -1;
  if (claimed < 0) claimed = ClaimQueue();
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

void RequestPurge(int index) {
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  queue.purge_requested = true;
  EnsureWorkerLocked(queue, true);
  WakeWorkerLocked(queue);
  LWLockRelease(queue.lock);
}

bool TakePurgeRequest(int index) {
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  bool requested = queue.purge_requested;
  queue.purge_requested = false;
  LWLockRelease(queue.lock);
  return requested;
}

void FillRecord(QueuedAssignment* record, const StickyKey& key, int branch, TimestampTz assigned_at, bool reassigned,
                std::string_view user_id) {
  record->assigned_at = assigned_at;
  record->slot = key.slot;
  record->epoch = key.epoch;
  record->user_length = static_cast<std::uint16_t>(user_id.size());
  record->branch = static_cast<std::int8_t>(branch);
  record->reassigned = reassigned;
  record->forgotten = 0;
  memcpy(record->user_id, user_id.data(), user_id.size());
}

UserClearCounts ReadUserClearCounts() {
  // Begun before done: a clear that begins between the two reads shows as begun later.
  std::uint64_t begun = pg_atomic_read_u64(&area->user_clears_begun);
  pg_read_barrier();
  return {begun, pg_atomic_read_u64(&area->user_clears_done)};
}

UserClearScope::UserClearScope() { pg_atomic_fetch_add_u64(&area->user_clears_begun, 1); }
UserClearScope::~UserClearScope() { pg_atomic_fetch_add_u64(&area->user_clears_done, 1); }

int EnqueueRecords(char* records, Size bytes, const UserClearCounts& since,
                   bool (*still_cached)(const QueuedAssignment&), void (*left_over)(const QueuedAssignment&),
                   bool quiet) {
  int index = ClaimDatabaseQueue();
  if (index < 0) {
    ForEachRecordIn(records, bytes, left_over);
    return 0;
  }
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  EnsureWorkerLocked(queue, quiet);
  // Under the lock: a clear that begins after this read marks what this call appends.
  bool check = since.begun != since.done || pg_atomic_read_u64(&area->user_clears_begun) != since.begun;
  Size at = 0;
  Size added = 0;
  int appended = 0;
  while (at < bytes) {
    auto* record = reinterpret_cast<QueuedAssignment*>(records + at);
    Size length = record->length();
    if (check && !still_cached(*record)) {
      at += length;
      continue;
    }
    if (queue.last_chunk < 0 || ChunkAt(queue.last_chunk).used + length > kChunkBytes) {
      int chunk = TakeFreeChunk();
      if (chunk < 0) {  // the pool is used up: the caller keeps the rest (sticky.cpp)
        WakeWorkerLocked(queue);
        break;
      }
      MapChunkOnce(chunk);
      if (queue.last_chunk >= 0)
        ChunkAt(queue.last_chunk).next = chunk;
      else {
        queue.first_chunk = chunk;
        queue.read_offset = 0;
      }
      queue.last_chunk = chunk;
    }
    Chunk& chunk = ChunkAt(queue.last_chunk);
    memcpy(ChunkData(queue.last_chunk) + chunk.used, record, length);
    chunk.used += static_cast<std::uint32_t>(length);
    added += length;
    at += length;
    ++appended;
  }
  queue.appended += added;
  // Wake the worker early when the pool runs low, rather than at its interval.
  if (area->free_count < area->chunk_count / 2 && queue.appended - queue.taken >= kChunkBytes)
    WakeWorkerLocked(queue);
  LWLockRelease(queue.lock);
  ForEachRecordIn(records + at, bytes - at, left_over);
  return appended;
}

void ForgetQueuedUser(std::string_view user_id) {
  int index = QueueOfDatabase(MyDatabaseId);
  if (index < 0) return;
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  ForEachRecordLocked(queue, [&](QueuedAssignment& record) {
    if (record.user() == user_id) record.forgotten = 1;
    return true;
  });
  LWLockRelease(queue.lock);
}

TimestampTz OldestQueuedAt() {
  TimestampTz oldest = 0;
  for (int i = 0; i < DatabaseSlots(); ++i) {
    Queue& queue = area->queues[i];
    LWLockAcquire(area->claim_lock, LW_SHARED);
    Oid database = queue.database;
    LWLockRelease(area->claim_lock);
    if (database == InvalidOid) continue;
    TimestampTz queued_at = 0;
    LWLockAcquire(queue.lock, LW_SHARED);
    if (queue.database == database)
      ForEachRecordLocked(queue, [&](QueuedAssignment& record) {
        queued_at = record.assigned_at;
        return false;
      });
    LWLockRelease(queue.lock);
    if (queued_at != 0 && (oldest == 0 || queued_at < oldest) && catalog::DatabaseExists(database)) oldest = queued_at;
  }
  return oldest;
}

QueuePoolUse ReadQueuePoolUse() {
  SpinLockAcquire(&area->pool_mutex);
  int free_count = area->free_count;
  SpinLockRelease(&area->pool_mutex);
  return QueuePoolUse{static_cast<Size>(area->chunk_count - free_count) * kChunkBytes,
                      static_cast<Size>(area->chunk_count) * kChunkBytes};
}

int QueueOfDatabase(Oid database) {
  static int mine = -1;  // stays this database's while this process is connected to it
  if (database == MyDatabaseId && mine >= 0) return mine;
  LWLockAcquire(area->claim_lock, LW_SHARED);
  int found = -1;
  for (int i = 0; i < DatabaseSlots() && found < 0; ++i)
    if (area->queues[i].database == database) found = i;
  LWLockRelease(area->claim_lock);
  if (database == MyDatabaseId) mine = found;
  return found;
}

bool AttachWorker(int index) {
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  queue.worker_starting = false;
  queue.wants_worker = false;
  bool attached = queue.worker_pid == 0;
  if (attached) {
    queue.worker_pid = MyProcPid;
    queue.worker_latch = MyLatch;
  }
  LWLockRelease(queue.lock);
  if (attached) on_shmem_exit(DetachWorker, Int32GetDatum(index));
  return attached;
}

bool QueueHasRecords(int index) {
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_SHARED);
  bool has = queue.appended != queue.taken;
  LWLockRelease(queue.lock);
  return has;
}

Size TakeBatch(int index, char* buffer, Size capacity) {
  Queue& queue = area->queues[index];
  Size taken = 0;
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  while (queue.first_chunk >= 0) {
    Chunk& chunk = ChunkAt(queue.first_chunk);
    if (queue.read_offset < chunk.used) {
      auto* record = reinterpret_cast<QueuedAssignment*>(ChunkData(queue.first_chunk) + queue.read_offset);
      Size length = record->length();
      if (taken + length > capacity) break;
      memcpy(buffer + taken, record, length);
      taken += length;
      queue.read_offset += static_cast<std::uint32_t>(length);
      queue.taken += length;
      continue;
    }
    // Read to its end: the chunk goes back to the pool (the last one too: an idle
    // database holds no chunk).
    int next = chunk.next;
    if (queue.first_chunk == queue.last_chunk) queue.last_chunk = -1;
    ReturnChunk(queue.first_chunk);
    queue.first_chunk = next;
    queue.read_offset = 0;
  }
  LWLockRelease(queue.lock);
  return taken;
}

bool WorkerShouldYield(int index) {
  for (int i = 0; i < DatabaseSlots(); ++i) {
    if (i == index) continue;
    Queue& queue = area->queues[i];
    LWLockAcquire(queue.lock, LW_SHARED);
    bool waiting = queue.database != InvalidOid && queue.wants_worker && queue.worker_pid == 0 && !queue.worker_starting;
    LWLockRelease(queue.lock);
    if (waiting) return true;
  }
  return false;
}

void YieldWorker(int index) {
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  if (queue.worker_pid == MyProcPid) {
    queue.worker_pid = 0;
    queue.worker_latch = nullptr;
    // This database's backends wait a flush interval before starting another, so
    // that the database that waits gets the slot first.
    queue.retry_after = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), flush_interval_ms);
  }
  LWLockRelease(queue.lock);
}

std::vector<Oid> DatabasesWaitingForWorker() {
  std::vector<Oid> waiting;
  for (int i = 0; i < DatabaseSlots(); ++i) {
    Queue& queue = area->queues[i];
    LWLockAcquire(queue.lock, LW_SHARED);
    Oid database = queue.database;
    bool work = database != InvalidOid && queue.worker_pid == 0 && !queue.worker_starting &&
                (queue.appended != queue.taken || metrics::IsDirtyAt(i) || queue.purge_requested);
    LWLockRelease(queue.lock);
    if (work) waiting.push_back(database);
  }
  return waiting;
}

void StartWorkerFor(Oid database) {
  int index = QueueOfDatabase(database);
  if (index < 0) return;
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  if (queue.database == database) {
    queue.retry_after = 0;  // the launcher decides when to try
    EnsureWorkerLocked(queue, true);
  }
  LWLockRelease(queue.lock);
}

bool DetachWorkerIfIdle(int index) {
  Queue& queue = area->queues[index];
  LWLockAcquire(queue.lock, LW_EXCLUSIVE);
  bool idle = queue.appended == queue.taken && !metrics::IsDirtyAt(index) && !WarmStartPending(queue.database) &&
              !queue.purge_requested;
  if (idle) {
    queue.worker_pid = 0;
    queue.worker_latch = nullptr;
  }
  LWLockRelease(queue.lock);
  return idle;
}

}  // namespace abtest::glue
