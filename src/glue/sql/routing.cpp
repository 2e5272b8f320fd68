// SQL-callable routing: ab_route_user, ab_route_default, ab_bucket, ab_enter (routing
// a transaction into a database branch), and ab_explain, which tells why a user gets
// a branch without counting or writing anything. The hot path: no SPI, no catalog
// access; the experiment comes from the backend's compiled cache, attributes are read
// inside the jsonb only when the experiment needs them.

#include <cmath>

#include "core/error.hpp"
#include "core/limits.hpp"
#include "core/names.hpp"
#include "core/router.hpp"
#include "glue/args.hpp"
#include "glue/attributes.hpp"
#include "glue/branches/branch_settings.hpp"
#include "glue/branches/entered_branch.hpp"
#include "glue/experiment_arg.hpp"
#include "glue/catalog/experiment_cache.hpp"
#include "glue/guard.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/result_set.hpp"
#include "glue/shmem/shared_state.hpp"
#include "glue/sticky.hpp"

namespace abtest::glue {
namespace {

// Argument positions shared by ab_route_user, ab_explain and ab_route_default (which
// has no experiment).
struct RouteArgs {
  int user_id, groups, attributes, session_id;
};

// What routing asks of the database, answered from this call's arguments and shared
// memory. An explaining environment reads the same state but changes none of it: it
// remembers nothing and takes no round-robin turn.
class CallEnvironment final : public RoutingEnvironment {
 public:
  CallEnvironment(FunctionCallInfo fcinfo, const RouteArgs& args, bool explaining)
      : attributes_(PG_ARGISNULL(args.attributes) ? Datum(0) : PG_GETARG_DATUM(args.attributes),
                    PG_ARGISNULL(args.attributes)),
        explaining_(explaining) {}

  std::optional<std::string> Attribute(std::string_view name) override { return attributes_.Text(name); }
  AttributeSource* Attributes() override { return &attributes_; }

  std::uint64_t NextTurn(const CompiledExperiment& experiment) override {
    return explaining_ ? glue::PeekTurn(experiment) : glue::NextTurn(experiment);
  }

  std::optional<int> Remembered(const CompiledExperiment& experiment, std::string_view user_id) override {
    return sticky::Remembered(experiment, user_id);
  }

  int Remember(const CompiledExperiment& experiment, std::string_view user_id, int branch) override {
    return explaining_ ? branch : sticky::Remember(experiment, user_id, branch);
  }

 private:
  JsonbAttributes attributes_;
  bool explaining_;
};

// The user's identity: user_id, or session_id for a visitor without one. Refused
// above kMaxUserIdBytes before anything is looked up, cached or queued.
std::string_view RoutingIdentity(FunctionCallInfo fcinfo, const RouteArgs& args) {
  int source = !PG_ARGISNULL(args.user_id) ? args.user_id : args.session_id;
  if (PG_ARGISNULL(source))
    throw Error(ErrorKind::kNullValue, "user_id must not be NULL", {},
                "Pass a session_id to route a visitor who has no user id.");
  std::string_view identity = TextView(PG_GETARG_DATUM(source));
  ValidateUserId(source == args.user_id ? "user_id" : "session_id", identity);
  return identity;
}

RouteDecision Decide(FunctionCallInfo fcinfo, const CompiledExperiment& experiment, const RouteArgs& args,
                     bool explaining) {
  std::string_view user_id = RoutingIdentity(fcinfo, args);  // before any object with a destructor
  std::optional<std::vector<std::string>> groups;
  if (experiment.uses_groups()) groups = TextArrayArg(fcinfo, args.groups, "groups");
  RouteRequest request;
  request.user_id = user_id;
  if (groups) request.groups.assign(groups->begin(), groups->end());
  CallEnvironment environment(fcinfo, args, explaining);
  return Route(experiment, request, environment);
}

// Routes and counts the exposure of a user who is in the experiment; nobody else
// leaves a trace (README, "Who is in an experiment").
// The branch's position.
int RouteCall(FunctionCallInfo fcinfo, const CompiledExperiment& experiment, const RouteArgs& args) {
  RouteDecision decision = Decide(fcinfo, experiment, args, false);
  if (decision.in_experiment) metrics::CountExposure(experiment, decision.branch);
  return decision.branch;
}

// A second ab_enter in the transaction: the same experiment and user get the same
// branch again; anything else is refused, since a transaction's settings and
// measurements cannot change halfway.
const std::string& ReEnter(FunctionCallInfo fcinfo, const CompiledExperiment& experiment, const RouteArgs& args,
                           const entered_branch::Entered& entered) {
  std::string_view user_id = RoutingIdentity(fcinfo, args);
  if (entered.experiment == experiment.name() && entered.user_id == user_id) return entered.branch;
  throw Error(ErrorKind::kWrongState,
              "this transaction already entered branch " + Quoted(entered.branch) + " of experiment " +
                  Quoted(entered.experiment),
              "A transaction belongs to one branch: its settings and its measurements cannot change halfway.",
              "Enter once per transaction: BEGIN; SELECT ab_enter(...); ... COMMIT;");
}

// ab_enter's routing: as RouteCall, then the branch's settings and, for a user in the
// experiment, the measuring of the rest of the transaction.
const std::string& EnterCall(FunctionCallInfo fcinfo, const CompiledExperiment& experiment, const RouteArgs& args) {
  if (const entered_branch::Entered* entered = entered_branch::Current()) return ReEnter(fcinfo, experiment, args, *entered);
  RouteDecision decision = Decide(fcinfo, experiment, args, false);
  if (decision.in_experiment) metrics::CountExposure(experiment, decision.branch);
  const Branch& branch = experiment.model().branches[static_cast<std::size_t>(decision.branch)];
  branch_settings::ApplyLocally(branch.settings, experiment.name(), branch.name);
  std::optional<metrics::BranchHandle> measured;
  if (decision.in_experiment) measured = metrics::PrepareBranch(experiment, decision.branch);
  entered_branch::Enter(experiment.name(), RoutingIdentity(fcinfo, args), branch.name,
                        measured ? &*measured : nullptr);
  return entered_branch::Current()->branch;
}

}  // namespace
}  // namespace abtest::glue

using namespace abtest;
using namespace abtest::glue;

// ab_route_user(experiment, user_id, groups, attributes, session_id) -> branch
ABTEST_SQL_FUNCTION(ab_route_user) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  return BranchText(fcinfo, experiment, RouteCall(fcinfo, experiment, RouteArgs{1, 2, 3, 4}));
}

// ab_route_default(user_id, groups, attributes, session_id): NULL when there is no
// default experiment or it cannot route (draft, archived), as in the seed.
ABTEST_SQL_FUNCTION(ab_route_default) {
  RequirePreloaded();
  const CompiledExperiment* experiment = experiment_cache::Default();
  if (experiment == nullptr) PG_RETURN_NULL();
  State state = experiment->model().state;
  if (state == State::kDraft || state == State::kArchived) PG_RETURN_NULL();
  return TextResult(experiment->branch(RouteCall(fcinfo, *experiment, RouteArgs{0, 1, 2, 3})));
}

// ab_enter(experiment, user_id, groups, attributes, session_id) -> branch: routes as
// ab_route_user does, applies the branch's settings like SET LOCAL and, for a user in
// the experiment, has the executor hooks measure the rest of the transaction as the
// branch's queries (glue/hooks/statement_timing.hpp). This statement is not measured.
ABTEST_SQL_FUNCTION(ab_enter) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  return TextResult(EnterCall(fcinfo, experiment, RouteArgs{1, 2, 3, 4}));
}

// ab_explain(experiment, user_id, groups, attributes, session_id)
//   -> (branch, in_experiment, reason, bucket, sticky), counting and writing nothing.
ABTEST_SQL_FUNCTION(ab_explain) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  RouteDecision decision = Decide(fcinfo, experiment, RouteArgs{1, 2, 3, 4}, true);
  ResultSet rows(fcinfo);
  Datum values[5];
  bool nulls[5] = {false, false, false, !decision.bucket.has_value(), false};
  values[0] = TextDatum(experiment.branch(decision.branch));
  values[1] = BoolGetDatum(decision.in_experiment);
  values[2] = TextDatum(RouteReasonName(decision.reason));
  values[3] = Float8GetDatum(decision.bucket.value_or(0));
  values[4] = BoolGetDatum(decision.sticky);
  rows.Add(values, nulls);
  return static_cast<Datum>(0);
}

// ab_bucket(experiment, user_id) -> 0..9999, the hash strategy's bucket for the user.
ABTEST_SQL_FUNCTION(ab_bucket) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  if (PG_ARGISNULL(1)) RefuseNull("user_id");
  std::string_view user_id = TextView(PG_GETARG_DATUM(1));
  ValidateUserId("user_id", user_id);
  PG_RETURN_INT32(experiment.HashBucket(user_id));
}
