// abtest's shared memory: one slot per experiment, shared by every backend of the
// cluster, plus the areas hung off it (sticky_cache.hpp, assignment_queue.hpp).
//
// Slots are a fixed array; a hash table maps (database, experiment id) to an index.
// Locking: `lock` (one LWLock) guards the map and the slots' identity: lookups take
// it shared, creation and release exclusive. What a slot holds is atomic and changed
// without it: the round-robin turn, the epoch (moved on to forget every cached
// assignment of the experiment at once) with the log state (below), and the request
// to warm the cache from the log.
//
// A backend caches its experiment's slot index in CompiledExperiment::shared_slot,
// stamped with the release counter: any release makes every cached index re-checked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/router.hpp"
#include "glue/pg.hpp"

namespace abtest::glue {

// Whether the sticky cache holds every assignment the log holds for an experiment:
// when it does, a cache miss is a new user and costs no log lookup.
enum class LogState : std::uint32_t {
  kUnknown = 0,     // not checked since the slot was created or cleared
  kComplete = 1,    // the log holds nothing the cache lacks
  kIncomplete = 2,  // it may (after a restart, a rolled-back clear): misses look it up
};

struct SlotLog {
  std::uint32_t epoch;
  LogState state;
};

void InstallSharedMemoryHooks();
bool SharedStateAttached();

// The experiment's slot index, created on first use. Throws kProgramLimit, naming
// abtest.max_experiments, when all slots are taken.
int AcquireSlot(const CompiledExperiment& experiment);
// The slot of an experiment by id in this database, or -1.
int FindSlot(const std::string& experiment_id);
// Frees the experiment's slot (on ab_delete_experiment); its cached assignments die with it.
void ReleaseSlot(const std::string& experiment_id);
// The in-use slots of this database.
std::vector<int> SlotsOfDatabase();

std::uint32_t SlotEpoch(int slot);
// The experiment id of the slot while it is at `epoch`; false when it was released or
// cleared since (its queued records are dead).
bool SlotExperimentAt(int slot, std::uint32_t epoch, pg_uuid_t* experiment);
SlotLog ReadSlotLog(int slot);
// Moves the slot to a new epoch of unknown log state: every cached and queued
// assignment of the old one is dropped (a clear).
void ForgetSlotLog(int slot);
// Sets the log state if the slot is still at `epoch` in state `from`; false if not.
bool SetSlotLogState(int slot, std::uint32_t epoch, LogState from, LogState to);
// The log may hold assignments the cache lacks, whatever was known (a clear rolled back).
void MarkSlotLogIncomplete(int slot);

// Asks this database's flush worker to load the experiment's log into the cache
// (warm_start.hpp); the worker takes the request.
void RequestWarmStart(int slot);
bool TakeWarmStart(int slot);
bool WarmStartPending(Oid database);

// Whether this server is a standby in recovery: it cannot write, so sticky
// assignments and metrics stay in its memory.
bool InRecovery();

// The next ticket of the experiment's round-robin counter, across the cluster.
std::uint64_t NextTurn(const CompiledExperiment& experiment);
// The turn the next NextTurn will hand out, without taking it (ab_explain).
std::uint64_t PeekTurn(const CompiledExperiment& experiment);

// Parses canonical uuid text into PostgreSQL's 16 bytes.
pg_uuid_t UuidFromText(const std::string& text);

extern int max_experiments;  // GUC abtest.max_experiments

}  // namespace abtest::glue
