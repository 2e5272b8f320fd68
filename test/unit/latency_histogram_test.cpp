#include "core/latency_histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace abtest {
namespace {

constexpr double kGamma = (1 + kLatencyRelativeError) / (1 - kLatencyRelativeError);
// The bound is exactly alpha at a bucket's edges; allow the last bits of the arithmetic.
constexpr double kBound = kLatencyRelativeError * (1 + 1e-12);

// What the glue keeps per branch: counts plus the exact extremes.
struct Histogram {
  std::array<std::uint64_t, kLatencyBuckets> counts{};
  std::uint64_t total = 0;
  double min_ms = 0;
  double max_ms = 0;

  void Add(double latency_ms) {
    min_ms = total == 0 ? latency_ms : std::min(min_ms, latency_ms);
    max_ms = total == 0 ? latency_ms : std::max(max_ms, latency_ms);
    ++counts[LatencyBucket(latency_ms)];
    ++total;
  }
  double Quantile(double q) const { return LatencyQuantile(counts.data(), total, q, min_ms, max_ms); }
};

// percentile_disc: the k-th smallest value, k = ceil(q * n), forgiving the rounding of q * n.
double ExactQuantile(const std::vector<double>& sorted, double q) {
  const double n = static_cast<double>(sorted.size());
  const double k = std::max(1.0, std::ceil(q * n * (1 - 1e-12)));
  return sorted[static_cast<std::size_t>(std::min(k, n)) - 1];
}

int CeilLog(double x) { return static_cast<int>(std::ceil(std::log(x) / std::log(kGamma))); }

// ---------------------------------------------------------------------------------------
// The bucket scheme

TEST(LatencyBuckets, TheConstantCoversTheRange) {
  const int i_min = CeilLog(kLatencyFloorMs);
  const int i_max = CeilLog(kLatencyCeilingMs);
  EXPECT_EQ(kLatencyBuckets, 1 + (i_max - i_min + 1));
  EXPECT_GE(std::pow(kGamma, i_max), kLatencyCeilingMs);
  EXPECT_LT(std::pow(kGamma, i_max - 1), kLatencyCeilingMs);
  EXPECT_EQ(LatencyBucket(kLatencyCeilingMs), kLatencyBuckets - 1);
  EXPECT_EQ(LatencyBucket(kLatencyFloorMs), 1);
}

TEST(LatencyBuckets, UnderflowAndOverflow) {
  EXPECT_EQ(LatencyBucket(0), 0);
  EXPECT_EQ(LatencyBucket(1e-9), 0);
  EXPECT_EQ(LatencyBucket(std::nextafter(kLatencyFloorMs, 0.0)), 0);
  EXPECT_EQ(LatencyBucket(std::nextafter(kLatencyCeilingMs, 2e6)), kLatencyBuckets - 1);
  EXPECT_EQ(LatencyBucket(1e12), kLatencyBuckets - 1);
  EXPECT_EQ(LatencyBucket(std::numeric_limits<double>::max()), kLatencyBuckets - 1);
  EXPECT_EQ(LatencyBucketValue(0), 0);
}

// A value equal to an edge belongs to the bucket below it, whatever log rounds to.
TEST(LatencyBuckets, EdgesLandInTheRightBucket) {
  const int i_min = CeilLog(kLatencyFloorMs);
  const int i_max = CeilLog(kLatencyCeilingMs);
  for (int i = i_min; i <= i_max; ++i) {
    SCOPED_TRACE(i);
    const double edge = std::pow(kGamma, i);
    const int bucket = i - i_min + 1;
    EXPECT_EQ(LatencyBucket(edge), bucket);
    if (i < i_max) {
      EXPECT_EQ(LatencyBucket(std::nextafter(edge, 2 * edge)), bucket + 1);
    }
    if (i > i_min) {
      EXPECT_EQ(LatencyBucket(std::nextafter(edge, 0.0)), bucket);
    }
  }
}

// The form given the logarithm (the statement timing's, which has it already) and the
// edges computed once give the buckets pow computed each time gave.
TEST(LatencyBuckets, GivenTheLogarithmTheSameBucket) {
  auto by_pow = [](double x) {
    if (!(x >= kLatencyFloorMs)) return 0;
    if (x > kLatencyCeilingMs) return kLatencyBuckets - 1;
    const int min_index = CeilLog(kLatencyFloorMs);
    int i = CeilLog(x);
    if (x <= std::pow(kGamma, i - 1)) {
      --i;
    } else if (x > std::pow(kGamma, i)) {
      ++i;
    }
    return std::clamp(i - min_index + 1, 1, kLatencyBuckets - 1);
  };
  std::mt19937_64 random(13);
  std::uniform_real_distribution<double> exponent(-4, 7);
  std::vector<double> values = {0, 1e-4, kLatencyFloorMs, 0.5, 1, 2, kLatencyCeilingMs, 2e6};
  for (int k = -400; k <= 720; ++k) {
    const double edge = std::pow(kGamma, k);
    values.insert(values.end(), {edge, std::nextafter(edge, 0.0), std::nextafter(edge, 1e300)});
  }
  for (int n = 0; n < 100000; ++n) values.push_back(std::pow(10.0, exponent(random)));
  for (double x : values) {
    EXPECT_EQ(LatencyBucket(x), by_pow(x)) << x;
    if (x >= kLatencyFloorMs) EXPECT_EQ(LatencyBucket(x, std::log(x)), LatencyBucket(x)) << x;
  }
}

TEST(LatencyBuckets, MonotoneAndWithinTheBound) {
  int previous = LatencyBucket(0);
  for (double x = 1e-5; x < 1e8; x *= 1.0001) {
    const int bucket = LatencyBucket(x);
    ASSERT_GE(bucket, previous) << x;
    ASSERT_LT(bucket, kLatencyBuckets) << x;
    previous = bucket;
    if (x >= kLatencyFloorMs && x <= kLatencyCeilingMs) {
      const double value = LatencyBucketValue(bucket);
      ASSERT_LE(std::fabs(value - x), kBound * x) << x;
    }
  }
  for (int bucket = 1; bucket < kLatencyBuckets; ++bucket)
    EXPECT_GT(LatencyBucketValue(bucket), LatencyBucketValue(bucket - 1)) << bucket;
}

// ---------------------------------------------------------------------------------------
// Quantiles

TEST(LatencyQuantile, NothingRecorded) {
  Histogram h;
  EXPECT_EQ(h.Quantile(0.5), 0);
  EXPECT_EQ(h.Quantile(1), 0);
}

TEST(LatencyQuantile, AllZero) {
  Histogram h;
  for (int i = 0; i < 10; ++i) h.Add(0);
  EXPECT_EQ(h.Quantile(0.01), 0);
  EXPECT_EQ(h.Quantile(0.5), 0);
  EXPECT_EQ(h.Quantile(1), 0);
}

TEST(LatencyQuantile, OneValueIsExact) {
  for (double x : {0.0, 0.0004, 0.001, 3.7, 123.456, 999999.0, 5e7}) {
    Histogram h;
    h.Add(x);
    for (double q : {0.001, 0.5, 0.99, 1.0}) EXPECT_EQ(h.Quantile(q), x) << x << " q=" << q;
  }
}

TEST(LatencyQuantile, AboveTheCeilingTheMaximumIsExact) {
  Histogram h;
  for (double x : {1.0, 2e6, 5e6, 1e7}) h.Add(x);
  EXPECT_EQ(h.Quantile(1), 1e7);
  EXPECT_EQ(h.Quantile(0.999), 1e7);
  // Beyond the ceiling there is no bound: the overflow bucket reports about the ceiling.
  EXPECT_NEAR(h.Quantile(0.5), kLatencyCeilingMs, kBound * kLatencyCeilingMs);
}

// The first and the last rank are the recorded extremes, not their buckets' values.
TEST(LatencyQuantile, ExtremesAreExact) {
  Histogram h;
  for (double x : {1.234, 5.0, 7.0, 99.99}) h.Add(x);
  EXPECT_EQ(h.Quantile(1), 99.99);
  EXPECT_EQ(h.Quantile(0.25), 1.234);
  EXPECT_EQ(h.Quantile(1e-9), 1.234);
}

TEST(LatencyQuantile, BelowTheFloorTheMinimumIsExact) {
  Histogram h;
  for (double x : {0.0002, 0.0005, 10.0}) h.Add(x);
  EXPECT_EQ(h.Quantile(0.01), 0.0002);
}

// 0.95 * 100 and 0.07 * 100 (= 7.000000000000001) are ranks 95 and 7, not 96 and 8.
TEST(LatencyQuantile, DecimalQuantilesHitTheirRank) {
  Histogram h;
  std::vector<double> values;
  for (int j = 1; j <= 100; ++j) values.push_back(std::pow(1.1, j));  // 10% apart: ranks are distinguishable
  for (double x : values) h.Add(x);
  for (double q : {0.07, 0.29, 0.57, 0.95, 0.5, 0.01, 1.0}) {
    const double exact = ExactQuantile(values, q);
    EXPECT_NEAR(h.Quantile(q), exact, kBound * exact) << q;
  }
  EXPECT_NEAR(h.Quantile(0.95), values[94], kBound * values[94]);
  EXPECT_NEAR(h.Quantile(0.07), values[6], kBound * values[6]);
}

// The guarantee, against percentile_disc of random samples within the covered range.
TEST(LatencyQuantile, WithinTwoPercentOfTheExactQuantile) {
  std::mt19937_64 rng(20240611);
  std::uniform_real_distribution<double> unit(0, 1);
  const auto in_range = [](double x) { return x >= kLatencyFloorMs && x <= kLatencyCeilingMs; };

  int cases = 0;
  int checks = 0;
  for (int c = 0; c < 240; ++c) {
    std::size_t n;
    switch (c % 4) {
      case 0: n = 1 + rng() % 10; break;
      case 1: n = 11 + rng() % 190; break;
      case 2: n = 201 + rng() % 1800; break;
      default: n = 2001 + rng() % 18000; break;
    }
    const int kind = (c / 4) % 6;
    // Parameters drawn per case so that the cases spread over the whole range.
    const double mu = -4 + 14 * unit(rng);
    const double sigmas[] = {0.05, 0.3, 1, 2, 3};
    const double sigma = sigmas[rng() % 5];
    const double mean = std::pow(10.0, -2 + 6 * unit(rng));
    const double low_decade = -3 + 4 * unit(rng);
    const double decades = 1 + 4 * unit(rng);
    const double pareto_shape = 0.5 + 1.5 * unit(rng);
    std::lognormal_distribution<double> lognormal(mu, sigma);
    std::exponential_distribution<double> exponential(1 / mean);

    std::vector<double> values;
    for (int attempts = 0; values.size() < n; ++attempts) {
      ASSERT_LT(attempts, 100 * static_cast<int>(n)) << "case " << c << ": the distribution misses the range";
      double x = 0;
      switch (kind) {
        case 0: x = lognormal(rng); break;
        case 1: x = exponential(rng); break;
        case 2: x = std::pow(10.0, low_decade + decades * unit(rng)); break;  // log-uniform
        case 3: x = std::pow(10.0, low_decade) * (1 + 1000 * unit(rng)); break;  // linear uniform
        case 4: x = mean * std::pow(1 - unit(rng), -1 / pareto_shape); break;  // heavy tail
        default: {  // ties, as from a coarse clock
          const double step = std::exp(mu) / 20;
          x = std::round(lognormal(rng) / step) * step;
          break;
        }
      }
      if (in_range(x)) values.push_back(x);
    }

    Histogram h;
    for (double x : values) h.Add(x);
    std::sort(values.begin(), values.end());
    std::vector<double> qs = {0.5, 0.9, 0.95, 0.99, 0.999, 1.0};
    for (int r = 0; r < 6; ++r) qs.push_back(1 - unit(rng));  // (0, 1]
    for (double q : qs) {
      const double exact = ExactQuantile(values, q);
      const double estimate = h.Quantile(q);
      ASSERT_LE(std::fabs(estimate - exact), kBound * exact)
          << "case " << c << " kind " << kind << " n " << n << " q " << q;
      ++checks;
    }
    ++cases;
  }
  EXPECT_EQ(cases, 240);
  EXPECT_EQ(checks, 240 * 12);
}

// Counters read without a lock may not add up to the total: the answer stays in range.
TEST(LatencyQuantile, CountsShortOfTheTotal) {
  Histogram h;
  h.Add(1);
  h.Add(2);
  EXPECT_EQ(LatencyQuantile(h.counts.data(), 5, 0.8, h.min_ms, h.max_ms), 2);
}

}  // namespace
}  // namespace abtest
