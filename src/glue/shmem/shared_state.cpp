#include "glue/shmem/shared_state.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "glue/shmem/assignment_queue.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/shmem/query_metrics.hpp"
#include "glue/shmem/sticky_cache.hpp"

namespace abtest::glue {

int max_experiments = 1024;

namespace {

struct SlotKey {
  Oid database;
  pg_uuid_t experiment;
};

struct SlotMapEntry {
  SlotKey key;  // first: the hash table's key
  int index;
};

struct ExperimentSlot {
  SlotKey key;
  bool in_use;
  // The epoch (high 32 bits) and the LogState (low): one word, so that a log state
  // is only ever set for the epoch it was found in (compare-and-swap).
  pg_atomic_uint64 epoch_and_log;
  pg_atomic_uint32 warm_start;  // 1: the flush worker is to load the log into the cache
  pg_atomic_uint64 next_turn;
};

std::uint64_t Packed(std::uint32_t epoch, LogState state) {
  return static_cast<std::uint64_t>(epoch) << 32 | static_cast<std::uint32_t>(state);
}

struct SharedHeader {
  LWLock* lock;
  pg_atomic_uint64 releases;  // stamps cached slot indexes
  int free_hint;
  ExperimentSlot slots[FLEXIBLE_ARRAY_MEMBER];
};

SharedHeader* header = nullptr;
HTAB* slot_map = nullptr;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;

pg_atomic_uint64& WordOf(int slot) { return header->slots[slot].epoch_and_log; }

// Moves to the next epoch, whose log state is unknown.
void NextEpoch(int slot) {
  std::uint64_t old = pg_atomic_read_u64(&WordOf(slot));
  while (!pg_atomic_compare_exchange_u64(&WordOf(slot), &old,
                                         Packed(static_cast<std::uint32_t>(old >> 32) + 1, LogState::kUnknown))) {
  }
}

Size HeaderSize() { return add_size(offsetof(SharedHeader, slots), mul_size(max_experiments, sizeof(ExperimentSlot))); }

void RequestSharedMemory() {
  if (previous_request_hook) previous_request_hook();
  Size size = add_size(MAXALIGN(HeaderSize()), hash_estimate_size(max_experiments, sizeof(SlotMapEntry)));
  size = add_size(size, StickyCacheShmemSize());
  size = add_size(size, AssignmentQueueShmemSize());
  size = add_size(size, metrics::ShmemSize());
  size = add_size(size, query_metrics::ShmemSize());
  RequestAddinShmemSpace(size);
  RequestNamedLWLockTranche("abtest", 1);
  StickyCacheRequestLocks();
  AssignmentQueueRequestLocks();
  metrics::RequestLocks();
  query_metrics::RequestLocks();
}

void StartupSharedMemory() {
  if (previous_startup_hook) previous_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  header = static_cast<SharedHeader*>(ShmemInitStruct("abtest slots", HeaderSize(), &found));
  if (!found) {
    header->lock = &(GetNamedLWLockTranche("abtest"))->lock;
    pg_atomic_init_u64(&header->releases, 0);
    header->free_hint = 0;
    for (int i = 0; i < max_experiments; ++i) {
      header->slots[i].in_use = false;
      pg_atomic_init_u64(&header->slots[i].epoch_and_log, Packed(0, LogState::kUnknown));
      pg_atomic_init_u32(&header->slots[i].warm_start, 0);
      pg_atomic_init_u64(&header->slots[i].next_turn, 0);
    }
  }
  HASHCTL info;
  memset(&info, 0, sizeof info);
  info.keysize = sizeof(SlotKey);
  info.entrysize = sizeof(SlotMapEntry);
  slot_map = ShmemInitHash("abtest slot map", max_experiments, max_experiments, &info, HASH_ELEM | HASH_BLOBS);
  StickyCacheShmemInit();
  AssignmentQueueShmemInit();
  metrics::ShmemInit();
  query_metrics::ShmemInit();
  LWLockRelease(AddinShmemInitLock);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

SlotKey KeyOf(const std::string& experiment_id) {
  SlotKey key;
  memset(&key, 0, sizeof key);  // padding is hashed too
  key.database = MyDatabaseId;
  key.experiment = UuidFromText(experiment_id);
  return key;
}

int FindLocked(const SlotKey& key) {
  auto* entry = static_cast<SlotMapEntry*>(hash_search(slot_map, &key, HASH_FIND, nullptr));
  return entry ? entry->index : -1;
}

}  // namespace

pg_uuid_t UuidFromText(const std::string& text) {
  pg_uuid_t uuid;
  int byte = 0;
  for (std::size_t i = 0; i + 1 < text.size() && byte < UUID_LEN;) {
    if (text[i] == '-') {
      ++i;
      continue;
    }
    int high = HexValue(text[i]), low = HexValue(text[i + 1]);
    if (high < 0 || low < 0) break;
    uuid.data[byte++] = static_cast<unsigned char>(high << 4 | low);
    i += 2;
  }
  if (byte != UUID_LEN) throw Error(ErrorKind::kInternal, "invalid experiment id " + Quoted(text));
  return uuid;
}

void InstallSharedMemoryHooks() {
  previous_request_hook = shmem_request_hook;
  shmem_request_hook = RequestSharedMemory;
  previous_startup_hook = shmem_startup_hook;
  shmem_startup_hook = StartupSharedMemory;
}

bool SharedStateAttached() { return header != nullptr; }

namespace {

// The key's slot, created in a free one if need be; -1 when none is free.
int FindOrCreateSlot(const SlotKey& key) {
  LWLockAcquire(header->lock, LW_SHARED);
  int index = FindLocked(key);
  LWLockRelease(header->lock);
  if (index >= 0) return index;
  LWLockAcquire(header->lock, LW_EXCLUSIVE);
  index = FindLocked(key);
  for (int probe = 0; index < 0 && probe < max_experiments; ++probe) {
    int candidate = (header->free_hint + probe) % max_experiments;
    if (header->slots[candidate].in_use) continue;
    bool found = false;
    auto* entry = static_cast<SlotMapEntry*>(hash_search(slot_map, &key, HASH_ENTER_NULL, &found));
    if (entry == nullptr) break;
    entry->index = candidate;
    ExperimentSlot& slot = header->slots[candidate];
    slot.key = key;
    slot.in_use = true;
    NextEpoch(candidate);  // entries of a former tenant are not ours
    pg_atomic_write_u32(&slot.warm_start, 0);
    pg_atomic_write_u64(&slot.next_turn, 0);
    header->free_hint = (candidate + 1) % max_experiments;
    index = candidate;
  }
  LWLockRelease(header->lock);
  return index;
}

// Called with `lock` held exclusively.
void ReleaseLocked(int index) {
  SlotKey key = header->slots[index].key;
  hash_search(slot_map, &key, HASH_REMOVE, nullptr);
  header->slots[index].in_use = false;
  NextEpoch(index);
  pg_atomic_fetch_add_u64(&header->releases, 1);
}

// Frees the slots of databases that were dropped (DROP DATABASE cannot tell us);
// returns how many.
int ReleaseSlotsOfDroppedDatabases() {
  std::vector<Oid> databases;
  LWLockAcquire(header->lock, LW_SHARED);
  for (int i = 0; i < max_experiments; ++i) {
    Oid database = header->slots[i].key.database;
    if (header->slots[i].in_use && database != MyDatabaseId &&
        std::find(databases.begin(), databases.end(), database) == databases.end())
      databases.push_back(database);
  }
  LWLockRelease(header->lock);
  int released = 0;
  for (Oid database : databases) {
    if (catalog::DatabaseExists(database)) continue;
    LWLockAcquire(header->lock, LW_EXCLUSIVE);
    for (int i = 0; i < max_experiments; ++i)
      if (header->slots[i].in_use && header->slots[i].key.database == database) {
        ReleaseLocked(i);
        ++released;
      }
    LWLockRelease(header->lock);
  }
  return released;
}

}  // namespace

int AcquireSlot(const CompiledExperiment& experiment) {
  std::uint64_t releases = pg_atomic_read_u64(&header->releases);
  if (experiment.shared_slot >= 0 && experiment.shared_slot_stamp == releases) return experiment.shared_slot;

  SlotKey key = KeyOf(experiment.model().id);
  int index = FindOrCreateSlot(key);
  if (index < 0 && ReleaseSlotsOfDroppedDatabases() > 0) index = FindOrCreateSlot(key);
  if (index < 0)
    throw Error(ErrorKind::kProgramLimit, "abtest shared memory is full",
                "All " + std::to_string(max_experiments) + " experiment slots are in use.",
                "Raise abtest.max_experiments in postgresql.conf and restart the server.");
  experiment.shared_slot = index;
  experiment.shared_slot_stamp = releases;
  return index;
}

int FindSlot(const std::string& experiment_id) {
  SlotKey key = KeyOf(experiment_id);
  LWLockAcquire(header->lock, LW_SHARED);
  int index = FindLocked(key);
  LWLockRelease(header->lock);
  return index;
}

void ReleaseSlot(const std::string& experiment_id) {
  SlotKey key = KeyOf(experiment_id);
  LWLockAcquire(header->lock, LW_EXCLUSIVE);
  int index = FindLocked(key);
  if (index >= 0) ReleaseLocked(index);
  LWLockRelease(header->lock);
}

std::vector<int> SlotsOfDatabase() {
  std::vector<int> result;
  result.reserve(16);
  LWLockAcquire(header->lock, LW_SHARED);
  for (int i = 0; i < max_experiments; ++i)
    if (header->slots[i].in_use && header->slots[i].key.database == MyDatabaseId) result.push_back(i);
  LWLockRelease(header->lock);
  return result;
}

std::uint32_t SlotEpoch(int slot) { return static_cast<std::uint32_t>(pg_atomic_read_u64(&WordOf(slot)) >> 32); }

// Under the lock: a slot changes tenant (and epoch) only with it held exclusively.
bool SlotExperimentAt(int slot, std::uint32_t epoch, pg_uuid_t* experiment) {
  LWLockAcquire(header->lock, LW_SHARED);
  const ExperimentSlot& held = header->slots[slot];
  bool live = held.in_use && SlotEpoch(slot) == epoch;
  if (live) *experiment = held.key.experiment;
  LWLockRelease(header->lock);
  return live;
}

SlotLog ReadSlotLog(int slot) {
  std::uint64_t word = pg_atomic_read_u64(&WordOf(slot));
  return SlotLog{static_cast<std::uint32_t>(word >> 32), static_cast<LogState>(word & 0xFFFFFFFFu)};
}

void ForgetSlotLog(int slot) { NextEpoch(slot); }

bool SetSlotLogState(int slot, std::uint32_t epoch, LogState from, LogState to) {
  std::uint64_t expected = Packed(epoch, from);
  return pg_atomic_compare_exchange_u64(&WordOf(slot), &expected, Packed(epoch, to));
}

void MarkSlotLogIncomplete(int slot) {
  std::uint64_t old = pg_atomic_read_u64(&WordOf(slot));
  while (!pg_atomic_compare_exchange_u64(&WordOf(slot), &old,
                                         Packed(static_cast<std::uint32_t>(old >> 32), LogState::kIncomplete))) {
  }
}

void RequestWarmStart(int slot) { pg_atomic_write_u32(&header->slots[slot].warm_start, 1); }

bool TakeWarmStart(int slot) { return pg_atomic_exchange_u32(&header->slots[slot].warm_start, 0) != 0; }

bool WarmStartPending(Oid database) {
  bool pending = false;
  LWLockAcquire(header->lock, LW_SHARED);
  for (int i = 0; i < max_experiments && !pending; ++i)
    pending = header->slots[i].in_use && header->slots[i].key.database == database &&
              pg_atomic_read_u32(&header->slots[i].warm_start) != 0;
  LWLockRelease(header->lock);
  return pending;
}

// Recovery ends once (promotion) and never starts again in a running backend: once
// false, the answer is kept and costs nothing.
bool InRecovery() {
  static bool primary = false;
  if (primary) return false;
  bool in_recovery = PgCall([] { return RecoveryInProgress(); });
  primary = !in_recovery;
  return in_recovery;
}

std::uint64_t NextTurn(const CompiledExperiment& experiment) {
  return pg_atomic_fetch_add_u64(&header->slots[AcquireSlot(experiment)].next_turn, 1);
}

std::uint64_t PeekTurn(const CompiledExperiment& experiment) {
  return pg_atomic_read_u64(&header->slots[AcquireSlot(experiment)].next_turn);
}

}  // namespace abtest::glue
