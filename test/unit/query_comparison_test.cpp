// ab_compare_queries' statistics: CompareQueryLatencies against the SciPy reference of
// test/reference/query_comparison_reference.py, and its degenerate cases.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "core/comparison.hpp"
#include "core/error.hpp"
#include "core/metrics.hpp"
#include "core/query_latency.hpp"
#include "statistics_reference.hpp"

namespace abtest {
namespace {

using reference::Close;
using reference::Describe;
using reference::Double;
using reference::Int;
using reference::Optional;

RunningMoments MomentsOf(std::int64_t count, double mean, double m2) {
  RunningMoments m;
  m.count = static_cast<std::uint64_t>(count);
  m.mean = mean;
  m.m2 = m2;
  m.sum = mean * static_cast<double>(count);
  return m;
}

// The log moments of successful calls at these latencies, as the hooks record them.
RunningMoments LogMoments(const std::vector<double>& latencies_ms) {
  QueryLatency q;
  for (double ms : latencies_ms) q.Add(QuerySample::Of(ms, true));
  return q.log_latency;
}

AnalysisSettings Settings(double confidence_level = 0.95, std::int64_t min_sample_size = 1) {
  AnalysisSettings settings;
  settings.confidence_level = confidence_level;
  settings.min_sample_size = min_sample_size;
  return settings;
}

void ExpectSameOptional(const std::optional<double>& actual, const std::optional<double>& expected,
                        double relative = 1e-9) {
  ASSERT_EQ(actual.has_value(), expected.has_value());
  if (expected) {
    EXPECT_TRUE(Close(*actual, *expected, relative));
  }
}

TEST(CompareQueryLatencies, MatchesTheReference) {
  int rows = 0, p_values = 0, significant = 0;
  for (const auto& row : reference::Rows("query_comparison", "query_comparison_reference.tsv")) {
    SCOPED_TRACE(Describe(row));
    AnalysisSettings settings = Settings(Double(row[0]), Int(row[1]));
    const std::size_t m = static_cast<std::size_t>(Int(row[2]));
    ASSERT_EQ(row.size(), 3 + 10 * m);
    std::vector<std::pair<RunningMoments, RunningMoments>> pairs;
    for (std::size_t q = 0; q < m; ++q) {
      std::size_t at = 3 + 6 * q;
      pairs.emplace_back(MomentsOf(Int(row[at]), Double(row[at + 1]), Double(row[at + 2])),
                         MomentsOf(Int(row[at + 3]), Double(row[at + 4]), Double(row[at + 5])));
    }
    std::vector<QueryLatencyComparison> results = CompareQueryLatencies(pairs, settings);
    ASSERT_EQ(results.size(), m);
    for (std::size_t q = 0; q < m; ++q) {
      SCOPED_TRACE(testing::Message() << "query " << q);
      std::size_t at = 3 + 6 * m + 4 * q;
      ExpectSameOptional(results[q].relative_change, Optional(row[at]), 1e-12);
      ExpectSameOptional(results[q].p_value, Optional(row[at + 1]));
      ExpectSameOptional(results[q].adjusted_p_value, Optional(row[at + 2]));
      EXPECT_EQ(results[q].is_significant, row[at + 3] == "1");
      p_values += results[q].p_value.has_value();
      significant += results[q].is_significant;
    }
    ++rows;
  }
  // The table exercises every outcome, not just one.
  EXPECT_GE(rows, 200);
  EXPECT_GE(p_values, 500);
  EXPECT_GE(significant, 100);
}

TEST(CompareQueryLatencies, NothingToCompare) { EXPECT_TRUE(CompareQueryLatencies({}, Settings()).empty()); }

TEST(CompareQueryLatencies, BelowTwoCallsThereIsNoTest) {
  std::vector<std::pair<RunningMoments, RunningMoments>> pairs = {
      {RunningMoments{}, LogMoments({1, 2, 3})},  // no call in a
      {LogMoments({5}), LogMoments({1, 2, 3})},   // one call in a
      {LogMoments({1, 2, 3}), LogMoments({2, 4, 6})},
  };
  std::vector<QueryLatencyComparison> r = CompareQueryLatencies(pairs, Settings());
  ASSERT_EQ(r.size(), 3u);
  EXPECT_FALSE(r[0].relative_change);
  EXPECT_FALSE(r[0].p_value);
  EXPECT_FALSE(r[0].adjusted_p_value);
  EXPECT_FALSE(r[0].is_significant);
  // One call is a geometric mean: the change exists, the test does not.
  ASSERT_TRUE(r[1].relative_change);
  EXPECT_NEAR(*r[1].relative_change, std::cbrt(1.0 * 2 * 3) / 5 - 1, 1e-12);
  EXPECT_FALSE(r[1].p_value);
  // The only p-value is adjusted over one comparison: unchanged.
  ASSERT_TRUE(r[2].p_value);
  EXPECT_EQ(*r[2].adjusted_p_value, *r[2].p_value);
  // Twice every latency: the geometric mean doubles.
  EXPECT_NEAR(*r[2].relative_change, 1.0, 1e-12);
}

TEST(CompareQueryLatencies, ConstantLatenciesHaveNoTest) {
  // Both constant: no standard error, no t statistic (as CompareMeans).
  std::vector<QueryLatencyComparison> r =
      CompareQueryLatencies({{LogMoments({4, 4, 4}), LogMoments({8, 8, 8, 8})}}, Settings());
  ASSERT_EQ(r.size(), 1u);
  EXPECT_NEAR(*r[0].relative_change, 1.0, 1e-12);
  EXPECT_FALSE(r[0].p_value);
  // One constant branch is a test.
  r = CompareQueryLatencies({{LogMoments({4, 4, 4}), LogMoments({7, 8, 9, 8})}}, Settings());
  EXPECT_TRUE(r[0].p_value);
}

TEST(CompareQueryLatencies, SignificanceNeedsTheMinimumSample) {
  std::vector<double> fast, slow;
  for (int i = 0; i < 50; ++i) {
    fast.push_back(10 + i % 5);
    slow.push_back(20 + i % 5);
  }
  std::vector<std::pair<RunningMoments, RunningMoments>> pairs = {{LogMoments(fast), LogMoments(slow)}};
  EXPECT_TRUE(CompareQueryLatencies(pairs, Settings(0.95, 50))[0].is_significant);
  std::vector<QueryLatencyComparison> r = CompareQueryLatencies(pairs, Settings(0.95, 51));
  EXPECT_FALSE(r[0].is_significant);
  EXPECT_LT(*r[0].adjusted_p_value, 1e-10);
}

TEST(CompareQueryLatencies, HolmAcrossTheQueries) {
  // Three query ids with p-values; the one without is left out of the adjustment.
  std::vector<double> base, a1, a2;
  for (int i = 0; i < 40; ++i) {
    base.push_back(10 + i % 7);
    a1.push_back(10.4 + i % 7);
    a2.push_back(13 + i % 7);
  }
  std::vector<std::pair<RunningMoments, RunningMoments>> pairs = {
      {LogMoments(base), LogMoments(a1)}, {LogMoments({3}), LogMoments(a1)}, {LogMoments(base), LogMoments(a2)}};
  std::vector<QueryLatencyComparison> r = CompareQueryLatencies(pairs, Settings());
  ASSERT_TRUE(r[0].p_value && r[2].p_value);
  EXPECT_FALSE(r[1].p_value);
  double low = std::min(*r[0].p_value, *r[2].p_value), high = std::max(*r[0].p_value, *r[2].p_value);
  EXPECT_DOUBLE_EQ(std::min(*r[0].adjusted_p_value, *r[2].adjusted_p_value), std::min(1.0, 2 * low));
  EXPECT_DOUBLE_EQ(std::max(*r[0].adjusted_p_value, *r[2].adjusted_p_value), std::max(std::min(1.0, 2 * low), high));
}

TEST(CompareQueryLatencies, ExtremeLatenciesStayFinite) {
  // The floor and the ceiling of what the hooks record: ln(1e9) apart.
  std::vector<QueryLatencyComparison> r =
      CompareQueryLatencies({{LogMoments({0, 0, 1e-9}), LogMoments({1e6, 1e9, 1e6})}}, Settings());
  ASSERT_TRUE(r[0].relative_change);
  EXPECT_NEAR(*r[0].relative_change, 1e9 - 1, 1);
  EXPECT_TRUE(std::isfinite(*r[0].relative_change));
  EXPECT_FALSE(r[0].p_value);  // both constant after clamping
}

TEST(CompareQueryLatencies, RefusesAnInvalidConfidenceLevel) {
  std::vector<std::pair<RunningMoments, RunningMoments>> pairs = {{LogMoments({1, 2}), LogMoments({2, 3})}};
  EXPECT_THROW(CompareQueryLatencies(pairs, Settings(1.0)), Error);
}

TEST(RequireDistinctBranches, TakesAHint) {
  try {
    RequireDistinctBranches("e", "a", "a", "Name two branches.");
    FAIL() << "no refusal";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInvalidParameter);
    EXPECT_STREQ(error.what(), "cannot compare branch \"a\" of experiment \"e\" with itself");
    EXPECT_EQ(error.hint(), "Name two branches.");
  }
  EXPECT_NO_THROW(RequireDistinctBranches("e", "a", "b", "Name two branches."));
}

}  // namespace
}  // namespace abtest
