#include "core/hashing.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace abtest {
namespace {

struct Vector {
  const char* salt;
  const char* user_id;
  std::uint64_t seed;
  std::uint64_t hash;
  int bucket;
  int coverage_bucket;
};

// Produced by test/reference/hash_vectors.py with an independent xxHash (python3-xxhash).
const Vector kVectors[] = {
    {"checkout_v2", "user42", 15581820226095982258ULL, 605088186790342167ULL, 2167, 2261},
    {"checkout_v2", "user1", 15581820226095982258ULL, 14209508952432205368ULL, 5368, 3905},
    {"pricing", "user42", 16527710800078025119ULL, 14506246446788408004ULL, 8004, 611},
    {"checkout_v2", "", 15581820226095982258ULL, 488525469043668624ULL, 8624, 6094},
    {"checkout_v2", "ユーザー", 15581820226095982258ULL, 2265951647143711022ULL, 1022, 627},
    {"checkout_v2", "12345", 15581820226095982258ULL, 5139134664055686467ULL, 6467, 9455},
};

TEST(Hashing, MatchesTheReferenceVectors) {
  for (const auto& v : kVectors) {
    SCOPED_TRACE(std::string(v.salt) + "/" + v.user_id);
    EXPECT_EQ(SaltSeed(v.salt), v.seed);
    EXPECT_EQ(UserHash(v.user_id, v.seed), v.hash);
    EXPECT_EQ(BucketOf(UserHash(v.user_id, v.seed)), v.bucket);
    EXPECT_EQ(BucketOf(UserHash(v.user_id, CoverageSeed(v.salt))), v.coverage_bucket);
  }
}

TEST(Hashing, BucketsAreUniform) {
  // Chi-square over 100 cells of 200,000 users; df = 99, the 0.999 quantile is about 148.
  constexpr int kUsers = 200000, kCells = 100;
  std::vector<int> cells(kCells, 0);
  std::uint64_t seed = SaltSeed("uniformity");
  for (int i = 0; i < kUsers; ++i) cells[BucketOf(UserHash("user" + std::to_string(i), seed)) / 100]++;
  double expected = static_cast<double>(kUsers) / kCells, chi_square = 0;
  for (int count : cells) chi_square += (count - expected) * (count - expected) / expected;
  EXPECT_LT(chi_square, 148.0);
}

TEST(Hashing, ExperimentsSplitIndependently) {
  // With two 50/50 experiments, a quarter of users must be in treatment of both
  // (the seed's unsalted hash put the same half in treatment everywhere).
  constexpr int kUsers = 100000;
  std::uint64_t first = SaltSeed("experiment_a"), second = SaltSeed("experiment_b");
  int both = 0;
  for (int i = 0; i < kUsers; ++i) {
    std::string user = "user" + std::to_string(i);
    bool in_first = BucketOf(UserHash(user, first)) >= 5000;
    bool in_second = BucketOf(UserHash(user, second)) >= 5000;
    both += in_first && in_second;
  }
  double share = static_cast<double>(both) / kUsers;
  EXPECT_NEAR(share, 0.25, 0.01);  // 7 standard deviations wide
}

}  // namespace
}  // namespace abtest
