#include "glue/branches/entered_branch.hpp"

#include "glue/guard.hpp"
#include "glue/transaction_end.hpp"

namespace abtest::glue::entered_branch {

const metrics::BranchHandle* measured_branch = nullptr;

namespace {

Entered entered;
bool active = false;
metrics::BranchHandle measured{};
SubTransactionId entered_in = InvalidSubTransactionId;
bool callbacks_registered = false;

// Nothing here allocates or raises: transaction callbacks must not fail.
void Forget() {
  active = false;
  measured_branch = nullptr;
  entered_in = InvalidSubTransactionId;
}

void OnTransactionEnd(XactEvent event, void*) {
  if (Ends(event)) Forget();
}

// Entered in a savepoint that is rolled back: its settings are undone, and so is the
// entering. Entered in one that is released: it belongs to the parent now.
void OnSubtransactionEnd(SubXactEvent event, SubTransactionId mine, SubTransactionId parent, void*) {
  if (!active || entered_in != mine) return;
  if (event == SUBXACT_EVENT_ABORT_SUB) Forget();
  if (event == SUBXACT_EVENT_COMMIT_SUB) entered_in = parent;
}

}  // namespace

const Entered* Current() { return active ? &entered : nullptr; }

void Enter(std::string_view experiment, std::string_view user_id, const std::string& branch,
           const metrics::BranchHandle* measured_handle) {
  if (!callbacks_registered) {
    PgCall([] {
      RegisterXactCallback(OnTransactionEnd, nullptr);
      RegisterSubXactCallback(OnSubtransactionEnd, nullptr);
    });
    callbacks_registered = true;
  }
  SubTransactionId subtransaction = PgCall([] { return GetCurrentSubTransactionId(); });
  entered.experiment.assign(experiment);  // may throw bad_alloc: nothing is active yet
  entered.user_id.assign(user_id);
  entered.branch = branch;
  entered_in = subtransaction;
  active = true;
  if (measured_handle != nullptr) {
    measured = *measured_handle;
    measured_branch = &measured;
  }
}

void StopMeasuring() { measured_branch = nullptr; }

}  // namespace abtest::glue::entered_branch
