// The sticky seam: where routing asks for, and hands over, a user's remembered branch.
//
// In abtest 1.0 nothing is remembered yet: a sticky experiment is deterministic by
// its hash alone, so a user keeps a branch as long as the allocation, salt and
// strategy do not change. Keeping the first branch across such changes, restarts and
// crashes needs the cluster-wide cache and the durable assignment log, which plug in
// here without touching the router.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/router.hpp"

namespace abtest::glue::sticky {

std::optional<int> Remembered(const CompiledExperiment& experiment, std::string_view user_id);
int Remember(const CompiledExperiment& experiment, std::string_view user_id, int branch);

// Forget assignments: of one experiment, or of one user in every experiment.
void ForgetExperiment(const std::string& experiment_id);
void ForgetUser(const std::string& user_id);

}  // namespace abtest::glue::sticky
