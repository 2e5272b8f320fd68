// The branch the current transaction entered with ab_enter: which experiment, user and
// branch, and whether its statements are measured. One per backend; it ends with the
// transaction (commit or abort), with the rollback of the savepoint it was entered in,
// and, for the measuring only, with ab_leave.
//
// A user who is not in the experiment (README, "Who is in an experiment") gets the
// control's settings but is not measured: their statements never enter its counts.
#pragma once

#include <string>
#include <string_view>

#include "glue/shmem/metrics_store.hpp"

namespace abtest::glue::entered_branch {

struct Entered {
  std::string experiment;  // name
  std::string user_id;
  std::string branch;
};

// The branch this transaction entered, or nullptr.
const Entered* Current();

// Records that this transaction entered `branch` of `experiment` (settings already
// applied); `measured` is the branch's metrics entry when the user is in the
// experiment, nullptr otherwise.
void Enter(std::string_view experiment, std::string_view user_id, const std::string& branch,
           const metrics::BranchHandle* measured);

// Stops measuring (ab_leave); the entered branch and its settings stay.
void StopMeasuring();

// What the executor hooks ask for every statement: the branch to record into, or
// nullptr when this transaction is not measured. Costs a load and a compare.
extern const metrics::BranchHandle* measured_branch;

}  // namespace abtest::glue::entered_branch
