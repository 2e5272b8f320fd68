// The limits of abtest's input domain that are not a rule of the model: sizes and
// magnitudes of what routing and recording accept. One place, so that the glue, the
// tests and the README's "Errors" section agree. (Limits of the model live with their
// rule: kMaxNameBytes in names.hpp, kMaxBranches in experiment.hpp, kMaxModuloDivisor
// in strategy.hpp.)
#pragma once

#include <cstddef>
#include <string_view>

#include "core/latency_histogram.hpp"

namespace abtest {

// Longest user id (or session id routed in its place), in bytes. A sticky assignment
// is a row of abtest.assignments, whose primary key (experiment_id uuid, user_id text)
// is a btree: an entry holds at most a third of an 8 kB page (2,704 bytes), headers
// and the uuid included, and a user id may not compress. 2,048 bytes always fit (the
// glue asserts it against PostgreSQL's page layout) and leave every realistic key,
// an email address, a URL or a signed token, room to spare. The sticky cache holds a
// 128-bit hash of the id, whatever its length.
constexpr std::size_t kMaxUserIdBytes = 2048;

// Longest event name, in bytes (ab_record_event; 22023 above it): it is part of the
// key of a fixed-size shared-memory entry.
constexpr std::size_t kMaxEventNameBytes = 63;

// Largest latency ab_record_query accepts, in milliseconds (22023 above it): the top
// of the latency histogram (16 min 40 s), so that every recorded latency is within
// the range where percentiles are within 2%, and a branch's latency sum stays below
// 2^64 * 10^6 ~ 1.8e25 whatever the count.
constexpr double kMaxLatencyMs = kLatencyCeilingMs;

// Largest |value| ab_record_event accepts (22003 above it). Below 2^53 every integer is
// exact, so amounts in cents up to 10 trillion units add up exactly; and with counts
// below 2^64 the sum stays below 1.8e34 and the sum of squared deviations below
// 2^64 * (2e15)^2 ~ 7.4e49: means, variances and every statistic built on them are
// finite, however many values are recorded or merged.
constexpr double kMaxEventValue = 1e15;

// Throws kStringTooLong (22001) naming `what` ("user_id", "session_id") and the limit
// when `id` is longer than kMaxUserIdBytes. Inline: it runs on the routing hot path.
[[noreturn]] void RefuseLongUserId(const char* what, std::size_t bytes);
inline void ValidateUserId(const char* what, std::string_view id) {
  if (id.size() > kMaxUserIdBytes) RefuseLongUserId(what, id.size());
}

}  // namespace abtest
