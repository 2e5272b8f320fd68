// Per-branch counters: what ab_record_query and ab_record_event accumulate, in a
// form that can be merged (persisted totals + what this server lifetime recorded)
// and that keeps what analysis needs (count, sum, mean and M2 for the variance).
//
// Plain structs of numbers: the glue keeps them in shared memory under a spinlock
// and persists them; nothing here allocates.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace abtest {

// Count, sum, mean and sum of squared deviations (Welford's online algorithm; Chan's
// formula to merge two). Numerically stable where sum of squares is not.
struct RunningMoments {
  std::uint64_t count = 0;
  double sum = 0;
  double mean = 0;
  double m2 = 0;

  void Add(double value);
  void Merge(const RunningMoments& other);
  // Sample variance (n - 1 denominator); nullopt with fewer than two values.
  std::optional<double> Variance() const;
  std::optional<double> StandardDeviation() const;
};

// The query outcomes of one branch. Timestamps are opaque microsecond counts.
struct QueryCounters {
  std::uint64_t successes = 0;
  RunningMoments latency;  // latency.count is the number of queries
  double min_latency_ms = 0;  // meaningful when latency.count > 0
  double max_latency_ms = 0;
  std::int64_t first_query = 0;  // meaningful when latency.count > 0
  std::int64_t last_query = 0;

  std::uint64_t queries() const { return latency.count; }
  std::uint64_t failures() const { return latency.count - successes; }
  void Record(double latency_ms, bool success, std::int64_t now);
  void Merge(const QueryCounters& other);
  // The seed's rules: 0 without queries.
  double SuccessRate() const;
  double ErrorRate() const;
  double AverageLatency() const;
};

// Refusals naming the experiment and branch, with the bounds of core/limits.hpp:
// - latency: NaN, infinite, negative or above kMaxLatencyMs (kInvalidParameter);
// - event value: NaN or infinite (kInvalidParameter), |value| above kMaxEventValue
//   (kOutOfRange).
// Within them, every count, sum, mean and M2 stays finite however often values are
// added or merged, and so does every statistic computed from them.
void ValidateLatency(double latency_ms, const std::string& experiment, const std::string& branch);
void ValidateEventValue(double value, const std::string& experiment, const std::string& branch);

// A float8 the way PostgreSQL prints it, so that a message shows what was sent: the
// fewest digits that read back exactly, in exponent form below 1e-4 and from 1e15 on
// (1000000.001, 1000000, 1e+15, 5e-324, NaN, -Infinity).
std::string FormatValue(double value);

}  // namespace abtest
