#include "core/hashing.hpp"

#include <string>

#include "core/allocation.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace abtest {

std::uint64_t SaltSeed(std::string_view salt) { return XXH3_64bits(salt.data(), salt.size()); }

std::uint64_t CoverageSeed(std::string_view salt) {
  std::string suffixed(salt);
  suffixed += ":coverage";
  return SaltSeed(suffixed);
}

std::uint64_t UserHash(std::string_view user_id, std::uint64_t seed) {
  return XXH3_64bits_withSeed(user_id.data(), user_id.size(), seed);
}

int BucketOf(std::uint64_t hash) { return static_cast<int>(hash % static_cast<std::uint64_t>(kBuckets)); }

}  // namespace abtest
