// Auto-completion, run by the flush worker after each flush: an active experiment
// with auto_complete is completed once its always-valid p-values decide it (see
// DecideAutoComplete in core/comparison.hpp), or at max_duration.

#include <optional>
#include <string>
#include <vector>

#include "core/experiment.hpp"
#include "core/router.hpp"
#include "glue/sql/analysis.hpp"
#include "glue/worker/auto_complete.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"

namespace abtest::glue {
namespace {

void Complete(const std::string& name, const std::optional<std::string>& winner) {
  Experiment experiment = catalog::LoadForUpdate(name);
  if (experiment.state != State::kActive || !experiment.config.auto_complete) return;  // changed meanwhile
  experiment.Apply(Action::kComplete, catalog::TransactionTime(), winner);
  catalog::Save(experiment);
  std::string message = "abtest: experiment \"" + name + "\" completed automatically" +
                        (winner ? ", winner \"" + *winner + "\"" : ", without a winner (max_duration reached)");
  PgCall([&] { ereport(LOG, (errmsg("%s", message.c_str()))); });
}

// Whether this database's experiments come from another primary through a
// logical-replication subscription (README, "More than one server"). Such a primary
// does not complete experiments itself: it would change its copy of the catalog alone,
// on its own share of the traffic. The control primary decides, and its change arrives.
bool CatalogIsSubscribed() {
  const char* sql =
      "SELECT 'subscribed' FROM pg_catalog.pg_subscription_rel "
      "WHERE srrelid = 'abtest.experiments'::pg_catalog.regclass LIMIT 1";
  return catalog::QueryAsOwner(sql, {}).has_value();
}

// A body for RunGuarded, which turns exceptions into PostgreSQL errors after the C++
// frames have unwound: the worker then handles them like any other error.
Datum CompleteDecided(FunctionCallInfo) {
  if (CatalogIsSubscribed()) return static_cast<Datum>(0);
  for (Experiment& experiment : catalog::LoadAll()) {
    if (experiment.state != State::kActive || !experiment.config.auto_complete) continue;
    CompiledExperiment compiled(std::move(experiment));
    std::optional<AutoCompleteDecision> decision = AutoCompleteDecisionFor(compiled);
    if (!decision || !decision->complete) continue;
    std::optional<std::string> winner;
    if (decision->winner) winner = compiled.branch(*decision->winner);
    Complete(compiled.name(), winner);
  }
  return static_cast<Datum>(0);
}

}  // namespace

void CompleteDecidedExperiments() { RunGuarded(CompleteDecided, nullptr); }

}  // namespace abtest::glue
