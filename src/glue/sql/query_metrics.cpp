// SQL-callable per-query metrics of database branches (catalog 1.4): ab_query_metrics,
// ab_compare_queries and ab_query_metrics_stats. The counters are the query store's
// (glue/shmem/query_metrics.hpp), the statistics the core's (core/query_latency.hpp,
// CompareQueryLatencies in core/comparison.hpp); this file shapes the rows.

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "core/comparison.hpp"
#include "core/error.hpp"
#include "core/query_latency.hpp"
#include "glue/args.hpp"
#include "glue/experiment_arg.hpp"
#include "glue/guard.hpp"
#include "glue/result_set.hpp"
#include "glue/shmem/query_metrics.hpp"
#include "glue/shmem/shared_state.hpp"
#include "glue/sql/analysis.hpp"

namespace abtest::glue {
namespace {

using query_metrics::QuerySnapshot;

Datum Int64Datum(std::uint64_t value) { return Int64GetDatum(static_cast<std::int64_t>(value)); }

// The statement text, or NULL when none was recorded (an entry seen only by the abort path).
void SetQueryText(Datum* values, bool* nulls, int column, const QuerySnapshot& entry) {
  nulls[column] = entry.query_len == 0;
  if (entry.query_len > 0)
    values[column] = PgCall([&] { return PointerGetDatum(cstring_to_text_with_len(entry.query, entry.query_len)); });
}

// The experiment's entries in this database.
std::vector<QuerySnapshot> EntriesOf(const CompiledExperiment& experiment) {
  return query_metrics::Read(UuidFromText(experiment.model().id));
}

}  // namespace
}  // namespace abtest::glue

using namespace abtest;
using namespace abtest::glue;

// One row per branch and query id: in branch order, the most called first.
ABTEST_SQL_FUNCTION(ab_query_metrics) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  std::vector<QuerySnapshot> entries = EntriesOf(experiment);
  std::sort(entries.begin(), entries.end(), [](const QuerySnapshot& a, const QuerySnapshot& b) {
    if (a.position != b.position) return a.position < b.position;
    if (a.latency.calls() != b.latency.calls()) return a.latency.calls() > b.latency.calls();
    return a.queryid < b.queryid;
  });
  const int branches = static_cast<int>(experiment.model().branches.size());
  ResultSet rows(fcinfo);
  constexpr int kColumns = 10;
  for (const QuerySnapshot& entry : entries) {
    if (entry.position >= branches) continue;
    const QueryLatency& q = entry.latency;
    Datum values[kColumns];
    bool nulls[kColumns] = {};
    values[0] = TextDatum(experiment.branch(entry.position));
    values[1] = Int64Datum(entry.queryid);
    SetQueryText(values, nulls, 2, entry);
    values[3] = Int64Datum(q.calls());
    values[4] = Int64Datum(q.failures);
    SetNullableFloat8(values, nulls, 5, q.Mean());
    SetNullableFloat8(values, nulls, 6, q.StandardDeviation());
    SetNullableFloat8(values, nulls, 7, q.Quantile(0.50));
    SetNullableFloat8(values, nulls, 8, q.Quantile(0.95));
    SetNullableFloat8(values, nulls, 9, q.Quantile(0.99));
    rows.Add(values, nulls);
  }
  return static_cast<Datum>(0);
}

// branch_b against branch_a, per query id recorded in both: the most called first.
ABTEST_SQL_FUNCTION(ab_compare_queries) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  int a = RequireBranch(fcinfo, experiment, 1);
  int b = RequireBranch(fcinfo, experiment, 2);
  RequireDistinctBranches(
      experiment.name(), experiment.branch(a), experiment.branch(b),
      "Name two different branches; ab_query_metrics('" + experiment.name() + "') shows every branch's queries.");
  std::vector<QuerySnapshot> entries = EntriesOf(experiment);
  std::map<std::uint64_t, std::pair<const QuerySnapshot*, const QuerySnapshot*>> by_queryid;
  for (const QuerySnapshot& entry : entries) {
    if (entry.position == a) by_queryid[entry.queryid].first = &entry;
    if (entry.position == b) by_queryid[entry.queryid].second = &entry;
  }
  std::vector<std::pair<const QuerySnapshot*, const QuerySnapshot*>> pairs;
  for (const auto& [queryid, pair] : by_queryid)
    if (pair.first != nullptr && pair.second != nullptr) pairs.push_back(pair);
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& x, const auto& y) {
    return x.first->latency.calls() + x.second->latency.calls() > y.first->latency.calls() + y.second->latency.calls();
  });
  std::vector<std::pair<RunningMoments, RunningMoments>> log_latencies;
  for (const auto& [entry_a, entry_b] : pairs)
    log_latencies.emplace_back(entry_a->latency.log_latency, entry_b->latency.log_latency);
  std::vector<QueryLatencyComparison> comparisons = CompareQueryLatencies(log_latencies, SettingsOf(experiment));

  ResultSet rows(fcinfo);
  constexpr int kColumns = 12;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const QuerySnapshot& entry_a = *pairs[i].first;
    const QuerySnapshot& entry_b = *pairs[i].second;
    const QueryLatencyComparison& c = comparisons[i];
    Datum values[kColumns];
    bool nulls[kColumns] = {};
    values[0] = Int64Datum(entry_a.queryid);
    SetQueryText(values, nulls, 1, entry_a.query_len > 0 ? entry_a : entry_b);
    values[2] = Int64Datum(entry_a.latency.calls());
    values[3] = Int64Datum(entry_b.latency.calls());
    SetNullableFloat8(values, nulls, 4, entry_a.latency.Mean());
    SetNullableFloat8(values, nulls, 5, entry_b.latency.Mean());
    SetNullableFloat8(values, nulls, 6, entry_a.latency.Quantile(0.95));
    SetNullableFloat8(values, nulls, 7, entry_b.latency.Quantile(0.95));
    SetNullableFloat8(values, nulls, 8, c.relative_change);
    SetNullableFloat8(values, nulls, 9, c.p_value);
    SetNullableFloat8(values, nulls, 10, c.adjusted_p_value);
    values[11] = BoolGetDatum(c.is_significant);
    rows.Add(values, nulls);
  }
  return static_cast<Datum>(0);
}

// How full the query store is, and what eviction took.
ABTEST_SQL_FUNCTION(ab_query_metrics_stats) {
  RequirePreloaded();
  TupleDesc descriptor;
  if (get_call_result_type(fcinfo, nullptr, &descriptor) != TYPEFUNC_COMPOSITE)
    throw Error(ErrorKind::kInternal, "ab_query_metrics_stats must return a row");
  query_metrics::Stats stats = query_metrics::ReadStats();
  Datum values[6] = {Int64GetDatum(stats.entries_here),
                     Int64GetDatum(stats.entries),
                     Int64GetDatum(query_metrics::max_tracked_queries),
                     Int64GetDatum(stats.evicted),
                     Int64GetDatum(stats.evictions),
                     Int64GetDatum(stats.dropped)};
  bool nulls[6] = {};
  return PgCall([&] { return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(descriptor), values, nulls)); });
}
