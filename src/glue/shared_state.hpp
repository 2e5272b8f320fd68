// abtest's shared memory: one slot per experiment, shared by every backend of the
// cluster. For now a slot holds the round-robin turn counter; the metrics and the
// sticky cache will hang off the same slots.
//
// Locking: `lock` (one LWLock) guards the slot hash table: lookups take it shared,
// inserts and removals exclusive. A slot's counter is a 64-bit atomic, changed
// without the lock. Slots are only removed while holding `lock` exclusively, and
// no pointer to a slot is kept past the lock, so a removal never leaves a dangling one.
#pragma once

#include <cstdint>
#include <string>

namespace abtest::glue {

// Set up by _PG_init when abtest is in shared_preload_libraries.
void InstallSharedMemoryHooks();
bool SharedStateAttached();

// The next ticket of the experiment's round-robin counter (starting at 0), counted
// across every session of the cluster. Throws kProgramLimit, naming
// abtest.max_experiments, when no slot is free.
std::uint64_t NextTurn(const std::string& experiment_id);

// Frees the experiment's slot (on ab_delete_experiment).
void ReleaseSlot(const std::string& experiment_id);

extern int max_experiments;  // GUC abtest.max_experiments

}  // namespace abtest::glue
