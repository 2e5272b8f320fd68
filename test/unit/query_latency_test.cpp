#include "core/query_latency.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/latency_histogram.hpp"
#include "core/limits.hpp"
#include "core/usage_eviction.hpp"

namespace abtest {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The nearest-rank quantile (PostgreSQL's percentile_disc) of the values.
double NearestRank(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  std::size_t rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size()) - 1e-9));
  return values[std::max<std::size_t>(rank, 1) - 1];
}

// ---------------------------------------------------------------------------------------
// QuerySample and QueryLatency

TEST(QuerySample, ClampsWhatTheHooksMeasure) {
  EXPECT_EQ(QuerySample::Of(kNaN, true).latency_ms, 0);
  EXPECT_EQ(QuerySample::Of(-3, true).latency_ms, 0);
  EXPECT_FALSE(std::signbit(QuerySample::Of(-0.0, true).latency_ms));
  EXPECT_EQ(QuerySample::Of(kInf, true).latency_ms, kMaxLatencyMs);
  EXPECT_EQ(QuerySample::Of(2e6, true).latency_ms, kMaxLatencyMs);
  // The log is of at least one microsecond.
  EXPECT_DOUBLE_EQ(QuerySample::Of(0, true).log_latency, std::log(1e-3));
  EXPECT_DOUBLE_EQ(QuerySample::Of(1e-7, true).log_latency, std::log(1e-3));
  EXPECT_DOUBLE_EQ(QuerySample::Of(12.5, true).log_latency, std::log(12.5));
  EXPECT_EQ(QuerySample::Of(12.5, false).bucket, LatencyBucket(12.5));
}

TEST(QueryLatency, Empty) {
  QueryLatency q;
  EXPECT_EQ(q.calls(), 0u);
  EXPECT_FALSE(q.Mean());
  EXPECT_FALSE(q.StandardDeviation());
  EXPECT_FALSE(q.Quantile(0.5));
}

TEST(QueryLatency, FailuresAreCountedNotTimed) {
  QueryLatency q;
  q.Add(QuerySample::Of(5, true));
  q.Add(QuerySample::Of(500, false));
  q.Add(QuerySample::Of(7, true));
  EXPECT_EQ(q.calls(), 3u);
  EXPECT_EQ(q.failures, 1u);
  EXPECT_EQ(q.successes(), 2u);
  EXPECT_DOUBLE_EQ(*q.Mean(), 6);
  EXPECT_EQ(q.max_ms, 7);
  EXPECT_EQ(q.histogram.Total(), 2u);
  EXPECT_DOUBLE_EQ(*q.Quantile(1), 7);
  EXPECT_DOUBLE_EQ(*q.Quantile(0.01), 5);
}

TEST(QueryLatency, MomentsAndQuantilesOfRandomLatencies) {
  std::mt19937_64 rng(13);
  std::lognormal_distribution<double> latency(std::log(3.0), 1.2);
  std::vector<double> values;
  QueryLatency q;
  for (int i = 0; i < 20000; ++i) {
    double ms = std::round(latency(rng) * 1000) / 1000;
    values.push_back(ms);
    q.Add(QuerySample::Of(ms, true));
  }
  long double mean = 0, log_mean = 0;
  for (double x : values) {
    mean += x;
    log_mean += std::log(std::max(x, 1e-3));
  }
  mean /= values.size();
  log_mean /= values.size();
  long double m2 = 0, log_m2 = 0;
  for (double x : values) {
    m2 += (x - mean) * (x - mean);
    long double d = std::log(std::max(x, 1e-3)) - log_mean;
    log_m2 += d * d;
  }
  EXPECT_NEAR(*q.Mean(), static_cast<double>(mean), 1e-12 * static_cast<double>(mean));
  EXPECT_NEAR(*q.StandardDeviation(), std::sqrt(static_cast<double>(m2) / (values.size() - 1)), 1e-9);
  EXPECT_NEAR(q.log_latency.mean, static_cast<double>(log_mean), 1e-12);
  EXPECT_NEAR(q.log_latency.m2, static_cast<double>(log_m2), 1e-9 * static_cast<double>(log_m2));
  for (double p : {0.5, 0.95, 0.99}) {
    double exact = NearestRank(values, p);
    EXPECT_LE(std::fabs(*q.Quantile(p) - exact), kLatencyRelativeError * (1 + 1e-12) * exact) << "p" << p;
  }
}

TEST(QueryLatency, MergeIsRecordingEverything) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> latency(0, 50);
  QueryLatency all, first, second;
  for (int i = 0; i < 1000; ++i) {
    QuerySample sample = QuerySample::Of(latency(rng), i % 9 != 0);
    all.Add(sample);
    (i < 400 ? first : second).Add(sample);
  }
  QueryLatency merged = first;
  merged.Merge(second);
  EXPECT_EQ(merged.calls(), all.calls());
  EXPECT_EQ(merged.failures, all.failures);
  EXPECT_NEAR(merged.latency.mean, all.latency.mean, 1e-12);
  EXPECT_NEAR(merged.log_latency.m2, all.log_latency.m2, 1e-9 * all.log_latency.m2);
  EXPECT_EQ(merged.min_ms, all.min_ms);
  EXPECT_EQ(merged.max_ms, all.max_ms);
  for (int b = 0; b < kLatencyBuckets; ++b) EXPECT_EQ(merged.histogram.counts[b], all.histogram.counts[b]);
  // Merging into nothing, or nothing into it, changes nothing.
  QueryLatency empty;
  empty.Merge(all);
  EXPECT_EQ(empty.min_ms, all.min_ms);
  all.Merge(QueryLatency{});
  EXPECT_EQ(all.calls(), empty.calls());
}

// ---------------------------------------------------------------------------------------
// CompactLatencyHistogram

TEST(CompactLatencyHistogram, IsHalfTheBranchHistogram) {
  EXPECT_EQ(sizeof(CompactLatencyHistogram), kLatencyBuckets * sizeof(std::uint32_t));
}

TEST(CompactLatencyHistogram, HalvesInsteadOfOverflowing) {
  CompactLatencyHistogram h;
  h.counts[10] = std::numeric_limits<std::uint32_t>::max();
  h.counts[20] = 3;
  h.counts[30] = 1;
  h.Add(10);
  EXPECT_EQ(h.counts[10], (1u << 31) + 1);  // 2^32 - 1 halved up, plus the new one
  EXPECT_EQ(h.counts[20], 2u);
  EXPECT_EQ(h.counts[30], 1u);  // a recorded bucket never empties
  EXPECT_EQ(h.counts[0], 0u);
}

TEST(CompactLatencyHistogram, MergeOfPersistedCountsFits) {
  CompactLatencyHistogram h;
  h.counts[1] = 7;
  h.counts[2] = 4000000000u;
  std::uint64_t persisted[kLatencyBuckets] = {};
  persisted[2] = 3000000000u;
  persisted[3] = 1;
  persisted[4] = std::numeric_limits<std::uint64_t>::max();  // nothing this build writes: still no wrap
  h.Merge(persisted);
  for (int b = 0; b < kLatencyBuckets; ++b) EXPECT_LE(h.counts[b], std::numeric_limits<std::uint32_t>::max());
  EXPECT_GT(h.counts[4], h.counts[2]);
  EXPECT_GT(h.counts[2], 0u);
  EXPECT_EQ(h.counts[3], 1u);
  // Small counts add up exactly.
  CompactLatencyHistogram small;
  std::uint64_t more[kLatencyBuckets] = {};
  small.counts[5] = 2;
  more[5] = 3;
  more[6] = 1;
  small.Merge(more);
  EXPECT_EQ(small.counts[5], 5u);
  EXPECT_EQ(small.counts[6], 1u);
  EXPECT_EQ(small.Total(), 6u);
}

TEST(CompactLatencyHistogram, QuantilesSurviveHalving) {
  CompactLatencyHistogram h;
  const int fast = LatencyBucket(2), slow = LatencyBucket(100);
  h.counts[fast] = 3000000000u;
  h.counts[slow] = 300000000u;  // about 9% slow
  EXPECT_NEAR(h.Quantile(0.5, 1, 200), LatencyBucketValue(fast), 1e-12);
  EXPECT_NEAR(h.Quantile(0.95, 1, 200), LatencyBucketValue(slow), 1e-12);
  h.counts[fast] = std::numeric_limits<std::uint32_t>::max();  // to the brink
  h.Add(fast);
  EXPECT_LT(h.counts[fast], 1u << 31 | 1u << 30);
  EXPECT_NEAR(h.Quantile(0.5, 1, 200), LatencyBucketValue(fast), 1e-12);
  EXPECT_NEAR(h.Quantile(0.95, 1, 200), LatencyBucketValue(slow), 1e-12);
}

// ---------------------------------------------------------------------------------------
// Usage eviction

TEST(UsageEviction, ClassesAreMonotoneHalfStepsOfLog2) {
  EXPECT_EQ(UsageClass(0), 0);
  EXPECT_EQ(UsageClass(-1), 0);
  EXPECT_EQ(UsageClass(kNaN), 0);
  EXPECT_EQ(UsageClass(1e-30), 0);
  EXPECT_EQ(UsageClass(kInf), kUsageClasses - 1);
  EXPECT_EQ(UsageClass(1e30), kUsageClasses - 1);
  EXPECT_EQ(UsageClass(1), 48);
  EXPECT_EQ(UsageClass(1.4), 48);
  EXPECT_EQ(UsageClass(1.5), 49);
  EXPECT_EQ(UsageClass(2), 50);
  int previous = 0;
  for (double usage = 1e-9; usage < 1e15; usage *= 1.01) {
    int c = UsageClass(usage);
    EXPECT_GE(c, previous);
    EXPECT_LE(c, previous + 1);
    previous = c;
  }
}

TEST(UsageEviction, TargetIsFivePercentAtLeastTen) {
  EXPECT_EQ(EvictionTarget(5000, 5000), 250);
  EXPECT_EQ(EvictionTarget(100, 100), 10);
  EXPECT_EQ(EvictionTarget(100, 4), 4);
  EXPECT_EQ(EvictionTarget(0, 0), 0);
  EXPECT_EQ(EvictionTarget(1000000, 1000000), 50000);
}

TEST(UsageEviction, PlanTakesTheLeastUsed) {
  std::int64_t classes[kUsageClasses] = {};
  classes[3] = 4;
  classes[10] = 5;
  classes[50] = 100;
  EvictionPlan plan = PlanEviction(classes, 7);
  EXPECT_EQ(plan.threshold, 10);
  EXPECT_EQ(plan.from_threshold, 3);
  plan = PlanEviction(classes, 4);
  EXPECT_EQ(plan.threshold, 3);
  EXPECT_EQ(plan.from_threshold, 4);
  plan = PlanEviction(classes, 0);
  EXPECT_EQ(plan.threshold, 0);
  EXPECT_EQ(plan.from_threshold, 0);
  // More than there are: everything.
  plan = PlanEviction(classes, 500);
  EXPECT_EQ(plan.threshold, kUsageClasses - 1);
  EXPECT_EQ(plan.from_threshold, 0);
}

TEST(UsageEviction, EvictsTheLeastUsedUpToAHalfStep) {
  // 1000 entries with random usage: the plan's victims are the target's count, and no
  // survivor is used less than a victim by more than one class.
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> usage_of(3, 3);
  std::vector<double> usage(1000);
  std::int64_t classes[kUsageClasses] = {};
  for (double& u : usage) ++classes[UsageClass(u = usage_of(rng))];
  const int target = EvictionTarget(1000, 1000);
  EvictionPlan plan = PlanEviction(classes, target);
  int evicted = 0;
  std::int64_t from_threshold = plan.from_threshold;
  double most_used_victim = 0, least_used_survivor = kInf;
  for (double u : usage) {
    int c = UsageClass(u);
    bool victim = c < plan.threshold || (c == plan.threshold && from_threshold-- > 0);
    evicted += victim;
    if (victim)
      most_used_victim = std::max(most_used_victim, u);
    else
      least_used_survivor = std::min(least_used_survivor, u);
  }
  EXPECT_EQ(evicted, target);
  EXPECT_LT(most_used_victim, least_used_survivor * std::sqrt(2.0) * (1 + 1e-12));
}

}  // namespace
}  // namespace abtest
