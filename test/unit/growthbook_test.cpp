#include "core/growthbook.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/strategy.hpp"

namespace abtest::growthbook {
namespace {

using Json = nlohmann::json;

// Next to this file's directory, as in statistics_reference.hpp: the Makefile compiles from the
// repository root, where __FILE__ is test/unit/....
std::string TestDataPath(const std::string& relative) {
  std::string here = __FILE__;
  std::size_t slash = here.find_last_of('/');
  return (slash == std::string::npos ? std::string(".") : here.substr(0, slash)) + "/../" + relative;
}

// The SDK specification's cases (test/growthbook/cases.json). A missing file fails, never skips.
const Json& Cases() {
  static const Json cases = [] {
    std::ifstream in(TestDataPath("growthbook/cases.json"));
    Json parsed = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    return parsed.is_discarded() ? Json::object() : parsed;
  }();
  return cases;
}

const Json& Section(const char* name) {
  static const Json empty = Json::array();
  if (!Cases().contains(name) || Cases()[name].empty()) {
    ADD_FAILURE() << "no " << name << " cases in " << TestDataPath("growthbook/cases.json");
    return empty;
  }
  return Cases()[name];
}

std::vector<Range> RangesOf(const Json& json) {
  std::vector<Range> ranges;
  for (const auto& range : json) ranges.emplace_back(range[0].get<double>(), range[1].get<double>());
  return ranges;
}

// The SDK's own test harness compares bucket ranges and equal weights after truncating both
// sides to 8 decimals, and cases.json holds some values only that precisely.
double Truncated(double x) { return std::floor(x * 1e8) / 1e8; }

TEST(GrowthBookCases, Hash) {
  for (const auto& c : Section("hash")) {
    SCOPED_TRACE(c.dump());
    std::optional<double> actual = Hash(c[0].get<std::string>(), c[1].get<std::string>(), c[2].get<int>());
    if (c[3].is_null()) {
      EXPECT_FALSE(actual.has_value());
    } else {
      ASSERT_TRUE(actual.has_value());
      EXPECT_EQ(*actual, c[3].get<double>());
    }
  }
}

TEST(GrowthBookCases, BucketRanges) {
  // The SDK's untruncated results where cases.json rounds them (0.2 * 0.2 is 0.04000000000000001).
  const std::map<std::string, std::vector<Range>> sdk_results = {
      {"uneven weights, reduced coverage, 3 variations", {{0, 0.04000000000000001}, {0.2, 0.26}, {0.5, 0.6}}},
  };
  for (const auto& c : Section("getBucketRange")) {
    SCOPED_TRACE(c.dump());
    const Json& args = c[1];
    std::optional<std::vector<double>> weights;
    if (!args[2].is_null()) weights = args[2].get<std::vector<double>>();
    std::vector<Range> actual = BucketRanges(args[0].get<int>(), args[1].get<double>(), weights);
    std::vector<Range> expected = RangesOf(c[2]);
    ASSERT_EQ(actual.size(), expected.size());
    for (std::size_t i = 0; i < actual.size(); ++i) {
      EXPECT_EQ(Truncated(actual[i].first), Truncated(expected[i].first));
      EXPECT_EQ(Truncated(actual[i].second), Truncated(expected[i].second));
    }
    auto exact = sdk_results.find(c[0].get<std::string>());
    EXPECT_EQ(actual, exact == sdk_results.end() ? expected : exact->second);
  }
}

TEST(GrowthBookCases, ChooseVariation) {
  for (const auto& c : Section("chooseVariation")) {
    SCOPED_TRACE(c.dump());
    EXPECT_EQ(ChooseVariation(c[1].get<double>(), RangesOf(c[2])), c[3].get<int>());
  }
}

TEST(GrowthBookCases, InNamespace) {
  for (const auto& c : Section("inNamespace")) {
    SCOPED_TRACE(c.dump());
    const Json& ns = c[2];
    EXPECT_EQ(InNamespace(c[1].get<std::string>(), ns[0].get<std::string>(), ns[1].get<double>(), ns[2].get<double>()),
              c[3].get<bool>());
  }
}

TEST(GrowthBookCases, EqualWeights) {
  for (const auto& c : Section("getEqualWeights")) {
    SCOPED_TRACE(c.dump());
    std::vector<double> actual = EqualWeights(c[0].get<int>());
    std::vector<double> expected = c[1].get<std::vector<double>>();
    ASSERT_EQ(actual.size(), expected.size());
    for (std::size_t i = 0; i < actual.size(); ++i) {
      EXPECT_EQ(Truncated(actual[i]), Truncated(expected[i]));
      EXPECT_EQ(actual[i], 1.0 / static_cast<double>(actual.size()));  // what the SDK computes; the case rounds 1/3
    }
  }
}

// The `run` cases that exercise only bucketing, through a parsed strategy and Choose: the hash
// attribute, seed, hash version, coverage, weights and ranges, with the namespace checked first
// as the SDK does. Conditions, forcing, QA mode and the like are the router's, and so are
// experiments of fewer than two variations, which abtest cannot create.
TEST(GrowthBookCases, RunThroughChoose) {
  const std::set<std::string> bucketing = {"key",  "variations",  "coverage",      "weights",  "ranges",
                                           "seed", "hashVersion", "hashAttribute", "namespace"};
  int checked = 0;
  for (const auto& c : Section("run")) {
    const Json& context = c[1];
    const Json& experiment = c[2];
    if (context.size() != 1 || !context.contains("attributes")) continue;
    bool only_bucketing = true;
    for (const auto& item : experiment.items()) only_bucketing = only_bucketing && bucketing.count(item.key()) > 0;
    if (!only_bucketing || experiment["variations"].size() < 2) continue;
    SCOPED_TRACE(c.dump());
    ++checked;

    std::size_t variation_count = experiment["variations"].size();
    std::vector<std::string> branches;
    for (std::size_t i = 0; i < variation_count; ++i) branches.push_back("v" + std::to_string(i));
    Json params = {{"hash_version", experiment.value("hashVersion", 1)}};  // the SDK's default is 1
    const std::map<std::string, std::string> parameter_of = {{"seed", "seed"},
                                                             {"coverage", "coverage"},
                                                             {"hashAttribute", "hash_attribute"},
                                                             {"weights", "weights"},
                                                             {"ranges", "ranges"}};
    for (const auto& [sdk_key, param] : parameter_of)
      if (experiment.contains(sdk_key)) params[param] = experiment[sdk_key];
    const std::string key = experiment["key"].get<std::string>();
    Strategy strategy = ParseStrategy(key, "growthbook", params.dump(), branches);

    const Json& attributes = context["attributes"];
    std::string attribute = strategy.hash_attribute.value_or("id");
    std::string hash_value = attributes.contains(attribute) && attributes[attribute].is_string()
                                 ? attributes[attribute].get<std::string>()
                                 : "";
    int variation = -1;
    bool in_namespace = true;
    if (experiment.contains("namespace")) {
      const Json& ns = experiment["namespace"];
      in_namespace = InNamespace(hash_value, ns[0].get<std::string>(), ns[1].get<double>(), ns[2].get<double>());
    }
    if (in_namespace)
      variation = Choose(strategy, key, hash_value, EqualWeights(static_cast<int>(variation_count))).variation;

    bool in_experiment = c[4].get<bool>();
    EXPECT_EQ(variation >= 0, in_experiment);
    if (in_experiment && variation >= 0) {
      EXPECT_EQ(experiment["variations"][variation], c[3]);
    }
  }
  EXPECT_GE(checked, 40);
}

const std::string kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

TEST(GrowthBook, Fnv1a32OverUtf16CodeUnits) {
  EXPECT_EQ(Fnv1a32(""), 2166136261u);  // the offset basis
  EXPECT_EQ(Fnv1a32("a"), 3826002220u);
  // Values from the SDK's hashFnv32a: U+1F600 is the surrogate pair D83D DE00 in JavaScript.
  EXPECT_EQ(Fnv1a32("\xF0\x9F\x98\x80"), 3409036472u);
  EXPECT_EQ(Fnv1a32(kReplacement), 2007932456u);
  // é is the one code unit E9, not its two UTF-8 bytes.
  EXPECT_EQ(Fnv1a32("\xC3\xA9"), (2166136261u ^ 0xE9u) * 16777619u);
}

// Invalid UTF-8 decodes as TextDecoder does: one U+FFFD per maximal ill-formed subsequence,
// and a byte that cannot continue a sequence starts the next one.
TEST(GrowthBook, InvalidUtf8BecomesReplacementCharacters) {
  const std::string r = kReplacement;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\xFF", r},
      {"\x80", r},
      {"\xC0\xAF", r + r},                           // overlong: C0 is never valid
      {"\xE0\x80\x80", r + r + r},                   // overlong: E0 needs A0..BF next
      {"\xED\xA0\x80", r + r + r},                   // an encoded surrogate
      {"\xF4\x90\x80\x80", r + r + r + r},           // above U+10FFFF
      {"\xE3\x81", r},                               // truncated at the end: one for the whole prefix
      {std::string("\xF0\x9F\x98") + "a", r + "a"},  // truncated before an ASCII byte, which survives
      {"\xE2\x28\xA1", r + "(" + r},
      {"a\xC3\xC3\xA9", "a" + r + "\xC3\xA9"},  // the interrupting lead byte starts a valid é
  };
  for (const auto& [invalid, decoded] : cases) {
    SCOPED_TRACE(invalid);
    EXPECT_EQ(Fnv1a32(invalid), Fnv1a32(decoded));
  }
  EXPECT_EQ(Fnv1a32(r + r), 1015284303u);  // the SDK's hashFnv32a("\uFFFD\uFFFD")
  EXPECT_EQ(Fnv1a32("\xED\xA0\x80"), 4149960502u);
  // Seed and value are separate strings: their bytes do not join across the boundary.
  EXPECT_EQ(Hash("\xC3", "\xA9", 2), Hash(r, r, 2));
  EXPECT_NE(Hash("\xC3", "\xA9", 2), Hash("", "\xC3\xA9", 2));
}

// Routing's hash keeps the seed's state: the same figures as Hash for every version, whether
// the seed and value are ASCII (the direct fold), not, or switch in the middle.
TEST(GrowthBook, SeededHashEqualsHash) {
  const std::vector<std::string> texts = {"", "a", "growthbook", "exp-1\xC3\xA9", "\xC3\xA9x", "\xF0\x9F\x98\x80",
                                          "abc\xE3\x81", "1234567890123", "\xFF"};
  for (const std::string& seed : texts) {
    for (int version : {0, 1, 2, 3}) {
      SeededHash hash(seed, version);
      for (const std::string& value : texts) {
        SCOPED_TRACE(seed + " / " + value + " / v" + std::to_string(version));
        EXPECT_EQ(hash(value), Hash(seed, value, version));
      }
    }
  }
  // A known SDK figure through both: hash("", "a", 1) of cases.json is 0.22.
  EXPECT_EQ(SeededHash("", 1)("a"), 0.22);
  // The ASCII prefix folds exactly as the decoder does.
  EXPECT_EQ(Fnv1a32("ab\xC3\xA9"), (((2166136261u ^ 'a') * 16777619u ^ 'b') * 16777619u ^ 0xE9u) * 16777619u);
}

TEST(GrowthBook, HashVersions) {
  EXPECT_EQ(Hash("", "a", 1), 0.22);
  EXPECT_EQ(Hash("", "a", 2), 0.0216);
  EXPECT_EQ(Hash("", "\xF0\x9F\x98\x80", 1), 0.472);
  EXPECT_EQ(Hash("x", "\xC3\xA9", 2), 0.9181);
  for (int version : {0, 3, -1, 99}) EXPECT_FALSE(Hash("s", "v", version).has_value());
}

TEST(GrowthBook, BucketRangesRoundLikeJavaScript) {
  // start + coverage * weight rounded twice; a fused multiply-add would give 0.88 and 0.46.
  EXPECT_EQ(BucketRanges(3, 0.7, std::vector<double>{0.3, 0.3, 0.4}),
            (std::vector<Range>{{0, 0.21}, {0.3, 0.51}, {0.6, 0.8799999999999999}}));
  EXPECT_EQ(BucketRanges(2, 0.4, std::vector<double>{0.1, 0.9}),
            (std::vector<Range>{{0, 0.04000000000000001}, {0.1, 0.4600000000000001}}));
  EXPECT_TRUE(BucketRanges(0, 1, std::nullopt).empty());
  EXPECT_TRUE(BucketRanges(-2, 1, std::vector<double>{}).empty());
}

TEST(GrowthBook, InRangeIsHalfOpen) {
  EXPECT_TRUE(InRange(0, {0, 0.5}));
  EXPECT_FALSE(InRange(0.5, {0, 0.5}));
  EXPECT_FALSE(InRange(0.5, {0.5, 0.5}));
  EXPECT_FALSE(InRange(std::nan(""), {0, 1}));
  EXPECT_EQ(ChooseVariation(std::nan(""), {{0, 1}}), -1);
}

Strategy GrowthBookStrategy(const char* params) {
  return ParseStrategy("exp", "growthbook", params, {"control", "treatment"});
}

TEST(GrowthBook, ChooseSeedsWithTheExperimentNameUnlessGiven) {
  Decision by_name = Choose(GrowthBookStrategy("{}"), "exp", "user1", {0.5, 0.5});
  EXPECT_EQ(by_name.bucket, *Hash("exp", "user1", 2));
  EXPECT_EQ(by_name.variation, by_name.bucket < 0.5 ? 0 : 1);
  Decision by_seed = Choose(GrowthBookStrategy(R"({"seed": "foo"})"), "exp", "1", {0.5, 0.5});
  EXPECT_EQ(by_seed.bucket, *Hash("foo", "1", 2));
  EXPECT_EQ(by_seed.variation, 1);  // the SDK's run case "Uses seed with default weights/coverage"
  Decision version_one = Choose(GrowthBookStrategy(R"({"hash_version": 1})"), "exp", "user1", {0.5, 0.5});
  EXPECT_EQ(version_one.bucket, *Hash("exp", "user1", 1));
}

TEST(GrowthBook, ChooseUsesRangesThenWeightsThenAllocations) {
  const double bucket = *Hash("exp", "user1", 2);
  // A range holding the bucket and one not: the ranges decide, whatever coverage and weights say.
  std::string ranges = R"({"coverage": 0, "weights": [0.5, 0.5], "ranges": [[0, 0], [0, 1]]})";
  EXPECT_EQ(Choose(GrowthBookStrategy(ranges.c_str()), "exp", "user1", {1, 0}).variation, 1);
  // Weights override the allocations; the allocations apply without them.
  EXPECT_EQ(Choose(GrowthBookStrategy(R"({"weights": [0, 1]})"), "exp", "user1", {1, 0}).variation, 1);
  EXPECT_EQ(Choose(GrowthBookStrategy("{}"), "exp", "user1", {1, 0}).variation, 0);
  EXPECT_EQ(Choose(GrowthBookStrategy("{}"), "exp", "user1", {0, 1}).variation, 1);
  // Coverage shrinks each range from its start.
  Decision covered = Choose(GrowthBookStrategy(R"({"coverage": 0})"), "exp", "user1", {0.5, 0.5});
  EXPECT_EQ(covered.variation, -1);
  EXPECT_EQ(covered.bucket, bucket);
}

TEST(GrowthBook, ChooseLeavesOutAnEmptyHashValue) {
  Decision decision = Choose(GrowthBookStrategy("{}"), "exp", "", {0.5, 0.5});
  EXPECT_EQ(decision.variation, -1);
  EXPECT_TRUE(std::isnan(decision.bucket));
}

std::string FromHex(const std::string& hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return bytes;
}

// Routing's lookup table answers what ChooseIn computes, variation and bucket, for every
// version (an unknown one: no variation, NaN) and ranges with gaps, overlaps, edges that
// fall exactly on a position and edges between two positions.
TEST(GrowthBook, VariationTableEqualsChooseIn) {
  const std::vector<std::vector<Range>> range_sets = {
      BucketRanges(2, 1, std::nullopt),
      BucketRanges(3, 0.8, std::nullopt),
      BucketRanges(3, 0.37, std::vector<double>{0.2, 0.3, 0.5}),
      {{0.25, 0.5}, {0.5, 0.75}},
      {{0, 0.6}, {0.4, 1}},
      {{0.00005, 0.10005}, {0.3333, 0.3334}, {0.9999, 1}},
      {},
  };
  for (int version : {1, 2, 0}) {
    SeededHash hash("seed", version);
    for (const auto& ranges : range_sets) {
      VariationTable table(ranges, hash);
      for (int i = 0; i < 20000; ++i) {
        std::string value = "user-" + std::to_string(i);
        Decision expected = ChooseIn(ranges, hash, value);
        Decision actual = table.Choose(hash, value);
        ASSERT_EQ(actual.variation, expected.variation) << version << " " << value;
        if (std::isnan(expected.bucket)) {
          ASSERT_TRUE(std::isnan(actual.bucket));
        } else {
          ASSERT_EQ(actual.bucket, expected.bucket);
        }
      }
      Decision empty = table.Choose(hash, "");
      EXPECT_EQ(empty.variation, -1);
      EXPECT_TRUE(std::isnan(empty.bucket));
    }
  }
}

// The property test: every row of test/reference/growthbook_hash.tsv, written by the independent
// Python implementation test/reference/growthbook_hash.py (random ASCII, Latin-1, CJK, emoji and
// other astral text, empty, long and invalid UTF-8 strings, and unknown versions).
TEST(GrowthBook, MatchesTheIndependentReference) {
  std::ifstream in(TestDataPath("reference/growthbook_hash.tsv"));
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string seed_hex, value_hex, version, hash, fnv_of_value;
    std::getline(fields, seed_hex, '\t');
    std::getline(fields, value_hex, '\t');
    std::getline(fields, version, '\t');
    std::getline(fields, hash, '\t');
    std::getline(fields, fnv_of_value, '\t');
    SCOPED_TRACE(line.substr(0, 200));
    const std::string value = FromHex(value_hex);
    std::optional<double> actual = Hash(FromHex(seed_hex), value, std::stoi(version));
    if (hash == "none") {
      EXPECT_FALSE(actual.has_value());
    } else {
      ASSERT_TRUE(actual.has_value());
      EXPECT_EQ(*actual, std::strtod(hash.c_str(), nullptr));
    }
    EXPECT_EQ(Fnv1a32(value), std::stoul(fnv_of_value));
    ++rows;
  }
  EXPECT_GE(rows, 1000) << "run python3 test/reference/growthbook_hash.py ("
                        << TestDataPath("reference/growthbook_hash.tsv") << ")";
}

}  // namespace
}  // namespace abtest::growthbook
