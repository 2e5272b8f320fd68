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

}  // namespace
}  // namespace abtest
