// SQL-callable database branches: a branch's settings (ab_set_branch_settings) and
// leaving the measurement of a transaction early (ab_leave). ab_enter routes, so it
// lives with the other routing functions in routing.cpp.

#include "core/branch_settings.hpp"
#include "core/error.hpp"
#include "core/experiment.hpp"
#include "glue/args.hpp"
#include "glue/branches/branch_settings.hpp"
#include "glue/branches/entered_branch.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"

using namespace abtest;
using namespace abtest::glue;

// ab_set_branch_settings(experiment, branch, settings): the parameters ab_enter sets
// for a transaction in the branch, checked now by PostgreSQL's GUC machinery; '{}'
// clears them. Any state but archived: a change applies from the next ab_enter.
ABTEST_SQL_FUNCTION(ab_set_branch_settings) {
  RequirePreloaded();
  std::string branch = TextArg(fcinfo, 1, "branch");
  std::string json = JsonbTextArg(fcinfo, 2, "settings");
  Experiment experiment = catalog::LoadForUpdate(TextArg(fcinfo, 0, "experiment name"));
  experiment.RequireBranch(branch);
  if (experiment.state == State::kArchived)
    throw Error(ErrorKind::kWrongState, "experiment " + Quoted(experiment.name) + " is archived", {},
                "An archived experiment routes nobody; create a new experiment to test the change.");
  BranchSettings settings = ParseBranchSettings(json, experiment.name, branch);
  branch_settings::Validate(settings, experiment.name, branch);
  catalog::SetBranchSettings(experiment, branch, settings);
  PG_RETURN_VOID();
}

// ab_leave(): the rest of the transaction is no longer measured; the branch's settings
// stay until it ends. Nothing to do outside an entered branch.
ABTEST_SQL_FUNCTION(ab_leave) {
  RequirePreloaded();
  entered_branch::StopMeasuring();
  PG_RETURN_VOID();
}
