#include "core/merge.hpp"

#include <cmath>
#include <limits>
#include <utility>

#include "core/error.hpp"
#include "core/limits.hpp"

namespace abtest {
namespace {

constexpr std::int64_t kMaxTotal = std::numeric_limits<std::int64_t>::max();  // a bigint
// Means and sums a server computed from values within the bounds may round past them by
// a few units in the last place: the upper bounds forgive that much.
constexpr double kSlack = 1 + 1e-12;

std::string Where(const RowOrigin& origin) {
  std::string where = "branch " + Quoted(origin.branch) + " of experiment " + Quoted(origin.experiment);
  return origin.event.empty() ? where : "event " + Quoted(origin.event) + " of " + where;
}

[[noreturn]] void Refuse(const RowOrigin& origin, const std::string& column, const std::string& what) {
  throw Error(ErrorKind::kInvalidParameter,
              "source " + origin.source + " holds an impossible " + column + " for " + Where(origin),
              column + " is " + what + ".",
              "A source holds what abtest.branch_metrics_export or abtest.event_metrics_export gives on a primary; "
              "check what wrote this row.");
}

void RequireCount(std::int64_t value, const RowOrigin& origin, const char* column) {
  if (value < 0) Refuse(origin, column, std::to_string(value) + ", a count below 0");
}

// A number of the row that must be finite and within [low, high] (up to kSlack).
void RequireWithin(double value, double low, double high, const RowOrigin& origin, const char* column) {
  const double slack = kSlack - 1;
  if (!(value >= low - std::fabs(low) * slack && value <= high + std::fabs(high) * slack))  // NaN too
    Refuse(origin, column, FormatValue(value) + ", outside [" + FormatValue(low) + ", " + FormatValue(high) + "]");
}

// Without values a row's sums are 0: anything else was not exported by a server.
void RequireZero(double value, const RowOrigin& origin, const char* column, const char* count_column) {
  if (value != 0) Refuse(origin, column, FormatValue(value) + " with " + count_column + " 0");
}

// total + more, refused beyond a bigint (the SQL functions return bigint counts).
std::uint64_t Add(std::uint64_t total, std::int64_t more, const RowOrigin& origin, const char* column) {
  if (static_cast<std::uint64_t>(more) > static_cast<std::uint64_t>(kMaxTotal) - total)
    throw Error(ErrorKind::kOutOfRange,
                "the sources' " + std::string(column) + " for " + Where(origin) + " add up to more than a bigint holds",
                "The last one added was in source " + origin.source + ".",
                "Check that no source is listed twice or holds the rows of another.");
  return total + static_cast<std::uint64_t>(more);
}

}  // namespace

void MergeBranchRow(MergedBranch& into, const ExportedBranchRow& row, const RowOrigin& origin) {
  RequireCount(row.query_count, origin, "query_count");
  RequireCount(row.exposures, origin, "exposures");
  RequireCount(row.assigned_users, origin, "assigned_users");
  if (row.success_count < 0 || row.success_count > row.query_count)
    Refuse(origin, "success_count",
           std::to_string(row.success_count) + ", outside [0, query_count = " + std::to_string(row.query_count) + "]");
  if (row.histogram.size() > static_cast<std::size_t>(kLatencyBuckets))
    Refuse(origin, "latency_histogram",
           "an array of " + std::to_string(row.histogram.size()) + " buckets, more than the " +
               std::to_string(kLatencyBuckets) + " of this version");
  std::int64_t counted = 0;
  for (std::int64_t bucket : row.histogram) {
    RequireCount(bucket, origin, "latency_histogram");
    if (bucket > row.query_count - counted)
      Refuse(origin, "latency_histogram",
             "a histogram of more than query_count = " + std::to_string(row.query_count) + " latencies");
    counted += bucket;
  }
  if (counted != row.query_count)
    Refuse(origin, "latency_histogram",
           "a histogram of " + std::to_string(counted) +
               " latencies for query_count = " + std::to_string(row.query_count));

  QueryCounters queries;
  if (row.query_count == 0) {
    RequireZero(row.latency_sum, origin, "latency_sum", "query_count");
    RequireZero(row.latency_mean, origin, "latency_mean", "query_count");
    RequireZero(row.latency_m2, origin, "latency_m2", "query_count");
  } else {
    const double n = static_cast<double>(row.query_count);
    if (!row.min_latency_ms || !row.max_latency_ms || !row.first_query || !row.last_query)
      Refuse(origin,
             !row.min_latency_ms   ? "min_latency_ms"
             : !row.max_latency_ms ? "max_latency_ms"
             : !row.first_query    ? "first_query"
                                   : "last_query",
             "NULL with query_count = " + std::to_string(row.query_count));
    RequireWithin(*row.min_latency_ms, 0, kMaxLatencyMs, origin, "min_latency_ms");
    RequireWithin(*row.max_latency_ms, *row.min_latency_ms, kMaxLatencyMs, origin, "max_latency_ms");
    for (const auto& [time, column] :
         {std::pair{*row.first_query, "first_query"}, std::pair{*row.last_query, "last_query"}})
      if (time == std::numeric_limits<std::int64_t>::max() || time == std::numeric_limits<std::int64_t>::min())
        Refuse(origin, column, time > 0 ? "infinity" : "-infinity");
    if (*row.last_query < *row.first_query) Refuse(origin, "last_query", "before first_query");
    RequireWithin(row.latency_mean, 0, kMaxLatencyMs, origin, "latency_mean");
    RequireWithin(row.latency_sum, 0, n * kMaxLatencyMs, origin, "latency_sum");
    // No variance of values within [0, max] exceeds max^2: the merged sums stay finite.
    RequireWithin(row.latency_m2, 0, n * kMaxLatencyMs * kMaxLatencyMs, origin, "latency_m2");
    queries.successes = static_cast<std::uint64_t>(row.success_count);
    queries.latency.count = static_cast<std::uint64_t>(row.query_count);
    queries.latency.sum = row.latency_sum;
    queries.latency.mean = row.latency_mean;
    queries.latency.m2 = row.latency_m2;
    queries.min_latency_ms = *row.min_latency_ms;
    queries.max_latency_ms = *row.max_latency_ms;
    queries.first_query = *row.first_query;
    queries.last_query = *row.last_query;
  }

  // Every total is checked before any is changed.
  Add(into.queries.queries(), row.query_count, origin, "query_count");
  std::uint64_t exposures = Add(into.exposures, row.exposures, origin, "exposures");
  std::uint64_t assigned_users = Add(into.assigned_users, row.assigned_users, origin, "assigned_users");
  into.queries.Merge(queries);
  for (std::size_t i = 0; i < row.histogram.size(); ++i)
    into.histogram[i] += static_cast<std::uint64_t>(row.histogram[i]);
  into.exposures = exposures;
  into.assigned_users = assigned_users;
}

void MergeEventRow(RunningMoments& into, const ExportedEventRow& row, const RowOrigin& origin) {
  RequireCount(row.count, origin, "count");
  if (row.count == 0) {
    RequireZero(row.sum, origin, "sum", "count");
    RequireZero(row.mean, origin, "mean", "count");
    RequireZero(row.m2, origin, "m2", "count");
    return;
  }
  const double n = static_cast<double>(row.count);
  RequireWithin(row.mean, -kMaxEventValue, kMaxEventValue, origin, "mean");
  RequireWithin(row.sum, -n * kMaxEventValue, n * kMaxEventValue, origin, "sum");
  RequireWithin(row.m2, 0, n * (2 * kMaxEventValue) * (2 * kMaxEventValue), origin, "m2");
  Add(into.count, row.count, origin, "count");
  RunningMoments moments;
  moments.count = static_cast<std::uint64_t>(row.count);
  moments.sum = row.sum;
  moments.mean = row.mean;
  moments.m2 = row.m2;
  into.Merge(moments);
}

}  // namespace abtest
