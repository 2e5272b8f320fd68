#include "core/outcome.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.hpp"

namespace abtest {
namespace {

// Sample statistics of per-user values, computed the plain way (two passes).
UserValueStats StatsOf(const std::vector<double>& y, const std::vector<double>& x) {
  UserValueStats s;
  s.users = static_cast<std::int64_t>(y.size());
  double n = static_cast<double>(y.size());
  for (std::size_t i = 0; i < y.size(); ++i) {
    s.mean_y += y[i] / n;
    s.mean_x += x[i] / n;
  }
  if (y.size() < 2) return s;
  for (std::size_t i = 0; i < y.size(); ++i) {
    s.var_y += (y[i] - s.mean_y) * (y[i] - s.mean_y) / (n - 1);
    s.var_x += (x[i] - s.mean_x) * (x[i] - s.mean_x) / (n - 1);
    s.cov_xy += (x[i] - s.mean_x) * (y[i] - s.mean_y) / (n - 1);
  }
  return s;
}

RatioStats RatioOf(const std::vector<double>& num, const std::vector<double>& den) {
  UserValueStats s = StatsOf(num, den);
  return RatioStats{s.users, s.mean_y, s.mean_x, s.var_y, s.var_x, s.cov_xy};
}

void ExpectRelative(const std::optional<double>& actual, double expected, double tolerance = 1e-9) {
  ASSERT_TRUE(actual.has_value());
  EXPECT_NEAR(*actual, expected, tolerance * std::max(1.0, std::fabs(expected))) << "expected " << expected;
}

// The data of the SciPy computation whose results are pasted below.
const std::vector<double> kControlY = {0, 0, 3.5, 10, 2, 0, 7.25, 1, 0, 4.0};
const std::vector<double> kControlX = {1, 0, 2, 8, 2, 0, 6, 1, 0, 3.0};
const std::vector<double> kBranchY = {5, 0, 9, 12, 0, 3, 8, 2, 1, 6.5, 0, 4};
const std::vector<double> kBranchX = {4, 1, 6, 9, 0, 2, 5, 2, 0, 5, 0, 3.0};

OutcomeSettings Settings() {
  OutcomeSettings settings;
  settings.min_sample_size = 5;
  return settings;
}

TEST(AnalyzeMeans, MatchesScipyWelch) {
  auto rows = AnalyzeMeans({StatsOf(kControlY, kControlX), StatsOf(kBranchY, kBranchX)}, false, Settings());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_FALSE(rows[0].diff.has_value());
  EXPECT_FALSE(rows[0].p_value.has_value());
  ExpectRelative(rows[1].diff, 1.4333333333333331);
  ExpectRelative(rows[1].diff_ci_low, -1.8820836707755078);
  ExpectRelative(rows[1].diff_ci_high, 4.748750337442174);
  ExpectRelative(rows[1].p_value, 0.37782480171339794);
  ExpectRelative(rows[1].adjusted_p_value, 0.37782480171339794);
  ExpectRelative(rows[1].relative_lift, 0.5165165165165164);
  ExpectRelative(rows[1].lift_ci_low, -0.9130113101912205);
  ExpectRelative(rows[1].lift_ci_high, 1.9460443432242533);
  ExpectRelative(rows[1].prob_beats_control, 0.8164728742568146);
  ExpectRelative(rows[1].sequential_p_value, 1);
  EXPECT_FALSE(rows[1].is_significant);
  EXPECT_FALSE(rows[1].variance_reduction.has_value());
}

TEST(AnalyzeMeans, CupedMatchesScipyOnAdjustedValues) {
  auto rows = AnalyzeMeans({StatsOf(kControlY, kControlX), StatsOf(kBranchY, kBranchX)}, true, Settings());
  ExpectRelative(rows[0].mean, 3.3504519027484134);
  ExpectRelative(rows[1].mean, 3.728790081042988);
  ExpectRelative(rows[0].stddev, 0.6070070236650797);
  ExpectRelative(rows[1].stddev, 0.7397954877676541);
  ExpectRelative(rows[1].diff, 0.3783381782945745);
  ExpectRelative(rows[1].diff_ci_low, -0.2206431876573257);
  ExpectRelative(rows[1].diff_ci_high, 0.9773195442464747);
  ExpectRelative(rows[1].p_value, 0.2025420943269144);
  ExpectRelative(rows[1].relative_lift, 0.1129215369378141);
  ExpectRelative(rows[1].lift_ci_low, -0.06378367977025268);
  ExpectRelative(rows[1].lift_ci_high, 0.28962675364588086);
  ExpectRelative(rows[1].prob_beats_control, 0.9061766699583906);
  ExpectRelative(rows[1].sequential_p_value, 0.9995546977413633);
  ExpectRelative(rows[0].variance_reduction, 0.9655576350445146);
  ExpectRelative(rows[1].variance_reduction, 0.9655576350445146);
}

TEST(AnalyzeRatios, MatchesDeltaMethod) {
  std::vector<double> dc, db;
  for (double x : kControlX) dc.push_back(x + 1);
  for (double x : kBranchX) db.push_back(x + 1);
  auto rows = AnalyzeRatios({RatioOf(kControlY, dc), RatioOf(kBranchY, db)}, Settings());
  ExpectRelative(rows[0].mean, 0.8409090909090909);
  ExpectRelative(rows[1].mean, 1.030612244897959);
  ExpectRelative(rows[0].stddev, 0.38887289737205283);
  ExpectRelative(rows[1].diff, 0.18970315398886817);
  ExpectRelative(rows[1].diff_ci_low, -0.10675109522104825);
  ExpectRelative(rows[1].diff_ci_high, 0.4861574031987846);
  ExpectRelative(rows[1].p_value, 0.2097712440740065);
  ExpectRelative(rows[1].relative_lift, 0.22559293987865403);
  ExpectRelative(rows[1].lift_ci_low, -0.18126189180547725);
  ExpectRelative(rows[1].lift_ci_high, 0.6324477715627853);
}

TEST(AnalyzeMeans, DegenerateInputsGiveNullNotNaN) {
  // No users, one user, zero variance everywhere, control mean 0.
  auto none = AnalyzeMeans({UserValueStats{}, UserValueStats{}}, true, Settings());
  EXPECT_FALSE(none[0].mean.has_value());
  EXPECT_FALSE(none[1].diff.has_value());
  EXPECT_FALSE(none[1].variance_reduction.has_value());
  auto one = AnalyzeMeans({StatsOf({3}, {0}), StatsOf({4}, {0})}, false, Settings());
  ExpectRelative(one[0].mean, 3);
  EXPECT_FALSE(one[0].stddev.has_value());
  EXPECT_FALSE(one[1].p_value.has_value());
  auto constant = AnalyzeMeans({StatsOf({1, 1, 1}, {0, 0, 0}), StatsOf({1, 1}, {0, 0})}, true, Settings());
  EXPECT_FALSE(constant[1].diff.has_value());
  EXPECT_FALSE(constant[1].variance_reduction.has_value());
  auto zero_control = AnalyzeMeans({StatsOf({0, 0, 0}, {0, 0, 0}), StatsOf({1, 2, 0}, {0, 0, 0})}, false, Settings());
  ASSERT_TRUE(zero_control[1].diff.has_value());
  EXPECT_FALSE(zero_control[1].relative_lift.has_value());
  EXPECT_FALSE(zero_control[1].lift_ci_low.has_value());
  auto ratio = AnalyzeRatios({RatioOf({1, 2}, {0, 0}), RatioOf({1, 2}, {1, 1})}, Settings());
  EXPECT_FALSE(ratio[0].mean.has_value());
  EXPECT_FALSE(ratio[1].diff.has_value());
  ExpectRelative(ratio[1].mean, 1.5);
}

TEST(AnalyzeMeans, HolmAcrossChallengersAndMinimumSample) {
  std::vector<double> c = {1, 2, 3, 4, 5, 6}, b1 = {4, 5, 6, 7, 8, 9}, b2 = {1.5, 2, 3, 4.5, 5, 6};
  OutcomeSettings settings = Settings();
  auto rows = AnalyzeMeans({StatsOf(c, c), StatsOf(b1, b1), StatsOf(b2, b2)}, false, settings);
  ASSERT_TRUE(rows[1].p_value && rows[2].p_value);
  double small = std::min(*rows[1].p_value, *rows[2].p_value);
  double large = std::max(*rows[1].p_value, *rows[2].p_value);
  ExpectRelative(std::min(*rows[1].adjusted_p_value, *rows[2].adjusted_p_value), 2 * small);
  ExpectRelative(std::max(*rows[1].adjusted_p_value, *rows[2].adjusted_p_value), std::max(2 * small, large));
  EXPECT_TRUE(rows[1].is_significant);
  settings.min_sample_size = 7;
  EXPECT_FALSE(AnalyzeMeans({StatsOf(c, c), StatsOf(b1, b1)}, false, settings)[1].is_significant);
}

TEST(AnalyzeMeans, PoolingEqualsTheWholeSample) {
  UserValueStats whole = StatsOf({0, 0, 3.5, 10, 2, 0, 7.25, 1, 0, 4.0, 5, 0, 9, 12, 0, 3, 8, 2, 1, 6.5, 0, 4},
                                 {1, 0, 2, 8, 2, 0, 6, 1, 0, 3.0, 4, 1, 6, 9, 0, 2, 5, 2, 0, 5, 0, 3.0});
  UserValueStats pooled = PoolUserValues({StatsOf(kControlY, kControlX), StatsOf(kBranchY, kBranchX), UserValueStats{}});
  EXPECT_EQ(pooled.users, whole.users);
  ExpectRelative(pooled.mean_y, whole.mean_y);
  ExpectRelative(pooled.var_y, whole.var_y);
  ExpectRelative(pooled.var_x, whole.var_x);
  ExpectRelative(pooled.cov_xy, whole.cov_xy);
}

TEST(CumulativeSums, GiveTheSampleStatistics) {
  CumulativeSums sums;
  std::vector<double> n = {1, 4, 2, 8}, d = {1, 2, 2, 3};
  for (std::size_t i = 0; i < n.size(); ++i) {
    ++sums.users;
    sums.sum_n += n[i];
    sums.sum_nn += n[i] * n[i];
    sums.sum_d += d[i];
    sums.sum_dd += d[i] * d[i];
    sums.sum_nd += n[i] * d[i];
  }
  RatioStats expected = RatioOf(n, d);
  RatioStats got = RatioStatsOf(sums);
  ExpectRelative(got.mean_n, expected.mean_n);
  ExpectRelative(got.var_d, expected.var_d);
  ExpectRelative(got.cov_nd, expected.cov_nd);
  ExpectRelative(UserValueStatsOf(sums).var_y, expected.var_n);
}

TEST(AnalyzeMeans, RefusesInvalidInput) {
  UserValueStats bad;
  bad.users = -1;
  EXPECT_THROW(AnalyzeMeans({bad}, false, Settings()), Error);
  OutcomeSettings settings = Settings();
  settings.confidence_level = 1;
  EXPECT_THROW(AnalyzeMeans({}, false, settings), Error);
  RatioStats nan_ratio;
  nan_ratio.mean_n = std::nan("");
  EXPECT_THROW(AnalyzeRatios({nan_ratio}, Settings()), Error);
}

}  // namespace
}  // namespace abtest
