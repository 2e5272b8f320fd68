#include "core/latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace abtest {
namespace {

constexpr double kGamma = (1 + kLatencyRelativeError) / (1 - kLatencyRelativeError);

// The smallest i with gamma^i >= x, by repeated multiplication so that it can run at
// compile time (std::log cannot). The rounding of a few hundred products is far below
// the distance of the floor and the ceiling to the nearest power of gamma.
constexpr int CeilLogGamma(double x) {
  int i = 0;
  double power = 1;
  if (x > 1) {
    while (power < x) {
      power *= kGamma;
      ++i;
    }
  } else {
    while (power / kGamma >= x) {
      power /= kGamma;
      --i;
    }
  }
  return i;
}

constexpr int kMinIndex = CeilLogGamma(kLatencyFloorMs);
constexpr int kMaxIndex = CeilLogGamma(kLatencyCeilingMs);
static_assert(kLatencyBuckets == 1 + (kMaxIndex - kMinIndex + 1),
              "kLatencyBuckets must be one underflow bucket plus one per power of gamma up to the ceiling");

const double kLogGamma = std::log(kGamma);

// The upper edges of the logarithmic indexes LatencyBucket may look at (a rounded
// quotient is off by one at most, and it looks one further), computed once: two pow
// calls per latency would cost more than the rest of a measured statement's timing.
constexpr int kFirstEdge = kMinIndex - 2;
constexpr int kEdges = kMaxIndex + 2 - kFirstEdge + 1;
struct Edges {
  double values[kEdges];
  Edges() {
    for (int k = 0; k < kEdges; ++k) values[k] = std::pow(kGamma, kFirstEdge + k);
  }
};
const Edges edges;

// The upper edge of logarithmic index i. The edges are these computed powers, so that
// a value equal to pow(gamma, i) is in index i whatever log rounds to.
double UpperEdge(int i) {
  int k = i - kFirstEdge;
  return k >= 0 && k < kEdges ? edges.values[k] : std::pow(kGamma, i);
}

}  // namespace

int LatencyBucket(double latency_ms) {
  if (!(latency_ms >= kLatencyFloorMs)) return 0;  // NaN too: the caller validates, this stays in bounds
  return LatencyBucket(latency_ms, std::log(latency_ms));
}

int LatencyBucket(double latency_ms, double log_latency_ms) {
  if (!(latency_ms >= kLatencyFloorMs)) return 0;
  if (latency_ms > kLatencyCeilingMs) return kLatencyBuckets - 1;
  int i = static_cast<int>(std::ceil(log_latency_ms / kLogGamma));
  // The quotient can round across an integer next to an edge: off by one at most.
  if (latency_ms <= UpperEdge(i - 1)) {
    --i;
  } else if (latency_ms > UpperEdge(i)) {
    ++i;
  }
  return std::clamp(i - kMinIndex + 1, 1, kLatencyBuckets - 1);
}

double LatencyBucketValue(int bucket) {
  if (bucket <= 0) return 0;  // below the floor: the clamp to the minimum gives the answer
  const int i = kMinIndex + std::min(bucket, kLatencyBuckets - 1) - 1;
  // The point whose relative distance to both edges is alpha.
  return 2 * UpperEdge(i) / (kGamma + 1);
}

double LatencyQuantile(const std::uint64_t* counts, std::uint64_t total, double q, double min_ms, double max_ms) {
  if (total == 0) return 0;
  // Nearest rank k = ceil(q * total). q * total carries the rounding of a decimal q
  // (0.95 * 100 must be rank 95, not 96): forgive a relative error far above that
  // rounding and far below one rank.
  const double target = q * static_cast<double>(total);
  const double rank = std::ceil(target - target * 1e-12);
  std::uint64_t k = 1;
  if (rank >= static_cast<double>(total)) {
    k = total;
  } else if (rank > 1) {
    k = static_cast<std::uint64_t>(rank);
  }

  // The extremes are known exactly (and beyond the ceiling no bucket knows the maximum).
  if (k == total) return max_ms;
  if (k == 1) return min_ms;

  // Not std::clamp: counters read without a lock may leave min_ms > max_ms for a moment.
  const auto clamp = [&](double value) { return std::min(std::max(value, min_ms), max_ms); };
  std::uint64_t cumulative = 0;
  for (int bucket = 0; bucket < kLatencyBuckets; ++bucket) {
    cumulative += counts[bucket];
    if (cumulative >= k) return clamp(LatencyBucketValue(bucket));
  }
  // The counts add up to less than total (read while being updated): the top is the best answer.
  return clamp(max_ms);
}

}  // namespace abtest
