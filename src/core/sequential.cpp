#include "core/sequential.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.hpp"

namespace abtest {

namespace {

void ValidateMixingVariance(double tau2) {
  if (!(tau2 > 0 && std::isfinite(tau2)))
    throw Error(ErrorKind::kInvalidParameter, "tau2 must be a positive number, not " + std::to_string(tau2), {},
                "tau2 is the variance of the mixing distribution over the true difference.");
}

}  // namespace

double SequentialPValueOfEstimate(double theta, double v, double tau2) {
  ValidateMixingVariance(tau2);
  if (!std::isfinite(theta))
    throw Error(ErrorKind::kInvalidParameter, "the estimate must be finite, not " + std::to_string(theta));
  if (!(v > 0) || !std::isfinite(v)) return 1;
  const double log_lambda = 0.5 * std::log(v / (v + tau2)) + tau2 * theta * theta / (2 * v * (v + tau2));
  return std::min(1.0, std::exp(-log_lambda));
}

double SequentialPValue(const Conversions& a, const Conversions& b, double tau2) {
  ValidateConversions(a, "a");
  ValidateConversions(b, "b");
  ValidateMixingVariance(tau2);
  if (a.trials == 0 || b.trials == 0) return 1;
  const double rate_a = static_cast<double>(a.successes) / static_cast<double>(a.trials);
  const double rate_b = static_cast<double>(b.successes) / static_cast<double>(b.trials);
  const double v =
      rate_a * (1 - rate_a) / static_cast<double>(a.trials) + rate_b * (1 - rate_b) / static_cast<double>(b.trials);
  return SequentialPValueOfEstimate(rate_b - rate_a, v, tau2);
}

double UpdateSequentialPValue(double previous_p_value, const Conversions& a, const Conversions& b, double tau2) {
  if (!(previous_p_value >= 0 && previous_p_value <= 1))
    throw Error(ErrorKind::kInvalidParameter,
                "previous p-value must be between 0 and 1, not " + std::to_string(previous_p_value));
  return std::min(previous_p_value, SequentialPValue(a, b, tau2));
}

std::vector<double> SequentialPValues(const std::vector<Look>& looks, double tau2) {
  std::vector<double> p_values;
  p_values.reserve(looks.size());
  double p = 1;
  for (const Look& look : looks) p_values.push_back(p = UpdateSequentialPValue(p, look.a, look.b, tau2));
  return p_values;
}

}  // namespace abtest
