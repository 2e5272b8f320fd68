// Sticky assignments: once a user has seen a branch, they keep it while the
// experiment runs, across allocation changes, sessions, restarts and crashes.
//
// The route for a sticky experiment (after state and group checks, in the router):
//   1. the shared-memory cache (sticky_cache.hpp): a hit is the answer;
//   2. on a miss, the durable log abtest.assignments, but only when the cache cannot
//      vouch that the log holds nothing it lacks (after a restart, an eviction, a
//      rolled-back clear): a brand-new user costs no table lookup;
//   3. else the strategy's branch, cached and queued for the flush worker
//      (abtest.sticky_durability = async, the default), or written in the caller's
//      transaction (sync). A hot standby keeps its new assignments in memory only.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/router.hpp"
#include "glue/shmem/assignment_queue.hpp"
#include "glue/shmem/sticky_cache.hpp"

namespace abtest::glue::sticky {

// The cache key of a user id in an experiment's slot at `epoch`, and of a queued record.
StickyKey KeyOf(int slot, std::uint32_t epoch, std::string_view user_id);
StickyKey KeyOf(const QueuedAssignment& record);

std::optional<int> Remembered(const CompiledExperiment& experiment, std::string_view user_id);
int Remember(const CompiledExperiment& experiment, std::string_view user_id, int branch);

// Forget assignments, in the cache and the log: of one experiment (its id), or of
// one user in every experiment of this database.
void ForgetExperiment(const std::string& experiment_id);
void ForgetUser(const std::string& user_id);

enum class Durability { kAsync = 0, kSync = 1 };
extern int durability;  // GUC abtest.sticky_durability

}  // namespace abtest::glue::sticky
