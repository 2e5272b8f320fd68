#include "core/merge.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/comparison.hpp"
#include "core/error.hpp"
#include "core/latency_histogram.hpp"

namespace abtest {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::int64_t kBigint = std::numeric_limits<std::int64_t>::max();

// One server's counters of a branch, as it records them.
struct Server {
  QueryCounters queries;
  std::uint64_t histogram[kLatencyBuckets] = {};
  RunningMoments event;

  void Record(double latency_ms, bool success, std::int64_t now, double value) {
    queries.Record(latency_ms, success, now);
    ++histogram[LatencyBucket(latency_ms)];
    event.Add(value);
  }

  // What abtest.branch_metrics_export gives for it.
  ExportedBranchRow Export() const {
    ExportedBranchRow row;
    row.query_count = static_cast<std::int64_t>(queries.queries());
    row.success_count = static_cast<std::int64_t>(queries.successes);
    row.latency_sum = queries.latency.sum;
    row.latency_mean = queries.latency.mean;
    row.latency_m2 = queries.latency.m2;
    if (queries.queries() > 0) {
      row.min_latency_ms = queries.min_latency_ms;
      row.max_latency_ms = queries.max_latency_ms;
      row.first_query = queries.first_query;
      row.last_query = queries.last_query;
    }
    int last = kLatencyBuckets - 1;
    while (last >= 0 && histogram[last] == 0) --last;  // trimmed, as the export is
    for (int i = 0; i <= last; ++i) row.histogram.push_back(static_cast<std::int64_t>(histogram[i]));
    row.exposures = 3;
    row.assigned_users = 2;
    return row;
  }

  ExportedEventRow ExportEvent() const {
    return ExportedEventRow{static_cast<std::int64_t>(event.count), event.sum, event.mean, event.m2};
  }
};

const RowOrigin kOrigin{"east.branch_metrics_export", "checkout", "control", ""};

void ExpectRelative(double actual, double expected, double tolerance) {
  EXPECT_LE(std::fabs(actual - expected), tolerance * std::fabs(expected)) << actual << " vs " << expected;
}

// The counters of one server that saw everything equal those of the servers that saw
// parts of it, merged: counts and buckets exactly, means and variances to rounding.
TEST(Merge, SplitAcrossServersEqualsOneServer) {
  std::mt19937_64 rng(14);
  std::lognormal_distribution<double> latency(3, 1.2);
  std::normal_distribution<double> value(50, 20);
  std::bernoulli_distribution success(0.83);
  for (int parts : {1, 2, 3, 7}) {
    SCOPED_TRACE(testing::Message() << parts << " servers");
    Server whole;
    std::vector<Server> servers(static_cast<std::size_t>(parts));
    for (int i = 0; i < 20000; ++i) {
      double ms = std::min(latency(rng), 1e6), v = value(rng);
      bool ok = success(rng);
      whole.Record(ms, ok, 1000 + i, v);
      servers[static_cast<std::size_t>(rng() % static_cast<unsigned>(parts))].Record(ms, ok, 1000 + i, v);
    }
    MergedBranch merged;
    RunningMoments events;
    for (const Server& server : servers) {
      MergeBranchRow(merged, server.Export(), kOrigin);
      MergeEventRow(events, server.ExportEvent(), kOrigin);
    }
    EXPECT_EQ(merged.queries.queries(), whole.queries.queries());
    EXPECT_EQ(merged.queries.successes, whole.queries.successes);
    EXPECT_EQ(merged.queries.min_latency_ms, whole.queries.min_latency_ms);
    EXPECT_EQ(merged.queries.max_latency_ms, whole.queries.max_latency_ms);
    EXPECT_EQ(merged.queries.first_query, whole.queries.first_query);
    EXPECT_EQ(merged.queries.last_query, whole.queries.last_query);
    ExpectRelative(merged.queries.latency.mean, whole.queries.latency.mean, 1e-12);
    ExpectRelative(merged.queries.latency.m2, whole.queries.latency.m2, 1e-12);
    ExpectRelative(merged.queries.latency.sum, whole.queries.latency.sum, 1e-12);
    EXPECT_EQ(merged.exposures, 3u * static_cast<unsigned>(parts));
    EXPECT_EQ(merged.assigned_users, 2u * static_cast<unsigned>(parts));
    for (int b = 0; b < kLatencyBuckets; ++b) ASSERT_EQ(merged.histogram[b], whole.histogram[b]) << "bucket " << b;
    for (double q : {0.5, 0.95, 0.99})
      EXPECT_EQ(LatencyQuantile(merged.histogram.data(), merged.queries.queries(), q, merged.queries.min_latency_ms,
                                merged.queries.max_latency_ms),
                LatencyQuantile(whole.histogram, whole.queries.queries(), q, whole.queries.min_latency_ms,
                                whole.queries.max_latency_ms));
    EXPECT_EQ(events.count, whole.event.count);
    ExpectRelative(events.mean, whole.event.mean, 1e-12);
    ExpectRelative(*events.Variance(), *whole.event.Variance(), 1e-12);
    // And so the analysis: the same comparison from merged and from whole counters.
    Server other;
    for (int i = 0; i < 500; ++i) other.Record(10 + i % 7, i % 5 != 0, i, i);
    QueryComparison from_merged = CompareQueries(other.queries, merged.queries, AnalysisSettings{});
    QueryComparison from_whole = CompareQueries(other.queries, whole.queries, AnalysisSettings{});
    ExpectRelative(*from_merged.p_value, *from_whole.p_value, 1e-9);
    ExpectRelative(*from_merged.latency_p_value, *from_whole.latency_p_value, 1e-9);
  }
}

TEST(Merge, RowsWithoutValuesAddNothing) {
  MergedBranch merged;
  ExportedBranchRow empty;
  empty.exposures = 5;
  MergeBranchRow(merged, empty, kOrigin);
  EXPECT_EQ(merged.queries.queries(), 0u);
  EXPECT_EQ(merged.exposures, 5u);
  Server server;
  server.Record(12.5, true, 7, 1);
  MergeBranchRow(merged, server.Export(), kOrigin);
  MergeBranchRow(merged, empty, kOrigin);
  EXPECT_EQ(merged.queries.queries(), 1u);
  EXPECT_EQ(merged.queries.min_latency_ms, 12.5);
  EXPECT_EQ(merged.exposures, 13u);
  RunningMoments events;
  MergeEventRow(events, ExportedEventRow{}, kOrigin);
  EXPECT_EQ(events.count, 0u);
}

// A row no server could have exported is refused, naming source, experiment, branch
// and column, and leaves the merge as it was.
void ExpectRefused(ExportedBranchRow row, const char* column, ErrorKind kind = ErrorKind::kInvalidParameter) {
  MergedBranch merged;
  Server before;
  before.Record(5, true, 1, 1);
  MergeBranchRow(merged, before.Export(), kOrigin);
  try {
    MergeBranchRow(merged, row, kOrigin);
    ADD_FAILURE() << "accepted a bad " << column;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << column;
    std::string text = std::string(e.what()) + " " + e.detail();
    EXPECT_NE(text.find(column), std::string::npos) << text;
    if (kind == ErrorKind::kInvalidParameter) {
      EXPECT_NE(text.find("east.branch_metrics_export"), std::string::npos) << text;
    }
    EXPECT_NE(text.find("\"checkout\""), std::string::npos) << text;
    EXPECT_NE(text.find("\"control\""), std::string::npos) << text;
  }
  EXPECT_EQ(merged.queries.queries(), 1u);
  EXPECT_EQ(merged.exposures, 3u);
}

TEST(Merge, RefusesImpossibleRows) {
  Server server;
  for (int i = 0; i < 10; ++i) server.Record(10 + i, i % 2 == 0, i, i);
  const ExportedBranchRow good = server.Export();
  ExportedBranchRow row = good;
  row.query_count = -1;
  ExpectRefused(row, "query_count");
  row = good;
  row.success_count = 11;
  ExpectRefused(row, "success_count");
  row = good;
  row.exposures = -5;
  ExpectRefused(row, "exposures");
  row = good;
  row.assigned_users = -1;
  ExpectRefused(row, "assigned_users");
  row = good;
  row.histogram.back() += 1;
  ExpectRefused(row, "latency_histogram");
  row = good;
  row.histogram.assign(kLatencyBuckets + 1, 0);
  ExpectRefused(row, "latency_histogram");
  row = good;
  row.histogram[row.histogram.size() - 1] = -1;
  ExpectRefused(row, "latency_histogram");
  for (double bad : {kNaN, -1.0, 2e6, std::numeric_limits<double>::infinity()}) {
    row = good;
    row.latency_mean = bad;
    ExpectRefused(row, "latency_mean");
    row = good;
    row.latency_m2 = bad == 2e6 ? 1e300 : bad;
    ExpectRefused(row, "latency_m2");
    row = good;
    row.latency_sum = bad == 2e6 ? 1e300 : bad;
    ExpectRefused(row, "latency_sum");
    row = good;
    row.min_latency_ms = bad;
    ExpectRefused(row, "min_latency_ms");
  }
  row = good;
  row.max_latency_ms = *row.min_latency_ms / 2;
  ExpectRefused(row, "max_latency_ms");
  row = good;
  row.first_query.reset();
  ExpectRefused(row, "first_query");
  row = good;
  row.last_query = *row.first_query - 1;
  ExpectRefused(row, "last_query");
  row = good;
  row.last_query = std::numeric_limits<std::int64_t>::max();
  ExpectRefused(row, "last_query");
  row = good;
  row.first_query = std::numeric_limits<std::int64_t>::min();
  ExpectRefused(row, "first_query");
  ExportedBranchRow empty;
  empty.latency_sum = 3;
  ExpectRefused(empty, "latency_sum");
  // Totals beyond a bigint.
  row = good;
  row.exposures = kBigint;
  ExpectRefused(row, "exposures", ErrorKind::kOutOfRange);
  row = good;
  row.assigned_users = kBigint - 1;
  ExpectRefused(row, "assigned_users", ErrorKind::kOutOfRange);
}

TEST(Merge, RefusesImpossibleEventRows) {
  RowOrigin origin = kOrigin;
  origin.event = "purchase";
  Server server;
  for (int i = 0; i < 10; ++i) server.Record(1, true, i, i * 3.5);
  const ExportedEventRow good = server.ExportEvent();
  auto refused = [&](ExportedEventRow row, const char* column, ErrorKind kind = ErrorKind::kInvalidParameter) {
    RunningMoments into = server.event;
    try {
      MergeEventRow(into, row, origin);
      ADD_FAILURE() << "accepted a bad " << column;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), kind);
      std::string text = std::string(e.what()) + " " + e.detail();
      EXPECT_NE(text.find(column), std::string::npos) << text;
      EXPECT_NE(text.find("\"purchase\""), std::string::npos) << text;
    }
    EXPECT_EQ(into.count, 10u);
    EXPECT_EQ(into.mean, server.event.mean);
  };
  ExportedEventRow row = good;
  row.count = -2;
  refused(row, "count");
  for (double bad : {kNaN, 2e15, -std::numeric_limits<double>::infinity()}) {
    row = good;
    row.mean = bad;
    refused(row, "mean");
    row = good;
    row.sum = bad == 2e15 ? 1e300 : bad;
    refused(row, "sum");
    row = good;
    row.m2 = bad == 2e15 ? 1e300 : bad;
    refused(row, "m2");
  }
  row = good;
  row.m2 = -1;
  refused(row, "m2");
  row = ExportedEventRow{};
  row.mean = 1;
  refused(row, "mean");
  row = good;
  row.count = kBigint;
  refused(row, "count", ErrorKind::kOutOfRange);
}

// Values at the bounds of recording, merged from many servers, stay finite with counts
// near a bigint, and so does every comparison of them (compared at 10^8 queries: the
// probability to beat the other branch takes seconds from 10^11 trials on).
TEST(Merge, BoundsStayFinite) {
  for (std::int64_t count : {kBigint / 4, std::int64_t{100000000}}) {
    SCOPED_TRACE(count);
    ExportedBranchRow row;
    row.query_count = count;
    row.success_count = row.query_count / 2;
    row.latency_mean = 5e5;
    row.latency_sum = 5e5 * static_cast<double>(row.query_count);
    row.latency_m2 = static_cast<double>(row.query_count) * 1e12;
    row.min_latency_ms = 0;
    row.max_latency_ms = 1e6;
    row.first_query = 0;
    row.last_query = 1;
    row.histogram.assign(kLatencyBuckets, 0);
    row.histogram[0] = row.query_count;
    MergedBranch merged;
    for (int i = 0; i < 4; ++i) {
      row.latency_mean = i % 2 == 0 ? 0 : 1e6;
      MergeBranchRow(merged, row, kOrigin);
    }
    EXPECT_TRUE(std::isfinite(merged.queries.latency.m2));
    EXPECT_TRUE(std::isfinite(merged.queries.latency.mean));
    EXPECT_TRUE(std::isfinite(*merged.queries.latency.Variance()));
    if (count > 100000000) continue;
    QueryComparison c = CompareQueries(merged.queries, merged.queries, AnalysisSettings{});
    EXPECT_TRUE(std::isfinite(c.latency_diff));
    ASSERT_TRUE(c.latency_p_value.has_value());
    EXPECT_TRUE(std::isfinite(*c.latency_p_value));
  }
}

}  // namespace
}  // namespace abtest
