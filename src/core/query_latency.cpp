#include "core/query_latency.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/limits.hpp"

namespace abtest {
namespace {

constexpr std::uint64_t kCountLimit = std::numeric_limits<std::uint32_t>::max();

// Widens the successful calls' range to [lo, hi]: before the first one, it is that.
void Extend(QueryLatency& q, double lo, double hi) {
  q.min_ms = q.latency.count == 0 ? lo : std::min(q.min_ms, lo);
  q.max_ms = q.latency.count == 0 ? hi : std::max(q.max_ms, hi);
}

}  // namespace

void CompactLatencyHistogram::Halve() noexcept {
  for (std::uint32_t& count : counts) count = count / 2 + count % 2;
}

void CompactLatencyHistogram::Add(int bucket) noexcept {
  if (counts[bucket] == kCountLimit) Halve();
  ++counts[bucket];
}

void CompactLatencyHistogram::Merge(const std::uint64_t* other) noexcept {
  // Sums in 64 bits, halved together until the largest fits (at most 33 times).
  std::uint64_t sums[kLatencyBuckets];
  std::uint64_t largest = 0;
  for (int i = 0; i < kLatencyBuckets; ++i) {
    // A persisted count near 2^64 cannot come from this build; keep the sum from wrapping.
    sums[i] = counts[i] + std::min<std::uint64_t>(other[i], std::numeric_limits<std::uint64_t>::max() / 2);
    largest = std::max(largest, sums[i]);
  }
  while (largest > kCountLimit) {
    largest = largest / 2 + largest % 2;
    for (std::uint64_t& sum : sums) sum = sum / 2 + sum % 2;
  }
  for (int i = 0; i < kLatencyBuckets; ++i) counts[i] = static_cast<std::uint32_t>(sums[i]);
}

void CompactLatencyHistogram::Merge(const CompactLatencyHistogram& other) noexcept {
  std::uint64_t wide[kLatencyBuckets];
  other.Widen(wide);
  Merge(wide);
}

void CompactLatencyHistogram::Widen(std::uint64_t* out) const noexcept {
  for (int i = 0; i < kLatencyBuckets; ++i) out[i] = counts[i];
}

std::uint64_t CompactLatencyHistogram::Total() const noexcept {
  std::uint64_t total = 0;
  for (std::uint32_t count : counts) total += count;
  return total;
}

double CompactLatencyHistogram::Quantile(double q, double min_ms, double max_ms) const noexcept {
  std::uint64_t wide[kLatencyBuckets];
  Widen(wide);
  return LatencyQuantile(wide, Total(), q, min_ms, max_ms);
}

QuerySample QuerySample::Of(double latency_ms, bool success) noexcept {
  QuerySample sample;
  // NaN and -0 become 0; beyond the histogram's top, the top.
  sample.latency_ms = latency_ms > 0 ? std::min(latency_ms, kMaxLatencyMs) : 0;
  sample.log_latency = std::log(std::max(sample.latency_ms, kLatencyFloorMs));
  sample.bucket = LatencyBucket(sample.latency_ms, sample.log_latency);  // the log is the same above the floor
  sample.success = success;
  return sample;
}

void QueryLatency::Add(const QuerySample& sample) noexcept {
  if (!sample.success) {
    ++failures;
    return;
  }
  Extend(*this, sample.latency_ms, sample.latency_ms);
  latency.Add(sample.latency_ms);
  log_latency.Add(sample.log_latency);
  histogram.Add(sample.bucket);
}

void QueryLatency::Merge(const QueryLatency& other) noexcept {
  failures += other.failures;
  if (other.latency.count == 0) return;
  Extend(*this, other.min_ms, other.max_ms);
  latency.Merge(other.latency);
  log_latency.Merge(other.log_latency);
  histogram.Merge(other.histogram);
}

std::optional<double> QueryLatency::Mean() const noexcept {
  if (latency.count == 0) return std::nullopt;
  return latency.mean;
}

std::optional<double> QueryLatency::StandardDeviation() const noexcept { return latency.StandardDeviation(); }

std::optional<double> QueryLatency::Quantile(double q) const noexcept {
  if (latency.count == 0) return std::nullopt;
  return histogram.Quantile(q, min_ms, max_ms);
}

}  // namespace abtest
