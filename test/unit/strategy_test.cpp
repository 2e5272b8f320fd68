#include "core/strategy.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace abtest {
namespace {

const std::vector<std::string> kBranches = {"control", "treatment"};

Strategy Parse(const char* name, const char* params) { return ParseStrategy("e", name, params, kBranches); }

TEST(Strategy, ParsesEveryStrategy) {
  EXPECT_EQ(Parse("hash", "{}").kind, StrategyKind::kHash);
  EXPECT_EQ(Parse("modulo", R"({"divisor": 100})").divisor, 100u);
  Strategy attribute = Parse("attribute", R"({"name": "country", "mapping": {"DE": "treatment"}})");
  EXPECT_EQ(attribute.attribute, "country");
  ASSERT_EQ(attribute.mapping.size(), 1u);
  EXPECT_EQ(Parse("group", R"({"mapping": {"beta": "treatment"}})").mapping[0].first, "beta");
  EXPECT_EQ(Parse("percentage", R"({"coverage": 12.5})").coverage, 1250);
  EXPECT_EQ(Parse("percentage", "{}").coverage, 10000);
  EXPECT_EQ(Parse("fixed", R"({"branch": "treatment"})").branch, "treatment");
  EXPECT_EQ(Parse("round_robin", "{}").kind, StrategyKind::kRoundRobin);
}

TEST(Strategy, RefusesBadParameters) {
  const char* bad[][2] = {
      {"nope", "{}"},
      {"hash", R"({"divisor": 3})"},
      {"hash", "[]"},
      {"hash", "not json"},
      {"modulo", "{}"},
      {"modulo", R"({"divisor": 0})"},
      {"modulo", R"({"divisor": -3})"},
      {"modulo", R"({"divisor": 2.5})"},
      {"modulo", R"({"divisor": "10"})"},
      {"modulo", R"({"divisor": 1000000000001})"},
      {"attribute", R"({"mapping": {"DE": "treatment"}})"},
      {"attribute", R"({"name": "", "mapping": {"DE": "treatment"}})"},
      {"attribute", R"({"name": "c", "mapping": {}})"},
      {"attribute", R"({"name": "c", "mapping": {"DE": 1}})"},
      {"group", R"({"mapping": ["beta"]})"},
      {"percentage", R"({"coverage": 101})"},
      {"percentage", R"({"coverage": 10.001})"},
      {"percentage", R"({"coverage": "50"})"},
      {"fixed", "{}"},
      {"fixed", R"({"branch": 7})"},
  };
  for (const auto& [name, params] : bad) {
    SCOPED_TRACE(std::string(name) + " " + params);
    try {
      Parse(name, params);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidParameter);
    }
  }
}

TEST(Strategy, RefusesBranchesNotInTheExperiment) {
  for (const char* params : {R"({"branch": "zz"})"}) {
    try {
      Parse("fixed", params);
      ADD_FAILURE();
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUndefinedObject);
    }
  }
  EXPECT_THROW(Parse("group", R"({"mapping": {"beta": "zz"}})"), Error);
}

TEST(Strategy, CanonicalParametersParseBackTheSame) {
  for (const auto& [name, params] : std::vector<std::pair<const char*, const char*>>{
           {"modulo", R"({"divisor": 7})"},
           {"attribute", R"({"name": "c", "mapping": {"DE": "treatment", "FR": "control"}})"},
           {"percentage", R"({"coverage": 33.33})"},
           {"fixed", R"({"branch": "control"})"}}) {
    std::string canonical = StrategyParamsJson(Parse(name, params));
    EXPECT_EQ(StrategyParamsJson(Parse(name, canonical.c_str())), canonical);
  }
}

TEST(Strategy, GrowthBookDefaults) {
  Strategy strategy = Parse("growthbook", "{}");
  EXPECT_EQ(strategy.kind, StrategyKind::kGrowthBook);
  EXPECT_STREQ(StrategyName(strategy.kind), "growthbook");
  EXPECT_EQ(strategy.hash_version, 2);
  EXPECT_FALSE(strategy.seed.has_value());
  EXPECT_EQ(strategy.growthbook_coverage, 1.0);
  EXPECT_FALSE(strategy.hash_attribute.has_value());
  EXPECT_FALSE(strategy.fallback_attribute.has_value());
  EXPECT_FALSE(strategy.ranges.has_value());
  EXPECT_FALSE(strategy.weights.has_value());
  EXPECT_EQ(StrategyParamsJson(strategy), R"({"coverage":1,"hash_version":2})");
}

TEST(Strategy, GrowthBookParsesEveryParameter) {
  Strategy strategy = Parse("growthbook", R"({"hash_version": 1, "seed": "s1", "coverage": 0.4,
      "hash_attribute": "company", "fallback_attribute": "device", "ranges": [[0, 0.25], [0.5, 0.75]],
      "weights": [0.1, 0.9]})");
  EXPECT_EQ(strategy.hash_version, 1);
  EXPECT_EQ(strategy.seed, "s1");
  EXPECT_EQ(strategy.growthbook_coverage, 0.4);
  EXPECT_EQ(strategy.hash_attribute, "company");
  EXPECT_EQ(strategy.fallback_attribute, "device");
  EXPECT_EQ(strategy.ranges, (std::vector<std::pair<double, double>>{{0, 0.25}, {0.5, 0.75}}));
  EXPECT_EQ(strategy.weights, (std::vector<double>{0.1, 0.9}));
  // Zero-width ranges and zero weights are GrowthBook's way of closing a variation.
  EXPECT_EQ(Parse("growthbook", R"({"ranges": [[0.5, 0.5], [0, 1]], "weights": [0, 1]})").ranges->at(0).second, 0.5);
  // Weights are summed as the SDK sums them, with its tolerance.
  EXPECT_TRUE(Parse("growthbook", R"({"weights": [0.4, 0.5999]})").weights.has_value());
  EXPECT_TRUE(Parse("growthbook", R"({"weights": [0.5, 0.51]})").weights.has_value());
  // Weights that do not add up to 1 are kept, and bucketing splits equally, as the SDKs do.
  EXPECT_TRUE(Parse("growthbook", R"({"weights": [0.4, 0.1]})").weights.has_value());
  EXPECT_TRUE(Parse("growthbook", R"({"weights": [0.7, 0.6]})").weights.has_value());
}

TEST(Strategy, GrowthBookRefusesBadParameters) {
  const char* bad[][2] = {
      {"hash_atribute", R"({"hash_atribute": "a"})"},
      {"parameters", "[]"},
      {"hash_version", R"({"hash_version": 3})"},
      {"hash_version", R"({"hash_version": 0})"},
      {"hash_version", R"({"hash_version": 2.5})"},
      {"hash_version", R"({"hash_version": "2"})"},
      {"seed", R"({"seed": ""})"},
      {"seed", R"({"seed": 7})"},
      {"coverage", R"({"coverage": 1.01})"},
      {"coverage", R"({"coverage": -0.1})"},
      {"coverage", R"({"coverage": "1"})"},
      {"coverage", R"({"coverage": null})"},
      {"hash_attribute", R"({"hash_attribute": ""})"},
      {"hash_attribute", R"({"hash_attribute": ["id"]})"},
      {"fallback_attribute", R"({"fallback_attribute": ""})"},
      {"fallback_attribute", R"({"fallback_attribute": 1})"},
      {"ranges", R"({"ranges": [[0, 0.5]]})"},
      {"ranges", R"({"ranges": [[0, 0.5], [0.5, 1], [0, 0]]})"},
      {"ranges", R"({"ranges": [[0, 0.5], [0.5]]})"},
      {"ranges", R"({"ranges": [[0, 0.5], [0.5, 1, 1]]})"},
      {"ranges", R"({"ranges": [[0, 0.5], [0.6, 0.5]]})"},
      {"ranges", R"({"ranges": [[-0.1, 0.5], [0.5, 1]]})"},
      {"ranges", R"({"ranges": [[0, 0.5], [0.5, 1.5]]})"},
      {"ranges", R"({"ranges": [[0, "0.5"], [0.5, 1]]})"},
      {"ranges", R"({"ranges": {"control": [0, 0.5]}})"},
      {"weights", R"({"weights": [1]})"},
      {"weights", R"({"weights": [0.5, 0.5, 0]})"},
      {"weights", R"({"weights": [1.5, -0.5]})"},
      {"weights", R"({"weights": [0.5, "0.5"]})"},
      {"weights", R"({"weights": 1})"},
  };
  for (const auto& [parameter, params] : bad) {
    SCOPED_TRACE(params);
    try {
      ParseStrategy("checkout", "growthbook", params, kBranches);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidParameter);
      std::string message = e.what();
      EXPECT_NE(message.find("\"checkout\""), std::string::npos) << message;
      EXPECT_NE(message.find(parameter), std::string::npos) << message;
    }
  }
}

TEST(Strategy, GrowthBookCanonicalParametersParseBackTheSame) {
  for (const char* params : {
           "{}",
           R"({"seed": "s", "hash_version": 1})",
           R"({"coverage": 0.333, "weights": [0.1, 0.9]})",
           R"({"hash_attribute": "company", "fallback_attribute": "device"})",
           R"({"ranges": [[0.99, 1.0], [0.0, 0.99]], "coverage": 0.01, "weights": [0.99, 0.01]})",
           R"({"weights": [0.30000000000000004, 0.7]})",
       }) {
    SCOPED_TRACE(params);
    Strategy strategy = Parse("growthbook", params);
    std::string canonical = StrategyParamsJson(strategy);
    Strategy again = Parse("growthbook", canonical.c_str());
    EXPECT_EQ(StrategyParamsJson(again), canonical);
    EXPECT_EQ(again.hash_version, strategy.hash_version);
    EXPECT_EQ(again.seed, strategy.seed);
    EXPECT_EQ(again.growthbook_coverage, strategy.growthbook_coverage);
    EXPECT_EQ(again.hash_attribute, strategy.hash_attribute);
    EXPECT_EQ(again.fallback_attribute, strategy.fallback_attribute);
    EXPECT_EQ(again.ranges, strategy.ranges);
    EXPECT_EQ(again.weights, strategy.weights);
  }
  // Absent stays absent: no seed is written for "the experiment name".
  EXPECT_EQ(StrategyParamsJson(Parse("growthbook", R"({"seed": "s", "ranges": [[0, 0.5], [0.5, 1]]})")),
            R"({"coverage":1,"hash_version":2,"ranges":[[0,0.5],[0.5,1]],"seed":"s"})");
}

}  // namespace
}  // namespace abtest
