// SQL-callable administration: create, configure, move through the lifecycle, delete.
// Each loads the experiment row-locked, lets the core apply the change (which
// validates everything first), and stores the result; a refused change stores
// nothing, and a rolled-back one is never seen by routing.

#include <cstdlib>

#include "core/condition.hpp"
#include "core/error.hpp"
#include "core/experiment.hpp"
#include "core/limits.hpp"
#include "glue/args.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"
#include "glue/shmem/assignment_queue.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/pg_regex.hpp"
#include "glue/shmem/shared_state.hpp"
#include "glue/sticky.hpp"
#include "glue/shmem/sticky_cache.hpp"
#include "glue/worker/log_purge.hpp"

namespace abtest::glue {
namespace {

template <typename Change>
void Modify(FunctionCallInfo fcinfo, Change&& change) {
  RequirePreloaded();
  Experiment experiment = catalog::LoadForUpdate(TextArg(fcinfo, 0, "experiment name"));
  change(experiment);
  catalog::RequireFreeNamespaceRange(experiment);
  catalog::Save(experiment);
}

void ApplyAction(FunctionCallInfo fcinfo, Action action, const std::optional<std::string>& winner = std::nullopt) {
  Modify(fcinfo, [&](Experiment& e) { e.Apply(action, catalog::TransactionTime(), winner); });
}

template <typename T>
std::optional<T> OptionalArg(FunctionCallInfo fcinfo, int n, T (*get)(Datum)) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  return get(PG_GETARG_DATUM(n));
}

// The interval as text and as seconds (its sign is what validation needs).
std::pair<std::string, double> IntervalArg(FunctionCallInfo fcinfo, int n) {
  Datum interval = PG_GETARG_DATUM(n);
  char* text = PgCall([&] { return DatumGetCString(DirectFunctionCall1(interval_out, interval)); });
  double seconds = PgCall([&] {
    return DatumGetFloat8(DirectFunctionCall2(interval_part, CStringGetTextDatum("epoch"), interval));
  });
  return {text, seconds};
}

// The condition's canonical JSON text, after a strict compile: an unknown operator, a bad
// regular expression or an ill-typed operand is refused now (22023, with its path),
// not silently false at every routing call.
std::string ValidatedCondition(const std::string& text) {
  Json condition = Json::parse(text, nullptr, false);
  if (condition.is_discarded() || !condition.is_object())
    throw Error(ErrorKind::kInvalidParameter, "condition must be a JSON object", {},
                "For example '{\"country\": \"DE\", \"age\": {\"$gte\": 18}}'.");
  PgRegexEngine regex;
  Condition::Compile(condition, Json::object(), regex, ConditionMode::kStrict);
  return condition.dump();
}

// {start, end} as doubles; nullopt when NULL.
std::optional<std::pair<double, double>> FractionPairArg(FunctionCallInfo fcinfo, int n, const char* what) {
  std::optional<std::vector<std::string>> texts = NumericArrayArg(fcinfo, n, what);
  if (!texts) return std::nullopt;
  if (texts->size() != 2)
    throw Error(ErrorKind::kInvalidParameter, std::string(what) + " must have two elements, {start, end}",
                "It has " + std::to_string(texts->size()) + ".", "For example '{0, 0.5}'.");
  return std::make_pair(std::strtod((*texts)[0].c_str(), nullptr), std::strtod((*texts)[1].c_str(), nullptr));
}

}  // namespace
}  // namespace abtest::glue

using namespace abtest;
using namespace abtest::glue;

ABTEST_SQL_FUNCTION(ab_create_experiment) {
  RequirePreloaded();
  std::string name = TextArg(fcinfo, 0, "experiment name");
  auto branches = TextArrayArg(fcinfo, 1, "branches");
  if (!branches) RefuseNull("branches");
  Experiment experiment = Experiment::Create(name, *branches, NumericArrayArg(fcinfo, 2, "allocation"),
                                             OptionalTextArg(fcinfo, 3), OptionalTextArg(fcinfo, 4),
                                             TextArrayArg(fcinfo, 5, "tags").value_or(std::vector<std::string>{}));
  std::string id = catalog::Insert(experiment);
  return PgCall([&] { return DirectFunctionCall1(uuid_in, CStringGetDatum(id.c_str())); });
}

ABTEST_SQL_FUNCTION(ab_set_allocation) {
  auto shares = JsonbObjectArg(fcinfo, 1, "allocation");
  Modify(fcinfo, [&](Experiment& e) { e.SetAllocation(shares); });
  PG_RETURN_VOID();
}

// ab_configure(name, sticky, included_groups, excluded_groups, min_sample_size,
//              confidence_level, allow_reassignment, auto_complete, max_duration, salt,
//              condition, namespace, namespace_range); the last three since 1.2.
ABTEST_SQL_FUNCTION(ab_configure) {
  ConfigChange change;
  change.sticky = OptionalArg<bool>(fcinfo, 1, [](Datum d) { return DatumGetBool(d); });
  change.included_groups = TextArrayArg(fcinfo, 2, "included_groups");
  change.excluded_groups = TextArrayArg(fcinfo, 3, "excluded_groups");
  change.min_sample_size = OptionalArg<std::int64_t>(fcinfo, 4, [](Datum d) { return std::int64_t{DatumGetInt64(d)}; });
  change.confidence_level = OptionalArg<double>(fcinfo, 5, [](Datum d) { return DatumGetFloat8(d); });
  change.allow_reassignment = OptionalArg<bool>(fcinfo, 6, [](Datum d) { return DatumGetBool(d); });
  change.auto_complete = OptionalArg<bool>(fcinfo, 7, [](Datum d) { return DatumGetBool(d); });
  if (!PG_ARGISNULL(8)) {
    auto [text, seconds] = IntervalArg(fcinfo, 8);
    change.max_duration = text;
    change.max_duration_seconds = seconds;
  }
  change.salt = OptionalTextArg(fcinfo, 9);
  if (PG_NARGS() > 10) {
    if (!PG_ARGISNULL(10)) change.condition = ValidatedCondition(JsonbTextArg(fcinfo, 10, "condition"));
    change.namespace_name = OptionalTextArg(fcinfo, 11);
    change.namespace_range = FractionPairArg(fcinfo, 12, "namespace_range");
  }
  Modify(fcinfo, [&](Experiment& e) { e.Configure(change); });
  PG_RETURN_VOID();
}

ABTEST_SQL_FUNCTION(ab_set_assignment) {
  std::string strategy = TextArg(fcinfo, 1, "strategy");
  std::string params = PG_ARGISNULL(2) ? std::string("{}") : JsonbTextArg(fcinfo, 2, "params");
  Modify(fcinfo, [&](Experiment& e) { e.SetAssignment(strategy, params); });
  PG_RETURN_VOID();
}

ABTEST_SQL_FUNCTION(ab_start) {
  ApplyAction(fcinfo, Action::kStart);
  PG_RETURN_VOID();
}

ABTEST_SQL_FUNCTION(ab_pause) {
  ApplyAction(fcinfo, Action::kPause);
  PG_RETURN_VOID();
}

ABTEST_SQL_FUNCTION(ab_complete) {
  ApplyAction(fcinfo, Action::kComplete, OptionalTextArg(fcinfo, 1));
  PG_RETURN_VOID();
}

ABTEST_SQL_FUNCTION(ab_archive) {
  ApplyAction(fcinfo, Action::kArchive);
  PG_RETURN_VOID();
}

ABTEST_SQL_FUNCTION(ab_set_state) {
  std::string requested = TextArg(fcinfo, 1, "state");
  Modify(fcinfo, [&](Experiment& e) {
    e.Apply(ActionForRequestedState(e.name, abtest::ParseState(requested)), catalog::TransactionTime());
  });
  PG_RETURN_VOID();
}

// Since catalog 1.6 the experiment's log rows are purged after the commit by the flush
// worker, in short batches (log_purge.hpp): the call neither deletes them nor locks
// abtest.assignments against flushes. A flush in flight, or a queued record taken
// before the slot is released, may still write a row of it; the purge waits for them.
// An older catalog deletes them here, as before, under the lock that orders the
// delete after a flush in flight.
ABTEST_SQL_FUNCTION(ab_delete_experiment) {
  RequirePreloaded();
  std::string name = TextArg(fcinfo, 0, "experiment name");
  bool deferred = catalog::HasDeletedExperimentsCatalog();
  if (!deferred) catalog::LockAssignmentsForClear();
  metrics::LockForClear();
  std::string id = catalog::Delete(name);  // its metrics rows go with it (ON DELETE CASCADE)
  if (deferred) {
    catalog::RecordDeletion(id, name);
    log_purge::RequestAtCommit();
  } else {
    catalog::DeleteAssignments(id);
  }
  ReleaseSlot(id);  // its cached and queued assignments die with the slot
  metrics::RemoveAtCommit(UuidFromText(id));
  PG_RETURN_VOID();
}

ABTEST_SQL_FUNCTION(ab_set_default_experiment) {
  RequirePreloaded();
  catalog::SetDefault(OptionalTextArg(fcinfo, 0));
  PG_RETURN_VOID();
}

ABTEST_SQL_FUNCTION(ab_clear_sticky_cache) {
  RequirePreloaded();
  Experiment experiment = catalog::LoadForUpdate(TextArg(fcinfo, 0, "experiment name"));
  sticky::ForgetExperiment(experiment.id);
  PG_RETURN_VOID();
}

ABTEST_SQL_FUNCTION(ab_sticky_cache_stats) {
  RequirePreloaded();
  TupleDesc descriptor;
  if (get_call_result_type(fcinfo, nullptr, &descriptor) != TYPEFUNC_COMPOSITE)
    throw Error(ErrorKind::kInternal, "ab_sticky_cache_stats must return a row");
  StickyStats stats = ReadStickyStats();
  TimestampTz oldest_queued = OldestQueuedAt();
  QueuePoolUse pool = ReadQueuePoolUse();
  // Each catalog version added columns at the end (oldest_queued in 1.4, the four
  // after it in 1.5): the row of an older catalog takes the first values
  // (heap_form_tuple reads as many as the descriptor has columns).
  Datum values[15] = {Int64GetDatum(stats.entries),   Int64GetDatum(stats.capacity),   Int64GetDatum(stats.hits),
                      Int64GetDatum(stats.misses),    Int64GetDatum(stats.log_lookups), Int64GetDatum(stats.evictions),
                      Int64GetDatum(stats.queued),    Int64GetDatum(stats.flushed),    Int64GetDatum(stats.sync_writes),
                      TimestampTzGetDatum(stats.last_flush), TimestampTzGetDatum(oldest_queued),
                      Int64GetDatum(stats.uncached_writes), Int64GetDatum(stats.overflow_writes),
                      Int64GetDatum(pool.in_use),     Int64GetDatum(pool.size)};
  bool nulls[15] = {false, false, false, false, false, false, false, false, false, stats.last_flush == 0,
                    oldest_queued == 0, false, false, false, false};
  if (descriptor->natts > 15) throw Error(ErrorKind::kInternal, "ab_sticky_cache_stats returns more columns than it has");
  return PgCall([&] { return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(descriptor), values, nulls)); });
}

ABTEST_SQL_FUNCTION(ab_clear_user_cache) {
  RequirePreloaded();
  if (PG_ARGISNULL(0)) RefuseNull("user_id");
  std::string_view user_id = TextView(PG_GETARG_DATUM(0));
  ValidateUserId("user_id", user_id);  // as routing: no longer id is ever assigned
  sticky::ForgetUser(std::string(user_id));
  PG_RETURN_VOID();
}

// Trigger on the catalog tables: routing caches of every backend reload after the
// change commits (see experiment_cache.hpp). A statement trigger in ordinary sessions;
// a row trigger in a logical-replication subscriber's apply worker, which fires no
// statement triggers (abtest--1.3--1.4.sql). Needs no shared memory, so that restoring
// a dump works on a server without abtest preloaded.
ABTEST_SQL_FUNCTION(abtest_catalog_changed) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw Error(ErrorKind::kWrongState, "abtest_catalog_changed must be called as a trigger");
  Oid relation = catalog::ExperimentsRelation();
  if (OidIsValid(relation)) PgCall([&] { CacheInvalidateRelcacheByRelid(relation); });
  return PointerGetDatum(nullptr);
}
