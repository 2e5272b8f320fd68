#include "glue/shmem/sticky_cache.hpp"

#include <algorithm>

#include "glue/shmem/shared_state.hpp"


namespace abtest::glue {

int sticky_cache_size = -1;

namespace {

constexpr int kWays = 8;
constexpr int kPartitions = 128;
// The hardware's line (x86-64, most ARM64). PG_CACHE_LINE_SIZE is 128: it pads shared
// variables apart, which is not the point here.
constexpr std::size_t kLine = 64;

// A set is five cache lines: one line of tags, branches and states that a lookup
// scans, then the entries, of which a lookup reads only the one whose tag matches.
// A new user costs one line, a returning user two, and both are fetched at once
// (PrefetchSet) while the lock is taken.
struct alignas(kLine) SetHeader {
  std::uint32_t tags[kWays];  // 0: an empty way
  std::int16_t branches[kWays];
  EntryState states[kWays];
  std::uint32_t next_stamp;  // insertion order within the set: eviction takes the oldest
  // Which experiments' users the log may hold although this set lacks them: one bit
  // per (slot, epoch), hashed. Clearing an experiment moves its epoch on, so its users
  // start on another bit.
  std::uint32_t incomplete_bits;
};

struct Entry {
  std::uint64_t user_high;
  std::uint64_t user_low;
  std::uint32_t epoch;
  std::uint32_t fingerprint;
  std::int32_t slot;
  std::uint32_t stamp;
};

struct alignas(kLine) Set {
  SetHeader header;
  Entry entries[kWays];
};
static_assert(sizeof(SetHeader) == kLine, "a set's tags fill one cache line");
static_assert(sizeof(Entry) * 2 == kLine, "an entry never straddles two cache lines");
static_assert(sizeof(Set) == 40 * kWays, "the README states 40 bytes an entry");

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
  std::uint64_t set_count;
  LWLockPadded* locks;
  Set sets[FLEXIBLE_ARRAY_MEMBER];
};

CacheHeader* cache = nullptr;

}  // namespace

std::uint64_t StickyCacheEntries() {
  if (sticky_cache_size > 0) return static_cast<std::uint64_t>(sticky_cache_size);
  // Automatic: a quarter of shared_buffers' memory, within a floor that holds a
  // million users at less than half load and a ceiling of 2.5 GB.
  constexpr std::uint64_t kFloor = 2097152, kCeiling = 67108864;
  std::uint64_t entries = static_cast<std::uint64_t>(NBuffers) * BLCKSZ / 4 / (sizeof(Set) / kWays);
  return std::clamp(entries, kFloor, kCeiling);
}

namespace {

std::uint64_t SetCount() { return (StickyCacheEntries() + kWays - 1) / kWays; }

std::uint64_t SetIndexOf(const StickyKey& key) {
  std::uint64_t mix = key.user_low ^ (static_cast<std::uint64_t>(key.slot) * 0x9E3779B97F4A7C15ULL);
  return mix % cache->set_count;
}

// The tag takes other bits than the set index (user_high), so that two users of one
// set rarely share a tag; a matching tag is always confirmed against the full key.
std::uint32_t TagOf(const StickyKey& key) {
  std::uint64_t mix = key.user_high ^ (static_cast<std::uint64_t>(key.slot) * 0xC2B2AE3D27D4EB4FULL) ^
                      (static_cast<std::uint64_t>(key.epoch) << 32);
  auto tag = static_cast<std::uint32_t>(mix ^ (mix >> 32));
  return tag != 0 ? tag : 1;
}

std::uint32_t IncompleteBit(std::int32_t slot, std::uint32_t epoch) {
  std::uint64_t mix = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(slot)) << 32 | epoch) * 0x9E3779B97F4A7C15ULL;
  return 1u << (mix >> 59);
}

LWLock* LockOf(std::uint64_t set_index) { return &cache->locks[set_index % kPartitions].lock; }

// Starts fetching the set's lines from memory, so that their latency overlaps the
// lock acquisition instead of following it.
void PrefetchSet(const Set& set) {
  const char* line = reinterpret_cast<const char*>(&set);
  for (std::size_t offset = 0; offset < sizeof(Set); offset += kLine)
    __builtin_prefetch(line + offset);
}

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
  return e.user_low == key.user_low && e.user_high == key.user_high && e.slot == key.slot && e.epoch == key.epoch;
}

// The way holding the key, or -1.
int FindIn(const Set& set, const StickyKey& key, std::uint32_t tag) {
  for (int way = 0; way < kWays; ++way)
    if (set.header.tags[way] == tag && Matches(set.entries[way], key)) return way;
  return -1;
}

// Whether an entry belongs to a cleared experiment (its slot's epoch moved on): such an
// entry is garbage, and nobody can ask for it again.
bool Stale(const Entry& e) { return SlotEpoch(e.slot) != e.epoch; }

// An empty way, else a stale one, else the oldest persisted one, else -1.
int VictimIn(const Set& set) {
  int oldest = -1;
  for (int way = 0; way < kWays; ++way) {
    if (set.header.tags[way] == 0 || Stale(set.entries[way])) return way;
    if (set.header.states[way] != EntryState::kPersisted) continue;
    // Stamps wrap around: compare by distance from the set's next stamp.
    if (oldest < 0 || set.header.next_stamp - set.entries[way].stamp >
                          set.header.next_stamp - set.entries[oldest].stamp)
      oldest = way;
  }
  return oldest;
}

void Fill(Set& set, int way, const StickyKey& key, std::uint32_t tag, int branch, std::uint32_t fingerprint,
          EntryState state) {
  Entry& e = set.entries[way];
  e.user_high = key.user_high;
  e.user_low = key.user_low;
  e.slot = key.slot;
  e.epoch = key.epoch;
  e.fingerprint = fingerprint;
  e.stamp = set.header.next_stamp++;
  set.header.tags[way] = tag;
  set.header.branches[way] = static_cast<std::int16_t>(branch);
  set.header.states[way] = state;
}

void Empty(Set& set, int way) {
  set.header.tags[way] = 0;
  set.header.states[way] = EntryState::kEmpty;
}

}  // namespace

Size StickyCacheShmemSize() { return add_size(offsetof(CacheHeader, sets), mul_size(SetCount(), sizeof(Set))); }

void StickyCacheRequestLocks() { RequestNamedLWLockTranche("abtest sticky cache", kPartitions); }

void StickyCacheShmemInit() {
  bool found = false;
  cache = static_cast<CacheHeader*>(ShmemInitStruct("abtest sticky cache", StickyCacheShmemSize(), &found));
  if (found) return;
  for (auto& stripe : cache->stripes)
    for (auto& value : stripe.values) pg_atomic_init_u64(&value, 0);
  pg_atomic_init_u64(&cache->last_flush, 0);
  cache->set_count = SetCount();
  cache->locks = GetNamedLWLockTranche("abtest sticky cache");
  memset(cache->sets, 0, cache->set_count * sizeof(Set));
}

Lookup StickyLookup(const StickyKey& key) {
  std::uint64_t index = SetIndexOf(key);
  const Set& set = cache->sets[index];
  PrefetchSet(set);
  std::uint32_t tag = TagOf(key);
  LWLock* lock = LockOf(index);
  LWLockAcquire(lock, LW_SHARED);
  int way = FindIn(set, key, tag);
  Lookup result{std::nullopt, (set.header.incomplete_bits & IncompleteBit(key.slot, key.epoch)) != 0};
  if (way >= 0) result.found = CachedAssignment{set.header.branches[way], set.entries[way].fingerprint};
  LWLockRelease(lock);
  return result;
}

StoreResult StickyStore(const StickyKey& key, int branch, std::uint32_t fingerprint, EntryState state,
                        bool reassign) {
  std::uint64_t index = SetIndexOf(key);
  Set& set = cache->sets[index];
  PrefetchSet(set);
  std::uint32_t tag = TagOf(key);
  LWLock* lock = LockOf(index);
  LWLockAcquire(lock, LW_EXCLUSIVE);
  StoreResult result{StoreOutcome::kStored, branch, false};
  int way = FindIn(set, key, tag);
  if (way >= 0) {
    Entry& existing = set.entries[way];
    if (!reassign || existing.fingerprint == fingerprint) {
      result = {StoreOutcome::kExisting, set.header.branches[way], false};
    } else if (set.header.branches[way] == branch) {
      existing.fingerprint = fingerprint;  // re-bucketed into the same branch: nothing to log
      result = {StoreOutcome::kExisting, branch, false};
    } else {
      Fill(set, way, key, tag, branch, fingerprint, state);
      result.replaced = true;
    }
  } else if ((way = VictimIn(set)) >= 0) {
    if (set.header.tags[way] == 0) {
      Add(kEntries, 1);
    } else if (const Entry& evicted = set.entries[way]; !Stale(evicted)) {
      // A live assignment leaves the cache: only the log knows it now.
      Add(kEvictions, 1);
      set.header.incomplete_bits |= IncompleteBit(evicted.slot, evicted.epoch);
    }
    Fill(set, way, key, tag, branch, fingerprint, state);
  } else {
    result.outcome = StoreOutcome::kNoRoom;
    set.header.incomplete_bits |= IncompleteBit(key.slot, key.epoch);
  }
  LWLockRelease(lock);
  return result;
}

void StickyMarkPersisted(const StickyKey& key) {
  std::uint64_t index = SetIndexOf(key);
  Set& set = cache->sets[index];
  LWLock* lock = LockOf(index);
  LWLockAcquire(lock, LW_EXCLUSIVE);
  int way = FindIn(set, key, TagOf(key));
  if (way >= 0) set.header.states[way] = EntryState::kPersisted;
  LWLockRelease(lock);
}

void StickyForget(const StickyKey& key) {
  std::uint64_t index = SetIndexOf(key);
  Set& set = cache->sets[index];
  LWLock* lock = LockOf(index);
  LWLockAcquire(lock, LW_EXCLUSIVE);
  int way = FindIn(set, key, TagOf(key));
  if (way >= 0) {
    Empty(set, way);
    Add(kEntries, -1);
  }
  LWLockRelease(lock);
}

StickyStats ReadStickyStats() {
  return StickyStats{Sum(kEntries),    cache->set_count * kWays, Sum(kHits),    Sum(kMisses),
                     Sum(kLogLookups), Sum(kEvictions),          Sum(kQueued),  Sum(kFlushed),
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
