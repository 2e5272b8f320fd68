// The sticky cache: which branch each user got, for every experiment of the cluster,
// in shared memory.
//
// Layout: a set-associative table with two choices. A key (experiment slot, slot
// epoch, 128-bit XXH3 of the user id) hashes to two sets of kWays entries in one lock
// partition. It goes to the emptier of the two (the first on a tie), and the first
// counts its keys living in the second: while it has none, a lookup scans the first
// set only. Sets are scanned, never probed further, so nothing needs tombstones. A set's
// first cache line holds a 32-bit tag per way (and the branches), so a lookup reads
// one line for a new user and two for a returning one. 40 bytes an entry.
//
// Locking: kPartitions LWLocks; set s is guarded by lock s % kPartitions, and both
// choices of a key are in the same partition. Writers take it exclusively and make the
// partition's change count odd meanwhile; lookups read without it and retry under a
// shared lock only when the count was odd or moved (a sequence lock). Counters are
// striped atomics outside any lock.
//
// An entry is kPending until the flush worker has written it to abtest.assignments,
// then kPersisted. Entries of cleared experiments (an old epoch) go first, then the
// oldest persisted one (of the first choice before the second); a pending one is never
// evicted: it is the only record of an assignment. When a live persisted entry is
// evicted, or a user is written to the log uncached because both its sets held only
// pending entries, the user's first-choice set is flagged incomplete for that
// experiment: from then on a miss of that experiment there looks the log up. The flag is per set and experiment (a hashed bit of 32), so a few full
// sets do not make every new user cost a lookup, and clearing an experiment clears
// its flags.
#pragma once

#include <cstdint>
#include <optional>

#include "glue/pg.hpp"

namespace abtest::glue {

struct StickyKey {
  int slot;
  std::uint32_t epoch;
  std::uint64_t user_high;
  std::uint64_t user_low;
};

enum class EntryState : std::uint8_t { kEmpty = 0, kPending = 1, kPersisted = 2 };

struct CachedAssignment {
  int branch;
  std::uint32_t fingerprint;
};

enum class StoreOutcome {
  kStored,    // a new entry, or a reassignment that replaced the branch
  kExisting,  // another session's entry was there first: its branch holds
  kNoRoom,    // every entry of the set is pending: nothing could be evicted (the set is
              // flagged incomplete: the caller writes the assignment to the log uncached)
};

struct StoreResult {
  StoreOutcome outcome;
  int branch;
  bool replaced;  // a reassignment changed the branch
};

Size StickyCacheShmemSize();
void StickyCacheRequestLocks();
void StickyCacheShmemInit();

struct Lookup {
  std::optional<CachedAssignment> found;
  bool set_incomplete;  // on a miss: the log may hold this user although the cache does not
};

Lookup StickyLookup(const StickyKey& key);

// Stores `branch` unless an entry for the key exists. With `reassign`, an existing
// entry of another fingerprint takes the new branch (or only the new fingerprint,
// when the branch is the same).
StoreResult StickyStore(const StickyKey& key, int branch, std::uint32_t fingerprint, EntryState state,
                        bool reassign);

void StickyMarkPersisted(const StickyKey& key);
void StickyForget(const StickyKey& key);

struct StickyStats {
  std::uint64_t entries, capacity, hits, misses, log_lookups, evictions, queued, flushed, sync_writes;
  std::uint64_t uncached_writes;  // of sync_writes: both cache sets held only unflushed entries
  std::uint64_t overflow_writes;  // of sync_writes: the queue pool was full (a backend's own batch)
  TimestampTz last_flush;         // 0: never
};

StickyStats ReadStickyStats();  // this backend's own counts published first
// A lookup's hit or miss, and a queued assignment: added up in this backend and
// published every 1,024 and by PublishCounts, which the end of every transaction calls
// (sticky.cpp).
void CountHit();
void CountMiss();
void CountQueued(int count);
void PublishCounts();
void CountLogLookup();
void CountSyncWrite();
void CountUncachedWrite();
void CountOverflowWrite();
void CountFlushed(std::uint64_t count, TimestampTz when);

// The cache's capacity: abtest.sticky_cache_size, or when it is -1 (the default) a
// quarter of shared_buffers' memory in entries, at least 2,097,152 (80 MB) and at
// most 67,108,864 (2.5 GB).
std::uint64_t StickyCacheEntries();

extern int sticky_cache_size;  // GUC abtest.sticky_cache_size (entries; -1: automatic)

}  // namespace abtest::glue
