#include "glue/shared_state.hpp"

#include "core/error.hpp"
#include "glue/guard.hpp"

namespace abtest::glue {

int max_experiments = 1024;

namespace {

struct SlotKey {
  Oid database;
  pg_uuid_t experiment;
};

struct ExperimentSlot {
  SlotKey key;  // first: the hash table's key
  pg_atomic_uint64 next_turn;
};

struct SharedHeader {
  LWLock* lock;
};

SharedHeader* header = nullptr;
HTAB* slots = nullptr;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;

Size SharedSize() {
  return add_size(MAXALIGN(sizeof(SharedHeader)), hash_estimate_size(max_experiments, sizeof(ExperimentSlot)));
}

void RequestSharedMemory() {
  if (previous_request_hook) previous_request_hook();
  RequestAddinShmemSpace(SharedSize());
  RequestNamedLWLockTranche("abtest", 1);
}

void StartupSharedMemory() {
  if (previous_startup_hook) previous_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  header = static_cast<SharedHeader*>(ShmemInitStruct("abtest header", sizeof(SharedHeader), &found));
  if (!found) header->lock = &(GetNamedLWLockTranche("abtest"))->lock;
  HASHCTL info;
  memset(&info, 0, sizeof info);
  info.keysize = sizeof(SlotKey);
  info.entrysize = sizeof(ExperimentSlot);
  slots = ShmemInitHash("abtest experiment slots", max_experiments, max_experiments, &info, HASH_ELEM | HASH_BLOBS);
  LWLockRelease(AddinShmemInitLock);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The catalog hands ids over as canonical uuid text; the key holds the 16 bytes.
SlotKey KeyOf(const std::string& experiment_id) {
  SlotKey key;
  memset(&key, 0, sizeof key);  // padding is hashed too
  key.database = MyDatabaseId;
  int byte = 0;
  for (std::size_t i = 0; i + 1 < experiment_id.size() && byte < UUID_LEN;) {
    if (experiment_id[i] == '-') {
      ++i;
      continue;
    }
    int high = HexValue(experiment_id[i]), low = HexValue(experiment_id[i + 1]);
    if (high < 0 || low < 0) break;
    key.experiment.data[byte++] = static_cast<unsigned char>(high << 4 | low);
    i += 2;
  }
  if (byte != UUID_LEN) throw Error(ErrorKind::kInternal, "invalid experiment id " + Quoted(experiment_id));
  return key;
}

}  // namespace

void InstallSharedMemoryHooks() {
  previous_request_hook = shmem_request_hook;
  shmem_request_hook = RequestSharedMemory;
  previous_startup_hook = shmem_startup_hook;
  shmem_startup_hook = StartupSharedMemory;
}

bool SharedStateAttached() { return slots != nullptr; }

std::uint64_t NextTurn(const std::string& experiment_id) {
  SlotKey key = KeyOf(experiment_id);
  LWLockAcquire(header->lock, LW_SHARED);
  auto* slot = static_cast<ExperimentSlot*>(hash_search(slots, &key, HASH_FIND, nullptr));
  if (slot != nullptr) {
    std::uint64_t turn = pg_atomic_fetch_add_u64(&slot->next_turn, 1);
    LWLockRelease(header->lock);
    return turn;
  }
  LWLockRelease(header->lock);

  LWLockAcquire(header->lock, LW_EXCLUSIVE);
  bool found = false;
  if (hash_get_num_entries(slots) >= max_experiments) {
    slot = static_cast<ExperimentSlot*>(hash_search(slots, &key, HASH_FIND, nullptr));
    found = slot != nullptr;
  } else {
    slot = static_cast<ExperimentSlot*>(hash_search(slots, &key, HASH_ENTER_NULL, &found));
  }
  if (slot == nullptr) {
    LWLockRelease(header->lock);
    throw Error(ErrorKind::kProgramLimit, "abtest shared memory is full",
                "All " + std::to_string(max_experiments) + " experiment slots are in use.",
                "Raise abtest.max_experiments in postgresql.conf and restart the server.");
  }
  if (!found) pg_atomic_init_u64(&slot->next_turn, 0);
  std::uint64_t turn = pg_atomic_fetch_add_u64(&slot->next_turn, 1);
  LWLockRelease(header->lock);
  return turn;
}

void ReleaseSlot(const std::string& experiment_id) {
  SlotKey key = KeyOf(experiment_id);
  LWLockAcquire(header->lock, LW_EXCLUSIVE);
  hash_search(slots, &key, HASH_REMOVE, nullptr);
  LWLockRelease(header->lock);
}

}  // namespace abtest::glue
