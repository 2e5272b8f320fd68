// Per-query metrics of database branches in shared memory: for every (database,
// experiment, branch position, query id), what the statements of transactions marked by
// ab_enter cost. The executor hooks record each statement; ab_query_metrics and
// ab_compare_queries read them.
//
// One shared hash table, partitioned like metrics_store.hpp's, bounded by
// abtest.max_tracked_queries over all databases. Locking: a lookup takes its partition's
// LWLock shared and the entry's spinlock for the counters (and the text, set once);
// creating an entry takes the partition lock exclusively; eviction, clearing and the
// readers' scans take every partition lock (in order: no deadlock), exclusively to
// remove. No global lock.
//
// A full table is never an error: the least-used entries go, in a batch, like
// pg_stat_statements' (core/usage_eviction.hpp). Record must neither allocate nor fail
// (it runs in transaction-abort callbacks), so the victims are chosen with a fixed
// array on the stack, not by sorting.
//
// Durability, with the branch metrics (metrics_store.hpp): the flush worker writes the
// entries that changed since its last write to abtest.query_metrics, and deletes the rows
// of evicted entries, in the same transaction as the branch metrics; the first use of the
// database after a start merges the rows back in (metrics::EnsureLoaded). Clears and
// removals follow the branch metrics' (metrics::ClearAtCommit, RemoveAtCommit).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/query_latency.hpp"
#include "glue/pg.hpp"

namespace abtest::glue::query_metrics {

extern int max_tracked_queries;  // GUC abtest.max_tracked_queries (0: nothing is tracked)

// The statement text kept per entry: the raw text of the first statement recorded with
// the entry's query id, cut to at most kQueryTextBytes - 1 bytes at a character boundary.
constexpr int kQueryTextBytes = 512;

Size ShmemSize();
void RequestLocks();
void ShmemInit();

// Statements of a marked transaction with one query id, in the order they ended
// (glue/shmem/pending_queries.hpp publishes them). Called from executor hooks and from
// transaction-abort callbacks: never throws, never raises a PostgreSQL error, never
// pallocs, never does SPI or catalog access. `query` may be nullptr (the abort path, or
// a backend that knows the entry has its text): an entry created without text takes
// the text of the first later call that has one; `query_len` < 0 reads `query` up to
// its NUL. Latencies are clamped to [0, 1,000,000] ms (core/query_latency.hpp).
// Returns whether the entry still needs a text (true too when it could not be created;
// false when tracking is off).
bool RecordBatch(const pg_uuid_t& experiment, int position, std::uint64_t queryid, const char* query, int query_len,
                 const QuerySample* samples, int count) noexcept;

// Changes whenever entries are removed (evicted, cleared): what a backend knows of the
// entries' texts holds while it stays the same.
std::uint32_t RemovalEpoch() noexcept;

// A copy of one entry.
struct QuerySnapshot {
  pg_uuid_t experiment;
  int position;
  std::uint64_t queryid;
  QueryLatency latency;
  double usage;
  int query_len;  // 0: no text yet
  char query[kQueryTextBytes];
};

// Copies up to `capacity` entries of `database` (of one experiment, or all when
// `experiment` is nullptr; only those changed since `generation` when `changed_since`)
// and returns how many matched: call again with more room when that exceeds
// `capacity`. Plain C style: the flush worker uses it.
int Snapshot(Oid database, const pg_uuid_t* experiment, bool changed_since, std::uint32_t generation,
             QuerySnapshot* out, int capacity);
// The same for a backend: the experiment's entries in this database, persisted totals
// merged in first (metrics::EnsureLoaded).
std::vector<QuerySnapshot> Read(const pg_uuid_t& experiment);

// Counts of the whole table, for ab_query_metrics_info.
struct Stats {
  std::int64_t entries_here = 0;  // of this database
  std::int64_t entries = 0;       // of all databases
  std::int64_t evicted = 0;       // entries evicted since the server started
  std::int64_t evictions = 0;     // eviction batches
  std::int64_t dropped = 0;       // statements not counted: no room even after an eviction
};
Stats ReadStats();

// Removes the entries of one experiment of `database`, or all of them when `experiment`
// is nullptr. Cannot fail: the branch metrics' commit callback calls it.
void Remove(Oid database, const pg_uuid_t* experiment) noexcept;

// Rows of abtest.query_metrics, merged into shared memory once after a start.
struct PersistedQuery {
  pg_uuid_t experiment;
  int position = 0;
  std::uint64_t queryid = 0;
  std::string query;
  QueryLatency latency;
  double usage = 0;
};
// Merges the rows into this database's entries (evicting if need be); returns how many
// found no room (only when tracking is off).
std::size_t MergePersisted(const std::vector<PersistedQuery>& rows) noexcept;

// The flush worker's bookkeeping. A write of `database` starts with BeginWrite (a new
// generation: what changes from now on is written next time), copies the entries changed
// since the last completed write, and, after its transaction committed, calls EndWrite.
// A write that fails is simply repeated: nothing is marked written before the commit.
struct WriteWindow {
  bool valid;                // false: the database has no slot (nothing was recorded)
  std::uint32_t generation;  // the generation this write covers, for EndWrite
  std::uint32_t since;       // the last completed write's
};
WriteWindow BeginWrite(Oid database);
// Whether entries of `database` may have been evicted since `window.since`: read after
// the keys were copied, so that an eviction it misses is seen by the next write.
bool EvictedSince(const WriteWindow& window);
// The keys of every entry of `database` (for deleting the rows of evicted ones).
struct QueryKeyRow {
  pg_uuid_t experiment;
  int position;
  std::uint64_t queryid;
};
int SnapshotKeys(Oid database, QueryKeyRow* out, int capacity);
void EndWrite(Oid database, const WriteWindow& window);

// Resets the write state of database slot `index` for a new database (metrics::ForgetDatabase).
void ForgetDatabase(int index);

}  // namespace abtest::glue::query_metrics
