// Which entries a full table of counters gives up, chosen without allocating: the glue
// runs it in shared memory, possibly inside a transaction-abort callback, where it may
// neither allocate nor fail.
//
// Like pg_stat_statements: every entry has a usage score (one per call); when the table
// is full, every score decays by kUsageDecay and the least-used kEvictPercent of the
// capacity (at least kEvictMinimum entries) are removed in one batch, so that a full
// table is not scanned on every new entry. Instead of sorting the scores (which needs an
// array as long as the table), one pass counts the entries per usage class, a half step
// of log2(usage), into a fixed array; the threshold is the class where the count reaches
// the target; a second pass removes every entry below it, and from the threshold class
// itself as many as are still needed. The entries removed are the least used ones up to
// a factor of sqrt(2) in usage.
#pragma once

#include <cstdint>

namespace abtest {

constexpr double kUsageDecay = 0.99;  // per eviction, pg_stat_statements' USAGE_DECREASE_FACTOR
constexpr int kEvictPercent = 5;      // of the capacity, per eviction (USAGE_DEALLOC_PERCENT)
constexpr int kEvictMinimum = 10;
constexpr int kUsageClasses = 128;  // half steps of log2(usage) from 2^-24 to 2^40, clamped at both ends

// The class of a usage score: 0 for anything below 2^-24 (NaN too), kUsageClasses - 1
// from 2^40 on, monotone in between.
int UsageClass(double usage) noexcept;

// How many of `entries` to evict from a table of `capacity`: kEvictPercent of the
// capacity, at least kEvictMinimum, at most all entries.
int EvictionTarget(int capacity, int entries) noexcept;

// Every entry of a class below `threshold` goes, and the first `from_threshold` entries
// met of class `threshold`.
struct EvictionPlan {
  int threshold = 0;
  std::int64_t from_threshold = 0;
};

// `classes[c]` is the number of entries of class c. A target of 0 or less evicts nothing.
EvictionPlan PlanEviction(const std::int64_t (&classes)[kUsageClasses], std::int64_t target) noexcept;

}  // namespace abtest
