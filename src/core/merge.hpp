// Counters of several servers combined into one: what an analysis across primaries
// (ab_compare(..., sources) and the others with a sources argument) runs on.
//
// Each primary exports its per-branch counters (abtest.branch_metrics_export and
// abtest.event_metrics_export). They are sufficient statistics, so merging them gives
// what one server that had recorded everything would hold: counts and histogram
// buckets add up, means and sums of squared deviations combine with Chan's formula
// (RunningMoments::Merge), minima, maxima and times as such. The analysis then runs on
// the merged counters with the same code as on one server's.
//
// A source is any table of that shape (a foreign table, a snapshot, a view), so a row
// is checked before it is merged: within the bounds of what recording accepts, its
// parts consistent (the histogram counts the queries), its totals within a bigint.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/latency_histogram.hpp"
#include "core/metrics.hpp"

namespace abtest {

// One row of abtest.branch_metrics_export as a source holds it (counts signed, as in SQL).
struct ExportedBranchRow {
  std::int64_t query_count = 0;
  std::int64_t success_count = 0;
  double latency_sum = 0;
  double latency_mean = 0;
  double latency_m2 = 0;
  std::optional<double> min_latency_ms;  // NULL without queries
  std::optional<double> max_latency_ms;
  // Microseconds, as QueryCounters keeps them; the extremes of int64 stand for the
  // infinities (as in PostgreSQL), which no server records.
  std::optional<std::int64_t> first_query;
  std::optional<std::int64_t> last_query;
  std::vector<std::int64_t> histogram;  // the first buckets; the ones left out are 0
  std::int64_t exposures = 0;
  std::int64_t assigned_users = 0;
};

// One row of abtest.event_metrics_export.
struct ExportedEventRow {
  std::int64_t count = 0;
  double sum = 0;
  double mean = 0;
  double m2 = 0;
};

// A branch's counters merged over every row of every source.
struct MergedBranch {
  QueryCounters queries;
  std::array<std::uint64_t, kLatencyBuckets> histogram{};
  std::uint64_t exposures = 0;
  std::uint64_t assigned_users = 0;
};

// Where a row comes from, for the refusals: the source as PostgreSQL names it, the
// experiment and the branch (and the event, for event rows).
struct RowOrigin {
  std::string source;
  std::string experiment;
  std::string branch;
  std::string event;  // empty for branch rows
};

// Checks the row and adds it to `into`. Refuses (kInvalidParameter) a row that no
// server could have exported, naming the origin and the column; a total beyond a
// bigint is kOutOfRange. `into` is unchanged when the row is refused.
void MergeBranchRow(MergedBranch& into, const ExportedBranchRow& row, const RowOrigin& origin);
void MergeEventRow(RunningMoments& into, const ExportedEventRow& row, const RowOrigin& origin);

}  // namespace abtest
