#include "core/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include <boost/math/distributions/beta.hpp>
#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <boost/math/quadrature/gauss_kronrod.hpp>
#include <boost/math/special_functions/gamma.hpp>

#include "core/allocation.hpp"
#include "core/error.hpp"

namespace abtest {
namespace {

[[noreturn]] void Refuse(const std::string& message) { throw Error(ErrorKind::kInvalidParameter, message); }

void ValidateConfidenceLevel(double confidence_level) {
  if (!(confidence_level > 0 && confidence_level < 1))
    Refuse("confidence_level must be between 0 and 1 (exclusive), not " + std::to_string(confidence_level));
}

// The two-sided critical value: the quantile of the lower tail is the accurate one to ask for.
double NormalCritical(double confidence_level) {
  return -boost::math::quantile(boost::math::normal_distribution<double>(), (1 - confidence_level) / 2);
}

double TwoSidedNormalP(double z) {
  return 2 * boost::math::cdf(boost::math::complement(boost::math::normal_distribution<double>(), std::fabs(z)));
}

double LogBeta(double a, double b) {
  return boost::math::lgamma(a) + boost::math::lgamma(b) - boost::math::lgamma(a + b);
}

void ValidateMoments(const SampleMoments& m, const char* branch) {
  if (m.count < 0) Refuse(std::string("count of branch ") + branch + " must not be negative");
  if (!std::isfinite(m.mean) || !std::isfinite(m.variance))
    Refuse(std::string("mean and variance of branch ") + branch + " must be finite");
  if (m.variance < 0) Refuse(std::string("variance of branch ") + branch + " must not be negative");
}

}  // namespace

void ValidateConversions(const Conversions& c, const char* branch) {
  if (c.trials < 0 || c.successes < 0)
    Refuse(std::string("successes and trials of branch ") + branch + " must not be negative");
  if (c.successes > c.trials)
    Refuse(std::string("branch ") + branch + " has more successes (" + std::to_string(c.successes) + ") than trials (" +
           std::to_string(c.trials) + ")");
}

std::optional<ProportionComparison> CompareProportions(const Conversions& a, const Conversions& b,
                                                       double confidence_level) {
  ValidateConversions(a, "a");
  ValidateConversions(b, "b");
  ValidateConfidenceLevel(confidence_level);
  if (a.trials == 0 || b.trials == 0) return std::nullopt;

  const double n_a = static_cast<double>(a.trials);
  const double n_b = static_cast<double>(b.trials);
  ProportionComparison r;
  r.rate_a = static_cast<double>(a.successes) / n_a;
  r.rate_b = static_cast<double>(b.successes) / n_b;
  r.difference = r.rate_b - r.rate_a;

  const double pooled = static_cast<double>(a.successes + b.successes) / (n_a + n_b);
  const double pooled_se = std::sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b));
  // A pooled rate of 0 or 1 means both rates are equal (both 0 or both 1): no evidence.
  if (pooled_se > 0) {
    r.z = r.difference / pooled_se;
    r.p_value = TwoSidedNormalP(r.z);
  }
  r.confidence = 1 - r.p_value;

  const double se = std::sqrt(r.rate_a * (1 - r.rate_a) / n_a + r.rate_b * (1 - r.rate_b) / n_b);
  const double half_width = NormalCritical(confidence_level) * se;
  r.ci_lower = r.difference - half_width;
  r.ci_upper = r.difference + half_width;
  if (r.rate_a > 0) r.relative_lift = r.difference / r.rate_a;
  return r;
}

bool IsSignificant(double p_value, double confidence_level, std::int64_t n_a, std::int64_t n_b,
                   std::int64_t min_sample_size) {
  return p_value < 1 - confidence_level && n_a >= min_sample_size && n_b >= min_sample_size;
}

namespace detail {

// Evan Miller's closed form, for an integer alpha_b:
//   P(X_b > X_a) = sum_{i=0}^{alpha_b-1} B(alpha_a+i, beta_a+beta_b) / ((beta_b+i) B(1+i, beta_b) B(alpha_a, beta_a))
// The first term is B(alpha_a, beta_a+beta_b) / B(alpha_a, beta_a); each next one follows
// by the exact ratio (alpha_a+i)(beta_b+i) / ((alpha_a+beta_a+beta_b+i)(1+i)), summed in
// log space so that neither underflow nor overflow can interrupt the chain.
double MillerSum(double alpha_a, double beta_a, double alpha_b, double beta_b) {
  double log_term = LogBeta(alpha_a, beta_a + beta_b) - LogBeta(alpha_a, beta_a);
  double total = 0;
  const auto terms = static_cast<std::int64_t>(alpha_b);
  for (std::int64_t k = 0; k < terms; ++k) {
    const double i = static_cast<double>(k);
    total += std::exp(log_term);
    log_term += std::log((alpha_a + i) * (beta_b + i) / ((alpha_a + beta_a + beta_b + i) * (1 + i)));
  }
  return total;
}

double ProbabilityBBeatsAExact(double alpha_a, double beta_a, double alpha_b, double beta_b) {
  // Four equivalent sums (swap the branches, or look at failure rates 1 - p); take the shortest.
  const double shortest = std::min({alpha_a, beta_a, alpha_b, beta_b});
  double p;
  if (shortest == alpha_b) {
    p = MillerSum(alpha_a, beta_a, alpha_b, beta_b);
  } else if (shortest == alpha_a) {
    p = 1 - MillerSum(alpha_b, beta_b, alpha_a, beta_a);
  } else if (shortest == beta_a) {
    p = MillerSum(beta_b, alpha_b, beta_a, alpha_a);  // P(1 - p_a > 1 - p_b)
  } else {
    p = 1 - MillerSum(beta_a, alpha_a, beta_b, alpha_b);
  }
  return std::clamp(p, 0.0, 1.0);
}

// P(X_b > X_a) = integral of pdf_b(x) cdf_a(x) dx. Outside both central intervals of
// mass 1 - 2e-15 the integrand is either negligible or cdf_a is 1 to within 1e-15, so
// only [lo, hi], where both distributions live, is integrated, and above it the
// survival function of b is exact. Beta densities with parameters >= 1 are smooth
// and unimodal, which adaptive Gauss-Kronrod handles however narrow they are.
double ProbabilityBBeatsAQuadrature(double alpha_a, double beta_a, double alpha_b, double beta_b) {
  // Doubles are dense near 0 and sparse near 1: posteriors near 1 are integrated as
  // failure rates, P(p_b > p_a) = P(1 - p_a > 1 - p_b).
  if (alpha_a / (alpha_a + beta_a) + alpha_b / (alpha_b + beta_b) > 1)
    return ProbabilityBBeatsAQuadrature(beta_b, alpha_b, beta_a, alpha_a);
  constexpr double kTail = 1e-15;
  const boost::math::beta_distribution<double> dist_a(alpha_a, beta_a);
  const boost::math::beta_distribution<double> dist_b(alpha_b, beta_b);
  const double lo = std::max(boost::math::quantile(dist_a, kTail), boost::math::quantile(dist_b, kTail));
  const double hi = std::min(boost::math::quantile(boost::math::complement(dist_a, kTail)),
                             boost::math::quantile(boost::math::complement(dist_b, kTail)));
  const double above = boost::math::cdf(boost::math::complement(dist_b, std::max(lo, hi)));
  if (!(lo < hi)) return above;  // the two posteriors do not overlap
  // Integrated over u in [-1, 1], x = mid + half * u: Boost 1.74's adaptive Gauss-Kronrod
  // compares an error estimate of the unscaled interval with the tolerance, so on an
  // interval as narrow as a posterior of 10^7 users it would bisect to its depth limit.
  const double mid = (lo + hi) / 2;
  const double half = (hi - lo) / 2;
  auto integrand = [&](double u) {
    const double x = mid + half * u;
    return half * boost::math::pdf(dist_b, x) * boost::math::cdf(dist_a, x);
  };
  const double inside = boost::math::quadrature::gauss_kronrod<double, 61>::integrate(integrand, -1, 1, 10, 1e-12);
  return std::clamp(inside + above, 0.0, 1.0);
}

}  // namespace detail

double ProbabilityBBeatsA(const Conversions& a, const Conversions& b) {
  ValidateConversions(a, "a");
  ValidateConversions(b, "b");
  const double alpha_a = 1 + static_cast<double>(a.successes);
  const double beta_a = 1 + static_cast<double>(a.trials - a.successes);
  const double alpha_b = 1 + static_cast<double>(b.successes);
  const double beta_b = 1 + static_cast<double>(b.trials - b.successes);
  // The sum is exact and fast while it is short (at most 20,000 terms, ~0.2 ms) and
  // while lgamma of the largest parameter keeps ~1e-9 precision (lgamma(10^6) ~ 1.3e7,
  // whose last bit is 2e-9); beyond, quadrature is both faster and more precise.
  constexpr double kMaxTerms = 20000;
  constexpr double kMaxParameter = 1e6;
  if (std::min({alpha_a, beta_a, alpha_b, beta_b}) <= kMaxTerms &&
      std::max({alpha_a, beta_a, alpha_b, beta_b}) <= kMaxParameter)
    return detail::ProbabilityBBeatsAExact(alpha_a, beta_a, alpha_b, beta_b);
  return detail::ProbabilityBBeatsAQuadrature(alpha_a, beta_a, alpha_b, beta_b);
}

SampleMoments MomentsOf(const SummaryStats& stats) {
  if (stats.count < 0) Refuse("count must not be negative");
  if (!std::isfinite(stats.sum) || !std::isfinite(stats.sum_squares)) Refuse("sum and sum_squares must be finite");
  SampleMoments m;
  m.count = stats.count;
  if (stats.count == 0) return m;
  const double n = static_cast<double>(stats.count);
  m.mean = stats.sum / n;
  if (stats.count < 2) return m;
  // fma rounds sum * mean only once, inside the subtraction.
  const double m2 = std::fma(-stats.sum, m.mean, stats.sum_squares);
  // Anything below the worst-case rounding error of a naively accumulated sum of n
  // squares is noise, not spread: constant data must give a variance of exactly 0.
  const double noise = n * std::numeric_limits<double>::epsilon() * std::fabs(stats.sum_squares);
  m.variance = m2 > noise ? m2 / (n - 1) : 0;
  return m;
}

std::optional<MeanComparison> CompareMeans(const SampleMoments& a, const SampleMoments& b, double confidence_level) {
  ValidateMoments(a, "a");
  ValidateMoments(b, "b");
  ValidateConfidenceLevel(confidence_level);
  if (a.count < 2 || b.count < 2) return std::nullopt;
  const double s2a = a.variance / static_cast<double>(a.count);  // squared standard errors
  const double s2b = b.variance / static_cast<double>(b.count);
  const double se2 = s2a + s2b;
  if (!(se2 > 0)) return std::nullopt;

  MeanComparison r;
  r.mean_a = a.mean;
  r.mean_b = b.mean;
  r.difference = b.mean - a.mean;
  r.standard_error = std::sqrt(se2);
  r.t = r.difference / r.standard_error;
  // Welch-Satterthwaite on the squared standard errors relative to the larger one: the
  // ratio does not depend on their scale, and squares of denormal or huge variances
  // would underflow to 0/0 or overflow to inf/inf. It lies in [min(n) - 1, n_a + n_b - 2].
  const double scale = std::max(s2a, s2b);
  const double ra = s2a / scale, rb = s2b / scale;
  r.degrees_of_freedom =
      (ra + rb) * (ra + rb) / (ra * ra / static_cast<double>(a.count - 1) + rb * rb / static_cast<double>(b.count - 1));
  const boost::math::students_t_distribution<double> dist(r.degrees_of_freedom);
  r.p_value = 2 * boost::math::cdf(boost::math::complement(dist, std::fabs(r.t)));
  r.confidence = 1 - r.p_value;
  const double critical = boost::math::quantile(boost::math::complement(dist, (1 - confidence_level) / 2));
  r.ci_lower = r.difference - critical * r.standard_error;
  r.ci_upper = r.difference + critical * r.standard_error;
  if (a.mean != 0 && std::isfinite(r.difference / a.mean)) r.relative_lift = r.difference / a.mean;
  return r;
}

std::optional<MeanComparison> CompareMeans(const SummaryStats& a, const SummaryStats& b, double confidence_level) {
  return CompareMeans(MomentsOf(a), MomentsOf(b), confidence_level);
}

std::vector<double> HolmAdjust(const std::vector<double>& p_values) {
  for (double p : p_values)
    if (!(p >= 0 && p <= 1)) Refuse("p-values must be between 0 and 1, not " + std::to_string(p));
  const std::size_t m = p_values.size();
  std::vector<std::size_t> order(m);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return p_values[i] < p_values[j]; });
  std::vector<double> adjusted(m);
  double running = 0;  // step-down: an adjusted p-value is never below an earlier one
  for (std::size_t k = 0; k < m; ++k) {
    const std::size_t i = order[k];
    running = std::max(running, std::min(1.0, static_cast<double>(m - k) * p_values[i]));
    adjusted[i] = running;
  }
  return adjusted;
}

std::optional<SampleRatioCheck> CheckSampleRatio(const std::vector<std::int64_t>& observed,
                                                 const std::vector<int>& expected_basis_points) {
  if (observed.size() != expected_basis_points.size())
    Refuse("sample ratio check needs one observed count per branch: " + std::to_string(observed.size()) +
           " counts for " + std::to_string(expected_basis_points.size()) + " shares");
  ValidateAllocation(expected_basis_points, expected_basis_points.size());
  double total = 0;
  for (std::int64_t count : observed) {
    if (count < 0) Refuse("observed counts must not be negative");
    total += static_cast<double>(count);
  }
  if (total == 0) return std::nullopt;

  SampleRatioCheck r;
  bool outside_allocation = false;
  int tested = 0;
  for (std::size_t i = 0; i < observed.size(); ++i) {
    const double count = static_cast<double>(observed[i]);
    if (expected_basis_points[i] == 0) {
      outside_allocation |= count > 0;
      continue;
    }
    ++tested;
    const double expected = total * expected_basis_points[i] / kBuckets;
    r.chi_square += (count - expected) * (count - expected) / expected;
  }
  r.degrees_of_freedom = tested - 1;
  if (outside_allocation) {
    // Users in a branch that gets no traffic: routing or logging is broken, whatever the rest says.
    r.chi_square = std::numeric_limits<double>::infinity();
    r.p_value = 0;
  } else if (r.degrees_of_freedom > 0) {
    r.p_value = boost::math::cdf(
        boost::math::complement(boost::math::chi_squared_distribution<double>(r.degrees_of_freedom), r.chi_square));
  } else {
    r.chi_square = 0;  // one branch takes everything and got everything
    r.p_value = 1;
  }
  r.mismatch = r.p_value < kSampleRatioMismatchThreshold;
  return r;
}

}  // namespace abtest
