// SQL-callable routing: ab_route_user, ab_route_default, ab_bucket. The hot path:
// no SPI, no catalog access; the experiment comes from the backend's compiled cache.

#include "core/error.hpp"
#include "core/limits.hpp"
#include "core/names.hpp"
#include "core/router.hpp"
#include "glue/args.hpp"
#include "glue/experiment_arg.hpp"
#include "glue/experiment_cache.hpp"
#include "glue/guard.hpp"
#include "glue/metrics_store.hpp"
#include "glue/shared_state.hpp"
#include "glue/sticky.hpp"

namespace abtest::glue {
namespace {

// Argument positions shared by ab_route_user and ab_route_default (which has no experiment).
struct RouteArgs {
  int user_id, groups, attributes, session_id;
};

// What routing asks of the database, answered from this call's arguments and shared memory.
class CallEnvironment final : public RoutingEnvironment {
 public:
  CallEnvironment(FunctionCallInfo fcinfo, const RouteArgs& args) : fcinfo_(fcinfo), args_(args) {}

  std::optional<std::string> Attribute(std::string_view name) override {
    FunctionCallInfo fcinfo = fcinfo_;
    if (PG_ARGISNULL(args_.attributes)) return std::nullopt;
    Datum datum = PG_GETARG_DATUM(args_.attributes);
    JsonbValue found;
    bool present = false;
    PgCall([&] {
      Jsonb* attributes = DatumGetJsonbP(datum);
      if (!JB_ROOT_IS_OBJECT(attributes) || JB_ROOT_IS_SCALAR(attributes))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("attributes must be a JSON object"),
                        errhint("For example '{\"country\": \"DE\"}'.")));
      present = getKeyJsonValueFromContainer(&attributes->root, name.data(), static_cast<uint32>(name.size()),
                                             &found) != nullptr;
    });
    if (!present) return std::nullopt;
    switch (found.type) {
      case jbvString:
        return std::string(found.val.string.val, found.val.string.len);
      case jbvNumeric:
        return std::string(PgCall(
            [&] { return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(found.val.numeric))); }));
      case jbvBool:
        return std::string(found.val.boolean ? "true" : "false");
      default:
        return std::nullopt;  // null, arrays and objects map to nothing
    }
  }

  std::uint64_t NextTurn(const CompiledExperiment& experiment) override {
    return glue::NextTurn(experiment);
  }

  std::optional<int> Remembered(const CompiledExperiment& experiment, std::string_view user_id) override {
    return sticky::Remembered(experiment, user_id);
  }

  int Remember(const CompiledExperiment& experiment, std::string_view user_id, int branch) override {
    return sticky::Remember(experiment, user_id, branch);
  }

 private:
  FunctionCallInfo fcinfo_;
  RouteArgs args_;
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

const std::string& RouteCall(FunctionCallInfo fcinfo, const CompiledExperiment& experiment, const RouteArgs& args) {
  std::string_view user_id = RoutingIdentity(fcinfo, args);  // before any object with a destructor
  std::optional<std::vector<std::string>> groups;
  if (experiment.uses_groups()) groups = TextArrayArg(fcinfo, args.groups, "groups");
  RouteRequest request;
  request.user_id = user_id;
  if (groups) request.groups.assign(groups->begin(), groups->end());
  CallEnvironment environment(fcinfo, args);
  int branch = Route(experiment, request, environment);
  metrics::CountExposure(experiment, branch);
  return experiment.branch(branch);
}

}  // namespace
}  // namespace abtest::glue

using namespace abtest;
using namespace abtest::glue;

// ab_route_user(experiment, user_id, groups, attributes, session_id) -> branch
ABTEST_SQL_FUNCTION(ab_route_user) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  return TextResult(RouteCall(fcinfo, experiment, RouteArgs{1, 2, 3, 4}));
}

// ab_route_default(user_id, groups, attributes, session_id): NULL when there is no
// default experiment or it cannot route (draft, archived), as in the seed.
ABTEST_SQL_FUNCTION(ab_route_default) {
  RequirePreloaded();
  const CompiledExperiment* experiment = experiment_cache::Default();
  if (experiment == nullptr) PG_RETURN_NULL();
  State state = experiment->model().state;
  if (state == State::kDraft || state == State::kArchived) PG_RETURN_NULL();
  return TextResult(RouteCall(fcinfo, *experiment, RouteArgs{0, 1, 2, 3}));
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
