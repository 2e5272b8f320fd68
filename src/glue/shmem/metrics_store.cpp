#include "glue/shmem/metrics_store.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "glue/shmem/assignment_queue.hpp"
#include "glue/guard.hpp"
#include "glue/worker/metrics_persistence.hpp"
#include "glue/shmem/pending_queries.hpp"
#include "glue/shmem/query_metrics.hpp"
#include "glue/shmem/shared_state.hpp"
#include "glue/worker/query_persistence.hpp"
#include "glue/transaction_end.hpp"

extern "C" {
#include "access/xlog.h"
#include "storage/spin.h"
}

namespace abtest::glue::metrics {

int max_branches = 2048;
int max_events = 8192;

namespace {

constexpr int kPartitions = 16;  // per table; a power of two (dynahash requires it)

struct BranchKey {
  Oid database;
  std::int32_t position;
  pg_uuid_t experiment;
};

struct BranchEntry {
  BranchKey key;  // first: the hash table's key
  slock_t mutex;  // guards queries and histogram
  QueryCounters queries;
  pg_atomic_uint64 exposures;
  pg_atomic_uint64 assigned_users;
  double sequential_p;  // guarded by mutex
  std::uint64_t histogram[kLatencyBuckets];
};

struct EventKey {
  Oid database;
  std::int32_t position;
  pg_uuid_t experiment;
  char name[kMaxEventNameBytes + 1];  // zero-padded: the key is hashed as bytes
};

struct EventEntry {
  EventKey key;
  slock_t mutex;
  RunningMoments moments;
};

// A shared hash table with its partition locks and its bound.
struct Table {
  HTAB* hash;
  LWLockPadded* locks;
  pg_atomic_uint32* count;
  int limit;
  const char* guc;
  const char* what;
};

enum LoadState : std::uint32_t { kNotLoaded = 0, kLoading = 1, kLoaded = 2 };

// Per database (indexed like its assignment queue: both are claimed together).
struct DatabaseState {
  pg_atomic_uint32 load_state;
  pg_atomic_uint32 dirty;  // counts not yet written by the flush worker
};

struct Header {
  pg_atomic_uint32 branch_count;
  pg_atomic_uint32 event_count;
  DatabaseState databases[FLEXIBLE_ARRAY_MEMBER];
};

Header* header = nullptr;
Table branches;
Table events;

Size HeaderSize() { return add_size(offsetof(Header, databases), mul_size(DatabaseSlots(), sizeof(DatabaseState))); }

LWLock* LockOf(const Table& table, std::uint32_t hash) { return &table.locks[hash % kPartitions].lock; }

void AcquireAll(const Table& table, LWLockMode mode) {
  for (int i = 0; i < kPartitions; ++i) LWLockAcquire(&table.locks[i].lock, mode);
}

void ReleaseAll(const Table& table) {
  for (int i = kPartitions - 1; i >= 0; --i) LWLockRelease(&table.locks[i].lock);
}

void InitEntry(BranchEntry* entry) {
  SpinLockInit(&entry->mutex);
  entry->queries = QueryCounters{};
  pg_atomic_init_u64(&entry->exposures, 0);
  pg_atomic_init_u64(&entry->assigned_users, 0);
  entry->sequential_p = 1;
  memset(entry->histogram, 0, sizeof entry->histogram);
}

void InitEntry(EventEntry* entry) {
  SpinLockInit(&entry->mutex);
  entry->moments = RunningMoments{};
}

[[noreturn]] void RefuseFull(const Table& table) {
  throw Error(ErrorKind::kProgramLimit, std::string("abtest has no room for more ") + table.what,
              "All " + std::to_string(table.limit) + " " + table.what + " slots of shared memory are in use.",
              std::string("Raise ") + table.guc +
                  " in postgresql.conf and restart the server, or free slots with ab_clear_metrics() "
                  "or ab_delete_experiment().");
}

// Runs `update` on the key's entry, created when missing, under its partition lock
// (shared when the entry exists). `update` must not throw: a lock is held.
template <typename Entry, typename Key, typename Update>
void UpdateEntry(const Table& table, const Key& key, std::uint32_t hash, Update&& update) {
  LWLock* lock = LockOf(table, hash);
  LWLockAcquire(lock, LW_SHARED);
  auto* entry = static_cast<Entry*>(hash_search_with_hash_value(table.hash, &key, hash, HASH_FIND, nullptr));
  if (entry != nullptr) {
    update(*entry);
    LWLockRelease(lock);
    return;
  }
  LWLockRelease(lock);

  LWLockAcquire(lock, LW_EXCLUSIVE);
  entry = static_cast<Entry*>(hash_search_with_hash_value(table.hash, &key, hash, HASH_FIND, nullptr));
  if (entry == nullptr && pg_atomic_fetch_add_u32(table.count, 1) < static_cast<std::uint32_t>(table.limit)) {
    bool found = false;
    entry = static_cast<Entry*>(hash_search_with_hash_value(table.hash, &key, hash, HASH_ENTER_NULL, &found));
    if (entry != nullptr) InitEntry(entry);
  }
  if (entry == nullptr) {
    pg_atomic_fetch_sub_u32(table.count, 1);
    LWLockRelease(lock);
    RefuseFull(table);
  }
  update(*entry);
  LWLockRelease(lock);
}

template <typename Entry, typename Key, typename Update>
void UpdateEntry(const Table& table, const Key& key, Update&& update) {
  UpdateEntry<Entry>(table, key, get_hash_value(table.hash, &key), update);
}

BranchKey KeyOf(const pg_uuid_t& experiment, int position) {
  BranchKey key;
  memset(&key, 0, sizeof key);
  key.database = MyDatabaseId;
  key.position = position;
  key.experiment = experiment;
  return key;
}

// The uuid and the branch keys' hashes of recently used experiments: routing and
// recording compute them once per experiment, not once per call.
struct KnownExperiment {
  std::string id;
  pg_uuid_t uuid;
  std::vector<std::uint32_t> hashes;  // per branch position
  std::uint64_t serial = 0;           // new each time the slot is filled; 0 while unused
};
constexpr int kKnownExperiments = 4;
KnownExperiment known[kKnownExperiments];
int next_known = 0;
std::uint64_t last_serial = 0;

const KnownExperiment& Known(const CompiledExperiment& experiment) {
  // The slot this compiled experiment was found in last, unless refilled since: a routing
  // query asks for the same experiment a million times, and comparing ids costs more.
  if (experiment.metrics_slot >= 0 && known[experiment.metrics_slot].serial == experiment.metrics_serial)
    return known[experiment.metrics_slot];
  const std::string& id = experiment.model().id;
  int found = -1;
  for (int i = 0; i < kKnownExperiments && found < 0; ++i)
    if (known[i].serial != 0 && known[i].id == id) found = i;
  if (found < 0) {
    found = next_known++ % kKnownExperiments;
    KnownExperiment& slot = known[found];
    slot.serial = 0;  // set last: a failure half-way leaves the slot unused
    slot.id.clear();
    slot.uuid = UuidFromText(id);
    slot.hashes.clear();
    for (std::size_t position = 0; position < experiment.model().branches.size(); ++position) {
      BranchKey key = KeyOf(slot.uuid, static_cast<int>(position));
      slot.hashes.push_back(get_hash_value(branches.hash, &key));
    }
    slot.id = id;
    slot.serial = ++last_serial;
  }
  experiment.metrics_slot = found;
  experiment.metrics_serial = known[found].serial;
  return known[found];
}

// Runs `update` on the branch's entry (see UpdateEntry).
template <typename Update>
void UpdateBranch(const CompiledExperiment& experiment, int position, Update&& update) {
  const KnownExperiment& known_experiment = Known(experiment);
  UpdateEntry<BranchEntry>(branches, KeyOf(known_experiment.uuid, position),
                           known_experiment.hashes[static_cast<std::size_t>(position)], update);
}

// The database's index, claimed with its assignment queue on first use.
int DatabaseIndex() {
  int index = ClaimDatabaseQueue();
  if (index < 0)
    throw Error(ErrorKind::kProgramLimit, "abtest has no room for another database",
                "All " + std::to_string(DatabaseSlots()) +
                    " database slots (abtest.max_databases) are held by databases in use.",
                "Set abtest.max_databases to 0 (one slot per possible connection) in postgresql.conf and "
                "restart the server.");
  return index;
}

// After counting: makes sure the flush worker will write it. Only the first count
// after a flush pays for more than one atomic read.
// Now and then it checks on the worker even so: one that could not start (no free
// max_worker_processes) is tried again.
void MarkDirty(int database) {
  static std::uint32_t calls_since_check = 0;
  DatabaseState& state = header->databases[database];
  if (pg_atomic_read_u32(&state.dirty) != 0 && ++calls_since_check % 4096 != 0) return;
  if (InRecovery()) return;  // a standby cannot write: its counts stay in memory
  pg_atomic_write_u32(&state.dirty, 1);
  RequestFlushWorker(database);
}

// Everything a count needs before touching an entry: the database's slot and its
// persisted totals merged in.
int PrepareToCount() {
  static int ready_database = -1;  // once the totals are in, they stay in while this backend lives
  if (ready_database >= 0) return ready_database;
  int database = DatabaseIndex();
  if (EnsureLoaded()) ready_database = database;
  return database;
}

// Exposures and assigned users this backend counted and has not added to shared
// memory yet. The first count of a branch in a transaction goes to shared memory at
// once (creating the entry: where a full table is refused); the rest are added up
// here, one increment each, and go to shared memory at the end of the transaction or
// when this list is full. A routing query over a million rows, returning or new
// users, thus takes no shared lock per row for its counts.
struct PendingExposure {
  pg_uuid_t experiment;
  std::uint32_t hash;
  std::int32_t position;
  std::uint64_t count;     // exposures
  std::uint64_t assigned;  // assigned users
};
constexpr int kPendingExposures = 16;
PendingExposure pending_exposures[kPendingExposures];
int pending_exposure_count = 0;

// Cannot fail: it only finds entries. A branch removed meanwhile (its experiment
// deleted) takes its uncounted exposures with it.
void FlushPendingExposures() {
  bool added = false;
  for (int i = 0; i < pending_exposure_count; ++i) {
    const PendingExposure& exposure = pending_exposures[i];
    if (exposure.count == 0 && exposure.assigned == 0) continue;
    BranchKey key = KeyOf(exposure.experiment, exposure.position);
    LWLock* lock = LockOf(branches, exposure.hash);
    LWLockAcquire(lock, LW_SHARED);
    auto* entry = static_cast<BranchEntry*>(
        hash_search_with_hash_value(branches.hash, &key, exposure.hash, HASH_FIND, nullptr));
    if (entry != nullptr && exposure.count != 0) pg_atomic_fetch_add_u64(&entry->exposures, exposure.count);
    if (entry != nullptr && exposure.assigned != 0) pg_atomic_fetch_add_u64(&entry->assigned_users, exposure.assigned);
    LWLockRelease(lock);
    added = true;
  }
  pending_exposure_count = 0;
  // The flush worker may have written the first exposure and left since: mark the
  // database dirty again, which starts a worker when none runs.
  int database = QueueOfDatabase(MyDatabaseId);
  if (!added || database < 0) return;
  try {
    MarkDirty(database);
  } catch (...) {
    pg_atomic_write_u32(&header->databases[database].dirty, 1);  // written by the next worker
  }
}

// Clears and removals wait for the commit (see ClearAtCommit).
struct PendingChange {
  pg_uuid_t experiment;
  bool whole_database;
  bool remove;
  SubTransactionId subtransaction;
};
std::vector<PendingChange> pending;
bool callbacks_registered = false;

bool Matches(const pg_uuid_t& experiment, const PendingChange& change) {
  return change.whole_database || memcmp(&experiment, &change.experiment, sizeof experiment) == 0;
}

void ApplyToDatabase(const PendingChange& change) {
  query_metrics::Remove(MyDatabaseId, change.whole_database ? nullptr : &change.experiment);
  AcquireAll(branches, LW_EXCLUSIVE);
  HASH_SEQ_STATUS scan;
  hash_seq_init(&scan, branches.hash);
  while (auto* entry = static_cast<BranchEntry*>(hash_seq_search(&scan))) {
    if (entry->key.database != MyDatabaseId || !Matches(entry->key.experiment, change)) continue;
    if (change.remove) {
      hash_search(branches.hash, &entry->key, HASH_REMOVE, nullptr);
      pg_atomic_fetch_sub_u32(branches.count, 1);
    } else {
      InitEntry(entry);  // no one else holds it: the partition locks are exclusive
    }
  }
  ReleaseAll(branches);

  AcquireAll(events, LW_EXCLUSIVE);
  hash_seq_init(&scan, events.hash);
  while (auto* entry = static_cast<EventEntry*>(hash_seq_search(&scan))) {
    if (entry->key.database != MyDatabaseId || !Matches(entry->key.experiment, change)) continue;
    hash_search(events.hash, &entry->key, HASH_REMOVE, nullptr);
    pg_atomic_fetch_sub_u32(events.count, 1);
  }
  ReleaseAll(events);
}

// Removes every entry of `database` (a database whose slot is reclaimed, see
// assignment_queue.hpp: its totals are in its tables).
template <typename Entry>
void RemoveEntriesOf(const Table& table, Oid database) {
  AcquireAll(table, LW_EXCLUSIVE);
  HASH_SEQ_STATUS scan;
  hash_seq_init(&scan, table.hash);
  while (auto* entry = static_cast<Entry*>(hash_seq_search(&scan))) {
    if (entry->key.database != database) continue;
    hash_search(table.hash, &entry->key, HASH_REMOVE, nullptr);
    pg_atomic_fetch_sub_u32(table.count, 1);
  }
  ReleaseAll(table);
}

// Transaction callbacks cannot raise, and nothing here does.
void OnTransactionEnd(XactEvent event, void*) {
  bool commit = Commits(event);
  bool abort = Aborts(event);
  // This transaction's statements first: a clear at its commit clears them too.
  if (commit || abort) pending_queries::Publish();
  if (commit || abort) FlushPendingExposures();  // a rolled-back route was still seen
  if (commit)
    for (const PendingChange& change : pending) ApplyToDatabase(change);
  if (commit || abort) pending.clear();
}

// A clear in a rolled-back savepoint never happened; one in a released savepoint
// belongs to the parent.
void OnSubtransactionEnd(SubXactEvent event, SubTransactionId mine, SubTransactionId parent, void*) {
  for (std::size_t i = 0; i < pending.size();) {
    if (pending[i].subtransaction != mine) {
      ++i;
      continue;
    }
    if (event == SUBXACT_EVENT_COMMIT_SUB) {
      pending[i++].subtransaction = parent;
    } else if (event == SUBXACT_EVENT_ABORT_SUB) {
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));  // no allocation: cannot throw
    } else {
      ++i;
    }
  }
}

void RegisterCallbacks() {
  if (callbacks_registered) return;
  PgCall([] {
    RegisterXactCallback(OnTransactionEnd, nullptr);
    RegisterSubXactCallback(OnSubtransactionEnd, nullptr);
  });
  callbacks_registered = true;
}

void AddPending(const pg_uuid_t* experiment, bool remove) {
  RegisterCallbacks();
  PendingChange change;
  memset(&change, 0, sizeof change);
  if (experiment != nullptr) change.experiment = *experiment;
  change.whole_database = experiment == nullptr;
  change.remove = remove;
  change.subtransaction = PgCall([] { return GetCurrentSubTransactionId(); });
  pending.push_back(change);
}

void CopyOut(BranchEntry& entry, BranchSnapshot* out) {
  out->experiment = entry.key.experiment;
  out->position = entry.key.position;
  SpinLockAcquire(&entry.mutex);
  out->queries = entry.queries;
  out->sequential_p = entry.sequential_p;
  memcpy(out->histogram, entry.histogram, sizeof out->histogram);
  SpinLockRelease(&entry.mutex);
  out->exposures = pg_atomic_read_u64(&entry.exposures);
  out->assigned_users = pg_atomic_read_u64(&entry.assigned_users);
}

}  // namespace

Size ShmemSize() {
  Size size = MAXALIGN(HeaderSize());
  size = add_size(size, hash_estimate_size(max_branches, sizeof(BranchEntry)));
  size = add_size(size, hash_estimate_size(max_events, sizeof(EventEntry)));
  return size;
}

void RequestLocks() { RequestNamedLWLockTranche("abtest metrics", 2 * kPartitions); }

void ShmemInit() {
  bool found = false;
  header = static_cast<Header*>(ShmemInitStruct("abtest metrics", HeaderSize(), &found));
  if (!found) {
    pg_atomic_init_u32(&header->branch_count, 0);
    pg_atomic_init_u32(&header->event_count, 0);
    for (int i = 0; i < DatabaseSlots(); ++i) {
      pg_atomic_init_u32(&header->databases[i].load_state, kNotLoaded);
      pg_atomic_init_u32(&header->databases[i].dirty, 0);
    }
  }
  LWLockPadded* locks = GetNamedLWLockTranche("abtest metrics");
  HASHCTL info;
  memset(&info, 0, sizeof info);
  info.keysize = sizeof(BranchKey);
  info.entrysize = sizeof(BranchEntry);
  info.num_partitions = kPartitions;
  int flags = HASH_ELEM | HASH_BLOBS | HASH_PARTITION;
  branches = Table{ShmemInitHash("abtest branch metrics", max_branches, max_branches, &info, flags), locks,
                   &header->branch_count, max_branches, "abtest.max_branches", "branch metrics"};
  info.keysize = sizeof(EventKey);
  info.entrysize = sizeof(EventEntry);
  events = Table{ShmemInitHash("abtest event metrics", max_events, max_events, &info, flags), locks + kPartitions,
                 &header->event_count, max_events, "abtest.max_events", "event metrics"};
}

void RecordQuery(const CompiledExperiment& experiment, int position, double latency_ms, bool success) {
  int database = PrepareToCount();
  int bucket = LatencyBucket(latency_ms);
  TimestampTz now = GetCurrentTimestamp();
  UpdateBranch(experiment, position, [&](BranchEntry& entry) {
    SpinLockAcquire(&entry.mutex);
    entry.queries.Record(latency_ms, success, now);
    ++entry.histogram[bucket];
    SpinLockRelease(&entry.mutex);
  });
  MarkDirty(database);
}

BranchHandle PrepareBranch(const CompiledExperiment& experiment, int position) {
  PrepareToCount();
  UpdateBranch(experiment, position, [](BranchEntry&) {});
  const KnownExperiment& known_experiment = Known(experiment);
  return BranchHandle{known_experiment.uuid, position, known_experiment.hashes[static_cast<std::size_t>(position)]};
}

bool RecordQueriesAt(const BranchHandle& branch, const QuerySample* samples, const TimestampTz* at,
                     int count) noexcept {
  BranchKey key = KeyOf(branch.experiment, branch.position);
  LWLock* lock = LockOf(branches, branch.hash);
  LWLockAcquire(lock, LW_SHARED);
  auto* entry = static_cast<BranchEntry*>(
      hash_search_with_hash_value(branches.hash, &key, branch.hash, HASH_FIND, nullptr));
  if (entry != nullptr) {
    SpinLockAcquire(&entry->mutex);
    for (int i = 0; i < count; ++i) {
      entry->queries.Record(samples[i].latency_ms, samples[i].success, at[i]);
      ++entry->histogram[samples[i].bucket];
    }
    SpinLockRelease(&entry->mutex);
  }
  LWLockRelease(lock);
  int database = QueueOfDatabase(MyDatabaseId);
  if (entry == nullptr || database < 0) return false;
  try {
    MarkDirty(database);
  } catch (...) {
    pg_atomic_write_u32(&header->databases[database].dirty, 1);  // written by the next worker
  }
  return true;
}

void RecordEvent(const CompiledExperiment& experiment, int position, std::string_view event_name, double value) {
  if (event_name.empty())
    throw Error(ErrorKind::kInvalidParameter, "event_name must not be empty", {},
                "Name the event, for example 'purchase'.");
  if (event_name.size() > kMaxEventNameBytes)
    throw Error(ErrorKind::kInvalidParameter,
                "event name is too long: " + std::to_string(event_name.size()) + " bytes",
                "Event names of experiment " + Quoted(experiment.name()) + " are at most " +
                    std::to_string(kMaxEventNameBytes) + " bytes.",
                "Use a short, fixed name per kind of event and put details in the value.");
  int database = PrepareToCount();
  EventKey key;
  memset(&key, 0, sizeof key);
  key.database = MyDatabaseId;
  key.position = position;
  key.experiment = Known(experiment).uuid;
  memcpy(key.name, event_name.data(), event_name.size());
  UpdateEntry<EventEntry>(events, key, [&](EventEntry& entry) {
    SpinLockAcquire(&entry.mutex);
    entry.moments.Add(value);
    SpinLockRelease(&entry.mutex);
  });
  MarkDirty(database);
}

namespace {

// One exposure, or one assigned user, of the branch: into the pending list when the
// branch is on it (see PendingExposure), else into shared memory and onto the list.
void CountPending(const CompiledExperiment& experiment, int position, bool assignment) {
  int database = PrepareToCount();
  const KnownExperiment& known_experiment = Known(experiment);
  for (int i = 0; i < pending_exposure_count; ++i) {
    PendingExposure& exposure = pending_exposures[i];
    if (exposure.position == position &&
        memcmp(&exposure.experiment, &known_experiment.uuid, sizeof exposure.experiment) == 0) {
      ++(assignment ? exposure.assigned : exposure.count);
      return;
    }
  }
  RegisterCallbacks();
  UpdateBranch(experiment, position, [assignment](BranchEntry& entry) {
    pg_atomic_fetch_add_u64(assignment ? &entry.assigned_users : &entry.exposures, 1);
  });
  MarkDirty(database);
  if (pending_exposure_count == kPendingExposures) FlushPendingExposures();
  pending_exposures[pending_exposure_count++] = PendingExposure{
      known_experiment.uuid, known_experiment.hashes[static_cast<std::size_t>(position)], position, 0, 0};
}

}  // namespace

void CountExposure(const CompiledExperiment& experiment, int position) { CountPending(experiment, position, false); }

void CountAssignment(const CompiledExperiment& experiment, int position) { CountPending(experiment, position, true); }

double LowerSequentialP(const CompiledExperiment& experiment, int position, double p_value) {
  PrepareToCount();
  double minimum = p_value;
  UpdateBranch(experiment, position, [&](BranchEntry& entry) {
    SpinLockAcquire(&entry.mutex);
    entry.sequential_p = std::min(entry.sequential_p, p_value);
    minimum = entry.sequential_p;
    SpinLockRelease(&entry.mutex);
  });
  return minimum;
}

void ReadBranch(const CompiledExperiment& experiment, int position, BranchSnapshot* out) {
  PrepareToCount();
  FlushPendingExposures();  // this transaction's own routing calls and statements count too
  pending_queries::Publish();
  const KnownExperiment& known_experiment = Known(experiment);
  BranchKey key = KeyOf(known_experiment.uuid, position);
  *out = BranchSnapshot{};
  out->experiment = key.experiment;
  out->position = position;
  out->sequential_p = 1;
  std::uint32_t hash = known_experiment.hashes[static_cast<std::size_t>(position)];
  LWLock* lock = LockOf(branches, hash);
  LWLockAcquire(lock, LW_SHARED);
  auto* entry =
      static_cast<BranchEntry*>(hash_search_with_hash_value(branches.hash, &key, hash, HASH_FIND, nullptr));
  if (entry != nullptr) CopyOut(*entry, out);
  LWLockRelease(lock);
}

int SnapshotBranches(Oid database, const pg_uuid_t* experiment, BranchSnapshot* out, int capacity) {
  FlushPendingExposures();
  pending_queries::Publish();
  int matched = 0;
  AcquireAll(branches, LW_SHARED);
  HASH_SEQ_STATUS scan;
  hash_seq_init(&scan, branches.hash);
  while (auto* entry = static_cast<BranchEntry*>(hash_seq_search(&scan))) {
    if (entry->key.database != database) continue;
    if (experiment != nullptr && memcmp(&entry->key.experiment, experiment, sizeof *experiment) != 0) continue;
    if (matched < capacity) CopyOut(*entry, &out[matched]);
    ++matched;
  }
  ReleaseAll(branches);
  return matched;
}

int SnapshotEvents(Oid database, const pg_uuid_t* experiment, EventSnapshot* out, int capacity) {
  int matched = 0;
  AcquireAll(events, LW_SHARED);
  HASH_SEQ_STATUS scan;
  hash_seq_init(&scan, events.hash);
  while (auto* entry = static_cast<EventEntry*>(hash_seq_search(&scan))) {
    if (entry->key.database != database) continue;
    if (experiment != nullptr && memcmp(&entry->key.experiment, experiment, sizeof *experiment) != 0) continue;
    if (matched < capacity) {
      EventSnapshot& copy = out[matched];
      copy.experiment = entry->key.experiment;
      copy.position = entry->key.position;
      memcpy(copy.name, entry->key.name, sizeof copy.name);
      SpinLockAcquire(&entry->mutex);
      copy.moments = entry->moments;
      SpinLockRelease(&entry->mutex);
    }
    ++matched;
  }
  ReleaseAll(events);
  return matched;
}

std::vector<BranchSnapshot> ReadBranches(const CompiledExperiment& experiment) {
  std::vector<BranchSnapshot> snapshots(experiment.model().branches.size());
  for (std::size_t i = 0; i < snapshots.size(); ++i) ReadBranch(experiment, static_cast<int>(i), &snapshots[i]);
  return snapshots;
}

std::vector<EventSnapshot> ReadEvents(const pg_uuid_t* experiment) {
  EnsureLoaded();
  std::vector<EventSnapshot> snapshots(64);
  for (;;) {
    int count = SnapshotEvents(MyDatabaseId, experiment, snapshots.data(), static_cast<int>(snapshots.size()));
    if (count <= static_cast<int>(snapshots.size())) {
      snapshots.resize(static_cast<std::size_t>(count));
      return snapshots;
    }
    snapshots.resize(static_cast<std::size_t>(count) + 64);
  }
}

void LockForClear() { LockPersistedForClear(); }

void ClearAtCommit(const pg_uuid_t* experiment) { AddPending(experiment, false); }

void RemoveAtCommit(const pg_uuid_t& experiment) { AddPending(&experiment, true); }

bool EnsureLoaded() {
  DatabaseState& state = header->databases[DatabaseIndex()];
  std::uint32_t current = pg_atomic_read_u32(&state.load_state);
  if (current == kLoaded) return true;
  if (current == kLoading) return false;  // counting meanwhile is fine: loading merges
  std::uint32_t expected = kNotLoaded;
  if (!pg_atomic_compare_exchange_u32(&state.load_state, &expected, kLoading)) return expected == kLoaded;
  try {
    std::vector<PersistedBranch> persisted_branches;
    std::vector<PersistedEvent> persisted_events;
    std::vector<query_metrics::PersistedQuery> persisted_queries;
    ReadPersisted(persisted_branches, persisted_events);
    query_metrics::ReadPersisted(persisted_queries);  // none before catalog 1.4
    // Merging cannot fail half-way: a row without room is skipped and reported.
    std::size_t skipped = 0;
    for (const PersistedBranch& row : persisted_branches) {
      try {
        UpdateEntry<BranchEntry>(branches, KeyOf(row.experiment, row.position), [&](BranchEntry& entry) {
          SpinLockAcquire(&entry.mutex);
          entry.queries.Merge(row.queries);
          entry.sequential_p = std::min(entry.sequential_p, row.sequential_p);
          for (int i = 0; i < kLatencyBuckets; ++i) entry.histogram[i] += row.histogram[i];
          SpinLockRelease(&entry.mutex);
          pg_atomic_fetch_add_u64(&entry.exposures, row.exposures);
          pg_atomic_fetch_add_u64(&entry.assigned_users, row.assigned_users);
        });
      } catch (const Error&) {
        ++skipped;
      }
    }
    for (const PersistedEvent& row : persisted_events) {
      EventKey key;
      memset(&key, 0, sizeof key);
      key.database = MyDatabaseId;
      key.position = row.position;
      key.experiment = row.experiment;
      memcpy(key.name, row.name.data(), std::min(row.name.size(), kMaxEventNameBytes));
      try {
        UpdateEntry<EventEntry>(events, key, [&](EventEntry& entry) {
          SpinLockAcquire(&entry.mutex);
          entry.moments.Merge(row.moments);
          SpinLockRelease(&entry.mutex);
        });
      } catch (const Error&) {
        ++skipped;
      }
    }
    skipped += query_metrics::MergePersisted(persisted_queries);
    pg_atomic_write_u32(&state.load_state, kLoaded);
    if (skipped > 0)
      PgCall([&] {
        ereport(WARNING, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                          errmsg("abtest could not load %zu persisted metrics rows: shared memory is full", skipped),
                          errhint("Raise abtest.max_branches or abtest.max_events and restart the server.")));
      });
  } catch (...) {
    pg_atomic_write_u32(&state.load_state, kNotLoaded);
    throw;
  }
  return true;
}

bool Loaded(Oid database) {
  int index = QueueOfDatabase(database);
  return index >= 0 && pg_atomic_read_u32(&header->databases[index].load_state) == kLoaded;
}

bool TakeDirty(Oid database) {
  int index = QueueOfDatabase(database);
  return index >= 0 && pg_atomic_exchange_u32(&header->databases[index].dirty, 0) != 0;
}

void SetDirty(Oid database) {
  int index = QueueOfDatabase(database);
  if (index >= 0) pg_atomic_write_u32(&header->databases[index].dirty, 1);
}

bool IsDirty(Oid database) {
  int index = QueueOfDatabase(database);
  return index >= 0 && IsDirtyAt(index);
}

bool IsDirtyAt(int index) { return pg_atomic_read_u32(&header->databases[index].dirty) != 0; }

void ForgetDatabase(int index, Oid former) {
  if (former != InvalidOid) {
    RemoveEntriesOf<BranchEntry>(branches, former);
    RemoveEntriesOf<EventEntry>(events, former);
    query_metrics::Remove(former, nullptr);
  }
  pg_atomic_write_u32(&header->databases[index].load_state, kNotLoaded);
  pg_atomic_write_u32(&header->databases[index].dirty, 0);
  query_metrics::ForgetDatabase(index);
}

void MarkDirtyQuietly() noexcept {
  static int database = -1;  // a backend serves one database: its slot, once it has one
  static std::uint32_t calls_since_check = 0;
  if (header == nullptr) return;
  if (database < 0) database = QueueOfDatabase(MyDatabaseId);
  if (database < 0) return;  // no slot yet: whatever claims it for a count marks it
  DatabaseState& state = header->databases[database];
  if (pg_atomic_read_u32(&state.dirty) != 0 && ++calls_since_check % 4096 != 0) return;
  if (RecoveryInProgress()) return;  // a standby cannot write (PG15's neither allocates nor fails)
  pg_atomic_write_u32(&state.dirty, 1);
  RequestFlushWorker(database, true);
}

}  // namespace abtest::glue::metrics
