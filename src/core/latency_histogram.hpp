// Latency percentiles with a bounded relative error, from a fixed array of counters
// that can live in shared memory and be summed without a lock.
//
// Bucket scheme (logarithmic, as in DDSketch): with alpha = 0.02 and
// gamma = (1 + alpha) / (1 - alpha), bucket i holds latencies in (gamma^(i-1), gamma^i]
// milliseconds and is reported as 2 * gamma^i / (gamma + 1), which is within alpha of
// every value in the bucket. Buckets cover kLatencyFloorMs .. kLatencyCeilingMs;
// bucket 0 holds everything below the floor (0 included), the last one everything
// above the ceiling. A quantile is reported clamped to the exact minimum and maximum.
//
// Guarantee: for latencies within the covered range, LatencyQuantile(q) is within 2%
// of the nearest-rank quantile of the recorded values (PostgreSQL's percentile_disc:
// the smallest recorded value x with at least q of the values <= x).
#pragma once

#include <cstdint>

namespace abtest {

constexpr double kLatencyRelativeError = 0.02;
constexpr double kLatencyFloorMs = 1e-3;      // 1 microsecond
constexpr double kLatencyCeilingMs = 1e6;     // 16 minutes 40 seconds
constexpr int kLatencyBuckets = 520;          // 1 underflow bucket + 519 logarithmic ones

// The bucket of a latency (finite, >= 0; anything else is the caller's mistake).
int LatencyBucket(double latency_ms);
// The same, given std::log(latency_ms) (read only when latency_ms is at least the floor).
int LatencyBucket(double latency_ms, double log_latency_ms);

// The value a bucket reports.
double LatencyBucketValue(int bucket);

// The nearest-rank quantile q (0 < q <= 1) of the `total` latencies counted in
// `counts` (kLatencyBuckets entries), clamped to [min_ms, max_ms]. 0 when total is 0.
double LatencyQuantile(const std::uint64_t* counts, std::uint64_t total, double q, double min_ms, double max_ms);

}  // namespace abtest
