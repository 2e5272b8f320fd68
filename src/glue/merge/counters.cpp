#include "glue/merge/counters.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "core/error.hpp"
#include "core/limits.hpp"
#include "core/merge.hpp"
#include "glue/args.hpp"
#include "glue/guard.hpp"
#include "glue/outcomes/exposure_query.hpp"
#include "glue/outcomes/metric_catalog.hpp"
#include "glue/shmem/shared_state.hpp"

namespace abtest::glue::merge {
namespace {

using outcomes::Row;

// A column a source must have, with the base type it has in the export views.
struct Column {
  const char* name;
  Oid type;
};

// A kind of source: the export view it mirrors, and its columns.
struct Shape {
  const char* view;  // in schema abtest
  std::vector<Column> columns;
};

const Shape kBranchShape{"branch_metrics_export",
                         {{"experiment_id", UUIDOID},
                          {"branch", TEXTOID},
                          {"query_count", INT8OID},
                          {"success_count", INT8OID},
                          {"latency_sum", FLOAT8OID},
                          {"latency_mean", FLOAT8OID},
                          {"latency_m2", FLOAT8OID},
                          {"min_latency_ms", FLOAT8OID},
                          {"max_latency_ms", FLOAT8OID},
                          {"first_query", TIMESTAMPTZOID},
                          {"last_query", TIMESTAMPTZOID},
                          {"latency_histogram", INT8ARRAYOID},
                          {"exposures", INT8OID},
                          {"assigned_users", INT8OID}}};

const Shape kEventShape{"event_metrics_export",
                        {{"experiment_id", UUIDOID},
                         {"branch", TEXTOID},
                         {"event_name", TEXTOID},
                         {"count", INT8OID},
                         {"sum", FLOAT8OID},
                         {"mean", FLOAT8OID},
                         {"m2", FLOAT8OID}}};

// The sources argument: distinct relations that hold rows, with every column of the
// shape at its type. Returns their names as a query reads them.
std::vector<std::string> ResolveSources(FunctionCallInfo fcinfo, int argument, const Shape& shape) {
  std::vector<Oid> relations = RegclassArrayArg(fcinfo, argument, "sources");
  const std::string view = std::string("abtest.") + shape.view;
  const std::string hint = "On each primary, " + view + " has this shape; IMPORT FOREIGN SCHEMA abtest LIMIT TO (" +
                           shape.view +
                           ") FROM SERVER ... INTO ... creates a foreign table over it (README, \"More than one "
                           "server\").";
  if (relations.empty()) throw Error(ErrorKind::kInvalidParameter, "sources must name at least one table", {}, hint);
  if (relations.size() > static_cast<std::size_t>(kMaxSources))
    throw Error(
        ErrorKind::kProgramLimit,
        "too many sources: " + std::to_string(relations.size()) + " (at most " + std::to_string(kMaxSources) + ")", {},
        "Merge the exports of groups of primaries into tables first.");
  std::set<Oid> seen;
  std::vector<std::string> names;
  for (Oid relation : relations) {
    char kind = PgCall([&] { return get_rel_relkind(relation); });
    if (kind == '\0')
      throw Error(ErrorKind::kUndefinedTable, "source with OID " + std::to_string(relation) + " does not exist");
    std::string name = outcomes::RelationName(relation);
    if (kind != RELKIND_RELATION && kind != RELKIND_VIEW && kind != RELKIND_MATVIEW && kind != RELKIND_FOREIGN_TABLE &&
        kind != RELKIND_PARTITIONED_TABLE)
      throw Error(ErrorKind::kWrongObjectType, "source " + name + " is not a table, view or foreign table", {}, hint);
    if (!seen.insert(relation).second)
      throw Error(ErrorKind::kInvalidParameter, "source " + name + " is listed twice", {},
                  "Each source is read once: its counters would be counted twice.");
    for (const Column& column : shape.columns) {
      const char* column_name = column.name;
      AttrNumber number = PgCall([&] { return get_attnum(relation, column_name); });
      if (number <= 0)
        throw Error(ErrorKind::kUndefinedColumn,
                    "column " + Quoted(column.name) + " of source " + name + " does not exist", {}, hint);
      Oid type = PgCall([&] { return getBaseType(get_atttype(relation, number)); });
      if (type != column.type) {
        Oid wanted = column.type;
        std::string has = PgCall([&] { return format_type_be(type); });
        std::string needs = PgCall([&] { return format_type_be(wanted); });
        throw Error(ErrorKind::kDatatypeMismatch,
                    "column " + Quoted(column.name) + " of source " + name + " is of type " + has + ", not " + needs +
                        " as in " + view,
                    {}, hint);
      }
    }
    names.push_back(name);
  }
  return names;
}

// One statement over every source: the experiment's rows of each, with the source's
// 1-based position first. Timestamps as microseconds since 2000-01-01 (TimestampTz).
std::string SourcesQuery(const std::vector<std::string>& names, const char* select_list) {
  std::string sql;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) sql += " UNION ALL ";
    sql += "SELECT " + std::to_string(i + 1) + ", " + select_list + " FROM " + names[i] + " WHERE experiment_id = $1";
  }
  return sql;
}

// A timestamptz as PostgreSQL keeps it: microseconds since 2000-01-01, the extremes of
// a bigint for its infinities.
#define ABTEST_MICROSECONDS(column)                                               \
  "CASE WHEN " column " = 'infinity' THEN 9223372036854775807 WHEN " column       \
  " = '-infinity' THEN -9223372036854775807 - 1 ELSE (extract(epoch FROM " column \
  ") * 1000000)::int8 - "                                                         \
  "946684800000000 END"

constexpr const char* kBranchSelect =
    "branch, query_count, success_count, latency_sum, latency_mean, latency_m2, min_latency_ms, max_latency_ms, "
    ABTEST_MICROSECONDS("first_query") ", " ABTEST_MICROSECONDS("last_query") ", latency_histogram, exposures, "
    "assigned_users";

constexpr const char* kEventSelect = "branch, event_name, count, sum, mean, m2";

std::vector<Row> ReadSources(const std::vector<std::string>& names, const char* select_list,
                             const CompiledExperiment& experiment) {
  return outcomes::RunAsCaller(SourcesQuery(names, select_list),
                               {outcomes::QueryParam{UUIDOID, experiment.model().id}});
}

// A cell as PostgreSQL printed it. Numbers come from int8out and float8out (with
// extra_float_digits = 3, so they read back exactly); anything else is a bug.
std::int64_t Integer(const std::string& text) {
  errno = 0;
  char* end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0')
    throw Error(ErrorKind::kInternal, "abtest could not read the integer \"" + text + "\" of a source");
  return value;
}

double Float(const std::string& text) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);  // NaN and infinities too: the core refuses them
  if (end == text.c_str() || *end != '\0')
    throw Error(ErrorKind::kInternal, "abtest could not read the number \"" + text + "\" of a source");
  return value;
}

// The buckets of a bigint[] as array_out prints it: "{1,0,3}". A NULL bucket, more
// than one dimension or other bounds are no histogram of an export.
std::vector<std::int64_t> Buckets(const std::string& text, const RowOrigin& origin) {
  auto refuse = [&]() -> std::vector<std::int64_t> {
    throw Error(ErrorKind::kInvalidParameter,
                "source " + origin.source + " holds an impossible latency_histogram for branch " +
                    Quoted(origin.branch) + " of experiment " + Quoted(origin.experiment),
                "latency_histogram is " + text.substr(0, 100) + (text.size() > 100 ? "..." : "") + ".",
                "It is a one-dimensional array of counts, without NULL, as abtest.branch_metrics_export gives it.");
  };
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return refuse();
  std::vector<std::int64_t> buckets;
  std::size_t start = 1;
  while (start < text.size() - 1) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size() - 1;
    std::string element = text.substr(start, end - start);
    if (element.empty() || element.find_first_not_of("-0123456789") != std::string::npos) return refuse();
    buckets.push_back(Integer(element));
    start = end + 1;
  }
  return buckets;
}

// What a source's row of the experiment is about, and its branch's position.
struct Located {
  RowOrigin origin;
  int position;
};

Located Locate(const Row& row, const std::vector<std::string>& names, const CompiledExperiment& experiment) {
  Located located;
  located.origin.source = names.at(static_cast<std::size_t>(Integer(*row.at(0)) - 1));
  located.origin.experiment = experiment.name();
  if (!row.at(1))
    throw Error(ErrorKind::kNullValue, "source " + located.origin.source + " holds a row of experiment " +
                                           Quoted(experiment.name()) + " without a branch");
  located.origin.branch = *row[1];
  located.position = experiment.model().BranchIndex(located.origin.branch);
  if (located.position < 0)
    throw Error(ErrorKind::kUndefinedObject,
                "source " + located.origin.source + " holds counters of branch " + Quoted(located.origin.branch) +
                    ", which experiment " + Quoted(experiment.name()) + " does not have",
                {},
                "The experiment is defined differently on this server and on the primary the source reads: "
                "every primary must subscribe to the catalog of the control primary (README, \"More than one "
                "server\").");
  return located;
}

// The cell of a column that a server never leaves NULL.
const std::string& Required(const Row& row, std::size_t index, const char* column, const RowOrigin& origin) {
  if (!row.at(index))
    throw Error(ErrorKind::kNullValue, "source " + origin.source + " holds NULL as " + column + " for " +
                                           (origin.event.empty() ? "" : "event " + Quoted(origin.event) + " of ") +
                                           "branch " + Quoted(origin.branch) + " of experiment " +
                                           Quoted(origin.experiment));
  return *row[index];
}

std::optional<double> OptionalFloat(const std::optional<std::string>& cell) {
  return cell ? std::optional<double>(Float(*cell)) : std::nullopt;
}

std::optional<std::int64_t> OptionalInteger(const std::optional<std::string>& cell) {
  return cell ? std::optional<std::int64_t>(Integer(*cell)) : std::nullopt;
}

std::vector<metrics::BranchSnapshot> MergedBranches(FunctionCallInfo fcinfo, const CompiledExperiment& experiment,
                                                    int sources) {
  std::vector<std::string> names = ResolveSources(fcinfo, sources, kBranchShape);
  std::vector<MergedBranch> merged(experiment.model().branches.size());
  for (const Row& row : ReadSources(names, kBranchSelect, experiment)) {
    Located at = Locate(row, names, experiment);
    ExportedBranchRow exported;
    exported.query_count = Integer(Required(row, 2, "query_count", at.origin));
    exported.success_count = Integer(Required(row, 3, "success_count", at.origin));
    exported.latency_sum = Float(Required(row, 4, "latency_sum", at.origin));
    exported.latency_mean = Float(Required(row, 5, "latency_mean", at.origin));
    exported.latency_m2 = Float(Required(row, 6, "latency_m2", at.origin));
    exported.min_latency_ms = OptionalFloat(row.at(7));
    exported.max_latency_ms = OptionalFloat(row.at(8));
    exported.first_query = OptionalInteger(row.at(9));
    exported.last_query = OptionalInteger(row.at(10));
    exported.histogram = Buckets(Required(row, 11, "latency_histogram", at.origin), at.origin);
    exported.exposures = Integer(Required(row, 12, "exposures", at.origin));
    exported.assigned_users = Integer(Required(row, 13, "assigned_users", at.origin));
    MergeBranchRow(merged[static_cast<std::size_t>(at.position)], exported, at.origin);
  }

  std::vector<metrics::BranchSnapshot> snapshots(merged.size());
  pg_uuid_t id = UuidFromText(experiment.model().id);
  for (std::size_t i = 0; i < merged.size(); ++i) {
    metrics::BranchSnapshot& snapshot = snapshots[i];
    snapshot.experiment = id;
    snapshot.position = static_cast<int>(i);
    snapshot.queries = merged[i].queries;
    snapshot.exposures = merged[i].exposures;
    snapshot.assigned_users = merged[i].assigned_users;
    snapshot.sequential_p = 1;
    std::copy(merged[i].histogram.begin(), merged[i].histogram.end(), snapshot.histogram);
  }
  return snapshots;
}

std::vector<metrics::EventSnapshot> MergedEvents(FunctionCallInfo fcinfo, const CompiledExperiment& experiment,
                                                 int sources) {
  std::vector<std::string> names = ResolveSources(fcinfo, sources, kEventShape);
  std::map<std::pair<int, std::string>, RunningMoments> merged;
  for (const Row& row : ReadSources(names, kEventSelect, experiment)) {
    Located at = Locate(row, names, experiment);
    at.origin.event = Required(row, 2, "event_name", at.origin);
    if (at.origin.event.empty() || at.origin.event.size() > kMaxEventNameBytes)
      throw Error(ErrorKind::kInvalidParameter,
                  "source " + at.origin.source + " holds an event name of " + std::to_string(at.origin.event.size()) +
                      " bytes for branch " + Quoted(at.origin.branch) + " of experiment " + Quoted(experiment.name()),
                  "Event names have 1 to " + std::to_string(kMaxEventNameBytes) + " bytes.");
    ExportedEventRow exported;
    exported.count = Integer(Required(row, 3, "count", at.origin));
    exported.sum = Float(Required(row, 4, "sum", at.origin));
    exported.mean = Float(Required(row, 5, "mean", at.origin));
    exported.m2 = Float(Required(row, 6, "m2", at.origin));
    MergeEventRow(merged[{at.position, at.origin.event}], exported, at.origin);
  }

  std::vector<metrics::EventSnapshot> snapshots;
  pg_uuid_t id = UuidFromText(experiment.model().id);
  for (const auto& [key, moments] : merged) {
    metrics::EventSnapshot snapshot{};
    snapshot.experiment = id;
    snapshot.position = key.first;
    memcpy(snapshot.name, key.second.data(), key.second.size());
    snapshot.moments = moments;
    snapshots.push_back(snapshot);
  }
  return snapshots;
}

}  // namespace

std::vector<metrics::BranchSnapshot> Branches(FunctionCallInfo fcinfo, const CompiledExperiment& experiment,
                                              int sources) {
  if (HasSources(fcinfo, sources)) return MergedBranches(fcinfo, experiment, sources);
  return metrics::ReadBranches(experiment);
}

std::vector<metrics::EventSnapshot> Events(FunctionCallInfo fcinfo, const CompiledExperiment& experiment, int sources) {
  if (HasSources(fcinfo, sources)) return MergedEvents(fcinfo, experiment, sources);
  pg_uuid_t id = UuidFromText(experiment.model().id);
  return metrics::ReadEvents(&id);
}

}  // namespace abtest::glue::merge
