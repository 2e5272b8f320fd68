#include "core/sequential.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "core/error.hpp"
#include "core/statistics.hpp"
#include "statistics_reference.hpp"

namespace abtest {
namespace {

TEST(Sequential, MatchesTheReference) {
  for (const auto& row : reference::Rows("sequential")) {
    SCOPED_TRACE(reference::Describe(row));
    double p = SequentialPValue({reference::Int(row[0]), reference::Int(row[1])},
                                {reference::Int(row[2]), reference::Int(row[3])}, reference::Double(row[4]));
    EXPECT_TRUE(reference::Close(p, reference::Double(row[5])));
  }
}

TEST(Sequential, DegenerateInputs) {
  EXPECT_EQ(SequentialPValue({0, 0}, {0, 0}), 1);
  EXPECT_EQ(SequentialPValue({0, 0}, {5, 10}), 1);
  EXPECT_EQ(SequentialPValue({0, 500}, {0, 500}), 1);        // no conversions yet: V = 0
  EXPECT_EQ(SequentialPValue({0, 100}, {100, 100}), 1);      // V = 0 although the rates differ
  EXPECT_EQ(SequentialPValue({300, 1000}, {300, 1000}), 1);  // no difference: Lambda < 1
  // Overwhelming evidence: exp of a huge exponent, computed in logs, gives 0 and no NaN.
  EXPECT_EQ(SequentialPValue({1000, 1000000}, {500000, 1000000}), 0);
  EXPECT_EQ(SequentialPValue({1, 1000000}, {999999, 1000000}, 1.0), 0);
  EXPECT_EQ(SequentialPValue({1, 1000000}, {999999, 1000000}, 1e-300), 1);  // no alternative to weigh
}

TEST(Sequential, RefusesInvalidInput) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double tau2 : {0.0, -1e-4, nan, std::numeric_limits<double>::infinity()}) {
    SCOPED_TRACE(tau2);
    EXPECT_THROW(SequentialPValue({1, 10}, {2, 10}, tau2), Error);
  }
  EXPECT_THROW(SequentialPValue({11, 10}, {2, 10}), Error);
  EXPECT_THROW(UpdateSequentialPValue(1.5, {1, 10}, {2, 10}), Error);
  EXPECT_THROW(UpdateSequentialPValue(nan, {1, 10}, {2, 10}), Error);
}

TEST(Sequential, IsARunningMinimum) {
  // Evidence that comes and goes: the always-valid p-value keeps its lowest value.
  std::vector<Look> looks = {
      {{100, 1000}, {100, 1000}}, {{200, 2000}, {270, 2000}}, {{300, 3000}, {310, 3000}}, {{400, 4000}, {400, 4000}}};
  auto path = SequentialPValues(looks);
  ASSERT_EQ(path.size(), 4u);
  EXPECT_EQ(path[0], 1);
  EXPECT_LT(path[1], 0.2);
  EXPECT_EQ(path[2], path[1]);
  EXPECT_EQ(path[3], path[1]);
  EXPECT_EQ(path[1], SequentialPValue(looks[1].a, looks[1].b));
  EXPECT_EQ(UpdateSequentialPValue(0.01, looks[3].a, looks[3].b), 0.01);
  EXPECT_TRUE(SequentialPValues({}).empty());
}

// A/A experiments: both branches convert at 10%, 20 looks of 500 users per branch each.
struct Simulation {
  int experiments = 0;
  int naive_final = 0;     // naive p < 0.05 at the final look only
  int naive_peeking = 0;   // naive p < 0.05 at any of the looks
  int sequential_any = 0;  // always-valid p < 0.05 at any look
};

Simulation SimulateExperiments(double rate_a, double rate_b, int experiments, std::uint64_t seed) {
  constexpr int kLooks = 20;
  constexpr int kBatch = 500;
  std::mt19937_64 random(seed);
  std::binomial_distribution<std::int64_t> draw_a(kBatch, rate_a), draw_b(kBatch, rate_b);
  Simulation s;
  s.experiments = experiments;
  for (int e = 0; e < experiments; ++e) {
    Conversions a, b;
    double sequential = 1;
    bool naive_crossed = false, sequential_crossed = false;
    double naive = 1;
    for (int look = 0; look < kLooks; ++look) {
      a.trials += kBatch;
      a.successes += draw_a(random);
      b.trials += kBatch;
      b.successes += draw_b(random);
      naive = CompareProportions(a, b, 0.95)->p_value;
      naive_crossed |= naive < 0.05;
      sequential = UpdateSequentialPValue(sequential, a, b);
      sequential_crossed |= sequential < 0.05;
    }
    s.naive_final += naive < 0.05;
    s.naive_peeking += naive_crossed;
    s.sequential_any += sequential_crossed;
  }
  return s;
}

double Rate(int count, int of) { return static_cast<double>(count) / of; }

TEST(Sequential, AAExperimentsKeepTheFalsePositiveRate) {
  Simulation s = SimulateExperiments(0.1, 0.1, 2000, 20240611);
  const double final_rate = Rate(s.naive_final, s.experiments);
  const double peeking_rate = Rate(s.naive_peeking, s.experiments);
  const double sequential_rate = Rate(s.sequential_any, s.experiments);
  std::printf(
      "[ info     ] A/A, %d experiments, 20 looks: naive at the final look %.2f%%, naive peeking at "
      "every look %.2f%%, always-valid at every look %.2f%%\n",
      s.experiments, 100 * final_rate, 100 * peeking_rate, 100 * sequential_rate);
  // One look: the naive test holds its 5% (3..7% allows 4 standard errors of simulation noise).
  EXPECT_GE(final_rate, 0.03);
  EXPECT_LE(final_rate, 0.07);
  // Every look: the always-valid p-value stays within 5%, plus 1.5 points of noise.
  EXPECT_LE(sequential_rate, 0.065);
  // The problem it solves: peeking at the naive p-value finds "effects" far more often.
  EXPECT_GE(peeking_rate, 0.10);
  EXPECT_GE(peeking_rate, 2 * final_rate);
}

TEST(Sequential, DetectsARealEffect) {
  // 10% against 12% is found by the last look in almost every experiment.
  Simulation s = SimulateExperiments(0.10, 0.12, 300, 7);
  const double power = Rate(s.sequential_any, s.experiments);
  std::printf("[ info     ] 10%% vs 12%%, %d experiments: always-valid detection %.1f%%, naive final look %.1f%%\n",
              s.experiments, 100 * power, 100 * Rate(s.naive_final, s.experiments));
  EXPECT_GE(power, 0.9);
}

}  // namespace
}  // namespace abtest
