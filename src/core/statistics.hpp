// Fixed-horizon statistics for comparing two branches, and the checks around them.
//
// Every comparison is of branch b against branch a (the control): differences are
// b - a, lifts are relative to a. Distributions and special functions come from
// Boost.Math; nothing here is a hand-written CDF.
//
// Two kinds of bad input are told apart:
// - invalid input (negative counts, more successes than trials, a confidence level
//   outside (0, 1), a NaN) is a caller's mistake: Error kInvalidParameter;
// - degenerate input (no data, a rate of 0 or 1, zero variance, fewer than two
//   observations) is a normal state of a young experiment: std::nullopt or a
//   defined value, as documented at each function. Never NaN, never an exception.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace abtest {

// Conversions of one branch: how many of `trials` users converted.
struct Conversions {
  std::int64_t successes = 0;
  std::int64_t trials = 0;
};

// Throws kInvalidParameter for negative counts or more successes than trials; `branch`
// names the branch in the message ("a", "b", or a branch name).
void ValidateConversions(const Conversions& conversions, const char* branch);

struct ProportionComparison {
  double rate_a = 0;
  double rate_b = 0;
  double difference = 0;  // rate_b - rate_a
  // Two-sided two-proportion z-test, pooled variance (the null says the rates are equal).
  double z = 0;
  double p_value = 1;
  double confidence = 0;  // 1 - p_value
  // Wald interval of the difference, unpooled variance (no null to pool under).
  double ci_lower = 0;
  double ci_upper = 0;
  std::optional<double> relative_lift;  // difference / rate_a; nullopt when rate_a = 0
};

// nullopt when either branch has no trials. When both rates are 0, or both are 1,
// the pooled variance is 0 and the rates are equal: z = 0, p = 1. When the unpooled
// variance is 0 (each rate is 0 or 1) the Wald interval collapses to the difference.
// Throws kInvalidParameter for invalid counts or a confidence level outside (0, 1).
std::optional<ProportionComparison> CompareProportions(const Conversions& a, const Conversions& b,
                                                       double confidence_level);

// The project's rule for a significant result: p < 1 - confidence_level, and both
// branches have at least min_sample_size observations.
bool IsSignificant(double p_value, double confidence_level, std::int64_t n_a, std::int64_t n_b,
                   std::int64_t min_sample_size);

// P(p_b > p_a) under independent Beta(1 + successes, 1 + failures) posteriors
// (uniform priors). Accurate to about 1e-8 (the tests require 1e-8 against SciPy) and
// under 1 ms for counts up to 10^7 and beyond.
// Defined for every valid input: with no data the priors give 0.5.
double ProbabilityBBeatsA(const Conversions& a, const Conversions& b);

// The two ways ProbabilityBBeatsA computes, on Beta(alpha, beta) parameters; public so
// that the tests can hold them against each other. Exact takes min(parameters) terms,
// so it is meant for integer parameters of which one is small.
namespace detail {
double ProbabilityBBeatsAExact(double alpha_a, double beta_a, double alpha_b, double beta_b);
double ProbabilityBBeatsAQuadrature(double alpha_a, double beta_a, double alpha_b, double beta_b);
}  // namespace detail

// Sufficient statistics of a numeric metric, as SQL aggregates give them.
struct SummaryStats {
  std::int64_t count = 0;
  double sum = 0;
  double sum_squares = 0;
};

// Mean and sample variance (divisor n - 1) of a numeric metric.
struct SampleMoments {
  std::int64_t count = 0;
  double mean = 0;
  double variance = 0;
};

// Moments from sums. The variance is computed as (sum_squares - sum * mean) / (n - 1)
// with a fused multiply-add, clamped at 0, and set to 0 when it is below the rounding
// error of sum_squares (constant data must give exactly 0, not noise). With count < 2
// the variance is 0. Throws kInvalidParameter for a negative count or non-finite sums.
SampleMoments MomentsOf(const SummaryStats& stats);

struct MeanComparison {
  double mean_a = 0;
  double mean_b = 0;
  double difference = 0;  // mean_b - mean_a
  double standard_error = 0;
  double t = 0;
  double degrees_of_freedom = 0;  // Welch-Satterthwaite
  double p_value = 1;             // two-sided
  double confidence = 0;          // 1 - p_value
  double ci_lower = 0;
  double ci_upper = 0;
  std::optional<double> relative_lift;  // difference / mean_a; nullopt when mean_a = 0 or the ratio overflows
};

// Welch's t-test. nullopt when either branch has fewer than 2 observations (no sample
// variance), or when both variances are 0 (no standard error: the t statistic does not
// exist, as R's "data are essentially constant"). Throws kInvalidParameter for a
// negative count or variance, a non-finite moment, or a confidence level outside (0, 1).
std::optional<MeanComparison> CompareMeans(const SampleMoments& a, const SampleMoments& b, double confidence_level);
std::optional<MeanComparison> CompareMeans(const SummaryStats& a, const SummaryStats& b, double confidence_level);

// Holm-Bonferroni adjusted p-values, in the order given: step-down, made monotone,
// capped at 1. Empty in, empty out. Throws kInvalidParameter for a p-value outside [0, 1].
std::vector<double> HolmAdjust(const std::vector<double>& p_values);

// Below this p-value the observed split is called a sample ratio mismatch.
constexpr double kSampleRatioMismatchThreshold = 0.001;

struct SampleRatioCheck {
  double chi_square = 0;
  int degrees_of_freedom = 0;  // branches with a share > 0, minus 1
  double p_value = 1;
  bool mismatch = false;  // p_value < kSampleRatioMismatchThreshold
};

// Chi-square goodness of fit of observed users per branch against the allocation in
// basis points (src/core/allocation.hpp). nullopt when nobody was observed. Rules:
// - a branch with share 0 and observed users cannot happen without a bug in routing or
//   logging: chi_square = +infinity, p = 0, mismatch;
// - with a single branch of share > 0 (df = 0) and nobody elsewhere, there is nothing to
//   test: chi_square = 0, p = 1.
// Throws kInvalidParameter when the lengths differ, a count is negative or the shares
// do not sum to 10000.
std::optional<SampleRatioCheck> CheckSampleRatio(const std::vector<std::int64_t>& observed,
                                                 const std::vector<int>& expected_basis_points);

}  // namespace abtest
