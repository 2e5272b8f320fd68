// SQL-callable metrics: recording (ab_record_query, ab_record_event: the hot path,
// no SPI, no catalog access) and reading (ab_branch_metrics, ab_event_metrics,
// ab_summary, ab_all_summaries, ab_stats; the exports another server merges), and
// clearing.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "core/latency_histogram.hpp"
#include "core/limits.hpp"
#include "core/metrics.hpp"
#include "glue/args.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/experiment_arg.hpp"
#include "glue/catalog/experiment_cache.hpp"
#include "glue/guard.hpp"
#include "glue/merge/counters.hpp"
#include "glue/worker/metrics_persistence.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/result_set.hpp"
#include "glue/shmem/shared_state.hpp"

namespace abtest::glue {
namespace {

Datum Int64Datum(std::uint64_t value) { return Int64GetDatum(static_cast<std::int64_t>(value)); }

// What ab_summary says about an experiment's branches.
struct Summary {
  std::uint64_t total_queries = 0;
  int best = -1;  // the branch with the highest success rate, the first on a tie
  double best_rate = 0;
  double latency_sum = 0;
  std::int64_t first_query = 0;
};

Summary Summarize(const std::vector<metrics::BranchSnapshot>& branches) {
  Summary summary;
  for (std::size_t i = 0; i < branches.size(); ++i) {
    const QueryCounters& q = branches[i].queries;
    if (q.queries() == 0) continue;
    if (summary.total_queries == 0 || q.first_query < summary.first_query) summary.first_query = q.first_query;
    summary.total_queries += q.queries();
    summary.latency_sum += q.latency.sum;
    if (summary.best < 0 || q.SuccessRate() > summary.best_rate) {
      summary.best = static_cast<int>(i);
      summary.best_rate = q.SuccessRate();
    }
  }
  return summary;
}

// One row of ab_summary / ab_all_summaries.
void AddSummaryRow(ResultSet& rows, const CompiledExperiment& experiment, const Summary& summary) {
  Datum values[7];
  bool nulls[7] = {false, false, false, false, false, false, false};
  values[0] = TextDatum(experiment.name());
  values[1] = Int32GetDatum(static_cast<int>(experiment.model().branches.size()));
  values[2] = Int64Datum(summary.total_queries);
  if (summary.best >= 0)
    values[3] = TextDatum(experiment.branch(summary.best));
  else
    nulls[3] = true;
  values[4] = Float8GetDatum(summary.best_rate);
  values[5] = Float8GetDatum(summary.total_queries == 0 ? 0.0
                                                        : summary.latency_sum / static_cast<double>(summary.total_queries));
  if (summary.total_queries > 0) {
    TimestampTz first = summary.first_query;
    values[6] = PgCall([&] {
      return DirectFunctionCall2(timestamp_mi, TimestampTzGetDatum(GetCurrentTimestamp()), TimestampTzGetDatum(first));
    });
  } else {
    nulls[6] = true;
  }
  rows.Add(values, nulls);
}

pg_uuid_t ExperimentId(const CompiledExperiment& experiment) { return UuidFromText(experiment.model().id); }

// A latency histogram as bigint[], up to its last bucket that is not 0 (as
// abtest.branch_metrics keeps it).
Datum HistogramDatum(const std::uint64_t* histogram) {
  int count = kLatencyBuckets;
  while (count > 0 && histogram[count - 1] == 0) --count;
  Datum buckets[kLatencyBuckets];
  for (int i = 0; i < count; ++i) buckets[i] = Int64Datum(histogram[i]);
  return PgCall([&] { return PointerGetDatum(construct_array(buckets, count, INT8OID, 8, true, TYPALIGN_DOUBLE)); });
}

}  // namespace
}  // namespace abtest::glue

using namespace abtest;
using namespace abtest::glue;

// ab_record_query(experiment, branch, latency_ms, success)
ABTEST_SQL_FUNCTION(ab_record_query) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  int position = RequireBranch(fcinfo, experiment, 1);
  double latency_ms = Float8Arg(fcinfo, 2, "latency_ms");
  if (PG_ARGISNULL(3)) RefuseNull("success");
  bool success = PG_GETARG_BOOL(3);
  if (!(latency_ms >= 0 && latency_ms <= kMaxLatencyMs))  // NaN too
    ValidateLatency(latency_ms, experiment.name(), experiment.branch(position));
  metrics::RecordQuery(experiment, position, latency_ms, success);
  PG_RETURN_VOID();
}

// ab_record_event(experiment, branch, event_name, value DEFAULT 1)
ABTEST_SQL_FUNCTION(ab_record_event) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  int position = RequireBranch(fcinfo, experiment, 1);
  if (PG_ARGISNULL(2)) RefuseNull("event_name");
  std::string_view event_name = TextView(PG_GETARG_DATUM(2));
  double value = Float8Arg(fcinfo, 3, "value");
  if (!(std::fabs(value) <= kMaxEventValue)) ValidateEventValue(value, experiment.name(), experiment.branch(position));
  metrics::RecordEvent(experiment, position, event_name, value);
  PG_RETURN_VOID();
}

// One row per branch, in branch order; zeros for a branch without data. The last
// column, latency_sum_ms, came with 1.4: the rows of an older catalog take the first
// sixteen values (the tuplestore reads as many as its descriptor has columns).
// With sources, of their counters merged (merge/counters.hpp).
ABTEST_SQL_FUNCTION(ab_branch_metrics) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  std::vector<metrics::BranchSnapshot> branches = merge::Branches(fcinfo, experiment, 1);
  ResultSet rows(fcinfo);
  constexpr int kColumns = 17;
  for (std::size_t i = 0; i < branches.size(); ++i) {
    const metrics::BranchSnapshot& branch = branches[i];
    const QueryCounters& q = branch.queries;
    bool any = q.queries() > 0;
    double min = any ? q.min_latency_ms : 0, max = any ? q.max_latency_ms : 0;
    Datum values[kColumns];
    bool nulls[kColumns] = {};
    values[0] = TextDatum(experiment.branch(static_cast<int>(i)));
    values[1] = Int64Datum(q.queries());
    values[2] = Int64Datum(q.successes);
    values[3] = Int64Datum(q.failures());
    values[4] = Float8GetDatum(q.SuccessRate());
    values[5] = Float8GetDatum(q.ErrorRate());
    values[6] = Float8GetDatum(q.AverageLatency());
    values[7] = Float8GetDatum(min);
    values[8] = Float8GetDatum(max);
    values[9] = Float8GetDatum(LatencyQuantile(branch.histogram, q.queries(), 0.50, min, max));
    values[10] = Float8GetDatum(LatencyQuantile(branch.histogram, q.queries(), 0.95, min, max));
    values[11] = Float8GetDatum(LatencyQuantile(branch.histogram, q.queries(), 0.99, min, max));
    values[12] = TimestampTzGetDatum(q.first_query);
    values[13] = TimestampTzGetDatum(q.last_query);
    nulls[12] = nulls[13] = !any;
    values[14] = Int64Datum(branch.exposures);
    values[15] = Int64Datum(branch.assigned_users);
    values[16] = Float8GetDatum(q.latency.sum);
    rows.Add(values, nulls);
  }
  return static_cast<Datum>(0);
}

// One row per branch and event name, in branch order, then by name. With sources, of
// their counters merged.
ABTEST_SQL_FUNCTION(ab_event_metrics) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  std::vector<metrics::EventSnapshot> events = merge::Events(fcinfo, experiment, 1);
  std::sort(events.begin(), events.end(), [](const metrics::EventSnapshot& a, const metrics::EventSnapshot& b) {
    return a.position != b.position ? a.position < b.position : std::strcmp(a.name, b.name) < 0;
  });
  ResultSet rows(fcinfo);
  for (const metrics::EventSnapshot& event : events) {
    if (event.position >= static_cast<int>(experiment.model().branches.size())) continue;
    Datum values[6];
    bool nulls[6] = {};
    std::optional<double> stddev = event.moments.StandardDeviation();
    values[0] = TextDatum(experiment.branch(event.position));
    values[1] = TextDatum(event.name);
    values[2] = Int64Datum(event.moments.count);
    values[3] = Float8GetDatum(event.moments.sum);
    values[4] = Float8GetDatum(event.moments.mean);
    values[5] = Float8GetDatum(stddev.value_or(0));
    nulls[5] = !stddev.has_value();
    rows.Add(values, nulls);
  }
  return static_cast<Datum>(0);
}

ABTEST_SQL_FUNCTION(ab_summary) {
  RequirePreloaded();
  const CompiledExperiment& experiment = RequireExperiment(fcinfo, 0);
  Summary summary = Summarize(merge::Branches(fcinfo, experiment, 1));
  ResultSet rows(fcinfo);
  AddSummaryRow(rows, experiment, summary);
  return static_cast<Datum>(0);
}

// ab_summary of every experiment that has recorded queries, by name.
ABTEST_SQL_FUNCTION(ab_all_summaries) {
  RequirePreloaded();
  std::vector<const CompiledExperiment*> experiments = experiment_cache::All();
  ResultSet rows(fcinfo);
  for (const CompiledExperiment* experiment : experiments) {
    Summary summary = Summarize(metrics::ReadBranches(*experiment));
    if (summary.total_queries > 0) AddSummaryRow(rows, *experiment, summary);
  }
  return static_cast<Datum>(0);
}

// The catalog's size and how much of it has metrics, in this database.
ABTEST_SQL_FUNCTION(ab_stats) {
  RequirePreloaded();
  std::vector<const CompiledExperiment*> experiments = experiment_cache::All();
  int active = 0, branch_total = 0, tracked = 0, branches_tracked = 0;
  std::uint64_t queries = 0;
  for (const CompiledExperiment* experiment : experiments) {
    if (experiment->model().state == State::kActive) ++active;
    branch_total += static_cast<int>(experiment->model().branches.size());
    std::vector<metrics::BranchSnapshot> branches = metrics::ReadBranches(*experiment);
    pg_uuid_t id = ExperimentId(*experiment);
    std::vector<metrics::EventSnapshot> events = metrics::ReadEvents(&id);
    int with_data = 0;
    for (std::size_t i = 0; i < branches.size(); ++i) {
      queries += branches[i].queries.queries();
      bool has_events = std::any_of(events.begin(), events.end(), [&](const metrics::EventSnapshot& event) {
        return event.position == static_cast<int>(i);
      });
      if (branches[i].queries.queries() > 0 || has_events) ++with_data;
    }
    branches_tracked += with_data;
    if (with_data > 0) ++tracked;
  }
  ResultSet rows(fcinfo);
  Datum values[6] = {Int32GetDatum(static_cast<int>(experiments.size())), Int32GetDatum(active),
                     Int32GetDatum(branch_total),                         Int32GetDatum(tracked),
                     Int32GetDatum(branches_tracked),                     Int64Datum(queries)};
  bool nulls[6] = {};
  rows.Add(values, nulls);
  return static_cast<Datum>(0);
}

// Every branch of every experiment of this database with its mergeable counters, live:
// abtest.branch_metrics_export, which another server reads as a source (merge/counters.hpp).
// The columns of abtest.branch_metrics, in its order, after the experiment's name.
ABTEST_SQL_FUNCTION(ab_export_branch_metrics) {
  RequirePreloaded();
  std::vector<const CompiledExperiment*> experiments = experiment_cache::All();
  ResultSet rows(fcinfo);
  constexpr int kColumns = 15;
  for (const CompiledExperiment* experiment : experiments) {
    pg_uuid_t id = ExperimentId(*experiment);
    std::vector<metrics::BranchSnapshot> branches = metrics::ReadBranches(*experiment);
    for (std::size_t i = 0; i < branches.size(); ++i) {
      const QueryCounters& q = branches[i].queries;
      Datum values[kColumns];
      bool nulls[kColumns] = {};
      values[0] = UUIDPGetDatum(&id);
      values[1] = TextDatum(experiment->name());
      values[2] = TextDatum(experiment->branch(static_cast<int>(i)));
      values[3] = Int64Datum(q.queries());
      values[4] = Int64Datum(q.successes);
      values[5] = Float8GetDatum(q.latency.sum);
      values[6] = Float8GetDatum(q.latency.mean);
      values[7] = Float8GetDatum(q.latency.m2);
      values[8] = Float8GetDatum(q.min_latency_ms);
      values[9] = Float8GetDatum(q.max_latency_ms);
      values[10] = TimestampTzGetDatum(q.first_query);
      values[11] = TimestampTzGetDatum(q.last_query);
      nulls[8] = nulls[9] = nulls[10] = nulls[11] = q.queries() == 0;
      values[12] = HistogramDatum(branches[i].histogram);
      values[13] = Int64Datum(branches[i].exposures);
      values[14] = Int64Datum(branches[i].assigned_users);
      rows.Add(values, nulls);
    }
  }
  return static_cast<Datum>(0);
}

// Every event of every experiment of this database: abtest.event_metrics_export.
ABTEST_SQL_FUNCTION(ab_export_event_metrics) {
  RequirePreloaded();
  std::vector<const CompiledExperiment*> experiments = experiment_cache::All();
  std::vector<metrics::EventSnapshot> events = metrics::ReadEvents(nullptr);
  std::sort(events.begin(), events.end(), [](const metrics::EventSnapshot& a, const metrics::EventSnapshot& b) {
    return a.position != b.position ? a.position < b.position : std::strcmp(a.name, b.name) < 0;
  });
  ResultSet rows(fcinfo);
  constexpr int kColumns = 8;
  for (const CompiledExperiment* experiment : experiments) {
    pg_uuid_t id = ExperimentId(*experiment);
    for (const metrics::EventSnapshot& event : events) {
      if (memcmp(&event.experiment, &id, sizeof id) != 0) continue;
      if (event.position >= static_cast<int>(experiment->model().branches.size())) continue;
      Datum values[kColumns];
      bool nulls[kColumns] = {};
      values[0] = UUIDPGetDatum(&id);
      values[1] = TextDatum(experiment->name());
      values[2] = TextDatum(experiment->branch(event.position));
      values[3] = TextDatum(event.name);
      values[4] = Int64Datum(event.moments.count);
      values[5] = Float8GetDatum(event.moments.sum);
      values[6] = Float8GetDatum(event.moments.mean);
      values[7] = Float8GetDatum(event.moments.m2);
      rows.Add(values, nulls);
    }
  }
  return static_cast<Datum>(0);
}

// Clears take effect at commit, in shared memory and in the tables alike.
ABTEST_SQL_FUNCTION(ab_clear_metrics) {
  RequirePreloaded();
  Experiment experiment = catalog::LoadForUpdate(TextArg(fcinfo, 0, "experiment name"));
  metrics::LockForClear();
  metrics::DeletePersisted(experiment.id);
  pg_uuid_t id = UuidFromText(experiment.id);
  metrics::ClearAtCommit(&id);
  PG_RETURN_VOID();
}

ABTEST_SQL_FUNCTION(ab_clear_all_metrics) {
  RequirePreloaded();
  metrics::LockForClear();
  metrics::DeletePersisted("");
  metrics::ClearAtCommit(nullptr);
  PG_RETURN_VOID();
}
