#include "core/growthbook.hpp"

#include <limits>
#include <string>

#include "core/experiment.hpp"

namespace abtest::growthbook {
namespace {

constexpr std::uint32_t kFnvOffsetBasis = 0x811C9DC5u;
constexpr std::uint32_t kFnvPrime = 0x01000193u;
constexpr std::uint32_t kReplacementCharacter = 0xFFFD;

// Calls `emit` with each UTF-16 code unit of the text `utf8` decodes to, following the WHATWG
// UTF-8 decoder (TextDecoder): a byte that cannot continue a sequence ends it with one U+FFFD
// and is then read afresh, so each maximal ill-formed subsequence costs exactly one U+FFFD.
template <typename Emit>
void ForEachUtf16Unit(std::string_view utf8, Emit&& emit) {
  std::uint32_t code_point = 0;
  int bytes_needed = 0;
  int bytes_seen = 0;
  unsigned char lower = 0x80;  // the range the next continuation byte must fall in; narrower
  unsigned char upper = 0xBF;  // after E0, ED, F0 and F4 to refuse overlongs, surrogates and > U+10FFFF
  std::size_t i = 0;
  while (i < utf8.size()) {
    const auto byte = static_cast<unsigned char>(utf8[i]);
    if (bytes_needed == 0) {
      ++i;
      if (byte <= 0x7F) {
        emit(byte);
      } else if (byte >= 0xC2 && byte <= 0xDF) {
        bytes_needed = 1;
        code_point = byte & 0x1Fu;
      } else if (byte >= 0xE0 && byte <= 0xEF) {
        if (byte == 0xE0) lower = 0xA0;
        if (byte == 0xED) upper = 0x9F;
        bytes_needed = 2;
        code_point = byte & 0x0Fu;
      } else if (byte >= 0xF0 && byte <= 0xF4) {
        if (byte == 0xF0) lower = 0x90;
        if (byte == 0xF4) upper = 0x8F;
        bytes_needed = 3;
        code_point = byte & 0x07u;
      } else {
        emit(kReplacementCharacter);
      }
      continue;
    }
    if (byte < lower || byte > upper) {
      // Not consumed: the byte may start the next sequence.
      code_point = 0;
      bytes_needed = bytes_seen = 0;
      lower = 0x80;
      upper = 0xBF;
      emit(kReplacementCharacter);
      continue;
    }
    ++i;
    lower = 0x80;
    upper = 0xBF;
    code_point = (code_point << 6) | (byte & 0x3Fu);
    if (++bytes_seen < bytes_needed) continue;
    if (code_point < 0x10000) {
      emit(code_point);
    } else {
      // Outside the BMP a JavaScript string holds a surrogate pair.
      emit(0xD800 + ((code_point - 0x10000) >> 10));
      emit(0xDC00 + ((code_point - 0x10000) & 0x3FF));
    }
    code_point = 0;
    bytes_needed = bytes_seen = 0;
  }
  if (bytes_needed != 0) emit(kReplacementCharacter);  // truncated at the end
}

// FNV-1a is a fold over the code units, so hashing a + b is hashing a, then b: JavaScript's
// concatenation needs no copy. Each part decodes on its own, as each is its own JS string.
// ASCII, what user ids and seeds nearly always are, is one code unit per byte: folded directly,
// and only the rest goes through the decoder (which an ASCII byte leaves in its initial state).
std::uint32_t Fnv1aContinue(std::uint32_t state, std::string_view utf8) {
  std::size_t i = 0;
  for (; i < utf8.size() && static_cast<unsigned char>(utf8[i]) < 0x80; ++i)
    state = (state ^ static_cast<unsigned char>(utf8[i])) * kFnvPrime;
  if (i < utf8.size())
    ForEachUtf16Unit(utf8.substr(i), [&state](std::uint32_t unit) { state = (state ^ unit) * kFnvPrime; });
  return state;
}

// v2's outer hash: FNV-1a over the decimal text of the inner one, without a string. The
// digits are divisions by constants that do not wait for one another (to_chars finds them
// one pair after the other), folded in one straight run from the first significant digit.
std::uint32_t FnvOfDecimal(std::uint32_t inner) {
  std::uint32_t state = kFnvOffsetBasis;
  auto fold = [&state](std::uint32_t digit) { state = (state ^ ('0' + digit)) * kFnvPrime; };
  int digits = 1 + (inner >= 10u) + (inner >= 100u) + (inner >= 1000u) + (inner >= 10000u) + (inner >= 100000u) +
               (inner >= 1000000u) + (inner >= 10000000u) + (inner >= 100000000u) + (inner >= 1000000000u);
  switch (digits) {
    case 10: fold(inner / 1000000000u); [[fallthrough]];
    case 9: fold(inner / 100000000u % 10); [[fallthrough]];
    case 8: fold(inner / 10000000u % 10); [[fallthrough]];
    case 7: fold(inner / 1000000u % 10); [[fallthrough]];
    case 6: fold(inner / 100000u % 10); [[fallthrough]];
    case 5: fold(inner / 10000u % 10); [[fallthrough]];
    case 4: fold(inner / 1000u % 10); [[fallthrough]];
    case 3: fold(inner / 100u % 10); [[fallthrough]];
    case 2: fold(inner / 10u % 10); [[fallthrough]];
    default: fold(inner % 10);
  }
  return state;
}

// BucketRanges without copying the weights; `weights` null means absent.
std::vector<Range> RangesOf(int num_variations, double coverage, const std::vector<double>* weights) {
  // Comparisons, not std::clamp: a NaN coverage passes through as in the SDK.
  if (coverage < 0) {
    coverage = 0;
  } else if (coverage > 1) {
    coverage = 1;
  }

  const std::vector<double> equal = EqualWeights(num_variations);
  const std::vector<double>* chosen = weights ? weights : &equal;
  if (static_cast<long long>(chosen->size()) != num_variations) chosen = &equal;
  double total = 0;
  for (double weight : *chosen) total = weight + total;  // summed from the first, as Array.reduce
  if (total < 0.99 || total > 1.01) chosen = &equal;

  std::vector<Range> ranges;
  ranges.reserve(chosen->size());
  double cumulative = 0;
  for (double weight : *chosen) {
    double start = cumulative;
    cumulative += weight;
    // Rounded on its own, as in JavaScript: fused into a multiply-add (GCC does so by default where
    // the CPU has FMA, clang under -ffp-contract=fast) a range's end could move by an ulp.
    volatile double scaled = coverage * weight;
    ranges.emplace_back(start, start + scaled);
  }
  return ranges;
}

}  // namespace

std::uint32_t Fnv1a32(std::string_view utf8) { return Fnv1aContinue(kFnvOffsetBasis, utf8); }

std::optional<double> Hash(std::string_view seed, std::string_view value, int version) {
  return SeededHash(seed, version)(value);
}

SeededHash::SeededHash(std::string_view seed, int version)
    : seed_(seed), version_(version), seed_state_(Fnv1aContinue(kFnvOffsetBasis, seed)) {}

std::uint32_t SeededHash::positions() const {
  if (version_ == 2) return 10000;
  if (version_ == 1) return 1000;
  return 0;
}

std::uint32_t SeededHash::Position(std::string_view value) const {
  if (version_ == 2) return FnvOfDecimal(Fnv1aContinue(seed_state_, value)) % 10000;
  return Fnv1aContinue(Fnv1aContinue(kFnvOffsetBasis, value), seed_) % 1000;
}

double SeededHash::At(std::string_view value) const {
  std::uint32_t scale = positions();
  if (scale == 0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(Position(value)) / scale;
}

std::optional<double> SeededHash::operator()(std::string_view value) const {
  if (version_ != 1 && version_ != 2) return std::nullopt;
  return At(value);
}

std::vector<double> EqualWeights(int n) {
  if (n <= 0) return {};
  return std::vector<double>(static_cast<std::size_t>(n), 1.0 / n);
}

std::vector<Range> BucketRanges(int num_variations, double coverage,
                                const std::optional<std::vector<double>>& weights) {
  return RangesOf(num_variations, coverage, weights ? &*weights : nullptr);
}

bool InRange(double n, const Range& range) { return n >= range.first && n < range.second; }

int ChooseVariation(double n, const std::vector<Range>& ranges) {
  for (std::size_t i = 0; i < ranges.size(); ++i)
    if (InRange(n, ranges[i])) return static_cast<int>(i);
  return -1;
}

bool InNamespace(std::string_view hash_value, std::string_view namespace_id, double start, double end) {
  std::optional<double> n = Hash("__" + std::string(namespace_id), hash_value, 1);
  return n && *n >= start && *n < end;
}

std::vector<Range> StrategyRanges(const Strategy& strategy, const std::vector<double>& allocation_weights) {
  if (strategy.ranges) return *strategy.ranges;
  const std::vector<double>& weights = strategy.weights ? *strategy.weights : allocation_weights;
  return RangesOf(static_cast<int>(allocation_weights.size()), strategy.growthbook_coverage, &weights);
}

Decision ChooseIn(const std::vector<Range>& ranges, const SeededHash& hash, std::string_view hash_value) {
  constexpr double kNoBucket = std::numeric_limits<double>::quiet_NaN();
  if (hash_value.empty()) return {-1, kNoBucket};
  double n = hash.At(hash_value);  // NaN for an unknown version: in no range
  for (std::size_t i = 0; i < ranges.size(); ++i)
    if (n >= ranges[i].first && n < ranges[i].second) return {static_cast<int>(i), n};
  return {-1, n};
}

VariationTable::VariationTable(const std::vector<Range>& ranges, const SeededHash& hash) {
  static_assert(kMaxBranches <= 127, "a variation must fit the table's byte");
  std::uint32_t positions = hash.positions();
  variation_of_.resize(positions);
  for (std::uint32_t position = 0; position < positions; ++position) {
    double n = static_cast<double>(position) / positions;  // exactly SeededHash::At's bucket
    int variation = -1;
    for (std::size_t i = 0; i < ranges.size() && variation < 0; ++i)
      if (n >= ranges[i].first && n < ranges[i].second) variation = static_cast<int>(i);
    variation_of_[position] = static_cast<std::int8_t>(variation);
  }
}

Decision VariationTable::Choose(const SeededHash& hash, std::string_view hash_value) const {
  constexpr double kNoBucket = std::numeric_limits<double>::quiet_NaN();
  if (hash_value.empty() || variation_of_.empty()) return {-1, kNoBucket};
  std::uint32_t position = hash.Position(hash_value);
  return {variation_of_[position], static_cast<double>(position) / static_cast<double>(variation_of_.size())};
}

Decision Choose(const Strategy& strategy, std::string_view experiment_name, std::string_view hash_value,
                const std::vector<double>& allocation_weights) {
  // The SDK seeds with `seed || key`: an empty seed means the experiment's own name.
  std::string_view seed = strategy.seed && !strategy.seed->empty() ? std::string_view(*strategy.seed) : experiment_name;
  return ChooseIn(StrategyRanges(strategy, allocation_weights), SeededHash(seed, strategy.hash_version), hash_value);
}

}  // namespace abtest::growthbook
