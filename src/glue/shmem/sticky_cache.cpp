#include "glue/shmem/sticky_cache.hpp"

#include <algorithm>

#include "core/experiment.hpp"
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
// (PrefetchSet).
struct alignas(kLine) SetHeader {
  std::uint32_t tags[kWays];  // 0: an empty way
  std::int8_t branches[kWays];
  EntryState states[kWays];
  std::uint32_t next_stamp;  // insertion order within the set: eviction takes the oldest
  // Which experiments' users the log may hold although the cache lacks them: one bit
  // per (slot, epoch), hashed, on the users' first-choice set. Clearing an experiment
  // moves its epoch on, so its users start on another bit.
  std::uint32_t incomplete_bits;
  // How many entries whose first choice is this set live in their second choice: while
  // none do, a miss here is a miss, without looking at a second set.
  std::uint32_t spilled;
};
static_assert(kMaxBranches <= INT8_MAX, "a branch index fits the header's byte");

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

enum Counter {
  kEntries,
  kHits,
  kMisses,
  kLogLookups,
  kEvictions,
  kQueued,
  kFlushed,
  kSyncWrites,
  kUncachedWrites,
  kOverflowWrites,
  kCounters
};

struct alignas(PG_CACHE_LINE_SIZE) CounterStripe {
  pg_atomic_uint64 values[kCounters];
};

// A partition's change count, odd while a writer (holding the partition's lock
// exclusively) changes one of its sets. Lookups read without the lock and check that
// the count was even and unchanged around their reads (a sequence lock): a shared
// LWLock acquisition writes the lock's cache line, which then moves between the cores
// of concurrent routing sessions on every call, while this line stays shared until a
// set of the partition changes.
struct alignas(kLine) PartitionSequence {
  pg_atomic_uint32 value;
};

struct CacheHeader {
  CounterStripe stripes[kCounterStripes];
  PartitionSequence sequences[kPartitions];
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

// A whole number of sets per partition, so that both choices of a key share its lock.
std::uint64_t SetCount() {
  std::uint64_t sets = (StickyCacheEntries() + kWays - 1) / kWays;
  return (sets + kPartitions - 1) / kPartitions * kPartitions;
}

// A key's two candidate sets, both in one lock partition (set s is guarded by lock
// s % kPartitions). A new key goes to the emptier of the two (see StickyStore): with
// two independent choices a set overflows far more rarely than with one (the cache
// stays without evictions to a much higher load).
struct Choices {
  std::uint64_t first;
  std::uint64_t second;  // == first when the partition has a single set
};

// A uniform 64-bit hash mapped onto [0, range) by a multiplication instead of a
// division (which costs tens of cycles on every lookup).
std::uint64_t ScaleTo(std::uint64_t hash, std::uint64_t range) {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(hash) * range) >> 64);
}

std::uint64_t FirstChoiceOf(std::uint64_t user_low, std::int32_t slot) {
  std::uint64_t mix = user_low ^ (static_cast<std::uint64_t>(slot) * 0x9E3779B97F4A7C15ULL);
  return ScaleTo(mix, cache->set_count);
}

Choices ChoicesOf(const StickyKey& key) {
  std::uint64_t first = FirstChoiceOf(key.user_low, key.slot);
  std::uint64_t per_partition = cache->set_count / kPartitions;
  std::uint64_t partition = first % kPartitions;
  // Other bits of the user's hash than the first choice's and the tag's.
  std::uint64_t mix = (key.user_high >> 32 | key.user_low << 32) * 0xD6E8FEB86659FD93ULL;
  std::uint64_t row = ScaleTo(mix, per_partition);
  std::uint64_t second = partition + row * kPartitions;
  if (second == first && per_partition > 1) second = partition + ((row + 1) % per_partition) * kPartitions;
  return {first, second};
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

LWLock* LockOf(const Choices& choices) { return &cache->locks[choices.first % kPartitions].lock; }

pg_atomic_uint32& SequenceOf(const Choices& choices) { return cache->sequences[choices.first % kPartitions].value; }

// Holds a key's partition exclusively, its change count odd meanwhile (see
// PartitionSequence). Nothing between the two can raise.
class PartitionWrite {
 public:
  explicit PartitionWrite(const Choices& choices) : lock_(LockOf(choices)), sequence_(SequenceOf(choices)) {
    LWLockAcquire(lock_, LW_EXCLUSIVE);
    pg_atomic_write_u32(&sequence_, pg_atomic_read_u32(&sequence_) + 1);
    pg_write_barrier();  // the odd count is seen before any change
  }
  ~PartitionWrite() {
    pg_write_barrier();  // every change is seen before the even count
    pg_atomic_write_u32(&sequence_, pg_atomic_read_u32(&sequence_) + 1);
    LWLockRelease(lock_);
  }
  PartitionWrite(const PartitionWrite&) = delete;
  PartitionWrite& operator=(const PartitionWrite&) = delete;

 private:
  LWLock* lock_;
  pg_atomic_uint32& sequence_;
};

// Starts fetching the set's lines from memory at once, so that the entry's line
// arrives with the header's instead of after the tag comparison. Read prefetches: a
// PREFETCHW (for the store of a new user that follows a miss) measured the same, 154
// against 159 ms for 200,000 new users in four pairs of runs, and fetching only the
// header lines measured worse for returning users.
void PrefetchSet(const Set& set) {
  const char* line = reinterpret_cast<const char*>(&set);
  for (std::size_t offset = 0; offset < sizeof(Set); offset += kLine) __builtin_prefetch(line + offset);
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

struct Place {
  Set* set;  // nullptr: not cached
  int way;
};

// Where the key is cached: its first choice, or its second when the first has spilled.
Place Find(const Choices& choices, const StickyKey& key, std::uint32_t tag) {
  Set& first = cache->sets[choices.first];
  if (int way = FindIn(first, key, tag); way >= 0) return {&first, way};
  if (first.header.spilled == 0 || choices.second == choices.first) return {nullptr, -1};
  Set& second = cache->sets[choices.second];
  if (int way = FindIn(second, key, tag); way >= 0) return {&second, way};
  return {nullptr, -1};
}

// Whether an entry belongs to a cleared experiment (its slot's epoch moved on): such an
// entry is garbage, and nobody can ask for it again.
bool Stale(const Entry& e) { return SlotEpoch(e.slot) != e.epoch; }

// An empty way, else a stale one, else the oldest persisted one, else -1. Empty ways
// are found in the header line alone: the entries' lines are read only when the set
// is full.
int VictimIn(const Set& set) {
  for (int way = 0; way < kWays; ++way)
    if (set.header.tags[way] == 0) return way;
  int oldest = -1;
  for (int way = 0; way < kWays; ++way) {
    if (Stale(set.entries[way])) return way;
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
  set.header.branches[way] = static_cast<std::int8_t>(branch);
  set.header.states[way] = state;
}

// The first-choice set of the entry in `way` (the lock of `set` guards it too).
Set& FirstChoiceOfEntry(const Set& set, int way) {
  const Entry& e = set.entries[way];
  return cache->sets[FirstChoiceOf(e.user_low, e.slot)];
}

// Before a way's occupant leaves it (emptied, or replaced by another key): when it had
// spilled here, its first choice has one spilled entry less.
void Vacate(Set& set, int way) {
  if (set.header.tags[way] == 0) return;
  Set& first = FirstChoiceOfEntry(set, way);
  if (&first != &set) --first.header.spilled;
}

void Empty(Set& set, int way) {
  Vacate(set, way);
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
  for (auto& sequence : cache->sequences) pg_atomic_init_u32(&sequence.value, 0);
  pg_atomic_init_u64(&cache->last_flush, 0);
  cache->set_count = SetCount();
  cache->locks = GetNamedLWLockTranche("abtest sticky cache");
  memset(cache->sets, 0, cache->set_count * sizeof(Set));
}

namespace {

// What the cache holds for the key; the caller keeps its partition from changing.
Lookup ReadEntry(const Choices& choices, const StickyKey& key, std::uint32_t tag) {
  const Set& first = cache->sets[choices.first];
  Place place = Find(choices, key, tag);
  Lookup result{std::nullopt, (first.header.incomplete_bits & IncompleteBit(key.slot, key.epoch)) != 0};
  if (place.set != nullptr)
    result.found = CachedAssignment{place.set->header.branches[place.way], place.set->entries[place.way].fingerprint};
  return result;
}

}  // namespace

Lookup StickyLookup(const StickyKey& key) {
  Choices choices = ChoicesOf(key);
  PrefetchSet(cache->sets[choices.first]);
  __builtin_prefetch(&cache->sets[choices.second].header);
  std::uint32_t tag = TagOf(key);
  // Without the lock first: torn reads of a set being changed are possible, harmless
  // (every index comes from the key, not from what is read) and thrown away.
  pg_atomic_uint32& sequence = SequenceOf(choices);
  std::uint32_t before = pg_atomic_read_u32(&sequence);
  if ((before & 1) == 0) {
    pg_read_barrier();
    Lookup result = ReadEntry(choices, key, tag);
    pg_read_barrier();
    if (pg_atomic_read_u32(&sequence) == before) return result;
  }
  LWLock* lock = LockOf(choices);  // a writer was busy: wait for it
  LWLockAcquire(lock, LW_SHARED);
  Lookup result = ReadEntry(choices, key, tag);
  LWLockRelease(lock);
  return result;
}

namespace {

int EmptyWays(const Set& set) {
  int empty = 0;
  for (std::uint32_t tag : set.header.tags) empty += tag == 0;
  return empty;
}

// Makes room for a new key in `set` (one of its two choices), or returns -1 when
// `set` has only pending entries. An evicted live entry marks its own first choice
// incomplete for its experiment.
int MakeRoomIn(Set& set, bool allow_eviction) {
  int way = VictimIn(set);
  if (way < 0) return -1;
  if (set.header.tags[way] == 0) {
    Add(kEntries, 1);
    return way;
  }
  const Entry& occupant = set.entries[way];
  if (Stale(occupant)) {
    Vacate(set, way);
    return way;
  }
  if (!allow_eviction) return -1;
  // A live assignment leaves the cache: only the log knows it now.
  Add(kEvictions, 1);
  FirstChoiceOfEntry(set, way).header.incomplete_bits |= IncompleteBit(occupant.slot, occupant.epoch);
  Vacate(set, way);
  return way;
}

}  // namespace

StoreResult StickyStore(const StickyKey& key, int branch, std::uint32_t fingerprint, EntryState state,
                        bool reassign) {
  Choices choices = ChoicesOf(key);
  Set& first = cache->sets[choices.first];
  PrefetchSet(first);
  __builtin_prefetch(&cache->sets[choices.second].header);
  std::uint32_t tag = TagOf(key);
  PartitionWrite write(choices);
  StoreResult result{StoreOutcome::kStored, branch, false};
  if (Place place = Find(choices, key, tag); place.set != nullptr) {
    Set& set = *place.set;
    Entry& existing = set.entries[place.way];
    if (!reassign || existing.fingerprint == fingerprint) {
      result = {StoreOutcome::kExisting, set.header.branches[place.way], false};
    } else if (set.header.branches[place.way] == branch) {
      existing.fingerprint = fingerprint;  // re-bucketed into the same branch: nothing to log
      result = {StoreOutcome::kExisting, branch, false};
    } else {
      Fill(set, place.way, key, tag, branch, fingerprint, state);
      result.replaced = true;
    }
    return result;
  }
  // The emptier of the two choices (the first on a tie), else the other one's free or
  // stale way; only then evict the oldest persisted entry, of the first choice before
  // the second. Placing by load keeps both sets of every pair filling evenly, which is
  // what lets the table run nearly full before anything is evicted.
  Set& second = cache->sets[choices.second];
  bool has_second = choices.second != choices.first;
  Set* target = &first;
  Set* other = has_second ? &second : nullptr;
  if (has_second && EmptyWays(second) > EmptyWays(first)) std::swap(target, other);
  int way = MakeRoomIn(*target, false);
  if (way < 0 && other != nullptr) {
    std::swap(target, other);
    way = MakeRoomIn(*target, false);
  }
  if (way < 0) {
    target = &first;
    way = MakeRoomIn(first, true);
  }
  if (way < 0 && has_second) {
    target = &second;
    way = MakeRoomIn(second, true);
  }
  if (way >= 0) {
    if (target != &first) ++first.header.spilled;
    Fill(*target, way, key, tag, branch, fingerprint, state);
  } else {
    result.outcome = StoreOutcome::kNoRoom;
    first.header.incomplete_bits |= IncompleteBit(key.slot, key.epoch);
  }
  return result;
}

// Changes only an entry's state, which lookups do not read: the lock without the
// change count, so that the flush worker's marks do not send lookups to the lock.
void StickyMarkPersisted(const StickyKey& key) {
  Choices choices = ChoicesOf(key);
  LWLock* lock = LockOf(choices);
  LWLockAcquire(lock, LW_EXCLUSIVE);
  if (Place place = Find(choices, key, TagOf(key)); place.set != nullptr)
    place.set->header.states[place.way] = EntryState::kPersisted;
  LWLockRelease(lock);
}

void StickyForget(const StickyKey& key) {
  Choices choices = ChoicesOf(key);
  PartitionWrite write(choices);
  if (Place place = Find(choices, key, TagOf(key)); place.set != nullptr) {
    Empty(*place.set, place.way);
    Add(kEntries, -1);
  }
}

StickyStats ReadStickyStats() {
  PublishCounts();
  return StickyStats{Sum(kEntries),       cache->set_count * kWays,
                     Sum(kHits),          Sum(kMisses),
                     Sum(kLogLookups),    Sum(kEvictions),
                     Sum(kQueued),        Sum(kFlushed),
                     Sum(kSyncWrites),    Sum(kUncachedWrites),
                     Sum(kOverflowWrites), static_cast<TimestampTz>(pg_atomic_read_u64(&cache->last_flush))};
}

// Every sticky routing call counts a hit or a miss, and every new user queued. An
// atomic add to shared memory is a full barrier on x86, which keeps the next call's work
// from overlapping this one's memory read: 20-30 ns of a returning user's ~500 (A/B of
// 1M returning users). So these are added up here and published every kPublishEvery,
// at the end of every transaction and before this backend reads the statistics.
namespace {

constexpr std::int64_t kPublishEvery = 1024;
std::int64_t unpublished[kCounters] = {};

void CountLocally(Counter counter, std::int64_t count = 1) {
  if ((unpublished[counter] += count) >= kPublishEvery) PublishCounts();
}

}  // namespace

void PublishCounts() {
  for (int counter = 0; counter < kCounters; ++counter)
    if (unpublished[counter] != 0) {
      Add(static_cast<Counter>(counter), unpublished[counter]);
      unpublished[counter] = 0;
    }
}

void CountHit() { CountLocally(kHits); }
void CountMiss() { CountLocally(kMisses); }
void CountQueued(int count) { CountLocally(kQueued, count); }
void CountLogLookup() { Add(kLogLookups, 1); }
void CountSyncWrite() { Add(kSyncWrites, 1); }
void CountUncachedWrite() { Add(kUncachedWrites, 1); }
void CountOverflowWrite() { Add(kOverflowWrites, 1); }

void CountFlushed(std::uint64_t count, TimestampTz when) {
  Add(kFlushed, static_cast<std::int64_t>(count));
  pg_atomic_write_u64(&cache->last_flush, static_cast<std::uint64_t>(when));
}

}  // namespace abtest::glue
