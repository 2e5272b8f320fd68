#include "glue/sticky_cache.hpp"

#include "glue/shared_state.hpp"


namespace abtest::glue {

int sticky_cache_size = 1048576;

namespace {

constexpr int kWays = 8;
constexpr int kPartitions = 128;

struct Entry {
  std::uint64_t user_high;
  std::uint64_t user_low;
  TimestampTz stored_at;  // eviction picks the oldest
  std::uint32_t epoch;
  std::uint32_t fingerprint;
  std::int32_t slot;
  std::int16_t branch;
  EntryState state;
  std::uint8_t padding;
};
static_assert(sizeof(Entry) == 40, "the README states 40 bytes an entry");

// The statistics are counted in stripes, one cache line each, picked by the backend's
// proc number: a single shared line would bounce between the cores of concurrent
// routing sessions on every call. Readers add the stripes up.
constexpr int kCounterStripes = 32;

enum Counter { kEntries, kHits, kMisses, kLogLookups, kEvictions, kQueued, kFlushed, kSyncWrites, kCounters };

struct alignas(PG_CACHE_LINE_SIZE) CounterStripe {
  pg_atomic_uint64 values[kCounters];
};

struct CacheHeader {
  CounterStripe stripes[kCounterStripes];
  pg_atomic_uint64 last_flush;
  std::uint64_t sets;
  LWLockPadded* locks;
  bool* incomplete;  // per set, after the entries
  Entry entries[FLEXIBLE_ARRAY_MEMBER];
};

CacheHeader* cache = nullptr;

std::uint64_t SetCount() { return (static_cast<std::uint64_t>(sticky_cache_size) + kWays - 1) / kWays; }

std::uint64_t SetOf(const StickyKey& key) {
  std::uint64_t mix = key.user_low ^ (static_cast<std::uint64_t>(key.slot) * 0x9E3779B97F4A7C15ULL);
  return mix % cache->sets;
}

LWLock* LockOf(std::uint64_t set) { return &cache->locks[set % kPartitions].lock; }

void Add(Counter counter, std::int64_t delta) {
  int stripe = MyProc != nullptr ? MyProc->pgprocno % kCounterStripes : 0;
  pg_atomic_fetch_add_u64(&cache->stripes[stripe].values[counter], static_cast<std::uint64_t>(delta));
}

std::uint64_t Sum(Counter counter) {
  std::uint64_t total = 0;
  for (auto& stripe : cache->stripes) total += pg_atomic_read_u64(&stripe.values[counter]);
  return total;
}

bool Matches(const Entry& e, const StickyKey& key) {
  return e.state != EntryState::kEmpty && e.user_low == key.user_low && e.user_high == key.user_high &&
         e.slot == key.slot && e.epoch == key.epoch;
}

Entry* FindIn(Entry* set, const StickyKey& key) {
  for (int way = 0; way < kWays; ++way)
    if (Matches(set[way], key)) return &set[way];
  return nullptr;
}

// Whether an entry belongs to a cleared experiment (its slot's epoch moved on): such an
// entry is garbage, and nobody can ask for it again.
bool Stale(const Entry& e) { return SlotEpoch(e.slot) != e.epoch; }

// An empty entry, else a stale one, else the oldest persisted one, else nullptr.
Entry* VictimIn(Entry* set) {
  Entry* oldest = nullptr;
  for (int way = 0; way < kWays; ++way) {
    Entry& e = set[way];
    if (e.state == EntryState::kEmpty || Stale(e)) return &e;
    if (e.state == EntryState::kPersisted && (oldest == nullptr || e.stored_at < oldest->stored_at)) oldest = &e;
  }
  return oldest;
}

}  // namespace

Size EntriesEnd() { return add_size(offsetof(CacheHeader, entries), mul_size(SetCount() * kWays, sizeof(Entry))); }

Size StickyCacheShmemSize() { return add_size(EntriesEnd(), SetCount()); }

void StickyCacheRequestLocks() { RequestNamedLWLockTranche("abtest sticky cache", kPartitions); }

void StickyCacheShmemInit() {
  bool found = false;
  cache = static_cast<CacheHeader*>(ShmemInitStruct("abtest sticky cache", StickyCacheShmemSize(), &found));
  if (found) return;
  for (auto& stripe : cache->stripes)
    for (auto& value : stripe.values) pg_atomic_init_u64(&value, 0);
  pg_atomic_init_u64(&cache->last_flush, 0);
  cache->sets = SetCount();
  cache->locks = GetNamedLWLockTranche("abtest sticky cache");
  memset(cache->entries, 0, cache->sets * kWays * sizeof(Entry));
  cache->incomplete = reinterpret_cast<bool*>(reinterpret_cast<char*>(cache) + EntriesEnd());
  memset(cache->incomplete, 0, cache->sets);
}

Lookup StickyLookup(const StickyKey& key) {
  std::uint64_t set = SetOf(key);
  LWLock* lock = LockOf(set);
  LWLockAcquire(lock, LW_SHARED);
  const Entry* found = FindIn(&cache->entries[set * kWays], key);
  Lookup result{std::nullopt, cache->incomplete[set]};
  if (found) result.found = CachedAssignment{found->branch, found->fingerprint};
  LWLockRelease(lock);
  return result;
}

StoreResult StickyStore(const StickyKey& key, int branch, std::uint32_t fingerprint, EntryState state,
                        bool reassign) {
  std::uint64_t set = SetOf(key);
  LWLock* lock = LockOf(set);
  Entry* entries = &cache->entries[set * kWays];
  LWLockAcquire(lock, LW_EXCLUSIVE);
  StoreResult result{StoreOutcome::kStored, branch, false};
  if (Entry* existing = FindIn(entries, key)) {
    if (!reassign || existing->fingerprint == fingerprint) {
      result = {StoreOutcome::kExisting, existing->branch, false};
    } else if (existing->branch == branch) {
      existing->fingerprint = fingerprint;  // re-bucketed into the same branch: nothing to log
      result = {StoreOutcome::kExisting, branch, false};
    } else {
      existing->branch = static_cast<std::int16_t>(branch);
      existing->fingerprint = fingerprint;
      existing->stored_at = GetCurrentTimestamp();
      existing->state = state;
      result.replaced = true;
    }
  } else if (Entry* victim = VictimIn(entries)) {
    if (victim->state == EntryState::kEmpty) {
      Add(kEntries, 1);
    } else if (!Stale(*victim)) {
      // A live assignment leaves the cache: only the log knows it now.
      Add(kEvictions, 1);
      cache->incomplete[set] = true;
    }
    victim->user_high = key.user_high;
    victim->user_low = key.user_low;
    victim->slot = key.slot;
    victim->epoch = key.epoch;
    victim->branch = static_cast<std::int16_t>(branch);
    victim->fingerprint = fingerprint;
    victim->stored_at = GetCurrentTimestamp();
    victim->state = state;
  } else {
    result.outcome = StoreOutcome::kNoRoom;
    cache->incomplete[set] = true;
  }
  LWLockRelease(lock);
  return result;
}

void StickyMarkPersisted(const StickyKey& key) {
  std::uint64_t set = SetOf(key);
  LWLock* lock = LockOf(set);
  LWLockAcquire(lock, LW_EXCLUSIVE);
  if (Entry* e = FindIn(&cache->entries[set * kWays], key)) e->state = EntryState::kPersisted;
  LWLockRelease(lock);
}

void StickyForget(const StickyKey& key) {
  std::uint64_t set = SetOf(key);
  LWLock* lock = LockOf(set);
  LWLockAcquire(lock, LW_EXCLUSIVE);
  if (Entry* e = FindIn(&cache->entries[set * kWays], key)) {
    e->state = EntryState::kEmpty;
    Add(kEntries, -1);
  }
  LWLockRelease(lock);
}

StickyStats ReadStickyStats() {
  return StickyStats{Sum(kEntries),    cache->sets * kWays, Sum(kHits),    Sum(kMisses),
                     Sum(kLogLookups), Sum(kEvictions),     Sum(kQueued),  Sum(kFlushed),
                     Sum(kSyncWrites), static_cast<TimestampTz>(pg_atomic_read_u64(&cache->last_flush))};
}

void CountHit() { Add(kHits, 1); }
void CountMiss() { Add(kMisses, 1); }
void CountLogLookup() { Add(kLogLookups, 1); }
void CountQueued() { Add(kQueued, 1); }
void CountSyncWrite() { Add(kSyncWrites, 1); }

void CountFlushed(std::uint64_t count, TimestampTz when) {
  Add(kFlushed, static_cast<std::int64_t>(count));
  pg_atomic_write_u64(&cache->last_flush, static_cast<std::uint64_t>(when));
}

}  // namespace abtest::glue
