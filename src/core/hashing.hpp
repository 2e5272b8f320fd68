// The assignment hash: stable across processes, restarts, machines and versions,
// and independent per experiment.
//
//   seed   = XXH3_64bits(salt)                      salt defaults to the experiment name
//   hash   = XXH3_64bits_withSeed(user_id, seed)    bytes of user_id as stored (UTF-8)
//   bucket = hash mod 10000                         unsigned 64-bit arithmetic
//
// The bucket falls into the branch whose cumulative allocation range holds it.
// The percentage strategy's coverage draw uses the same formula with the salt
// suffixed by ":coverage", so who enters a rollout is independent of the split.
#pragma once

#include <cstdint>
#include <string_view>

namespace abtest {

std::uint64_t SaltSeed(std::string_view salt);
std::uint64_t CoverageSeed(std::string_view salt);
std::uint64_t UserHash(std::string_view user_id, std::uint64_t seed);
int BucketOf(std::uint64_t hash);

}  // namespace abtest
