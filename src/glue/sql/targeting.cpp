// SQL-callable targeting: forcing users into a branch (ab_force, ab_unforce), and the
// GrowthBook building blocks on their own (ab_eval_condition, ab_growthbook_hash), so
// that a condition or a hash can be checked against the SDKs from SQL. Who is in an
// experiment is decided by the router (core/router.hpp); ab_explain is in routing.cpp.

#include "core/condition.hpp"
#include "core/error.hpp"
#include "core/experiment.hpp"
#include "core/growthbook.hpp"
#include "core/limits.hpp"
#include "glue/args.hpp"
#include "glue/attributes.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"
#include "glue/pg_regex.hpp"

namespace abtest::glue {
namespace {

// A jsonb argument as JSON; `fallback` when NULL.
Json JsonArg(FunctionCallInfo fcinfo, int n, const Json& fallback) {
  if (PG_ARGISNULL(n)) return fallback;
  Datum datum = PG_GETARG_DATUM(n);
  Jsonb* jsonb = PgCall([&] { return DatumGetJsonbP(datum); });
  return JsonFromJsonb(jsonb);
}

}  // namespace
}  // namespace abtest::glue

using namespace abtest;
using namespace abtest::glue;

// ab_force(experiment, user_id, branch): the user gets `branch` whatever else holds, and
// is not counted (for QA). Forcing again changes the branch.
ABTEST_SQL_FUNCTION(ab_force) {
  RequirePreloaded();
  std::string user = TextArg(fcinfo, 1, "user_id");
  ValidateUserId("user_id", user);
  std::string branch = TextArg(fcinfo, 2, "branch");
  Experiment experiment = catalog::LoadForUpdate(TextArg(fcinfo, 0, "experiment name"));
  experiment.RequireBranch(branch);
  catalog::Force(experiment, user, branch);
  PG_RETURN_VOID();
}

// ab_unforce(experiment, user_id): routes the user normally again; nothing to do when
// the user is not forced.
ABTEST_SQL_FUNCTION(ab_unforce) {
  RequirePreloaded();
  std::string user = TextArg(fcinfo, 1, "user_id");
  ValidateUserId("user_id", user);
  Experiment experiment = catalog::LoadForUpdate(TextArg(fcinfo, 0, "experiment name"));
  catalog::Unforce(experiment, user);
  PG_RETURN_VOID();
}

// ab_eval_condition(condition, attributes, saved_groups): exactly what GrowthBook's
// SDKs evaluate, including their leniency (an unknown operator is false). NULL
// attributes or saved groups count as empty; a NULL condition is refused.
ABTEST_SQL_FUNCTION(ab_eval_condition) {
  if (PG_ARGISNULL(0)) RefuseNull("condition");
  Json condition = JsonArg(fcinfo, 0, Json::object());
  Json attributes = JsonArg(fcinfo, 1, Json::object());
  Json saved_groups = JsonArg(fcinfo, 2, Json::object());
  PgRegexEngine regex;
  Condition compiled = Condition::Compile(condition, saved_groups, regex, ConditionMode::kLenient);
  JsonAttributes source(attributes);
  PG_RETURN_BOOL(compiled.Matches(source));
}

// ab_growthbook_hash(seed, value, version): GrowthBook's hash in [0, 1); NULL for a
// version other than 1 or 2.
ABTEST_SQL_FUNCTION(ab_growthbook_hash) {
  std::string_view seed = TextView(PG_GETARG_DATUM(0));
  std::string_view value = TextView(PG_GETARG_DATUM(1));
  int version = PG_GETARG_INT32(2);
  std::optional<double> hash = growthbook::Hash(seed, value, version);
  if (!hash) PG_RETURN_NULL();
  PG_RETURN_FLOAT8(*hash);
}

namespace abtest::glue {
namespace {

// A float8[] argument's elements in order (any shape); refuses NULL elements.
std::vector<double> Float8ArrayArg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n)) RefuseNull(what);
  Datum datum = PG_GETARG_DATUM(n);
  Datum* elements = nullptr;
  bool* nulls = nullptr;
  int count = 0;
  PgCall([&] {
    ArrayType* array = DatumGetArrayTypeP(datum);
    deconstruct_array(array, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elements, &nulls, &count);
  });
  std::vector<double> values;
  for (int i = 0; i < count; ++i) {
    if (nulls[i]) RefuseNull(what);
    values.push_back(DatumGetFloat8(elements[i]));
  }
  return values;
}

// {{start, end}, ...} from a float8[] of 2n elements (a 2-D array, or '{}').
std::vector<growthbook::Range> RangesArg(FunctionCallInfo fcinfo, int n) {
  std::vector<double> flat = Float8ArrayArg(fcinfo, n, "ranges");
  if (flat.size() % 2 != 0)
    throw Error(ErrorKind::kInvalidParameter, "ranges must be pairs {{start, end}, ...}",
                "It has " + std::to_string(flat.size()) + " elements.");
  std::vector<growthbook::Range> ranges;
  for (std::size_t i = 0; i < flat.size(); i += 2) ranges.emplace_back(flat[i], flat[i + 1]);
  return ranges;
}

// A float8[] of `values`, shaped rows x columns (columns 0: one dimension).
Datum Float8Array(const std::vector<double>& values, int columns) {
  int count = static_cast<int>(values.size());
  return PgCall([&] {
    Datum* datums = static_cast<Datum*>(palloc(sizeof(Datum) * static_cast<std::size_t>(count > 0 ? count : 1)));
    for (int i = 0; i < count; ++i) datums[i] = Float8GetDatum(values[static_cast<std::size_t>(i)]);
    if (count == 0) return PointerGetDatum(construct_empty_array(FLOAT8OID));
    int dims[2] = {columns > 0 ? count / columns : count, columns};
    int lower[2] = {1, 1};
    return PointerGetDatum(construct_md_array(datums, nullptr, columns > 0 ? 2 : 1, dims, lower, FLOAT8OID,
                                              sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  });
}

// More variations than any experiment can have branches would only build big arrays.
int VariationCount(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) RefuseNull("num_variations");
  int count = PG_GETARG_INT32(n);
  if (count > static_cast<int>(kMaxBranches))
    throw Error(ErrorKind::kProgramLimit, "num_variations must be at most " + std::to_string(kMaxBranches),
                "It is " + std::to_string(count) + ".");
  return count;
}

}  // namespace
}  // namespace abtest::glue

// ab_growthbook_bucket_ranges(num_variations, coverage, weights) -> {{start, end}, ...}
ABTEST_SQL_FUNCTION(ab_growthbook_bucket_ranges) {
  int count = VariationCount(fcinfo, 0);
  double coverage = Float8Arg(fcinfo, 1, "coverage");
  std::optional<std::vector<double>> weights;
  if (!PG_ARGISNULL(2)) weights = Float8ArrayArg(fcinfo, 2, "weights");
  std::vector<double> flat;
  for (const growthbook::Range& range : growthbook::BucketRanges(count, coverage, weights)) {
    flat.push_back(range.first);
    flat.push_back(range.second);
  }
  return Float8Array(flat, 2);
}

// ab_growthbook_choose_variation(n, ranges) -> the index of the first range holding n, or -1.
ABTEST_SQL_FUNCTION(ab_growthbook_choose_variation) {
  double n = Float8Arg(fcinfo, 0, "n");
  PG_RETURN_INT32(growthbook::ChooseVariation(n, RangesArg(fcinfo, 1)));
}

// ab_growthbook_in_namespace(hash_value, namespace, range_start, range_end) -> boolean
ABTEST_SQL_FUNCTION(ab_growthbook_in_namespace) {
  std::string value = TextArg(fcinfo, 0, "hash_value");
  std::string space = TextArg(fcinfo, 1, "namespace");
  double start = Float8Arg(fcinfo, 2, "range_start");
  double end = Float8Arg(fcinfo, 3, "range_end");
  PG_RETURN_BOOL(growthbook::InNamespace(value, space, start, end));
}

// ab_growthbook_equal_weights(n) -> n weights of 1/n ('{}' for n <= 0)
ABTEST_SQL_FUNCTION(ab_growthbook_equal_weights) {
  return Float8Array(growthbook::EqualWeights(VariationCount(fcinfo, 0)), 0);
}
