// GrowthBook-compatible assignment math, so that a user lands in the same variation here as
// in a GrowthBook SDK given the same seed, hash attribute value and experiment settings.
//
//   fnv    = FNV-1a 32-bit over UTF-16 code units (JavaScript's charCodeAt)
//   hash   v1: (fnv(value + seed) % 1000) / 1000        (GrowthBook's original, biased)
//          v2: (fnv(decimal fnv(seed + value)) % 10000) / 10000
//   ranges one [start, end) per variation: weights laid end to end, each scaled by the coverage
//   choice the first range holding the hash; none means the user is not in the experiment
//
// Strings arrive as UTF-8 and are hashed as the JavaScript strings they decode to. Invalid
// UTF-8 decodes as TextDecoder does (WHATWG): each maximal ill-formed subsequence becomes one
// U+FFFD. All floating-point operations run in the SDK's order, so results are bit-identical.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/strategy.hpp"

namespace abtest::growthbook {

using Range = std::pair<double, double>;  // [first, second)

std::uint32_t Fnv1a32(std::string_view utf8);

// nullopt for a version other than 1 or 2.
std::optional<double> Hash(std::string_view seed, std::string_view value, int version);

// Hash(seed, ·, version) for many values: v2 hashes seed + value, so the seed's FNV state is
// computed once (routing hashes every user with one experiment's seed).
class SeededHash {
 public:
  SeededHash() : SeededHash({}, 2) {}
  SeededHash(std::string_view seed, int version);
  std::optional<double> operator()(std::string_view value) const;  // nullopt for an unknown version
  double At(std::string_view value) const;  // the same, NaN for an unknown version: no optional to copy

  // GrowthBook's hash is a whole number of 1/positions() (v1: 1000, v2: 10000; 0 for an
  // unknown version): Position is that number, At = Position / positions().
  std::uint32_t positions() const;
  std::uint32_t Position(std::string_view value) const;  // only for a known version

 private:
  std::string seed_;  // v1 hashes value + seed: the seed comes last
  int version_;
  std::uint32_t seed_state_;
};

// n shares of 1/n; empty for n <= 0.
std::vector<double> EqualWeights(int n);

// Coverage is clamped to [0, 1]. Weights absent, of the wrong length or summing outside
// [0.99, 1.01] are replaced by equal weights, as the SDK does.
std::vector<Range> BucketRanges(int num_variations, double coverage, const std::optional<std::vector<double>>& weights);

bool InRange(double n, const Range& range);

// The index of the first range holding n; -1 when none does.
int ChooseVariation(double n, const std::vector<Range>& ranges);

// Whether the user's hash in the namespace, Hash("__" + namespace_id, hash_value, 1), is in [start, end).
bool InNamespace(std::string_view hash_value, std::string_view namespace_id, double start, double end);

// The variation for a user under a growthbook strategy.
struct Decision {
  int variation;  // -1 when the user falls in no range (not in the experiment)
  double bucket;  // the hash in [0, 1); NaN when none could be computed (an empty hash value)
};

// The ranges of a growthbook strategy: its own `ranges`, else its weights (or the branch
// allocations as fractions) laid out with its coverage. Routing computes them once.
std::vector<Range> StrategyRanges(const Strategy& strategy, const std::vector<double>& allocation_weights);

// The variation of `hash_value` among `ranges`, hashed with `hash`; -1 and NaN for an
// empty hash value or an unknown version.
Decision ChooseIn(const std::vector<Range>& ranges, const SeededHash& hash, std::string_view hash_value);

// ChooseIn answered by a lookup: which range holds each of the hash's positions, computed
// once with ChooseIn's own comparisons. A routing call then neither compares doubles nor
// branches on them (its variation is as hard to predict as a coin), and its decision does
// not wait for the division that makes the bucket.
class VariationTable {
 public:
  VariationTable() = default;
  VariationTable(const std::vector<Range>& ranges, const SeededHash& hash);
  Decision Choose(const SeededHash& hash, std::string_view hash_value) const;  // = ChooseIn(ranges, hash, ·)

 private:
  std::vector<std::int8_t> variation_of_;  // per position; -1 in no range. Empty: unknown version
};

// `experiment_name` seeds the hash when the strategy has no seed. `hash_value` is the user's
// resolved hash attribute (the user id, or the hash or fallback attribute's value); an empty
// one is not in the experiment, as in the SDK. `allocation_weights` are the branch
// allocations as fractions, one per branch, used when the strategy has neither ranges nor weights.
Decision Choose(const Strategy& strategy, std::string_view experiment_name, std::string_view hash_value,
                const std::vector<double>& allocation_weights);

}  // namespace abtest::growthbook
