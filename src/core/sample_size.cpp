#include "core/sample_size.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <boost/math/distributions/normal.hpp>

#include "core/error.hpp"

namespace abtest {
namespace {

void RequireOpenUnit(double value, const char* name, const char* meaning) {
  if (!(value > 0 && value < 1))
    throw Error(ErrorKind::kInvalidParameter,
                std::string(name) + " must be between 0 and 1 (exclusive), not " + std::to_string(value), {},
                std::string(name) + " is " + meaning + ".");
}

}  // namespace

std::int64_t RequiredSampleSize(const SampleSizeRequest& request) {
  const double p1 = request.baseline_rate;
  RequireOpenUnit(p1, "baseline_rate", "the control's conversion rate");
  if (!(request.mde != 0 && std::isfinite(request.mde)))
    throw Error(ErrorKind::kInvalidParameter, "mde must be a nonzero number, not " + std::to_string(request.mde), {},
                "mde is the absolute difference of rates to detect, e.g. 0.01 for one percentage point.");
  const double p2 = p1 + request.mde;
  if (!(p2 > 0 && p2 < 1))
    throw Error(ErrorKind::kInvalidParameter,
                "baseline_rate + mde must be between 0 and 1 (exclusive), not " + std::to_string(p2), {},
                "mde is absolute: a baseline of 0.1 and an mde of 0.02 test 0.1 against 0.12.");
  RequireOpenUnit(request.alpha, "alpha", "the two-sided significance level, e.g. 0.05");
  RequireOpenUnit(request.power, "power", "the probability of detecting the effect, e.g. 0.8");
  // Below the smallest normal double the normal quantile is not representable.
  constexpr double kSmallest = std::numeric_limits<double>::min();
  if (request.alpha / 2 < kSmallest || request.power < kSmallest)
    throw Error(ErrorKind::kInvalidParameter, "alpha and power must be at least 1e-300", {},
                "Such extreme levels ask for a sample no experiment can have.");

  const boost::math::normal_distribution<double> normal;
  const double z_alpha = -boost::math::quantile(normal, request.alpha / 2);  // z_{1-alpha/2}, accurately
  const double z_power = boost::math::quantile(normal, request.power);
  const double pbar = (p1 + p2) / 2;
  const double bracket =
      z_alpha * std::sqrt(2 * pbar * (1 - pbar)) + z_power * std::sqrt(p1 * (1 - p1) + p2 * (1 - p2));
  if (!(bracket > 0)) return 1;
  const double n = std::ceil(bracket * bracket / ((p2 - p1) * (p2 - p1)));
  constexpr double kMaxSampleSize = 1e15;
  if (n > kMaxSampleSize)
    throw Error(ErrorKind::kInvalidParameter, "mde " + std::to_string(request.mde) + " is too small to detect",
                "It needs more than 10^15 users per branch.");
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(n));
}

}  // namespace abtest
