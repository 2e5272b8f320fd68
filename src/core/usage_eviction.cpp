#include "core/usage_eviction.hpp"

#include <algorithm>
#include <cmath>

namespace abtest {
namespace {

constexpr int kLowestExponent = -24;  // class 0 ends at 2^-24

}  // namespace

int UsageClass(double usage) noexcept {
  if (!(usage > 0)) return 0;
  // Two classes per power of two: floor(2 log2(usage)), shifted so that 2^-24 is class 0.
  const double half_steps = std::floor(2 * std::log2(usage)) - 2 * kLowestExponent;
  if (!(half_steps > 0)) return 0;
  if (half_steps >= kUsageClasses - 1) return kUsageClasses - 1;
  return static_cast<int>(half_steps);
}

int EvictionTarget(int capacity, int entries) noexcept {
  const long long share = static_cast<long long>(capacity) * kEvictPercent / 100;
  const long long target = std::max<long long>(share, kEvictMinimum);
  return static_cast<int>(std::max<long long>(0, std::min<long long>(target, entries)));
}

EvictionPlan PlanEviction(const std::int64_t (&classes)[kUsageClasses], std::int64_t target) noexcept {
  EvictionPlan plan;
  if (target <= 0) return plan;  // threshold 0, none from it: nothing goes
  std::int64_t below = 0;
  for (int c = 0; c < kUsageClasses; ++c) {
    if (below + classes[c] >= target) {
      plan.threshold = c;
      plan.from_threshold = target - below;
      return plan;
    }
    below += classes[c];
  }
  // Fewer entries than the target: all of them.
  plan.threshold = kUsageClasses - 1;
  plan.from_threshold = classes[kUsageClasses - 1];
  return plan;
}

}  // namespace abtest
