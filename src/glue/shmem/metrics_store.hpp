// Per-branch metrics of every database in shared memory: what ab_record_query and
// ab_record_event count, and the exposures routing counts.
//
// Two shared hash tables, like pg_stat_statements' but partitioned: branch entries
// keyed by (database, experiment, branch position), bounded by abtest.max_branches,
// and event entries keyed by (database, experiment, branch position, event name),
// bounded by abtest.max_events. A lookup takes its partition's LWLock shared; an
// update then takes the entry's spinlock (exposures are atomics). Creating or
// removing an entry takes the partition lock exclusively. No global lock.
//
// Durability: the flush worker writes every entry of its database to
// abtest.branch_metrics and abtest.event_metrics (totals, overwritten each time).
// The first use in a database after a start merges the persisted totals in, exactly
// once; counters then continue from them.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/latency_histogram.hpp"
#include "core/limits.hpp"
#include "core/metrics.hpp"
#include "core/query_latency.hpp"
#include "core/router.hpp"
#include "glue/pg.hpp"

namespace abtest::glue::metrics {

struct BranchSnapshot {
  pg_uuid_t experiment;
  int position;
  QueryCounters queries;
  std::uint64_t exposures;
  std::uint64_t assigned_users;
  double sequential_p;  // running minimum of the always-valid p-value against the control
  std::uint64_t histogram[kLatencyBuckets];
};

struct EventSnapshot {
  pg_uuid_t experiment;
  int position;
  char name[kMaxEventNameBytes + 1];
  RunningMoments moments;
};

Size ShmemSize();
void RequestLocks();
void ShmemInit();

// The hot path. Each refuses (kProgramLimit naming the GUC) only when a new entry is
// needed and its table is full.
void RecordQuery(const CompiledExperiment& experiment, int position, double latency_ms, bool success);
void RecordEvent(const CompiledExperiment& experiment, int position, std::string_view event_name, double value);
void CountExposure(const CompiledExperiment& experiment, int position);
void CountAssignment(const CompiledExperiment& experiment, int position);

// A branch's entry, found again without the compiled experiment: what the executor
// hooks record a transaction's statements into (the experiment's cache entry may be
// rebuilt meanwhile, and an abort callback may not read the catalog).
struct BranchHandle {
  pg_uuid_t experiment;
  std::int32_t position;
  std::uint32_t hash;
};
// Creates the branch's entry (refusing as RecordQuery does when the table is full).
BranchHandle PrepareBranch(const CompiledExperiment& experiment, int position);
// Records queries into the entry, in order: `samples[i]` ended at `at[i]`; false when
// the entry is gone (its experiment deleted or its metrics cleared since). Never throws
// or raises: abort callbacks call it (through pending_queries.hpp, which batches them).
bool RecordQueriesAt(const BranchHandle& branch, const QuerySample* samples, const TimestampTz* at,
                     int count) noexcept;

// One more look at the branch against the control: lowers the running minimum of its
// always-valid p-value to `p_value` and returns the minimum.
double LowerSequentialP(const CompiledExperiment& experiment, int position, double p_value);

// Reads. The counters of one branch (zeros when it has none).
void ReadBranch(const CompiledExperiment& experiment, int position, BranchSnapshot* out);
// Copies up to `capacity` entries of `database` (of one experiment, or all when
// `experiment` is nullptr) and returns how many there are: call again with more room
// when that exceeds `capacity`. Plain C style: the flush worker uses them too.
int SnapshotBranches(Oid database, const pg_uuid_t* experiment, BranchSnapshot* out, int capacity);
int SnapshotEvents(Oid database, const pg_uuid_t* experiment, EventSnapshot* out, int capacity);
// The same, for a backend of this database: every branch of the experiment in branch
// order (zeros where none), and its events in no particular order.
std::vector<BranchSnapshot> ReadBranches(const CompiledExperiment& experiment);
std::vector<EventSnapshot> ReadEvents(const pg_uuid_t* experiment);

// Clears the experiment's counters (nullptr: every experiment of this database) when
// the transaction commits; the caller deletes the persisted rows in it, after
// LockForClear. On ab_delete_experiment the entries are removed at commit.
void LockForClear();
void ClearAtCommit(const pg_uuid_t* experiment);
void RemoveAtCommit(const pg_uuid_t& experiment);

// Merges the persisted totals of this database into shared memory, once per server
// lifetime; true when they are in (false while another backend is merging them).
bool EnsureLoaded();
bool Loaded(Oid database);
// Flush worker: whether this database has counts not yet written, taking the flag.
bool TakeDirty(Oid database);
// For the query store (query_metrics.hpp), from executor hooks and abort callbacks:
// marks this database's counts unwritten and starts its flush worker if none runs,
// without allocating, raising or warning. Without a database slot yet it does nothing.
void MarkDirtyQuietly() noexcept;
void SetDirty(Oid database);
bool IsDirty(Oid database);
bool IsDirtyAt(int index);
// Resets the state of database slot `index` for a new database: not loaded, nothing
// to write, and the entries of the database that held it (`former`, dropped or idle
// with everything written) removed, so that its next use loads them again.
void ForgetDatabase(int index, Oid former);

extern int max_branches;  // GUC abtest.max_branches
extern int max_events;    // GUC abtest.max_events

}  // namespace abtest::glue::metrics
