#include "core/metrics.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/latency_histogram.hpp"
#include "core/limits.hpp"

namespace abtest {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void ExpectRelative(double actual, double expected, double tolerance) {
  EXPECT_LE(std::fabs(actual - expected), tolerance * std::fabs(expected)) << actual << " vs " << expected;
}

RunningMoments OnePass(const std::vector<double>& values, std::size_t from = 0, std::size_t to = SIZE_MAX) {
  RunningMoments m;
  for (std::size_t i = from; i < std::min(to, values.size()); ++i) m.Add(values[i]);
  return m;
}

// The textbook two-pass variance, in extended precision: the reference.
long double TwoPassVariance(const std::vector<double>& values) {
  long double mean = 0;
  for (double x : values) mean += x;
  mean /= values.size();
  long double m2 = 0;
  for (double x : values) m2 += (x - mean) * (x - mean);
  return m2 / (values.size() - 1);
}

std::vector<double> RandomValues(std::mt19937_64& rng, int kind, std::size_t n) {
  std::normal_distribution<double> normal(100, 15);
  std::lognormal_distribution<double> lognormal(0, 2);
  std::uniform_real_distribution<double> uniform(-1e3, 1e3);
  std::vector<double> values;
  for (std::size_t i = 0; i < n; ++i)
    values.push_back(kind == 0 ? normal(rng) : kind == 1 ? lognormal(rng) : uniform(rng));
  return values;
}

// ---------------------------------------------------------------------------------------
// RunningMoments

TEST(RunningMoments, WelfordMatchesTwoPass) {
  std::mt19937_64 rng(7);
  for (int kind = 0; kind < 3; ++kind) {
    for (std::size_t n : {2, 3, 10, 1000, 20000}) {
      SCOPED_TRACE(testing::Message() << "kind " << kind << " n " << n);
      const auto values = RandomValues(rng, kind, n);
      const RunningMoments m = OnePass(values);
      EXPECT_EQ(m.count, n);
      long double sum = 0;
      for (double x : values) sum += x;
      ExpectRelative(m.sum, static_cast<double>(sum), 1e-12);
      ExpectRelative(m.mean, static_cast<double>(sum / n), 1e-12);
      ASSERT_TRUE(m.Variance());
      ExpectRelative(*m.Variance(), static_cast<double>(TwoPassVariance(values)), 1e-12);
      ExpectRelative(*m.StandardDeviation(), std::sqrt(static_cast<double>(TwoPassVariance(values))), 1e-12);
    }
  }
}

TEST(RunningMoments, SmallCounts) {
  RunningMoments m;
  EXPECT_FALSE(m.Variance());
  EXPECT_FALSE(m.StandardDeviation());
  m.Add(1);
  EXPECT_FALSE(m.Variance());
  EXPECT_EQ(m.mean, 1);
  m.Add(3);
  EXPECT_EQ(*m.Variance(), 2);
  EXPECT_EQ(*m.StandardDeviation(), std::sqrt(2.0));
  EXPECT_EQ(m.sum, 4);
  EXPECT_EQ(m.mean, 2);
}

TEST(RunningMoments, ConstantValuesHaveZeroVariance) {
  RunningMoments m;
  for (int i = 0; i < 1000; ++i) m.Add(0.1);
  EXPECT_EQ(*m.Variance(), 0);
}

TEST(RunningMoments, VarianceIsNeverNegative) {
  RunningMoments m;
  m.count = 3;
  m.m2 = -1e-18;  // what rounding could leave after merges
  EXPECT_EQ(*m.Variance(), 0);
  EXPECT_EQ(*m.StandardDeviation(), 0);
}

TEST(RunningMoments, MergedHalvesEqualOnePass) {
  std::mt19937_64 rng(11);
  for (int kind = 0; kind < 3; ++kind) {
    const auto values = RandomValues(rng, kind, 5000);
    const RunningMoments whole = OnePass(values);
    for (std::size_t split : {std::size_t{1}, std::size_t{17}, std::size_t{2500}, std::size_t{4999},
                              static_cast<std::size_t>(rng() % 5000)}) {
      SCOPED_TRACE(testing::Message() << "kind " << kind << " split " << split);
      RunningMoments merged = OnePass(values, 0, split);
      merged.Merge(OnePass(values, split));
      EXPECT_EQ(merged.count, whole.count);
      ExpectRelative(merged.sum, whole.sum, 1e-9);
      ExpectRelative(merged.mean, whole.mean, 1e-9);
      ExpectRelative(merged.m2, whole.m2, 1e-9);
    }
    // Many small pieces, as from many backends' counters.
    RunningMoments pieces;
    for (std::size_t from = 0; from < values.size(); from += 37) pieces.Merge(OnePass(values, from, from + 37));
    EXPECT_EQ(pieces.count, whole.count);
    ExpectRelative(pieces.mean, whole.mean, 1e-9);
    ExpectRelative(pieces.m2, whole.m2, 1e-9);
  }
}

TEST(RunningMoments, MergingEmpties) {
  RunningMoments empty;
  empty.Merge(RunningMoments{});
  EXPECT_EQ(empty.count, 0u);
  EXPECT_EQ(empty.sum, 0);
  EXPECT_EQ(empty.mean, 0);
  EXPECT_EQ(empty.m2, 0);

  const RunningMoments some = OnePass({4, 8, 15, 16, 23, 42});
  RunningMoments a = some;
  a.Merge(RunningMoments{});
  EXPECT_EQ(a.count, some.count);
  EXPECT_EQ(a.sum, some.sum);
  EXPECT_EQ(a.mean, some.mean);
  EXPECT_EQ(a.m2, some.m2);

  RunningMoments b;
  b.Merge(some);
  EXPECT_EQ(b.count, some.count);
  EXPECT_EQ(b.sum, some.sum);
  EXPECT_EQ(b.mean, some.mean);
  EXPECT_EQ(b.m2, some.m2);
}

// Values around 1e9 that differ by less than 1: the sum of squares loses all the digits
// of the variance, the running deviations keep them.
TEST(RunningMoments, NoCatastrophicCancellation) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> noise(0, 1);
  std::vector<double> values;
  std::vector<double> offsets;  // x - 1e9 is exact here (Sterbenz), so this is the same sample
  for (int i = 0; i < 10000; ++i) {
    values.push_back(1e9 + noise(rng));
    offsets.push_back(values.back() - 1e9);
  }
  const double exact = static_cast<double>(TwoPassVariance(offsets));
  ASSERT_GT(exact, 0.07);  // about 1/12

  const RunningMoments m = OnePass(values);
  ExpectRelative(*m.Variance(), exact, 1e-6);

  RunningMoments merged = OnePass(values, 0, 3000);
  merged.Merge(OnePass(values, 3000));
  ExpectRelative(*merged.Variance(), exact, 1e-6);

  double sum = 0;
  double sum_of_squares = 0;
  for (double x : values) {
    sum += x;
    sum_of_squares += x * x;
  }
  const double naive = (sum_of_squares - sum * sum / values.size()) / (values.size() - 1);
  EXPECT_GT(std::fabs(naive - exact), 0.5 * exact) << "the naive formula should fail here: " << naive;
}

// ---------------------------------------------------------------------------------------
// QueryCounters

TEST(QueryCounters, NothingRecorded) {
  QueryCounters c;
  EXPECT_EQ(c.queries(), 0u);
  EXPECT_EQ(c.failures(), 0u);
  EXPECT_EQ(c.SuccessRate(), 0);
  EXPECT_EQ(c.ErrorRate(), 0);
  EXPECT_EQ(c.AverageLatency(), 0);
}

TEST(QueryCounters, Record) {
  QueryCounters c;
  c.Record(5, true, 1000);
  EXPECT_EQ(c.min_latency_ms, 5);
  EXPECT_EQ(c.max_latency_ms, 5);
  EXPECT_EQ(c.first_query, 1000);
  EXPECT_EQ(c.last_query, 1000);

  c.Record(2, false, 3000);
  c.Record(11, true, 2000);  // a backend that read its clock earlier took the lock later
  c.Record(0, true, 2500);
  EXPECT_EQ(c.queries(), 4u);
  EXPECT_EQ(c.successes, 3u);
  EXPECT_EQ(c.failures(), 1u);
  EXPECT_EQ(c.min_latency_ms, 0);
  EXPECT_EQ(c.max_latency_ms, 11);
  EXPECT_EQ(c.first_query, 1000);
  EXPECT_EQ(c.last_query, 3000);
  EXPECT_EQ(c.SuccessRate(), 0.75);
  EXPECT_EQ(c.ErrorRate(), 0.25);
  EXPECT_EQ(c.AverageLatency(), 4.5);
}

TEST(QueryCounters, Merge) {
  QueryCounters a;
  a.Record(5, true, 2000);
  a.Record(7, false, 5000);
  QueryCounters b;
  b.Record(3, true, 1000);
  b.Record(9, true, 4000);
  b.Record(4, true, 4500);

  QueryCounters merged = a;
  merged.Merge(b);
  EXPECT_EQ(merged.queries(), 5u);
  EXPECT_EQ(merged.successes, 4u);
  EXPECT_EQ(merged.failures(), 1u);
  EXPECT_EQ(merged.min_latency_ms, 3);
  EXPECT_EQ(merged.max_latency_ms, 9);
  EXPECT_EQ(merged.first_query, 1000);
  EXPECT_EQ(merged.last_query, 5000);
  EXPECT_EQ(merged.latency.sum, 28);
  EXPECT_DOUBLE_EQ(merged.AverageLatency(), 5.6);
  EXPECT_DOUBLE_EQ(*merged.latency.Variance(), 5.8);  // of 5, 7, 3, 9, 4
  EXPECT_EQ(merged.SuccessRate(), 0.8);
}

// An empty side has min, max and first of 0: they must not leak into the other side.
TEST(QueryCounters, MergeWithEmpty) {
  QueryCounters some;
  some.Record(5, false, 2000);
  some.Record(8, true, 3000);

  QueryCounters a = some;
  a.Merge(QueryCounters{});
  QueryCounters b;
  b.Merge(some);
  for (const QueryCounters* c : {&a, &b}) {
    EXPECT_EQ(c->queries(), 2u);
    EXPECT_EQ(c->successes, 1u);
    EXPECT_EQ(c->min_latency_ms, 5);
    EXPECT_EQ(c->max_latency_ms, 8);
    EXPECT_EQ(c->first_query, 2000);
    EXPECT_EQ(c->last_query, 3000);
    EXPECT_EQ(c->latency.m2, some.latency.m2);
  }

  QueryCounters empty;
  empty.Merge(QueryCounters{});
  EXPECT_EQ(empty.queries(), 0u);
  EXPECT_EQ(empty.AverageLatency(), 0);
}

// ---------------------------------------------------------------------------------------
// Validation

template <typename Fn>
void ExpectRefused(Fn&& fn, const std::string& message, ErrorKind kind = ErrorKind::kInvalidParameter) {
  try {
    fn();
    ADD_FAILURE() << "accepted; expected: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind);
    EXPECT_EQ(std::string(e.what()), message);
    EXPECT_EQ(e.detail(), "For branch \"treatment\" of experiment \"checkout\".");
  }
}

TEST(Validation, Latency) {
  const auto validate = [](double v) { return [v] { ValidateLatency(v, "checkout", "treatment"); }; };
  ExpectRefused(validate(kNaN), "latency_ms must be a finite number >= 0, not NaN");
  ExpectRefused(validate(kInf), "latency_ms must be a finite number >= 0, not Infinity");
  ExpectRefused(validate(-kInf), "latency_ms must be a finite number >= 0, not -Infinity");
  ExpectRefused(validate(-1), "latency_ms must be a finite number >= 0, not -1");
  ExpectRefused(validate(-0.25), "latency_ms must be a finite number >= 0, not -0.25");
  EXPECT_NO_THROW(ValidateLatency(0, "checkout", "treatment"));
  EXPECT_NO_THROW(ValidateLatency(-0.0, "checkout", "treatment"));
  EXPECT_NO_THROW(ValidateLatency(0.001, "checkout", "treatment"));
  EXPECT_NO_THROW(ValidateLatency(5e-324, "checkout", "treatment"));
  // Up to the top of the histogram, and not one bit above it.
  EXPECT_EQ(kMaxLatencyMs, kLatencyCeilingMs);
  EXPECT_NO_THROW(ValidateLatency(kMaxLatencyMs, "checkout", "treatment"));
  ExpectRefused(validate(std::nextafter(kMaxLatencyMs, kInf)),
                "latency_ms must be at most 1000000, not 1000000.0000000001");
  ExpectRefused(validate(1000000.001), "latency_ms must be at most 1000000, not 1000000.001");
  ExpectRefused(validate(1e12), "latency_ms must be at most 1000000, not 1000000000000");
  ExpectRefused(validate(1e308), "latency_ms must be at most 1000000, not 1e+308");
}

TEST(Validation, EventValue) {
  const auto validate = [](double v) { return [v] { ValidateEventValue(v, "checkout", "treatment"); }; };
  ExpectRefused(validate(kNaN), "value must be a finite number, not NaN");
  ExpectRefused(validate(kInf), "value must be a finite number, not Infinity");
  ExpectRefused(validate(-kInf), "value must be a finite number, not -Infinity");
  EXPECT_NO_THROW(ValidateEventValue(0, "checkout", "treatment"));
  EXPECT_NO_THROW(ValidateEventValue(-12.5, "checkout", "treatment"));  // refunds are events too
  EXPECT_NO_THROW(ValidateEventValue(-0.0, "checkout", "treatment"));
  EXPECT_NO_THROW(ValidateEventValue(5e-324, "checkout", "treatment"));
  EXPECT_NO_THROW(ValidateEventValue(kMaxEventValue, "checkout", "treatment"));
  EXPECT_NO_THROW(ValidateEventValue(-kMaxEventValue, "checkout", "treatment"));
  ExpectRefused(validate(std::nextafter(kMaxEventValue, kInf)),
                "value must be between -1e+15 and 1e+15, not 1.0000000000000001e+15", ErrorKind::kOutOfRange);
  ExpectRefused(validate(-1e300), "value must be between -1e+15 and 1e+15, not -1e+300", ErrorKind::kOutOfRange);
  ExpectRefused(validate(1e308), "value must be between -1e+15 and 1e+15, not 1e+308", ErrorKind::kOutOfRange);
  ExpectRefused(validate(-std::numeric_limits<double>::max()),
                "value must be between -1e+15 and 1e+15, not -1.7976931348623157e+308", ErrorKind::kOutOfRange);
}

// ---------------------------------------------------------------------------------------
// At the bounds: whatever is accepted keeps every moment finite, and exact where it can be.

bool Finite(const RunningMoments& m) {
  return std::isfinite(m.sum) && std::isfinite(m.mean) && std::isfinite(m.m2) &&
         std::isfinite(m.Variance().value_or(0)) && std::isfinite(m.StandardDeviation().value_or(0));
}

TEST(Bounds, EventValuesAtTheLimitKeepEveryMomentFinite) {
  RunningMoments m;
  for (int i = 0; i < 1000000; ++i) m.Add(i % 2 == 0 ? kMaxEventValue : -kMaxEventValue);
  EXPECT_TRUE(Finite(m));
  EXPECT_EQ(m.sum, 0);
  EXPECT_LE(std::fabs(m.mean), 1e-12 * kMaxEventValue);  // the running mean's rounding
  ExpectRelative(*m.Variance(), 1e30 * 1000000 / 999999, 1e-9);

  RunningMoments all_high;
  for (int i = 0; i < 1000; ++i) all_high.Add(kMaxEventValue);
  EXPECT_EQ(all_high.sum, 1e18);  // exact: every partial sum is a multiple of 1e15 below 2^53 * 1e15
  EXPECT_EQ(all_high.mean, kMaxEventValue);
  EXPECT_EQ(all_high.m2, 0);
}

// Merged totals as the flush worker keeps them, with counts no server will reach
// (2^63 in all), half at each extreme.
TEST(Bounds, MergedMomentsAtTheLargestCountsStayFinite) {
  RunningMoments high, low;
  high.count = low.count = std::uint64_t{1} << 61;
  high.mean = kMaxEventValue;
  low.mean = -kMaxEventValue;
  high.sum = static_cast<double>(high.count) * kMaxEventValue;
  low.sum = -high.sum;
  high.m2 = low.m2 = static_cast<double>(high.count) * kMaxEventValue * kMaxEventValue;  // more than possible
  RunningMoments merged = high;
  merged.Merge(low);
  merged.Merge(merged);
  EXPECT_TRUE(Finite(merged));
  EXPECT_EQ(merged.count, std::uint64_t{1} << 63);
  EXPECT_EQ(merged.mean, 0);
  EXPECT_LT(merged.m2, 1e51);
}

TEST(Bounds, LatenciesAtTheLimitKeepEveryCounterFinite) {
  QueryCounters c;
  for (int i = 0; i < 100000; ++i) c.Record(i % 2 == 0 ? kMaxLatencyMs : 5e-324, true, i);
  EXPECT_TRUE(Finite(c.latency));
  EXPECT_EQ(c.max_latency_ms, kMaxLatencyMs);
  EXPECT_EQ(c.min_latency_ms, 5e-324);
  ExpectRelative(c.AverageLatency(), kMaxLatencyMs / 2, 1e-12);

  QueryCounters many;
  many.latency.count = std::uint64_t{1} << 63;
  many.latency.sum = static_cast<double>(many.latency.count) * kMaxLatencyMs;
  many.latency.mean = kMaxLatencyMs;
  many.latency.m2 = static_cast<double>(many.latency.count) * kMaxLatencyMs * kMaxLatencyMs;
  many.min_latency_ms = 0;
  many.max_latency_ms = kMaxLatencyMs;
  many.Merge(c);
  EXPECT_TRUE(Finite(many.latency));
  EXPECT_TRUE(std::isfinite(many.AverageLatency()));
}

TEST(Bounds, NegativeZeroIsRecordedAsZero) {
  QueryCounters c;
  c.Record(-0.0, true, 1);
  EXPECT_FALSE(std::signbit(c.min_latency_ms));
  EXPECT_FALSE(std::signbit(c.max_latency_ms));
  EXPECT_FALSE(std::signbit(c.AverageLatency()));
  RunningMoments m;
  m.Add(-0.0);
  EXPECT_FALSE(std::signbit(m.sum));
  EXPECT_FALSE(std::signbit(m.mean));
}

}  // namespace
}  // namespace abtest
