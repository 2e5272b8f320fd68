// User-level outcome analysis (ab_analyze): one value per user of the experiment,
// compared between branches. The unit of analysis is the unit of randomization.
//
// Everything here works on sufficient statistics per branch (counts, means, sample
// variances and covariances as PostgreSQL's numerically stable aggregates return
// them), never on per-user values: the memory is independent of the number of users.
// The formulas are written out in the README ("Analyse outcomes you already store")
// and checked against SciPy by test/reference/outcome_reference.py.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace abtest {

// One branch's per-user values Y and, for CUPED, each user's pre-period covariate X.
// Sample statistics (divisor n - 1; 0 with fewer than 2 users).
struct UserValueStats {
  std::int64_t users = 0;
  double mean_y = 0;
  double var_y = 0;
  double mean_x = 0;
  double var_x = 0;
  double cov_xy = 0;
};

// One branch's per-user numerators N and denominators D of a ratio metric.
struct RatioStats {
  std::int64_t users = 0;
  double mean_n = 0;
  double mean_d = 0;
  double var_n = 0;
  double var_d = 0;
  double cov_nd = 0;
};

struct OutcomeSettings {
  double confidence_level = 0.95;
  std::int64_t min_sample_size = 100;
  double mixing_variance = 1e-4;  // tau^2 of the always-valid p-value (sequential.hpp)
};

// One row of ab_analyze. The control's comparison fields are empty; an empty field
// is NULL in SQL. diff and relative_lift exist whenever both means do (the lift not
// for a control mean of 0); intervals, p-values and probabilities need two users in
// each branch and some variance.
struct OutcomeRow {
  std::int64_t users = 0;
  std::optional<double> mean;    // of the values the test runs on (CUPED-adjusted with CUPED); R for a ratio
  std::optional<double> stddev;  // sample standard deviation of those values; sqrt(n var(R)) for a ratio
  std::optional<double> diff;
  std::optional<double> diff_ci_low;
  std::optional<double> diff_ci_high;
  std::optional<double> relative_lift;
  std::optional<double> lift_ci_low;
  std::optional<double> lift_ci_high;
  std::optional<double> p_value;
  std::optional<double> adjusted_p_value;  // Holm across the challengers
  bool is_significant = false;
  std::optional<double> prob_beats_control;
  std::optional<double> sequential_p_value;
  std::optional<double> variance_reduction;  // CUPED only, the same in every row
};

// Welch's t-test of each branch against branches[0] (the control) on per-user values,
// CUPED-adjusted when `cuped` is true (theta from all users of all branches).
// Throws kInvalidParameter for negative counts or variances, non-finite statistics or
// a confidence level outside (0, 1).
std::vector<OutcomeRow> AnalyzeMeans(const std::vector<UserValueStats>& branches, bool cuped,
                                     const OutcomeSettings& settings);

// The delta-method z-test of R_b - R_c for a ratio metric.
std::vector<OutcomeRow> AnalyzeRatios(const std::vector<RatioStats>& branches, const OutcomeSettings& settings);

// The pooled statistics of all users of all branches (Chan's parallel combination).
UserValueStats PoolUserValues(const std::vector<UserValueStats>& branches);

// The cumulative sums behind ab_analyze_over_time: at one step, one branch's users and
// the sums of their values, squares and (ratio metrics) cross products.
struct CumulativeSums {
  std::int64_t users = 0;
  double sum_n = 0;   // sum of Y (or N)
  double sum_nn = 0;  // sum of Y^2 (or N^2)
  double sum_d = 0;   // ratio metrics: sum of D
  double sum_dd = 0;  // sum of D^2
  double sum_nd = 0;  // sum of N * D
};

UserValueStats UserValueStatsOf(const CumulativeSums& sums);
RatioStats RatioStatsOf(const CumulativeSums& sums);

}  // namespace abtest
