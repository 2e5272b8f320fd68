#include "core/comparison.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/limits.hpp"
#include "core/metrics.hpp"
#include "core/sequential.hpp"
#include "core/statistics.hpp"

namespace abtest {
namespace {

// n queries, the first s of them successes, at latencies base, base + step, ...
QueryCounters Queries(std::uint64_t n, std::uint64_t s, double base = 10, double step = 0.5) {
  QueryCounters q;
  for (std::uint64_t i = 0; i < n; ++i)
    q.Record(base + step * static_cast<double>(i % 7), i < s, static_cast<std::int64_t>(i));
  return q;
}

RunningMoments Moments(const std::vector<double>& values) {
  RunningMoments m;
  for (double x : values) m.Add(x);
  return m;
}

Conversions ConversionsOf(const QueryCounters& q) {
  return {static_cast<std::int64_t>(q.successes), static_cast<std::int64_t>(q.queries())};
}

void ExpectNear(double actual, double expected, double relative = 1e-9) {
  EXPECT_NEAR(actual, expected, 1e-12 + relative * std::fabs(expected));
}

void ExpectFinite(const std::optional<double>& value) {
  if (value) {
    EXPECT_TRUE(std::isfinite(*value)) << *value;
  }
}

// SQL gets these as float8: a NaN or an infinity would leak to the user.
void ExpectNoNaN(const QueryComparison& c) {
  for (double x : {c.success_rate_a, c.success_rate_b, c.success_rate_diff, c.prob_b_beats_a, c.sequential_p_value,
                   c.avg_latency_a, c.avg_latency_b, c.latency_diff})
    EXPECT_TRUE(std::isfinite(x)) << x;
  for (const auto& x : {c.relative_lift, c.ci_low, c.ci_high, c.p_value, c.confidence, c.latency_p_value})
    ExpectFinite(x);
}

void ExpectNoNaN(const EventComparison& c) {
  for (const auto& x : {c.mean_a, c.mean_b, c.diff, c.relative_lift, c.ci_low, c.ci_high, c.p_value, c.confidence})
    ExpectFinite(x);
}

// Nothing to compare: every optional is NULL, the rest takes its neutral value.
void ExpectNoProportionTest(const QueryComparison& c) {
  EXPECT_FALSE(c.p_value);
  EXPECT_FALSE(c.ci_low);
  EXPECT_FALSE(c.ci_high);
  EXPECT_FALSE(c.relative_lift);
  EXPECT_FALSE(c.confidence);
  EXPECT_FALSE(c.is_significant);
  EXPECT_FALSE(c.latency_p_value);
  ExpectNoNaN(c);
}

// ---------------------------------------------------------------------------------------
// CompareQueries

TEST(CompareQueries, FieldsAreTheUnderlyingStatistics) {
  std::mt19937_64 rng(20240501);
  std::uniform_int_distribution<std::uint64_t> size(0, 400);
  std::lognormal_distribution<double> latency(2, 0.6);
  std::uniform_real_distribution<double> unit(0, 1);
  const double levels[] = {0.9, 0.95, 0.99};
  for (int round = 0; round < 300; ++round) {
    // Queries recorded one by one; the latencies kept to compute the moments two-pass.
    QueryCounters q[2];
    std::vector<double> latencies[2];
    for (int side = 0; side < 2; ++side) {
      const std::uint64_t n = round % 25 == side ? 0 : size(rng);
      const double rate = unit(rng);
      for (std::uint64_t i = 0; i < n; ++i) {
        const double ms = latency(rng);
        latencies[side].push_back(ms);
        q[side].Record(ms, unit(rng) < rate, static_cast<std::int64_t>(i));
      }
    }
    AnalysisSettings settings;
    settings.confidence_level = levels[round % 3];
    settings.min_sample_size = static_cast<std::int64_t>(size(rng) / 2);
    settings.mixing_variance = round % 2 ? 1e-4 : 1e-3;
    const double previous = round % 4 == 0 ? 1 : unit(rng);
    SCOPED_TRACE(testing::Message() << "round " << round << ": " << q[0].successes << "/" << q[0].queries() << " vs "
                                    << q[1].successes << "/" << q[1].queries() << ", previous " << previous);

    const QueryComparison c = CompareQueries(q[0], q[1], settings, previous);
    ExpectNoNaN(c);
    const Conversions a = ConversionsOf(q[0]), b = ConversionsOf(q[1]);
    EXPECT_EQ(c.sample_size_a, q[0].queries());
    EXPECT_EQ(c.sample_size_b, q[1].queries());
    EXPECT_EQ(c.success_rate_a, q[0].SuccessRate());
    EXPECT_EQ(c.success_rate_b, q[1].SuccessRate());
    EXPECT_EQ(c.success_rate_diff, q[1].SuccessRate() - q[0].SuccessRate());

    const auto test = CompareProportions(a, b, settings.confidence_level);
    ASSERT_EQ(c.p_value.has_value(), test.has_value());
    if (test) {
      EXPECT_DOUBLE_EQ(*c.p_value, test->p_value);
      EXPECT_DOUBLE_EQ(*c.confidence, test->confidence);
      EXPECT_DOUBLE_EQ(*c.ci_low, test->ci_lower);
      EXPECT_DOUBLE_EQ(*c.ci_high, test->ci_upper);
      ASSERT_EQ(c.relative_lift.has_value(), test->relative_lift.has_value());
      if (test->relative_lift) {
        EXPECT_DOUBLE_EQ(*c.relative_lift, *test->relative_lift);
      }
      EXPECT_EQ(c.is_significant,
                IsSignificant(test->p_value, settings.confidence_level, static_cast<std::int64_t>(q[0].queries()),
                              static_cast<std::int64_t>(q[1].queries()), settings.min_sample_size));
    } else {
      ExpectNoProportionTest(c);
    }
    EXPECT_DOUBLE_EQ(c.prob_b_beats_a, ProbabilityBBeatsA(a, b));
    EXPECT_DOUBLE_EQ(c.sequential_p_value, UpdateSequentialPValue(previous, a, b, settings.mixing_variance));
    EXPECT_DOUBLE_EQ(c.sequential_p_value, std::min(previous, SequentialPValue(a, b, settings.mixing_variance)));

    // Latency: Welch on moments computed independently of RunningMoments.
    SampleMoments moments[2];
    for (int side = 0; side < 2; ++side) {
      const auto& values = latencies[side];
      const double n = static_cast<double>(values.size());
      double mean = 0, m2 = 0;
      for (double x : values) mean += x / n;
      for (double x : values) m2 += (x - mean) * (x - mean);
      moments[side] = {static_cast<std::int64_t>(values.size()), values.empty() ? 0 : mean,
                       values.size() < 2 ? 0 : m2 / (n - 1)};
      ExpectNear(side == 0 ? c.avg_latency_a : c.avg_latency_b, moments[side].mean);
    }
    ExpectNear(c.latency_diff, c.avg_latency_b - c.avg_latency_a);
    const auto welch = CompareMeans(moments[0], moments[1], settings.confidence_level);
    ASSERT_EQ(c.latency_p_value.has_value(), welch.has_value());
    if (welch) ExpectNear(*c.latency_p_value, welch->p_value, 1e-7);
  }
}

TEST(CompareQueries, NoQueriesOnEitherSide) {
  const AnalysisSettings settings;
  const QueryComparison c = CompareQueries(QueryCounters{}, QueryCounters{}, settings);
  EXPECT_EQ(c.sample_size_a, 0u);
  EXPECT_EQ(c.sample_size_b, 0u);
  EXPECT_EQ(c.success_rate_a, 0);
  EXPECT_EQ(c.success_rate_b, 0);
  EXPECT_EQ(c.success_rate_diff, 0);
  EXPECT_EQ(c.prob_b_beats_a, 0.5);  // the uniform priors alone
  EXPECT_EQ(c.avg_latency_a, 0);
  EXPECT_EQ(c.avg_latency_b, 0);
  EXPECT_EQ(c.latency_diff, 0);
  EXPECT_EQ(c.sequential_p_value, 1);
  ExpectNoProportionTest(c);
}

TEST(CompareQueries, NoQueriesOnOneSide) {
  const AnalysisSettings settings;
  const QueryCounters some = Queries(500, 400, 20);
  for (bool empty_a : {true, false}) {
    SCOPED_TRACE(empty_a ? "a empty" : "b empty");
    const QueryCounters a = empty_a ? QueryCounters{} : some;
    const QueryCounters b = empty_a ? some : QueryCounters{};
    const QueryComparison c = CompareQueries(a, b, settings);
    ExpectNoProportionTest(c);
    EXPECT_EQ(c.sequential_p_value, 1);
    EXPECT_EQ(c.sample_size_a, a.queries());
    EXPECT_EQ(c.sample_size_b, b.queries());
    // The uniform prior of the empty side against the posterior of the other.
    EXPECT_EQ(c.prob_b_beats_a, ProbabilityBBeatsA(ConversionsOf(a), ConversionsOf(b)));
    EXPECT_GT(c.prob_b_beats_a, 0);
    EXPECT_LT(c.prob_b_beats_a, 1);
    // An empty side adds no evidence, and takes none of the earlier looks' away.
    EXPECT_EQ(CompareQueries(a, b, settings, 0.5).sequential_p_value, 0.5);
  }
}

TEST(CompareQueries, AllSuccessesOnBothSides) {
  AnalysisSettings settings;
  settings.min_sample_size = 10;
  const QueryComparison c = CompareQueries(Queries(210, 210, 10), Queries(315, 315, 30), settings);
  ASSERT_TRUE(c.p_value);
  EXPECT_EQ(*c.p_value, 1);
  EXPECT_EQ(*c.confidence, 0);
  EXPECT_EQ(*c.ci_low, 0);
  EXPECT_EQ(*c.ci_high, 0);
  ASSERT_TRUE(c.relative_lift);
  EXPECT_EQ(*c.relative_lift, 0);
  EXPECT_FALSE(c.is_significant);
  EXPECT_EQ(c.sequential_p_value, 1);  // V = 0: no evidence either way
  EXPECT_EQ(c.success_rate_diff, 0);
  // The latencies do differ, and Welch says so.
  ASSERT_TRUE(c.latency_p_value);
  EXPECT_LT(*c.latency_p_value, 1e-6);
  EXPECT_DOUBLE_EQ(c.latency_diff, 20);
  ExpectNoNaN(c);
}

TEST(CompareQueries, NoSuccessesOnBothSides) {
  const QueryComparison c = CompareQueries(Queries(150, 0), Queries(150, 0), AnalysisSettings{});
  ASSERT_TRUE(c.p_value);
  EXPECT_EQ(*c.p_value, 1);
  EXPECT_FALSE(c.relative_lift);  // rate_a = 0
  EXPECT_EQ(c.sequential_p_value, 1);
  ExpectNoNaN(c);
}

TEST(CompareQueries, ASingleQueryHasNoLatencyTest) {
  const AnalysisSettings settings;
  EXPECT_FALSE(CompareQueries(Queries(1, 1), Queries(1, 0), settings).latency_p_value);
  EXPECT_FALSE(CompareQueries(Queries(1, 1), Queries(100, 50), settings).latency_p_value);
  EXPECT_FALSE(CompareQueries(Queries(100, 50), Queries(1, 1), settings).latency_p_value);
  // Two each is enough for a sample variance.
  EXPECT_TRUE(CompareQueries(Queries(2, 1, 10, 1), Queries(2, 1, 20, 3), settings).latency_p_value);
  // A single query each still gets a (meaningless but defined) proportion test.
  const QueryComparison c = CompareQueries(Queries(1, 1), Queries(1, 0), settings);
  EXPECT_TRUE(c.p_value);
  EXPECT_FALSE(c.is_significant);
  ExpectNoNaN(c);
}

TEST(CompareQueries, ConstantLatenciesHaveNoLatencyTest) {
  const QueryComparison c = CompareQueries(Queries(100, 50, 5, 0), Queries(100, 50, 5, 0), AnalysisSettings{});
  EXPECT_FALSE(c.latency_p_value);
  EXPECT_EQ(c.latency_diff, 0);
  ExpectNoNaN(c);
}

TEST(CompareQueries, SignificanceNeedsMinSampleSizeOnBothSides) {
  AnalysisSettings settings;
  settings.min_sample_size = 100;
  // 50% against 95%: overwhelming, but 99 queries are not enough.
  QueryComparison c = CompareQueries(Queries(99, 50), Queries(99, 94), settings);
  ASSERT_TRUE(c.p_value);
  EXPECT_LT(*c.p_value, 1e-6);
  EXPECT_FALSE(c.is_significant);
  EXPECT_FALSE(CompareQueries(Queries(1000, 500), Queries(99, 94), settings).is_significant);
  EXPECT_FALSE(CompareQueries(Queries(99, 50), Queries(1000, 950), settings).is_significant);
  EXPECT_TRUE(CompareQueries(Queries(100, 50), Queries(100, 95), settings).is_significant);
  // And the sample alone is not enough either.
  EXPECT_FALSE(CompareQueries(Queries(1000, 500), Queries(1000, 501), settings).is_significant);
}

TEST(CompareQueries, SequentialPIsARunningMinimum) {
  AnalysisSettings settings;
  settings.mixing_variance = 0.04;  // tuned to the 20 pp early effect, so that it is found
  // A strong early difference that washes out: the fresh p-value rises again, the
  // reported one must not.
  QueryCounters a, b;
  double previous = 1, lowest_fresh = 1;
  bool rose = false;
  std::int64_t now = 0;
  for (int look = 0; look < 40; ++look) {
    for (int i = 0; i < 50; ++i, ++now) {
      const bool early = look < 8;
      a.Record(10, i % 5 == 0, now);                      // 20% throughout
      b.Record(10, early ? i % 5 < 2 : i % 5 == 0, now);  // 40% early, then 20%
    }
    const double fresh = SequentialPValue(ConversionsOf(a), ConversionsOf(b), settings.mixing_variance);
    rose = rose || fresh > lowest_fresh;
    lowest_fresh = std::min(lowest_fresh, fresh);
    const QueryComparison c = CompareQueries(a, b, settings, previous);
    EXPECT_LE(c.sequential_p_value, previous) << "look " << look;
    EXPECT_EQ(c.sequential_p_value, lowest_fresh) << "look " << look;
    previous = c.sequential_p_value;
  }
  EXPECT_TRUE(rose) << "the data should have let the fresh p-value rise";
  EXPECT_LT(previous, 0.05);
}

TEST(CompareQueries, PreviousSequentialPOutsideTheUnitIntervalIsClamped) {
  const AnalysisSettings settings;
  const QueryCounters a = Queries(300, 150), b = Queries(300, 160);
  const double fresh = SequentialPValue(ConversionsOf(a), ConversionsOf(b), settings.mixing_variance);
  EXPECT_EQ(CompareQueries(a, b, settings, 7).sequential_p_value, fresh);
  EXPECT_EQ(CompareQueries(a, b, settings, -1).sequential_p_value, 0);
  EXPECT_EQ(CompareQueries(a, b, settings, 0).sequential_p_value, 0);
}

// ---------------------------------------------------------------------------------------
// CompareEvents

TEST(CompareEvents, EmptySides) {
  const AnalysisSettings settings;
  EventComparison c = CompareEvents(RunningMoments{}, RunningMoments{}, settings);
  EXPECT_EQ(c.count_a, 0u);
  EXPECT_EQ(c.count_b, 0u);
  EXPECT_FALSE(c.mean_a);
  EXPECT_FALSE(c.mean_b);
  EXPECT_FALSE(c.diff);
  EXPECT_FALSE(c.relative_lift);
  EXPECT_FALSE(c.ci_low);
  EXPECT_FALSE(c.ci_high);
  EXPECT_FALSE(c.p_value);
  EXPECT_FALSE(c.confidence);
  EXPECT_FALSE(c.is_significant);

  const RunningMoments some = Moments({1, 2, 3, 4});
  c = CompareEvents(RunningMoments{}, some, settings);
  EXPECT_FALSE(c.mean_a);
  ASSERT_TRUE(c.mean_b);
  EXPECT_EQ(*c.mean_b, 2.5);
  EXPECT_FALSE(c.diff);
  EXPECT_FALSE(c.relative_lift);
  EXPECT_FALSE(c.p_value);
  c = CompareEvents(some, RunningMoments{}, settings);
  EXPECT_EQ(*c.mean_a, 2.5);
  EXPECT_FALSE(c.mean_b);
  EXPECT_FALSE(c.diff);
  EXPECT_FALSE(c.p_value);
  ExpectNoNaN(c);
}

TEST(CompareEvents, OneValueEach) {
  AnalysisSettings settings;
  settings.min_sample_size = 1;
  const EventComparison c = CompareEvents(Moments({4}), Moments({5}), settings);
  EXPECT_EQ(c.count_a, 1u);
  EXPECT_EQ(c.count_b, 1u);
  EXPECT_EQ(*c.mean_a, 4);
  EXPECT_EQ(*c.mean_b, 5);
  EXPECT_EQ(*c.diff, 1);
  EXPECT_EQ(*c.relative_lift, 0.25);
  EXPECT_FALSE(c.p_value);  // no sample variance
  EXPECT_FALSE(c.ci_low);
  EXPECT_FALSE(c.ci_high);
  EXPECT_FALSE(c.confidence);
  EXPECT_FALSE(c.is_significant);
  ExpectNoNaN(c);
  // One value against many: still no test.
  EXPECT_FALSE(CompareEvents(Moments({4}), Moments({1, 2, 3, 9}), settings).p_value);
}

TEST(CompareEvents, ZeroVarianceHasNoTest) {
  AnalysisSettings settings;
  settings.min_sample_size = 1;
  const std::vector<double> constant(500, 0.1);
  EventComparison c = CompareEvents(Moments(constant), Moments(constant), settings);
  EXPECT_EQ(*c.diff, 0);
  EXPECT_EQ(*c.relative_lift, 0);
  EXPECT_FALSE(c.p_value);
  EXPECT_FALSE(c.ci_low);
  EXPECT_FALSE(c.confidence);
  EXPECT_FALSE(c.is_significant);
  ExpectNoNaN(c);
  // Different constants: a difference, but no standard error to weigh it by.
  c = CompareEvents(Moments(constant), Moments(std::vector<double>(300, 0.7)), settings);
  EXPECT_NEAR(*c.diff, 0.6, 1e-12);
  EXPECT_FALSE(c.p_value);
  EXPECT_FALSE(c.is_significant);
  ExpectNoNaN(c);
}

TEST(CompareEvents, ZeroMeanHasNoLift) {
  const EventComparison c = CompareEvents(Moments({-1, 1}), Moments({2, 4}), AnalysisSettings{});
  EXPECT_EQ(*c.mean_a, 0);
  EXPECT_EQ(*c.diff, 3);
  EXPECT_FALSE(c.relative_lift);
  EXPECT_TRUE(c.p_value);
  ExpectNoNaN(c);
}

// Whatever ab_record_event accepts gives finite statistics: values at ±kMaxEventValue,
// denormals, and a mean so close to 0 that a lift relative to it would overflow.
TEST(CompareEvents, ValuesAtTheBoundsGiveFiniteStatistics) {
  AnalysisSettings settings;
  settings.min_sample_size = 1;
  std::vector<double> extreme, tiny, normal;
  for (int i = 0; i < 1000; ++i) {
    extreme.push_back(i % 2 == 0 ? kMaxEventValue : -kMaxEventValue);
    tiny.push_back(i % 3 == 0 ? 5e-324 : 1e-160);
    normal.push_back(10 + i % 7);
  }
  const std::vector<std::vector<double>> samples = {extreme, tiny, normal, std::vector<double>(2, kMaxEventValue),
                                                    {5e-324, 0}, {-0.0, 0.0}};
  for (const auto& a : samples)
    for (const auto& b : samples) {
      const EventComparison c = CompareEvents(Moments(a), Moments(b), settings);
      ExpectNoNaN(c);
    }
  const EventComparison c = CompareEvents(Moments({5e-324, 5e-324}), Moments(normal), settings);
  EXPECT_GT(*c.mean_a, 0);
  EXPECT_FALSE(c.relative_lift);  // 13 / 5e-324 overflows
  EXPECT_TRUE(c.p_value);
}

// Latencies at the bounds: 0, denormals and 1,000,000 ms.
TEST(CompareQueries, LatenciesAtTheBoundsGiveFiniteStatistics) {
  QueryCounters a, b, c;
  for (int i = 0; i < 500; ++i) {
    a.Record(i % 2 == 0 ? kMaxLatencyMs : 0, i % 3 == 0, i);
    b.Record(i % 2 == 0 ? 5e-324 : 1e-160, i % 5 == 0, i);
    c.Record(kMaxLatencyMs, true, i);
  }
  for (const QueryCounters* x : {&a, &b, &c})
    for (const QueryCounters* y : {&a, &b, &c}) ExpectNoNaN(CompareQueries(*x, *y, AnalysisSettings{}));
}

TEST(RequireDistinctBranches, ABranchIsNotComparedWithItself) {
  EXPECT_NO_THROW(RequireDistinctBranches("checkout", "control", "treatment"));
  EXPECT_NO_THROW(RequireDistinctBranches("checkout", "control", "Control"));
  try {
    RequireDistinctBranches("checkout", "control", "control");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidParameter);
    EXPECT_EQ(std::string(e.what()), "cannot compare branch \"control\" of experiment \"checkout\" with itself");
    EXPECT_EQ(e.hint(), "Name two different branches; ab_compare_all('checkout') compares every branch with the control.");
  }
}

TEST(CompareEvents, MatchesWelchBySciPy) {
  // References from SciPy 1.10.1 under /usr/bin/python3:
  //   stats.ttest_ind(b, a, equal_var=False) for the p-value; the interval as
  //   diff -/+ stats.t.ppf(1 - alpha / 2, df) * se with the Welch-Satterthwaite df
  //   and se = sqrt(var(a, ddof=1) / n_a + var(b, ddof=1) / n_b).
  const RunningMoments a = Moments({12.1, 9.8, 11.4, 10.2, 13.5, 8.9, 10.7});
  const RunningMoments b = Moments({14.2, 15.1, 11.9, 16.3, 13.8, 12.6, 17.0, 14.4, 15.5});
  AnalysisSettings settings;
  settings.min_sample_size = 7;
  EventComparison c = CompareEvents(a, b, settings);
  EXPECT_EQ(c.count_a, 7u);
  EXPECT_EQ(c.count_b, 9u);
  ExpectNear(*c.mean_a, 10.942857142857145, 1e-13);
  ExpectNear(*c.mean_b, 14.533333333333335, 1e-13);
  ExpectNear(*c.diff, 3.59047619047619, 1e-12);
  ExpectNear(*c.relative_lift, 0.3281114012184507, 1e-12);
  ExpectNear(*c.p_value, 0.0005619172638461075);  // t = 4.486942809015505, df = 13.465644439630598
  ExpectNear(*c.confidence, 1 - 0.0005619172638461075);
  ExpectNear(*c.ci_low, 1.867794583638525);
  ExpectNear(*c.ci_high, 5.313157797313855);
  EXPECT_TRUE(c.is_significant);

  settings.confidence_level = 0.99;
  c = CompareEvents(a, b, settings);
  ExpectNear(*c.ci_low, 1.1938355217181842);
  ExpectNear(*c.ci_high, 5.987116859234196);
  EXPECT_TRUE(c.is_significant);

  // Significance also needs min_sample_size on both sides.
  settings.min_sample_size = 8;
  EXPECT_FALSE(CompareEvents(a, b, settings).is_significant);

  // Not significant: diff 0.8, p = 0.7145484769471289, df = 6.928261556127876.
  settings = AnalysisSettings{};
  settings.min_sample_size = 1;
  c = CompareEvents(Moments({3, 5, 7, 9}), Moments({4, 6, 9, 12, 3}), settings);
  ExpectNear(*c.diff, 0.7999999999999998, 1e-12);
  ExpectNear(*c.p_value, 0.7145484769471289);
  ExpectNear(*c.ci_low, -4.174272184206852);
  ExpectNear(*c.ci_high, 5.774272184206851);
  EXPECT_FALSE(c.is_significant);
  ExpectNoNaN(c);
}

// ---------------------------------------------------------------------------------------
// CompareAllToControl

TEST(CompareAllToControl, NoChallengers) {
  EXPECT_TRUE(CompareAllToControl({}, AnalysisSettings{}).empty());
  EXPECT_TRUE(CompareAllToControl({Queries(100, 50)}, AnalysisSettings{}).empty());
}

TEST(CompareAllToControl, HolmAdjustsTheRawPValues) {
  std::mt19937_64 rng(99);
  std::uniform_int_distribution<std::uint64_t> size(0, 600);
  std::uniform_real_distribution<double> unit(0, 1);
  AnalysisSettings settings;
  settings.min_sample_size = 50;
  for (int round = 0; round < 60; ++round) {
    const std::size_t count = 2 + static_cast<std::size_t>(round % 5);
    std::vector<QueryCounters> branches;
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t n = unit(rng) < 0.15 ? 0 : size(rng);  // some without data
      branches.push_back(Queries(n, static_cast<std::uint64_t>(static_cast<double>(n) * unit(rng))));
    }
    std::vector<double> previous;
    for (std::size_t i = 0; i < count - round % 2; ++i) previous.push_back(unit(rng));
    SCOPED_TRACE(testing::Message() << "round " << round);

    const auto rows = CompareAllToControl(branches, settings, previous);
    ASSERT_EQ(rows.size(), count - 1);
    std::vector<double> raw;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const std::size_t branch = i + 1;
      EXPECT_EQ(rows[i].branch, static_cast<int>(branch));
      const double prev = branch < previous.size() ? previous[branch] : 1;
      const QueryComparison expected = CompareQueries(branches[0], branches[branch], settings, prev);
      EXPECT_EQ(rows[i].comparison.p_value, expected.p_value);
      EXPECT_EQ(rows[i].comparison.sequential_p_value, expected.sequential_p_value);
      EXPECT_EQ(rows[i].comparison.prob_b_beats_a, expected.prob_b_beats_a);
      if (expected.p_value) raw.push_back(*expected.p_value);
      EXPECT_EQ(rows[i].adjusted_p_value.has_value(), expected.p_value.has_value());
      if (!rows[i].adjusted_p_value) {
        EXPECT_FALSE(rows[i].is_significant);
      }
    }
    const std::vector<double> adjusted = HolmAdjust(raw);
    std::size_t next = 0;
    for (const ControlComparison& row : rows) {
      if (!row.adjusted_p_value) continue;
      ASSERT_LT(next, adjusted.size());
      EXPECT_EQ(*row.adjusted_p_value, adjusted[next++]);
      EXPECT_GE(*row.adjusted_p_value, *row.comparison.p_value);
      EXPECT_EQ(row.is_significant,
                IsSignificant(*row.adjusted_p_value, settings.confidence_level,
                              static_cast<std::int64_t>(row.comparison.sample_size_a),
                              static_cast<std::int64_t>(row.comparison.sample_size_b), settings.min_sample_size));
    }
    EXPECT_EQ(next, adjusted.size());
  }
}

TEST(CompareAllToControl, SignificanceIsDecidedOnTheAdjustedPValue) {
  const AnalysisSettings settings;
  // 50.0% vs 54.8%: z = 2.15, raw p = 0.032; with two more challengers Holm multiplies by 3.
  const std::vector<QueryCounters> branches = {Queries(1000, 500), Queries(1000, 548), Queries(1000, 510),
                                               Queries(1000, 502)};
  const auto rows = CompareAllToControl(branches, settings);
  ASSERT_EQ(rows.size(), 3u);
  ASSERT_TRUE(rows[0].comparison.p_value);
  EXPECT_LT(*rows[0].comparison.p_value, 0.05);
  EXPECT_TRUE(rows[0].comparison.is_significant);  // alone it would be
  ASSERT_TRUE(rows[0].adjusted_p_value);
  EXPECT_DOUBLE_EQ(*rows[0].adjusted_p_value, 3 * *rows[0].comparison.p_value);
  EXPECT_GE(*rows[0].adjusted_p_value, 0.05);
  EXPECT_FALSE(rows[0].is_significant);
  for (const ControlComparison& row : rows) EXPECT_FALSE(row.is_significant);

  // With a single challenger there is nothing to adjust for.
  const auto alone = CompareAllToControl({branches[0], branches[1]}, settings);
  ASSERT_EQ(alone.size(), 1u);
  EXPECT_EQ(*alone[0].adjusted_p_value, *alone[0].comparison.p_value);
  EXPECT_TRUE(alone[0].is_significant);
}

TEST(CompareAllToControl, BranchesWithoutDataGetNoAdjustedPValue) {
  const AnalysisSettings settings;
  // 50% vs 60% on 1000 each: p about 7e-6; the empty branch must not count in Holm's m.
  const std::vector<QueryCounters> branches = {Queries(1000, 500), QueryCounters{}, Queries(1000, 600),
                                               QueryCounters{}};
  const auto rows = CompareAllToControl(branches, settings);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_FALSE(rows[0].adjusted_p_value);
  EXPECT_FALSE(rows[0].is_significant);
  EXPECT_FALSE(rows[2].adjusted_p_value);
  ASSERT_TRUE(rows[1].adjusted_p_value);
  EXPECT_EQ(*rows[1].adjusted_p_value, *rows[1].comparison.p_value);
  EXPECT_TRUE(rows[1].is_significant);

  // Without a control, nobody has a p-value.
  for (const ControlComparison& row : CompareAllToControl({QueryCounters{}, Queries(500, 100)}, settings)) {
    EXPECT_FALSE(row.adjusted_p_value);
    EXPECT_FALSE(row.is_significant);
    ExpectNoNaN(row.comparison);
  }
}

TEST(CompareAllToControl, PassesEachBranchItsPreviousSequentialP) {
  const AnalysisSettings settings;
  const std::vector<QueryCounters> branches = {Queries(400, 200), Queries(400, 210), Queries(400, 190)};
  // Index 0 (the control) is not used; a short vector leaves the rest at 1.
  auto rows = CompareAllToControl(branches, settings, {0.0, 0.001});
  EXPECT_EQ(rows[0].comparison.sequential_p_value, 0.001);
  EXPECT_EQ(rows[1].comparison.sequential_p_value,
            CompareQueries(branches[0], branches[2], settings).sequential_p_value);
  rows = CompareAllToControl(branches, settings, {0.0, 1, 0.002});
  EXPECT_EQ(rows[1].comparison.sequential_p_value, 0.002);
}

// ---------------------------------------------------------------------------------------
// DecideAutoComplete

// The sequential p-values a caller would hold: one fresh look against the control.
std::vector<double> SequentialP(const std::vector<QueryCounters>& branches, const AnalysisSettings& settings) {
  std::vector<double> p(branches.size(), 1);
  for (std::size_t i = 1; i < branches.size(); ++i)
    p[i] = CompareQueries(branches[0], branches[i], settings).sequential_p_value;
  return p;
}

TEST(DecideAutoComplete, AClearWinnerCompletesWithIt) {
  const AnalysisSettings settings;
  const std::vector<QueryCounters> branches = {Queries(2000, 200), Queries(2000, 400)};
  const std::vector<double> p = SequentialP(branches, settings);
  ASSERT_LT(p[1], 1e-6);
  for (bool past : {false, true}) {
    const AutoCompleteDecision d = DecideAutoComplete(branches, p, settings, past);
    EXPECT_TRUE(d.complete);
    ASSERT_TRUE(d.winner);
    EXPECT_EQ(*d.winner, 1);
  }
}

TEST(DecideAutoComplete, TheBestChallengerWins) {
  const AnalysisSettings settings;
  const std::vector<QueryCounters> branches = {Queries(2000, 200), Queries(2000, 300), Queries(2000, 500)};
  const AutoCompleteDecision d = DecideAutoComplete(branches, SequentialP(branches, settings), settings, false);
  EXPECT_TRUE(d.complete);
  ASSERT_TRUE(d.winner);
  EXPECT_EQ(*d.winner, 2);

  // A decisive challenger that is not the best does not win while the best is undecided.
  const AutoCompleteDecision wait = DecideAutoComplete(branches, {1, 1e-9, 0.5}, settings, false);
  EXPECT_FALSE(wait.complete);
  EXPECT_FALSE(wait.winner);
}

TEST(DecideAutoComplete, TheControlWinsWhenEveryChallengerIsSignificantlyWorse) {
  const AnalysisSettings settings;
  const std::vector<QueryCounters> branches = {Queries(2000, 600), Queries(2000, 300), Queries(2000, 400)};
  const std::vector<double> p = SequentialP(branches, settings);
  ASSERT_LT(p[1], 0.001);
  ASSERT_LT(p[2], 0.001);
  AutoCompleteDecision d = DecideAutoComplete(branches, p, settings, false);
  EXPECT_TRUE(d.complete);
  ASSERT_TRUE(d.winner);
  EXPECT_EQ(*d.winner, 0);

  // One challenger worse but not decisively: keep running.
  d = DecideAutoComplete(branches, {1, p[1], 0.5}, settings, false);
  EXPECT_FALSE(d.complete);
  EXPECT_FALSE(d.winner);
  // One challenger not worse at all: keep running.
  const std::vector<QueryCounters> tie = {Queries(2000, 600), Queries(2000, 300), Queries(2000, 600)};
  d = DecideAutoComplete(tie, {1, 1e-9, 1e-9}, settings, false);
  EXPECT_FALSE(d.complete);
}

TEST(DecideAutoComplete, NoDecisionBelowMinSampleSize) {
  AnalysisSettings settings;
  settings.min_sample_size = 100;
  const std::vector<double> p = {1, 1e-9};
  for (const auto& branches : {std::vector<QueryCounters>{Queries(99, 10), Queries(5000, 4000)},
                               std::vector<QueryCounters>{Queries(5000, 500), Queries(99, 90)},
                               std::vector<QueryCounters>{Queries(5000, 4000), Queries(99, 10)}}) {
    AutoCompleteDecision d = DecideAutoComplete(branches, p, settings, false);
    EXPECT_FALSE(d.complete);
    EXPECT_FALSE(d.winner);
    d = DecideAutoComplete(branches, p, settings, true);
    EXPECT_TRUE(d.complete);
    EXPECT_FALSE(d.winner);
  }
  // Exactly min_sample_size is enough.
  const AutoCompleteDecision d = DecideAutoComplete({Queries(100, 10), Queries(100, 90)}, p, settings, false);
  EXPECT_TRUE(d.complete);
  EXPECT_EQ(d.winner, 1);
}

TEST(DecideAutoComplete, AlphaIsSplitOverTheChallengers) {
  const AnalysisSettings settings;  // alpha 0.05
  const std::vector<QueryCounters> three = {Queries(2000, 200), Queries(2000, 210), Queries(2000, 300)};
  // 0.03 < 0.05 but > 0.05 / 2: not decisive with two challengers.
  AutoCompleteDecision d = DecideAutoComplete(three, {1, 1, 0.03}, settings, false);
  EXPECT_FALSE(d.complete);
  EXPECT_FALSE(d.winner);
  d = DecideAutoComplete(three, {1, 1, 0.02}, settings, false);
  EXPECT_TRUE(d.complete);
  EXPECT_EQ(d.winner, 2);
  // The same p-value is decisive with a single challenger.
  d = DecideAutoComplete({three[0], three[2]}, {1, 0.03}, settings, false);
  EXPECT_TRUE(d.complete);
  EXPECT_EQ(d.winner, 1);
  // And it applies to the control's win as well.
  const std::vector<QueryCounters> worse = {Queries(2000, 300), Queries(2000, 200), Queries(2000, 210)};
  EXPECT_FALSE(DecideAutoComplete(worse, {1, 0.03, 0.03}, settings, false).complete);
  EXPECT_EQ(DecideAutoComplete(worse, {1, 0.02, 0.02}, settings, false).winner, 0);
}

TEST(DecideAutoComplete, DecidesOnTheSequentialPValueOnly) {
  const AnalysisSettings settings;
  // A large difference, but the caller's always-valid p-value says not yet.
  const std::vector<QueryCounters> branches = {Queries(2000, 200), Queries(2000, 400)};
  EXPECT_FALSE(DecideAutoComplete(branches, {1, 0.2}, settings, false).complete);
  // A missing entry counts as 1.
  EXPECT_FALSE(DecideAutoComplete(branches, {}, settings, false).complete);
}

TEST(DecideAutoComplete, PastMaxDurationCompletesWithoutAWinner) {
  const AnalysisSettings settings;
  const std::vector<QueryCounters> branches = {Queries(2000, 500), Queries(2000, 505), Queries(2000, 498)};
  const std::vector<double> p = SequentialP(branches, settings);
  AutoCompleteDecision d = DecideAutoComplete(branches, p, settings, false);
  EXPECT_FALSE(d.complete);
  EXPECT_FALSE(d.winner);
  d = DecideAutoComplete(branches, p, settings, true);
  EXPECT_TRUE(d.complete);
  EXPECT_FALSE(d.winner);
  // No data at all.
  d = DecideAutoComplete({QueryCounters{}, QueryCounters{}}, {1, 1}, settings, true);
  EXPECT_TRUE(d.complete);
  EXPECT_FALSE(d.winner);
}

TEST(DecideAutoComplete, SingleBranchOrNone) {
  const AnalysisSettings settings;
  for (const auto& branches : {std::vector<QueryCounters>{}, std::vector<QueryCounters>{Queries(5000, 2500)}}) {
    AutoCompleteDecision d = DecideAutoComplete(branches, {1}, settings, false);
    EXPECT_FALSE(d.complete);
    EXPECT_FALSE(d.winner);
    d = DecideAutoComplete(branches, {}, settings, true);
    EXPECT_TRUE(d.complete);
    EXPECT_FALSE(d.winner);
  }
}

}  // namespace
}  // namespace abtest
