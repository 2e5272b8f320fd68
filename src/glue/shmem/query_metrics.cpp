#include "glue/shmem/query_metrics.hpp"

#include <algorithm>

#include "core/usage_eviction.hpp"
#include "glue/shmem/assignment_queue.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/shmem/pending_queries.hpp"

extern "C" {
#include "mb/pg_wchar.h"
#include "storage/spin.h"
}

namespace abtest::glue::query_metrics {

int max_tracked_queries = 5000;

namespace {

constexpr int kPartitions = 16;  // a power of two (dynahash requires it)

struct QueryKey {
  Oid database;
  std::int32_t position;
  pg_uuid_t experiment;
  std::uint64_t queryid;
};
static_assert(sizeof(QueryKey) == 32, "no padding in the key: it is hashed as bytes");

struct QueryEntry {
  QueryKey key;   // first: the hash table's key
  slock_t mutex;  // guards everything below
  std::int16_t query_len;
  std::uint32_t changed;  // the write generation of the last change (see BeginWrite)
  double usage;
  QueryLatency latency;
  char query[kQueryTextBytes];
};

// Per database slot (indexed like its assignment queue and metrics state).
struct DatabaseState {
  pg_atomic_uint32 written;  // the generation of the last completed write
};

struct Header {
  pg_atomic_uint32 count;               // entries in the table
  pg_atomic_uint32 generation;          // of writes; wraps, compared as a serial number
  pg_atomic_uint32 evicted_generation;  // the generation during the last eviction
  pg_atomic_uint64 evicted;
  pg_atomic_uint64 evictions;
  pg_atomic_uint64 dropped;
  pg_atomic_uint32 removal_epoch;  // see RemovalEpoch
  DatabaseState databases[FLEXIBLE_ARRAY_MEMBER];
};

Header* header = nullptr;
HTAB* table = nullptr;  // nullptr when max_tracked_queries is 0
LWLockPadded* locks = nullptr;

// Generations are compared as serial numbers, so that their wrapping after 2^32 writes
// is harmless.
bool After(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) > 0; }

Size HeaderSize() { return add_size(offsetof(Header, databases), mul_size(DatabaseSlots(), sizeof(DatabaseState))); }

LWLock* LockOf(std::uint32_t hash) { return &locks[hash % kPartitions].lock; }

void AcquireAll(LWLockMode mode) {
  for (int i = 0; i < kPartitions; ++i) LWLockAcquire(&locks[i].lock, mode);
}

void ReleaseAll() {
  for (int i = kPartitions - 1; i >= 0; --i) LWLockRelease(&locks[i].lock);
}

// Calls `visit` on every entry; the caller holds every partition lock (exclusively if
// `visit` removes the entry it is given, which a scan allows).
template <typename Visit>
void ForEachEntry(Visit&& visit) {
  HASH_SEQ_STATUS scan;
  hash_seq_init(&scan, table);
  while (auto* entry = static_cast<QueryEntry*>(hash_seq_search(&scan))) visit(*entry);
}

QueryKey KeyOf(Oid database, const pg_uuid_t& experiment, int position, std::uint64_t queryid) {
  QueryKey key;
  memset(&key, 0, sizeof key);
  key.database = database;
  key.position = position;
  key.experiment = experiment;
  key.queryid = queryid;
  return key;
}

bool Matches(const QueryEntry& entry, Oid database, const pg_uuid_t* experiment) {
  return entry.key.database == database &&
         (experiment == nullptr || memcmp(&entry.key.experiment, experiment, sizeof *experiment) == 0);
}

// The bytes of `query` to keep: up to kQueryTextBytes - 1, and no further than a NUL,
// cut at a character boundary of the database's encoding (pg_mblen reads a character's
// first byte only; it neither allocates nor fails).
int ClipText(const char* query, int query_len) {
  if (query == nullptr) return 0;
  std::size_t bound = query_len < 0 ? kQueryTextBytes : std::min<std::size_t>(query_len, kQueryTextBytes);
  int length = static_cast<int>(strnlen(query, bound));
  if (length < kQueryTextBytes) return length;
  int cut = 0;
  for (;;) {
    int next = cut + pg_mblen(query + cut);
    if (next > kQueryTextBytes - 1) return cut;
    cut = next;
  }
}

// Whether the entry still needs a text: read without its spinlock, to spare the hot path
// ClipText once the entry has one (a stale answer costs one ClipText; SetText decides).
bool NeedsText(const QueryEntry& entry, const char* query) {
  return query != nullptr && *static_cast<const volatile std::int16_t*>(&entry.query_len) == 0;
}

// Under the entry's spinlock: the first text it is given.
void SetText(QueryEntry& entry, const char* query, int length) {
  if (entry.query_len != 0 || length <= 0) return;
  memcpy(entry.query, query, static_cast<std::size_t>(length));
  entry.query[length] = '\0';
  entry.query_len = static_cast<std::int16_t>(length);
}

// Makes room for at least one entry: every usage decays, and the least-used
// kEvictPercent of the capacity go (see core/usage_eviction.hpp). Nothing here
// allocates or fails.
void Evict() {
  AcquireAll(LW_EXCLUSIVE);
  int entries = static_cast<int>(pg_atomic_read_u32(&header->count));
  if (entries < max_tracked_queries) {  // another backend made room meanwhile
    ReleaseAll();
    return;
  }
  std::int64_t classes[kUsageClasses] = {};
  ForEachEntry([&](QueryEntry& entry) {
    entry.usage *= kUsageDecay;  // no spinlock: every partition lock is held exclusively
    ++classes[UsageClass(entry.usage)];
  });
  EvictionPlan plan = PlanEviction(classes, EvictionTarget(max_tracked_queries, entries));
  std::uint32_t removed = 0;
  ForEachEntry([&](QueryEntry& entry) {
    int usage_class = UsageClass(entry.usage);
    if (usage_class < plan.threshold || (usage_class == plan.threshold && plan.from_threshold-- > 0)) {
      hash_search(table, &entry.key, HASH_REMOVE, nullptr);
      ++removed;
    }
  });
  pg_atomic_fetch_sub_u32(&header->count, removed);
  pg_atomic_fetch_add_u32(&header->removal_epoch, 1);
  pg_atomic_fetch_add_u64(&header->evicted, removed);
  pg_atomic_fetch_add_u64(&header->evictions, 1);
  // Read with every lock held: a write whose copy of the keys came before this eviction
  // has taken its generation already, so this one is after its window (EvictedSince).
  pg_atomic_write_u32(&header->evicted_generation, pg_atomic_read_u32(&header->generation));
  ReleaseAll();
}

void InitEntry(QueryEntry* entry) {
  SpinLockInit(&entry->mutex);
  entry->query_len = 0;
  entry->query[0] = '\0';
  entry->changed = 0;
  entry->usage = 0;
  entry->latency = QueryLatency{};
}

// Runs `update` on the key's entry, created when missing (evicting when the table is
// full), under its partition lock. False when there was no room even so: the statement
// is not counted. `update` must neither fail nor allocate.
template <typename Update>
bool UpdateEntry(const QueryKey& key, Update&& update) {
  std::uint32_t hash = get_hash_value(table, &key);
  LWLock* lock = LockOf(hash);
  LWLockAcquire(lock, LW_SHARED);
  auto* entry = static_cast<QueryEntry*>(hash_search_with_hash_value(table, &key, hash, HASH_FIND, nullptr));
  if (entry != nullptr) update(*entry);
  LWLockRelease(lock);
  if (entry != nullptr) return true;

  // Twice: an eviction by another backend may fill up again before this one gets in.
  for (int attempt = 0; attempt < 2; ++attempt) {
    LWLockAcquire(lock, LW_EXCLUSIVE);
    entry = static_cast<QueryEntry*>(hash_search_with_hash_value(table, &key, hash, HASH_FIND, nullptr));
    if (entry == nullptr &&
        pg_atomic_fetch_add_u32(&header->count, 1) < static_cast<std::uint32_t>(max_tracked_queries)) {
      bool found = false;
      entry = static_cast<QueryEntry*>(hash_search_with_hash_value(table, &key, hash, HASH_ENTER_NULL, &found));
      if (entry != nullptr)
        InitEntry(entry);
      else
        pg_atomic_fetch_sub_u32(&header->count, 1);
    } else if (entry == nullptr) {
      pg_atomic_fetch_sub_u32(&header->count, 1);
    }
    if (entry != nullptr) update(*entry);
    LWLockRelease(lock);
    if (entry != nullptr) return true;
    Evict();
  }
  pg_atomic_fetch_add_u64(&header->dropped, 1);
  return false;
}

void CopyOut(QueryEntry& entry, QuerySnapshot* out) {
  out->experiment = entry.key.experiment;
  out->position = entry.key.position;
  out->queryid = entry.key.queryid;
  SpinLockAcquire(&entry.mutex);
  out->latency = entry.latency;
  out->usage = entry.usage;
  out->query_len = entry.query_len;
  memcpy(out->query, entry.query, static_cast<std::size_t>(entry.query_len) + 1);
  SpinLockRelease(&entry.mutex);
}

// This backend's database slot, or -1 before the database has one.
int DatabaseSlot(Oid database) { return QueueOfDatabase(database); }

}  // namespace

Size ShmemSize() {
  Size size = MAXALIGN(HeaderSize());
  if (max_tracked_queries > 0) size = add_size(size, hash_estimate_size(max_tracked_queries, sizeof(QueryEntry)));
  return size;
}

void RequestLocks() { RequestNamedLWLockTranche("abtest query metrics", kPartitions); }

void ShmemInit() {
  bool found = false;
  header = static_cast<Header*>(ShmemInitStruct("abtest query metrics state", HeaderSize(), &found));
  if (!found) {
    pg_atomic_init_u32(&header->count, 0);
    pg_atomic_init_u32(&header->generation, 1);
    pg_atomic_init_u32(&header->evicted_generation, 0);
    pg_atomic_init_u64(&header->evicted, 0);
    pg_atomic_init_u64(&header->evictions, 0);
    pg_atomic_init_u64(&header->dropped, 0);
    pg_atomic_init_u32(&header->removal_epoch, 0);
    for (int i = 0; i < DatabaseSlots(); ++i) pg_atomic_init_u32(&header->databases[i].written, 0);
  }
  locks = GetNamedLWLockTranche("abtest query metrics");
  if (max_tracked_queries == 0) return;
  HASHCTL info;
  memset(&info, 0, sizeof info);
  info.keysize = sizeof(QueryKey);
  info.entrysize = sizeof(QueryEntry);
  info.num_partitions = kPartitions;
  table = ShmemInitHash("abtest query metrics", max_tracked_queries, max_tracked_queries, &info,
                        HASH_ELEM | HASH_BLOBS | HASH_PARTITION);
}

bool RecordBatch(const pg_uuid_t& experiment, int position, std::uint64_t queryid, const char* query, int query_len,
                 const QuerySample* samples, int count) noexcept {
  if (table == nullptr) return false;  // not preloaded, or tracking is off
  bool needs_text = true;
  bool counted = UpdateEntry(KeyOf(MyDatabaseId, experiment, position, queryid), [&](QueryEntry& entry) {
    int text_len = NeedsText(entry, query) ? ClipText(query, query_len) : 0;
    SpinLockAcquire(&entry.mutex);
    for (int i = 0; i < count; ++i) entry.latency.Add(samples[i]);
    entry.usage += count;
    entry.changed = pg_atomic_read_u32(&header->generation);
    SetText(entry, query, text_len);
    needs_text = entry.query_len == 0;
    SpinLockRelease(&entry.mutex);
  });
  if (counted) metrics::MarkDirtyQuietly();
  return needs_text;
}

std::uint32_t RemovalEpoch() noexcept { return header == nullptr ? 0 : pg_atomic_read_u32(&header->removal_epoch); }

int Snapshot(Oid database, const pg_uuid_t* experiment, bool changed_since, std::uint32_t generation,
             QuerySnapshot* out, int capacity) {
  if (table == nullptr) return 0;
  pending_queries::Publish();  // a transaction sees its own statements
  int matched = 0;
  AcquireAll(LW_SHARED);
  ForEachEntry([&](QueryEntry& entry) {
    if (!Matches(entry, database, experiment)) return;
    if (changed_since) {
      SpinLockAcquire(&entry.mutex);
      bool changed = After(entry.changed, generation);
      SpinLockRelease(&entry.mutex);
      if (!changed) return;
    }
    if (matched < capacity) CopyOut(entry, &out[matched]);
    ++matched;
  });
  ReleaseAll();
  return matched;
}

std::vector<QuerySnapshot> Read(const pg_uuid_t& experiment) {
  metrics::EnsureLoaded();
  std::vector<QuerySnapshot> snapshots(16);
  for (;;) {
    int count = Snapshot(MyDatabaseId, &experiment, false, 0, snapshots.data(), static_cast<int>(snapshots.size()));
    if (count <= static_cast<int>(snapshots.size())) {
      snapshots.resize(static_cast<std::size_t>(count));
      return snapshots;
    }
    snapshots.resize(static_cast<std::size_t>(count) + 16);
  }
}

Stats ReadStats() {
  Stats stats;
  stats.evicted = static_cast<std::int64_t>(pg_atomic_read_u64(&header->evicted));
  stats.evictions = static_cast<std::int64_t>(pg_atomic_read_u64(&header->evictions));
  stats.dropped = static_cast<std::int64_t>(pg_atomic_read_u64(&header->dropped));
  if (table == nullptr) return stats;
  pending_queries::Publish();
  AcquireAll(LW_SHARED);
  ForEachEntry([&](QueryEntry& entry) {
    ++stats.entries;
    if (entry.key.database == MyDatabaseId) ++stats.entries_here;
  });
  ReleaseAll();
  return stats;
}

void Remove(Oid database, const pg_uuid_t* experiment) noexcept {
  if (table == nullptr) return;
  AcquireAll(LW_EXCLUSIVE);
  std::uint32_t removed = 0;
  ForEachEntry([&](QueryEntry& entry) {
    if (!Matches(entry, database, experiment)) return;
    hash_search(table, &entry.key, HASH_REMOVE, nullptr);
    ++removed;
  });
  pg_atomic_fetch_sub_u32(&header->count, removed);
  if (removed > 0) pg_atomic_fetch_add_u32(&header->removal_epoch, 1);
  ReleaseAll();
}

std::size_t MergePersisted(const std::vector<PersistedQuery>& rows) noexcept {
  if (table == nullptr) return 0;  // tracking is off: the rows stay in the table
  std::size_t skipped = 0;
  for (const PersistedQuery& row : rows) {
    bool merged = UpdateEntry(KeyOf(MyDatabaseId, row.experiment, row.position, row.queryid), [&](QueryEntry& entry) {
      int text_len = ClipText(row.query.c_str(), static_cast<int>(row.query.size()));
      SpinLockAcquire(&entry.mutex);
      entry.latency.Merge(row.latency);
      entry.usage += row.usage;
      entry.changed = pg_atomic_read_u32(&header->generation);
      SetText(entry, row.query.c_str(), text_len);
      SpinLockRelease(&entry.mutex);
    });
    if (!merged) ++skipped;
  }
  return skipped;
}

WriteWindow BeginWrite(Oid database) {
  WriteWindow window{false, 0, 0};
  int slot = DatabaseSlot(database);
  if (slot < 0) return window;
  window.valid = true;
  window.since = pg_atomic_read_u32(&header->databases[slot].written);
  window.generation = pg_atomic_fetch_add_u32(&header->generation, 1);
  return window;
}

bool EvictedSince(const WriteWindow& window) {
  return After(pg_atomic_read_u32(&header->evicted_generation), window.since);
}

int SnapshotKeys(Oid database, QueryKeyRow* out, int capacity) {
  if (table == nullptr) return 0;
  int matched = 0;
  AcquireAll(LW_SHARED);
  ForEachEntry([&](QueryEntry& entry) {
    if (entry.key.database != database) return;
    if (matched < capacity) out[matched] = QueryKeyRow{entry.key.experiment, entry.key.position, entry.key.queryid};
    ++matched;
  });
  ReleaseAll();
  return matched;
}

void EndWrite(Oid database, const WriteWindow& window) {
  int slot = DatabaseSlot(database);
  if (slot >= 0 && window.valid) pg_atomic_write_u32(&header->databases[slot].written, window.generation);
}

void ForgetDatabase(int index) {
  // Whatever a new database records is after this.
  pg_atomic_write_u32(&header->databases[index].written, pg_atomic_read_u32(&header->generation) - 1);
}

}  // namespace abtest::glue::query_metrics
