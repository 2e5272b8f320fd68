// The limits of abtest's input domain that are not a rule of the model: sizes and
// magnitudes of what routing and recording accept. One place, so that the glue, the
// tests and the README's "Errors" section agree. (Limits of the model live with their
// rule: kMaxNameBytes in names.hpp, kMaxBranches in experiment.hpp, kMaxModuloDivisor
// in strategy.hpp.)
#pragma once

#include <cstddef>
#include <string_view>

namespace abtest {

// Longest user id (or session id routed in its place), in bytes. A sticky assignment
// is a row of abtest.assignments, whose primary key (experiment_id uuid, user_id text)
// is a btree: an entry holds at most a third of an 8 kB page (2,704 bytes), headers
// and the uuid included, and a user id may not compress. 2,048 bytes always fit (the
// glue asserts it against PostgreSQL's page layout) and leave every realistic key,
// an email address, a URL or a signed token, room to spare. The sticky cache holds a
// 128-bit hash of the id, whatever its length.
constexpr std::size_t kMaxUserIdBytes = 2048;

// Throws kStringTooLong (22001) naming `what` ("user_id", "session_id") and the limit
// when `id` is longer than kMaxUserIdBytes. Inline: it runs on the routing hot path.
[[noreturn]] void RefuseLongUserId(const char* what, std::size_t bytes);
inline void ValidateUserId(const char* what, std::string_view id) {
  if (id.size() > kMaxUserIdBytes) RefuseLongUserId(what, id.size());
}

}  // namespace abtest
