// abtest's shared memory: one slot per experiment, shared by every backend of the
// cluster, plus the areas hung off it (sticky_cache.hpp, assignment_queue.hpp).
//
// Slots are a fixed array; a hash table maps (database, experiment id) to an index.
// Locking: `lock` (one LWLock) guards the map and the slots' identity: lookups take
// it shared, creation and release exclusive. What a slot holds is atomic and changed
// without it: the round-robin turn, the epoch (bumped to forget every cached
// assignment of the experiment at once) and the log state (below).
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
void BumpSlotEpoch(int slot);
LogState SlotLogState(int slot);
void SetSlotLogState(int slot, LogState state);

// The next ticket of the experiment's round-robin counter, across the cluster.
std::uint64_t NextTurn(const CompiledExperiment& experiment);

// Parses canonical uuid text into PostgreSQL's 16 bytes.
pg_uuid_t UuidFromText(const std::string& text);

extern int max_experiments;  // GUC abtest.max_experiments

}  // namespace abtest::glue
