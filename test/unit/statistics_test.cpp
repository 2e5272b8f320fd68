#include "core/statistics.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "core/error.hpp"
#include "statistics_reference.hpp"

namespace abtest {
namespace {

using reference::Close;
using reference::Describe;
using reference::Double;
using reference::Int;
using reference::Optional;

template <typename Fn>
void ExpectInvalid(Fn&& fn) {
  try {
    fn();
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidParameter);
  }
}

void ExpectSameOptional(const std::optional<double>& actual, const std::optional<double>& expected) {
  ASSERT_EQ(actual.has_value(), expected.has_value());
  if (expected) {
    EXPECT_TRUE(Close(*actual, *expected));
  }
}

// ---------------------------------------------------------------------------------------
// Two proportions

TEST(Proportions, MatchesTheReference) {
  for (const auto& row : reference::Rows("proportions")) {
    SCOPED_TRACE(Describe(row));
    auto r = CompareProportions({Int(row[0]), Int(row[1])}, {Int(row[2]), Int(row[3])}, Double(row[4]));
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(Close(r->rate_a, Double(row[5])));
    EXPECT_TRUE(Close(r->rate_b, Double(row[6])));
    EXPECT_TRUE(Close(r->difference, Double(row[7])));
    EXPECT_TRUE(Close(r->z, Double(row[8]), 1e-9, 1e-6));
    EXPECT_TRUE(Close(r->p_value, Double(row[9])));
    EXPECT_TRUE(Close(r->confidence, 1 - Double(row[9])));
    const double width = Double(row[11]) - Double(row[10]);
    EXPECT_TRUE(Close(r->ci_lower, Double(row[10]), 1e-9, width));
    EXPECT_TRUE(Close(r->ci_upper, Double(row[11]), 1e-9, width));
    ExpectSameOptional(r->relative_lift, Optional(row[12]));
  }
}

TEST(Proportions, DegenerateInputs) {
  // No trials in a branch: nothing to compare.
  EXPECT_FALSE(CompareProportions({0, 0}, {5, 10}, 0.95));
  EXPECT_FALSE(CompareProportions({5, 10}, {0, 0}, 0.95));

  // No conversions anywhere: equal rates, p = 1, a collapsed interval, no lift.
  auto none = CompareProportions({0, 1000}, {0, 1000}, 0.95);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->z, 0);
  EXPECT_EQ(none->p_value, 1);
  EXPECT_EQ(none->confidence, 0);
  EXPECT_EQ(none->ci_lower, 0);
  EXPECT_EQ(none->ci_upper, 0);
  EXPECT_FALSE(none->relative_lift);

  // Everyone converts everywhere: p = 1, lift 0.
  auto all = CompareProportions({50, 50}, {70, 70}, 0.95);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->p_value, 1);
  ASSERT_TRUE(all->relative_lift);
  EXPECT_EQ(*all->relative_lift, 0);

  // 0% against 100%: the pooled test sees it, the Wald interval has no width left.
  auto extreme = CompareProportions({0, 100}, {100, 100}, 0.95);
  ASSERT_TRUE(extreme);
  EXPECT_LT(extreme->p_value, 1e-40);
  EXPECT_EQ(extreme->ci_lower, 1);
  EXPECT_EQ(extreme->ci_upper, 1);
  EXPECT_FALSE(extreme->relative_lift);

  // Far beyond double precision in the tail: 0, not NaN.
  auto huge = CompareProportions({0, 10000000}, {5000000, 10000000}, 0.95);
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->p_value, 0);
  EXPECT_EQ(huge->confidence, 1);
}

TEST(Proportions, RefusesInvalidInput) {
  ExpectInvalid([] { CompareProportions({-1, 10}, {1, 10}, 0.95); });
  ExpectInvalid([] { CompareProportions({1, 10}, {11, 10}, 0.95); });
  ExpectInvalid([] { CompareProportions({1, -10}, {1, 10}, 0.95); });
  for (double level : {0.0, 1.0, -0.5, 95.0, std::numeric_limits<double>::quiet_NaN()}) {
    SCOPED_TRACE(level);
    ExpectInvalid([&] { CompareProportions({1, 10}, {2, 10}, level); });
  }
}

TEST(Proportions, SignificanceNeedsBothPValueAndSampleSize) {
  EXPECT_TRUE(IsSignificant(0.049, 0.95, 100, 100, 100));
  EXPECT_FALSE(IsSignificant(0.05, 0.99, 100, 100, 100));
  EXPECT_FALSE(IsSignificant(0.051, 0.95, 100, 100, 100));
  EXPECT_FALSE(IsSignificant(0.001, 0.95, 99, 100, 100));
  EXPECT_FALSE(IsSignificant(0.001, 0.95, 100, 99, 100));
  EXPECT_TRUE(IsSignificant(0.009, 0.99, 5, 5, 0));
}

// ---------------------------------------------------------------------------------------
// P(b beats a)

TEST(ProbabilityBBeatsA, MatchesTheReference) {
  double worst = 0;
  auto start = std::chrono::steady_clock::now();
  for (const auto& row : reference::Rows("prob_b_beats_a")) {
    SCOPED_TRACE(Describe(row));
    double p = ProbabilityBBeatsA({Int(row[0]), Int(row[1])}, {Int(row[2]), Int(row[3])});
    EXPECT_NEAR(p, Double(row[4]), 1e-4);
    worst = std::max(worst, std::fabs(p - Double(row[4])));
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ info     ] prob_b_beats_a: largest difference from SciPy quad %.2g, 200 cases in %.3f s\n", worst,
              seconds);
  EXPECT_LT(worst, 1e-8);  // far better than promised; a regression shows here first
}

TEST(ProbabilityBBeatsA, ExactSumAndQuadratureAgree) {
  const std::int64_t counts[][4] = {{0, 0, 0, 0},           {3, 10, 5, 12},
                                    {1, 50, 0, 50},         {100, 1000, 120, 1000},
                                    {40, 5000, 55, 4800},   {2500, 5000, 2600, 5000},
                                    {10, 20000, 18, 21000}, {900, 30000, 990, 29000},
                                    {0, 40000, 3, 40000},   {19000, 990000, 19100, 999000}};
  for (const auto& c : counts) {
    SCOPED_TRACE(std::to_string(c[0]) + "/" + std::to_string(c[1]) + " vs " + std::to_string(c[2]) + "/" +
                 std::to_string(c[3]));
    const double aa = 1 + c[0], ba = 1 + c[1] - c[0], ab = 1 + c[2], bb = 1 + c[3] - c[2];
    const double exact = detail::ProbabilityBBeatsAExact(aa, ba, ab, bb);
    EXPECT_NEAR(exact, detail::ProbabilityBBeatsAQuadrature(aa, ba, ab, bb), 1e-9);
    EXPECT_NEAR(exact, ProbabilityBBeatsA({c[0], c[1]}, {c[2], c[3]}), 1e-12);
    // The other way round is the complement (ties have probability 0).
    EXPECT_NEAR(exact + detail::ProbabilityBBeatsAExact(ab, bb, aa, ba), 1, 1e-12);
  }
}

TEST(ProbabilityBBeatsA, DegenerateInputs) {
  EXPECT_NEAR(ProbabilityBBeatsA({0, 0}, {0, 0}), 0.5, 1e-12);  // the priors alone
  EXPECT_NEAR(ProbabilityBBeatsA({0, 0}, {1, 1}), 2.0 / 3, 1e-12);
  EXPECT_NEAR(ProbabilityBBeatsA({7, 7}, {7, 7}), 0.5, 1e-12);
  EXPECT_NEAR(ProbabilityBBeatsA({0, 10000000}, {0, 10000000}), 0.5, 1e-9);
  EXPECT_NEAR(ProbabilityBBeatsA({10000000, 10000000}, {10000000, 10000000}), 0.5, 1e-9);
  EXPECT_NEAR(ProbabilityBBeatsA({5000000, 10000000}, {5000000, 10000000}), 0.5, 1e-9);
  EXPECT_NEAR(ProbabilityBBeatsA({0, 10000000}, {10000000, 10000000}), 1, 1e-12);
  EXPECT_NEAR(ProbabilityBBeatsA({10000000, 10000000}, {0, 10000000}), 0, 1e-12);
  EXPECT_NEAR(ProbabilityBBeatsA({0, 1}, {1, 1}), 5.0 / 6, 1e-12);  // Beta(1, 2) against Beta(2, 1)
  ExpectInvalid([] { ProbabilityBBeatsA({-1, 5}, {1, 5}); });
  ExpectInvalid([] { ProbabilityBBeatsA({1, 5}, {6, 5}); });
}

TEST(ProbabilityBBeatsA, IsFastForLargeCounts) {
  auto start = std::chrono::steady_clock::now();
  double sum = 0;
  for (std::int64_t n = 1000000; n <= 10000000; n += 1000000)
    sum += ProbabilityBBeatsA({n / 10, n}, {n / 10 + 300, n}) + ProbabilityBBeatsA({n / 2, n}, {n / 2, n + 7});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(sum, 0);
  EXPECT_LT(seconds / 20, 0.05) << "seconds per call";
}

// ---------------------------------------------------------------------------------------
// Welch's t-test

void ExpectWelch(const MeanComparison& r, const reference::Row& row, std::size_t first) {
  const double se = Double(row[first + 1]);
  EXPECT_TRUE(Close(r.difference, Double(row[first]), 1e-9, se * 1e-3));
  EXPECT_TRUE(Close(r.standard_error, se));
  EXPECT_TRUE(Close(r.t, Double(row[first + 2]), 1e-9, 1e-3));
  EXPECT_TRUE(Close(r.degrees_of_freedom, Double(row[first + 3])));
  EXPECT_TRUE(Close(r.p_value, Double(row[first + 4])));
  EXPECT_TRUE(Close(r.confidence, 1 - Double(row[first + 4])));
  EXPECT_TRUE(Close(r.ci_lower, Double(row[first + 5]), 1e-9, se));
  EXPECT_TRUE(Close(r.ci_upper, Double(row[first + 6]), 1e-9, se));
  ExpectSameOptional(r.relative_lift, Optional(row[first + 7]));
}

TEST(Welch, MatchesTheReference) {
  for (const auto& row : reference::Rows("welch")) {
    SCOPED_TRACE(Describe(row));
    auto r = CompareMeans(SampleMoments{Int(row[0]), Double(row[1]), Double(row[2])},
                          SampleMoments{Int(row[3]), Double(row[4]), Double(row[5])}, Double(row[6]));
    ASSERT_TRUE(r.has_value());
    ExpectWelch(*r, row, 7);
  }
}

TEST(Welch, MatchesTheReferenceFromSums) {
  for (const auto& row : reference::Rows("welch_sums")) {
    SCOPED_TRACE(Describe(row));
    SummaryStats a{Int(row[0]), Double(row[1]), Double(row[2])};
    SummaryStats b{Int(row[3]), Double(row[4]), Double(row[5])};
    // The moments of the data itself, which the sums only approximate.
    SampleMoments ma = MomentsOf(a), mb = MomentsOf(b);
    EXPECT_TRUE(Close(ma.mean, Double(row[7]), 1e-12));
    EXPECT_TRUE(Close(ma.variance, Double(row[8]), 1e-11));
    EXPECT_TRUE(Close(mb.mean, Double(row[9]), 1e-12));
    EXPECT_TRUE(Close(mb.variance, Double(row[10]), 1e-11));
    auto r = CompareMeans(a, b, Double(row[6]));
    ASSERT_TRUE(r.has_value());
    ExpectWelch(*r, row, 11);
  }
}

TEST(Welch, MomentsOfDegenerateSums) {
  SampleMoments empty = MomentsOf({0, 0, 0});
  EXPECT_EQ(empty.mean, 0);
  EXPECT_EQ(empty.variance, 0);
  SampleMoments one = MomentsOf({1, 4.5, 20.25});
  EXPECT_EQ(one.mean, 4.5);
  EXPECT_EQ(one.variance, 0);

  // Constant data summed naively leaves rounding noise in sum_squares: still exactly 0.
  SummaryStats constant;
  for (int i = 0; i < 1000; ++i) {
    constant.count++;
    constant.sum += 0.1;
    constant.sum_squares += 0.1 * 0.1;
  }
  EXPECT_NEAR(MomentsOf(constant).mean, 0.1, 1e-14);
  EXPECT_EQ(MomentsOf(constant).variance, 0);
  EXPECT_EQ(MomentsOf({3, 3 * 1e9, 3 * 1e18}).variance, 0);

  EXPECT_DOUBLE_EQ(MomentsOf({3, 6, 14}).variance, 1);  // 1, 2, 3
  ExpectInvalid([] { MomentsOf({-1, 0, 0}); });
  ExpectInvalid([] { MomentsOf({2, std::numeric_limits<double>::infinity(), 1}); });
  ExpectInvalid([] { MomentsOf({2, 1, std::numeric_limits<double>::quiet_NaN()}); });
}

TEST(Welch, DegenerateInputs) {
  // Fewer than two observations: no sample variance.
  EXPECT_FALSE(CompareMeans(SampleMoments{1, 5, 0}, SampleMoments{100, 5, 1}, 0.95));
  EXPECT_FALSE(CompareMeans(SampleMoments{100, 5, 1}, SampleMoments{0, 0, 0}, 0.95));
  EXPECT_FALSE(CompareMeans(SummaryStats{0, 0, 0}, SummaryStats{0, 0, 0}, 0.95));
  // Both constant: no standard error.
  EXPECT_FALSE(CompareMeans(SampleMoments{10, 5, 0}, SampleMoments{10, 6, 0}, 0.95));
  EXPECT_FALSE(CompareMeans(SummaryStats{10, 0, 0}, SummaryStats{10, 0, 0}, 0.95));

  // One constant branch: the other carries all the variance and all the degrees of freedom.
  auto one = CompareMeans(SampleMoments{10, 5, 0}, SampleMoments{21, 6, 4}, 0.95);
  ASSERT_TRUE(one);
  EXPECT_DOUBLE_EQ(one->degrees_of_freedom, 20);
  EXPECT_TRUE(std::isfinite(one->p_value));

  // A zero baseline has no relative lift.
  auto zero = CompareMeans(SampleMoments{10, 0, 1}, SampleMoments{10, 1, 1}, 0.95);
  ASSERT_TRUE(zero);
  EXPECT_FALSE(zero->relative_lift);

  // Equal means: t = 0, p = 1, a symmetric interval.
  auto equal = CompareMeans(SampleMoments{50, 3, 2}, SampleMoments{60, 3, 5}, 0.95);
  ASSERT_TRUE(equal);
  EXPECT_EQ(equal->t, 0);
  EXPECT_DOUBLE_EQ(equal->p_value, 1);
  EXPECT_DOUBLE_EQ(equal->ci_lower, -equal->ci_upper);
}

// Variances whose squares underflow (denormal) or overflow: the degrees of freedom are a
// ratio that does not depend on the scale, so they stay what they are at any scale.
TEST(Welch, DegreesOfFreedomAtExtremeScales) {
  const auto reference = CompareMeans(SampleMoments{5, 0, 2}, SampleMoments{9, 1, 3}, 0.95);
  ASSERT_TRUE(reference);
  for (double scale : {1e-320, 1e-300, 1e-160, 1e150, 1e300}) {
    SCOPED_TRACE(scale);
    const auto r = CompareMeans(SampleMoments{5, 0, 2 * scale}, SampleMoments{9, 1, 3 * scale}, 0.95);
    ASSERT_TRUE(r);
    EXPECT_NEAR(r->degrees_of_freedom, reference->degrees_of_freedom, scale < 1e-300 ? 1e-2 : 1e-9);
    for (double x : {r->standard_error, r->t, r->degrees_of_freedom, r->p_value, r->confidence, r->ci_lower,
                     r->ci_upper})
      EXPECT_TRUE(std::isfinite(x)) << x;
  }
  // One side constant, the other's variance denormal: all degrees of freedom are its own.
  const auto tiny = CompareMeans(SampleMoments{10, 5, 0}, SampleMoments{21, 6, 4e-321}, 0.95);
  ASSERT_TRUE(tiny);
  EXPECT_DOUBLE_EQ(tiny->degrees_of_freedom, 20);
  EXPECT_EQ(tiny->p_value, 0);
  // A mean so close to 0 that the lift would overflow has none.
  const auto near_zero = CompareMeans(SampleMoments{10, 5e-324, 1}, SampleMoments{10, 1, 1}, 0.95);
  ASSERT_TRUE(near_zero);
  EXPECT_FALSE(near_zero->relative_lift);
}

TEST(Welch, RefusesInvalidInput) {
  ExpectInvalid([] { CompareMeans(SampleMoments{-2, 0, 1}, SampleMoments{5, 0, 1}, 0.95); });
  ExpectInvalid([] { CompareMeans(SampleMoments{5, 0, -1}, SampleMoments{5, 0, 1}, 0.95); });
  ExpectInvalid([] {
    CompareMeans(SampleMoments{5, std::numeric_limits<double>::quiet_NaN(), 1}, SampleMoments{5, 0, 1}, 0.95);
  });
  ExpectInvalid([] { CompareMeans(SampleMoments{5, 0, 1}, SampleMoments{5, 0, 1}, 1.0); });
}

// ---------------------------------------------------------------------------------------
// Holm-Bonferroni

TEST(Holm, MatchesTheReference) {
  for (const auto& row : reference::Rows("holm")) {
    SCOPED_TRACE(Describe(row));
    auto adjusted = HolmAdjust(reference::Doubles(row[0]));
    auto expected = reference::Doubles(row[1]);
    ASSERT_EQ(adjusted.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_TRUE(Close(adjusted[i], expected[i]));
  }
}

TEST(Holm, KnownValuesAndEdges) {
  EXPECT_TRUE(HolmAdjust({}).empty());
  EXPECT_EQ(HolmAdjust({0.03}), std::vector<double>{0.03});
  // p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02
  auto adjusted = HolmAdjust({0.01, 0.04, 0.03, 0.005});
  const double expected[] = {0.03, 0.06, 0.06, 0.02};
  for (int i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(adjusted[i], expected[i]);
  EXPECT_EQ(HolmAdjust({0.9, 0.5, 1}), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(HolmAdjust({0, 0}), (std::vector<double>{0, 0}));
  ExpectInvalid([] { HolmAdjust({0.5, 1.5}); });
  ExpectInvalid([] { HolmAdjust({-0.1}); });
  ExpectInvalid([] { HolmAdjust({std::numeric_limits<double>::quiet_NaN()}); });
}

// ---------------------------------------------------------------------------------------
// Sample ratio mismatch

TEST(SampleRatio, MatchesTheReference) {
  for (const auto& row : reference::Rows("srm")) {
    SCOPED_TRACE(Describe(row));
    std::vector<std::int64_t> observed;
    for (double v : reference::Doubles(row[0])) observed.push_back(static_cast<std::int64_t>(v));
    std::vector<int> shares;
    for (double v : reference::Doubles(row[1])) shares.push_back(static_cast<int>(v));
    auto r = CheckSampleRatio(observed, shares);
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(Close(r->chi_square, Double(row[2]), 1e-9, 1e-6));
    EXPECT_EQ(r->degrees_of_freedom, Int(row[3]));
    EXPECT_TRUE(Close(r->p_value, Double(row[4])));
    EXPECT_EQ(r->mismatch, row[5] == "1");
  }
}

TEST(SampleRatio, DegenerateInputs) {
  EXPECT_FALSE(CheckSampleRatio({0, 0}, {5000, 5000}));  // nobody yet

  auto perfect = CheckSampleRatio({500, 500}, {5000, 5000});
  ASSERT_TRUE(perfect);
  EXPECT_EQ(perfect->chi_square, 0);
  EXPECT_EQ(perfect->p_value, 1);
  EXPECT_FALSE(perfect->mismatch);

  // Users in a branch allocated nothing: a mismatch whatever else.
  auto leak = CheckSampleRatio({500, 500, 1}, {5000, 5000, 0});
  ASSERT_TRUE(leak);
  EXPECT_EQ(leak->degrees_of_freedom, 1);
  EXPECT_TRUE(std::isinf(leak->chi_square));
  EXPECT_EQ(leak->p_value, 0);
  EXPECT_TRUE(leak->mismatch);

  // Zero shares with nobody in them are left out of the test.
  auto ignored = CheckSampleRatio({500, 0, 520}, {5000, 0, 5000});
  ASSERT_TRUE(ignored);
  EXPECT_EQ(ignored->degrees_of_freedom, 1);
  EXPECT_FALSE(ignored->mismatch);

  // A single branch with everything: nothing to test, or a leak.
  auto single = CheckSampleRatio({0, 1000}, {0, 10000});
  ASSERT_TRUE(single);
  EXPECT_EQ(single->degrees_of_freedom, 0);
  EXPECT_EQ(single->p_value, 1);
  EXPECT_FALSE(single->mismatch);
  EXPECT_TRUE(CheckSampleRatio({3, 1000}, {0, 10000})->mismatch);

  // 50/50 expected, 52/48 seen in 100,000 users: chi-square 160, clearly a mismatch.
  auto skewed = CheckSampleRatio({52000, 48000}, {5000, 5000});
  ASSERT_TRUE(skewed);
  EXPECT_DOUBLE_EQ(skewed->chi_square, 160);
  EXPECT_TRUE(skewed->mismatch);

  ExpectInvalid([] { CheckSampleRatio({1, 2}, {10000}); });
  ExpectInvalid([] { CheckSampleRatio({1, 2}, {5000, 4000}); });
  ExpectInvalid([] { CheckSampleRatio({1, -2}, {5000, 5000}); });
}

}  // namespace
}  // namespace abtest
