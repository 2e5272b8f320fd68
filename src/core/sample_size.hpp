// How many users each branch needs before a two-proportion test can see an effect.
#pragma once

#include <cstdint>

namespace abtest {

struct SampleSizeRequest {
  double baseline_rate = 0;  // p1, the control's conversion rate, in (0, 1)
  double mde = 0;            // minimum detectable effect, absolute: p2 = p1 + mde, in (0, 1)
  double alpha = 0.05;       // two-sided significance level, in (0, 1)
  double power = 0.8;        // in (0, 1)
};

// Users per branch for a two-sided two-proportion z-test, equal branches:
//
//   n = ceil((z_{1-alpha/2} sqrt(2 pbar (1 - pbar)) + z_power sqrt(p1 (1 - p1) + p2 (1 - p2)))^2 / (p2 - p1)^2)
//
// with pbar = (p1 + p2) / 2. At least 1: when power is so low that the bracket is not
// positive (power below about alpha / 2), any sample reaches it. Throws
// kInvalidParameter naming the argument that is out of range, and for an mde so small
// that more than 10^15 users per branch would be needed.
std::int64_t RequiredSampleSize(const SampleSizeRequest& request);

}  // namespace abtest
