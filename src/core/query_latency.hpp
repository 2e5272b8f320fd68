// Per-statement counters of a database branch: what the executor hooks record for each
// (experiment, branch, query id), and what ab_query_metrics and ab_compare_queries read.
//
// Plain structs of numbers that neither allocate nor throw: the glue keeps them in
// shared memory under a spinlock and records into them from executor hooks and from
// transaction-abort callbacks, where neither is allowed. A sample is prepared outside
// the spinlock (QuerySample::Of: the logarithm and the histogram bucket) and added
// inside it (QueryLatency::Add: a few additions).
#pragma once

#include <cstdint>
#include <optional>

#include "core/latency_histogram.hpp"
#include "core/metrics.hpp"

namespace abtest {

// The latency histogram of one query: kLatencyBuckets 32-bit counters (2,080 bytes,
// half the branches' 64-bit ones), same buckets, same 2% guarantee. A counter that
// would pass 2^32 - 1 first halves every counter (rounding up, so no recorded bucket
// empties): percentiles then weigh the calls before the halving half as much as those
// after. Only a query that ran about four billion times within one 4% band of latency
// ever gets there.
struct CompactLatencyHistogram {
  std::uint32_t counts[kLatencyBuckets] = {};

  void Add(int bucket) noexcept;
  // Adds `other` (64-bit counts, as persisted), halving as often as it takes to fit.
  void Merge(const std::uint64_t* other) noexcept;
  void Merge(const CompactLatencyHistogram& other) noexcept;
  // The counts widened to 64 bits, the layout LatencyQuantile and the tables use.
  void Widen(std::uint64_t* out) const noexcept;
  std::uint64_t Total() const noexcept;
  // LatencyQuantile over these counts (their own total), clamped to [min_ms, max_ms].
  double Quantile(double q, double min_ms, double max_ms) const noexcept;

 private:
  void Halve() noexcept;
};

// One recorded statement, prepared outside any lock. The latency is clamped to
// [0, kMaxLatencyMs] (NaN is 0: the hooks measure, they do not validate), and to at
// least kLatencyFloorMs (1 microsecond) before the logarithm.
struct QuerySample {
  double latency_ms = 0;
  double log_latency = 0;  // natural log
  int bucket = 0;
  bool success = false;

  static QuerySample Of(double latency_ms, bool success) noexcept;
};

// The counters of one query id in one branch. The latency statistics are of the
// successful calls only; failures are counted.
struct QueryLatency {
  std::uint64_t failures = 0;
  RunningMoments latency;      // milliseconds; latency.count is the number of successful calls
  RunningMoments log_latency;  // ln(milliseconds): Welch on these is ab_compare_queries' test
  double min_ms = 0;           // of successful calls; meaningful when latency.count > 0
  double max_ms = 0;
  CompactLatencyHistogram histogram;

  std::uint64_t successes() const noexcept { return latency.count; }
  std::uint64_t calls() const noexcept { return latency.count + failures; }
  void Add(const QuerySample& sample) noexcept;
  void Merge(const QueryLatency& other) noexcept;
  // NULL in SQL without successful calls (the standard deviation: below two).
  std::optional<double> Mean() const noexcept;
  std::optional<double> StandardDeviation() const noexcept;
  std::optional<double> Quantile(double q) const noexcept;
};

}  // namespace abtest
