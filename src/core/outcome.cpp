#include "core/outcome.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include <boost/math/distributions/normal.hpp>

#include "core/error.hpp"
#include "core/sequential.hpp"
#include "core/statistics.hpp"

namespace abtest {
namespace {

[[noreturn]] void Refuse(const std::string& message) { throw Error(ErrorKind::kInvalidParameter, message); }

void RequireFinite(double value, const char* what) {
  if (!std::isfinite(value)) Refuse(std::string(what) + " must be finite");
}

void Validate(const UserValueStats& s) {
  if (s.users < 0) Refuse("a branch's number of users must not be negative");
  for (double value : {s.mean_y, s.var_y, s.mean_x, s.var_x, s.cov_xy}) RequireFinite(value, "per-user statistics");
  if (s.var_y < 0 || s.var_x < 0) Refuse("variances must not be negative");
}

void Validate(const RatioStats& s) {
  if (s.users < 0) Refuse("a branch's number of users must not be negative");
  for (double value : {s.mean_n, s.mean_d, s.var_n, s.var_d, s.cov_nd}) RequireFinite(value, "per-user statistics");
  if (s.var_n < 0 || s.var_d < 0) Refuse("variances must not be negative");
}

void ValidateSettings(const OutcomeSettings& settings) {
  if (!(settings.confidence_level > 0 && settings.confidence_level < 1))
    Refuse("confidence_level must be between 0 and 1 (exclusive), not " + std::to_string(settings.confidence_level));
}

const boost::math::normal_distribution<double> kStandardNormal;

double NormalCritical(double confidence_level) {
  return -boost::math::quantile(kStandardNormal, (1 - confidence_level) / 2);
}

double Phi(double z) { return boost::math::cdf(kStandardNormal, z); }

std::optional<double> Finite(double value) {
  if (!std::isfinite(value)) return std::nullopt;
  return value;
}

// A branch's estimate and its squared standard error, as the comparisons need them.
struct Estimate {
  std::int64_t users = 0;
  double value = 0;  // mean, or R
  double se2 = 0;    // squared standard error of `value`
};

// The columns every comparison shares, from the two estimates and the difference's
// standard error: the lift by the delta method, P(beats), the always-valid p-value.
void SetSharedColumns(OutcomeRow& row, const Estimate& control, const Estimate& branch, double se,
                      const OutcomeSettings& settings) {
  const double diff = branch.value - control.value;
  const double z = NormalCritical(settings.confidence_level);
  if (control.value != 0) {
    const double m_c = control.value;
    const double lift = diff / m_c;
    const double lift_var = branch.se2 / (m_c * m_c) + branch.value * branch.value * control.se2 / (m_c * m_c * m_c * m_c);
    if (std::isfinite(lift) && std::isfinite(lift_var)) {
      row.relative_lift = lift;
      row.lift_ci_low = lift - z * std::sqrt(lift_var);
      row.lift_ci_high = lift + z * std::sqrt(lift_var);
    }
  }
  row.prob_beats_control = Phi(diff / se);
  row.sequential_p_value = SequentialPValueOfEstimate(diff, se * se, settings.mixing_variance);
}

// Holm across the challengers that have a p-value; significance is decided on the
// adjusted value, with the minimum sample size in both branches.
void AdjustAndDecide(std::vector<OutcomeRow>& rows, const OutcomeSettings& settings) {
  std::vector<double> p_values;
  std::vector<std::size_t> which;
  for (std::size_t i = 1; i < rows.size(); ++i)
    if (rows[i].p_value) {
      p_values.push_back(*rows[i].p_value);
      which.push_back(i);
    }
  std::vector<double> adjusted = HolmAdjust(p_values);
  for (std::size_t k = 0; k < which.size(); ++k) {
    OutcomeRow& row = rows[which[k]];
    row.adjusted_p_value = adjusted[k];
    row.is_significant = IsSignificant(adjusted[k], settings.confidence_level, rows[0].users, row.users,
                                       settings.min_sample_size);
  }
}

}  // namespace

UserValueStats PoolUserValues(const std::vector<UserValueStats>& branches) {
  UserValueStats pooled;
  double sum_y = 0, sum_x = 0;
  for (const UserValueStats& b : branches) {
    pooled.users += b.users;
    sum_y += static_cast<double>(b.users) * b.mean_y;
    sum_x += static_cast<double>(b.users) * b.mean_x;
  }
  if (pooled.users == 0) return pooled;
  const double n = static_cast<double>(pooled.users);
  pooled.mean_y = sum_y / n;
  pooled.mean_x = sum_x / n;
  if (pooled.users < 2) return pooled;
  // Chan et al.: within-branch sums of squares plus the between-branch part.
  double m2_y = 0, m2_x = 0, c_xy = 0;
  for (const UserValueStats& b : branches) {
    if (b.users == 0) continue;
    const double n_b = static_cast<double>(b.users);
    const double dy = b.mean_y - pooled.mean_y, dx = b.mean_x - pooled.mean_x;
    m2_y += (n_b - 1) * b.var_y + n_b * dy * dy;
    m2_x += (n_b - 1) * b.var_x + n_b * dx * dx;
    c_xy += (n_b - 1) * b.cov_xy + n_b * dx * dy;
  }
  pooled.var_y = std::max(0.0, m2_y / (n - 1));
  pooled.var_x = std::max(0.0, m2_x / (n - 1));
  pooled.cov_xy = c_xy / (n - 1);
  return pooled;
}

std::vector<OutcomeRow> AnalyzeMeans(const std::vector<UserValueStats>& input, bool cuped,
                                     const OutcomeSettings& settings) {
  ValidateSettings(settings);
  for (const UserValueStats& b : input) Validate(b);
  std::vector<UserValueStats> branches = input;
  std::optional<double> variance_reduction;
  if (cuped) {
    // theta from all users; each user's Y' = Y - theta (X - mean(X)), so a branch's
    // mean and sample variance of Y' follow from its own moments.
    const UserValueStats pooled = PoolUserValues(input);
    const double theta = pooled.var_x > 0 ? pooled.cov_xy / pooled.var_x : 0;
    for (UserValueStats& b : branches) {
      const double var_adjusted = b.var_y - 2 * theta * b.cov_xy + theta * theta * b.var_x;
      b.mean_y = b.mean_y - theta * (b.mean_x - pooled.mean_x);
      b.var_y = std::max(0.0, var_adjusted);
    }
    if (pooled.users >= 2 && pooled.var_y > 0) {
      const double var_all = std::max(0.0, pooled.var_y - 2 * theta * pooled.cov_xy + theta * theta * pooled.var_x);
      variance_reduction = 1 - var_all / pooled.var_y;
    }
  }

  std::vector<OutcomeRow> rows(branches.size());
  for (std::size_t i = 0; i < branches.size(); ++i) {
    const UserValueStats& b = branches[i];
    OutcomeRow& row = rows[i];
    row.users = b.users;
    row.variance_reduction = variance_reduction;
    if (b.users > 0) row.mean = b.mean_y;
    if (b.users > 1) row.stddev = std::sqrt(b.var_y);
  }
  if (branches.empty()) return rows;
  const UserValueStats& control = branches[0];
  for (std::size_t i = 1; i < branches.size(); ++i) {
    const UserValueStats& b = branches[i];
    std::optional<MeanComparison> c = CompareMeans(SampleMoments{control.users, control.mean_y, control.var_y},
                                                   SampleMoments{b.users, b.mean_y, b.var_y}, settings.confidence_level);
    if (!c) continue;
    OutcomeRow& row = rows[i];
    row.diff = c->difference;
    row.diff_ci_low = c->ci_lower;
    row.diff_ci_high = c->ci_upper;
    row.p_value = c->p_value;
    const Estimate e_c{control.users, control.mean_y, control.var_y / static_cast<double>(control.users)};
    const Estimate e_b{b.users, b.mean_y, b.var_y / static_cast<double>(b.users)};
    SetSharedColumns(row, e_c, e_b, c->standard_error, settings);
  }
  AdjustAndDecide(rows, settings);
  return rows;
}

std::vector<OutcomeRow> AnalyzeRatios(const std::vector<RatioStats>& branches, const OutcomeSettings& settings) {
  ValidateSettings(settings);
  for (const RatioStats& b : branches) Validate(b);
  // R and var(R) by the delta method, where they exist.
  std::vector<std::optional<Estimate>> estimates(branches.size());
  std::vector<OutcomeRow> rows(branches.size());
  for (std::size_t i = 0; i < branches.size(); ++i) {
    const RatioStats& b = branches[i];
    OutcomeRow& row = rows[i];
    row.users = b.users;
    if (b.users == 0 || b.mean_d == 0) continue;
    const double r = b.mean_n / b.mean_d;
    if (!std::isfinite(r)) continue;
    row.mean = r;
    if (b.users < 2) continue;
    const double n = static_cast<double>(b.users);
    const double var_r =
        std::max(0.0, (b.var_n - 2 * r * b.cov_nd + r * r * b.var_d) / (n * b.mean_d * b.mean_d));
    if (!std::isfinite(var_r)) continue;
    row.stddev = Finite(std::sqrt(n * var_r));
    estimates[i] = Estimate{b.users, r, var_r};
  }
  if (branches.empty()) return rows;
  const double z = NormalCritical(settings.confidence_level);
  for (std::size_t i = 1; i < branches.size(); ++i) {
    if (!estimates[0] || !estimates[i]) continue;
    const Estimate& c = *estimates[0];
    const Estimate& b = *estimates[i];
    const double se2 = c.se2 + b.se2;
    if (!(se2 > 0) || !std::isfinite(se2)) continue;
    const double se = std::sqrt(se2);
    const double diff = b.value - c.value;
    OutcomeRow& row = rows[i];
    row.diff = diff;
    row.diff_ci_low = diff - z * se;
    row.diff_ci_high = diff + z * se;
    row.p_value = 2 * boost::math::cdf(boost::math::complement(kStandardNormal, std::fabs(diff / se)));
    SetSharedColumns(row, c, b, se, settings);
  }
  AdjustAndDecide(rows, settings);
  return rows;
}

UserValueStats UserValueStatsOf(const CumulativeSums& sums) {
  SampleMoments y = MomentsOf(SummaryStats{sums.users, sums.sum_n, sums.sum_nn});
  UserValueStats stats;
  stats.users = y.count;
  stats.mean_y = y.mean;
  stats.var_y = y.variance;
  return stats;
}

RatioStats RatioStatsOf(const CumulativeSums& sums) {
  SampleMoments n = MomentsOf(SummaryStats{sums.users, sums.sum_n, sums.sum_nn});
  SampleMoments d = MomentsOf(SummaryStats{sums.users, sums.sum_d, sums.sum_dd});
  RatioStats stats;
  stats.users = sums.users;
  stats.mean_n = n.mean;
  stats.mean_d = d.mean;
  stats.var_n = n.variance;
  stats.var_d = d.variance;
  if (sums.users >= 2) {
    const double count = static_cast<double>(sums.users);
    stats.cov_nd = (sums.sum_nd - sums.sum_n * sums.sum_d / count) / (count - 1);
  }
  return stats;
}

}  // namespace abtest
