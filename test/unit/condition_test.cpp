#include "core/condition.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace abtest {
namespace {

// std::regex in its ECMAScript flavour, close to GrowthBook's JavaScript RegExp; the glue uses PostgreSQL's.
class StdRegex final : public CompiledRegex {
 public:
  explicit StdRegex(std::regex regex) : regex_(std::move(regex)) {}
  bool Search(std::string_view subject) const override {
    return std::regex_search(subject.begin(), subject.end(), regex_);
  }

 private:
  std::regex regex_;
};

class StdRegexEngine final : public RegexEngine {
 public:
  std::shared_ptr<const CompiledRegex> Compile(std::string_view pattern, bool case_insensitive) override {
    ++compiled;
    auto flags = std::regex::ECMAScript;
    if (case_insensitive) flags |= std::regex::icase;
    try {
      return std::make_shared<StdRegex>(std::regex(std::string(pattern), flags));
    } catch (const std::regex_error&) {
      return nullptr;
    }
  }
  int compiled = 0;
};

// Records every path looked up.
class CountingAttributes final : public AttributeSource {
 public:
  explicit CountingAttributes(const Json& document) : attributes_(document) {}
  std::optional<AttributeValue> Find(const std::vector<std::string>& path) override {
    std::string dotted;
    for (const std::string& part : path) dotted += (dotted.empty() ? "" : ".") + part;
    ++lookups[dotted];
    return attributes_.Find(path);
  }
  std::map<std::string, int> lookups;

 private:
  JsonAttributes attributes_;
};

// test/growthbook/cases.json next to this file's directory, whatever the working directory.
std::string CasesPath() {
  std::string here = __FILE__;
  std::size_t slash = here.find_last_of('/');
  return (slash == std::string::npos ? std::string(".") : here.substr(0, slash)) + "/../growthbook/cases.json";
}

// [name, condition, attributes, expected, savedGroups?] of GrowthBook's specification.
const Json& EvalConditionCases() {
  static const Json cases = [] {
    std::ifstream in(CasesPath());
    Json all = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    return all.is_object() && all.contains("evalCondition") ? all["evalCondition"] : Json::array();
  }();
  return cases;
}

Json SavedGroupsOf(const Json& test_case) { return test_case.size() > 4 ? test_case[4] : Json::object(); }

Condition Compile(const Json& condition, ConditionMode mode, const Json& saved_groups = Json::object()) {
  StdRegexEngine engine;
  return Condition::Compile(condition, saved_groups, engine, mode);
}

bool Eval(const char* condition, const char* attributes, const char* saved_groups = "{}") {
  Json document = Json::parse(attributes);
  JsonAttributes source(document);
  return Compile(Json::parse(condition), ConditionMode::kLenient, Json::parse(saved_groups)).Matches(source);
}

// The message of the refusal, or "accepted".
std::string StrictRefusal(const char* condition, const char* saved_groups = "{}") {
  try {
    Compile(Json::parse(condition), ConditionMode::kStrict, Json::parse(saved_groups));
    return "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidParameter) << e.what();
    return e.what();
  }
}

TEST(Condition, PassesEveryGrowthBookCase) {
  const Json& cases = EvalConditionCases();
  ASSERT_EQ(cases.size(), 248u) << "read " << CasesPath();
  for (const Json& test_case : cases) {
    SCOPED_TRACE(test_case[0].get<std::string>());
    Condition condition = Compile(test_case[1], ConditionMode::kLenient, SavedGroupsOf(test_case));
    JsonAttributes attributes(test_case[2]);
    EXPECT_EQ(condition.Matches(attributes), test_case[3].get<bool>());
  }
}

// The cases whose condition GrowthBook evaluates as false for a mistake in it, which strict mode refuses.
const std::set<std::string> kRefusedInStrictMode = {
    "$in - not array",
    "$nin - not array",
    "$ini - not array",
    "$nini - not array",
    "unknown operator - pass",
    "$regex invalid - pass",
    "$regex invalid - fail",
    "$inGroup fails for unknown group id",
    "$notInGroup passes for unknown group id",
};

TEST(Condition, StrictModeAcceptsEveryValidGrowthBookCondition) {
  int refused = 0;
  for (const Json& test_case : EvalConditionCases()) {
    std::string name = test_case[0].get<std::string>();
    SCOPED_TRACE(name);
    try {
      Condition condition = Compile(test_case[1], ConditionMode::kStrict, SavedGroupsOf(test_case));
      EXPECT_EQ(kRefusedInStrictMode.count(name), 0u) << "accepted";
      JsonAttributes attributes(test_case[2]);
      EXPECT_EQ(condition.Matches(attributes), test_case[3].get<bool>());
    } catch (const Error& e) {
      EXPECT_EQ(kRefusedInStrictMode.count(name), 1u) << e.what();
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidParameter);
      ++refused;
    }
  }
  EXPECT_EQ(refused, static_cast<int>(kRefusedInStrictMode.size()));
}

TEST(Condition, StrictModeRefusalsNameThePlaceInTheCondition) {
  const char* groups = R"({"beta": ["u1", "u2"], "odd": "u1"})";
  const std::pair<const char*, const char*> refusals[] = {
      {R"({"$and": [{"a": 1}, {"age": {"$gtt": 3}}]})", R"(condition at $and[1].age: unknown operator "$gtt")"},
      {R"({"country": {"$in": "DE"}})", "condition at country.$in: operand must be an array"},
      {R"({"country": {"$nini": {"a": 1}}})", "condition at country.$nini: operand must be an array"},
      {R"({"country": {"$in": ["DE", ["FR"]]}})",
       "condition at country.$in[1]: must be a string, number, boolean or null"},
      {R"({"tags": {"$all": "a"}})", "condition at tags.$all: operand must be an array"},
      {R"({"tags": {"$all": [{"$bad": 1}]}})", R"(condition at tags.$all[0]: unknown operator "$bad")"},
      {R"({"ua": {"$regex": "("}})", R"(condition at ua.$regex: invalid regular expression "(")"},
      {R"({"ua": {"$regexi": 5}})", "condition at ua.$regexi: operand must be a string"},
      {R"({"id": {"$inGroup": "gamma"}})", R"(condition at id.$inGroup: unknown saved group "gamma")"},
      {R"({"id": {"$notInGroup": 1}})", "condition at id.$notInGroup: operand must be the name of a saved group"},
      {R"({"id": {"$inGroup": "odd"}})", R"(condition at id.$inGroup: saved group "odd" is not an array)"},
      {"[]", "condition must be a JSON object"},
      {R"("country")", "condition must be a JSON object"},
      {"null", "condition must be a JSON object"},
      {R"({"$or": {"a": 1}})", "condition at $or: operand must be an array of conditions"},
      {R"({"$nor": [{"a": 1}, "b"]})", "condition at $nor[1]: must be a JSON object"},
      {R"({"$and": [[]]})", "condition at $and[0]: must be a JSON object"},
      {R"({"$not": [{"a": 1}]})", "condition at $not: must be a JSON object"},
      {R"({"a": {"$eq": [1]}})", "condition at a.$eq: operand must be a string, number, boolean or null"},
      {R"({"a": {"$ne": {"b": 1}}})", "condition at a.$ne: operand must be a string, number, boolean or null"},
      {R"({"a": {"$gt": null}})", "condition at a.$gt: operand must be a number or a string"},
      {R"({"a": {"$lte": true}})", "condition at a.$lte: operand must be a number or a string"},
      {R"({"v": {"$vgt": 1}})", "condition at v.$vgt: operand must be a version string"},
      {R"({"t": {"$size": "2"}})", R"(condition at t.$size: operand must be a number or operators such as {"$gt": 2})"},
      {R"({"t": {"$size": {"a": 2}}})",
       R"(condition at t.$size: operand must be a number or operators such as {"$gt": 2})"},
      {R"({"t": {"$elemMatch": 5}})", "condition at t.$elemMatch: operand must be an object"},
      {R"({"t": {"$elemMatch": {"x": {"$in": 1}}}})", "condition at t.$elemMatch.x.$in: operand must be an array"},
      {R"({"t": {"$type": "int"}})",
       R"(condition at t.$type: operand must be one of "string", "number", "boolean", "array", "object", "null", )"
       R"("undefined")"},
      {R"({"t": {"$not": {"$size": {"$gtt": 1}}}})", R"(condition at t.$not.$size: unknown operator "$gtt")"},
      {R"({"a": {"$gt": 1, "b": 2}})", R"(condition at a: operator "$gt" mixed with other keys (GrowthBook would )"
                                       R"(compare the object as a literal))"},
      {R"({"$in": [1, 2]})", R"(condition at $in: "$in" is an operator, not an attribute: write {"attribute": )"
                             R"({"$in": ...}})"},
      {R"({"$or": [{"a..b": 1}]})", R"(condition at $or[0]: has an attribute path with an empty part: "a..b")"},
  };
  for (const auto& [condition, message] : refusals) {
    SCOPED_TRACE(condition);
    EXPECT_EQ(StrictRefusal(condition, groups), message);
  }
  EXPECT_EQ(StrictRefusal("{}", "[]"), "saved groups must be a JSON object");
}

TEST(Condition, StrictModeAcceptsEveryOperatorWithAProperOperand) {
  const char* groups = R"({"beta": ["u1", 2]})";
  const char* accepted[] = {
      R"({"a": {"$eq": "x", "$ne": null}, "b": {"$eq": false}, "c": {"$eq": 1.5}})",
      R"({"a": {"$lt": 1, "$lte": "b", "$gt": -1e3, "$gte": "0"}})",
      R"({"a": {"$in": ["x", 1, true, null], "$nin": [], "$ini": ["X"], "$nini": ["y"]}})",
      R"({"a": {"$all": ["x", {"$gt": 1}, [1]], "$alli": []}})",
      R"({"a": {"$elemMatch": {"$gt": 1}}, "b": {"$elemMatch": {"name": "x", "$or": [{"y": 1}]}}, "c": {"$elemMatch": {}}})",
      R"({"a": {"$size": 0}, "b": {"$size": {"$gte": 1}}})",
      R"({"a": {"$exists": true}, "b": {"$exists": 0}, "c": {"$exists": null}})",
      R"({"a": {"$type": "string"}, "b": {"$type": "undefined"}, "c": {"$type": "null"}})",
      R"({"a": {"$regex": "^x", "$regexi": "Y$"}})",
      R"({"a": {"$not": {"$regex": "x"}}, "b": {"$not": "plain"}, "c": {"$not": [1]}})",
      R"({"v": {"$veq": "1.2.3", "$vne": "v2", "$vgt": "", "$vgte": "1", "$vlt": "2.0.0-rc.1", "$vlte": "3"}})",
      R"({"id": {"$inGroup": "beta"}, "uid": {"$notInGroup": "beta"}})",
      R"({"$and": [], "$or": [{}], "$nor": [{"a": 1}], "$not": {}})",
      R"({"a": [1, {"b": 2}], "b": {"c": 1}, "c": {}, "d": null, "e": "x", "f": 1, "g": true})",
      R"({"$groups": {"$elemMatch": {"$eq": "a"}}, "a.b.c": 1})",
  };
  for (const char* condition : accepted) {
    SCOPED_TRACE(condition);
    EXPECT_EQ(StrictRefusal(condition, groups), "accepted");
  }
}

// Compared with GrowthBook's own evalCondition under Node.js: JavaScript's coercions (String(), * 1, <, ===,
// toLowerCase), paths into arrays, odd operands, and TypeErrors, which GrowthBook lets escape.
TEST(Condition, FollowsGrowthBooksJavaScript) {
  struct Case {
    const char* condition;
    const char* attributes;
    const char* saved_groups;
    bool expected;
  };
  const Case cases[] = {
      {R"({"n": "1e+21"})", R"({"n": 1e21})", "{}", true},
      {R"({"n": "0.000001"})", R"({"n": 0.000001})", "{}", true},
      {R"({"n": "1e-7"})", R"({"n": 1e-7})", "{}", true},
      {R"({"n": "123456789012345680000"})", R"({"n": 123456789012345678901})", "{}", true},
      {R"({"n": "-1.5"})", R"({"n": -1.5})", "{}", true},
      {R"({"n": "1,2"})", R"({"n": [1, 2]})", "{}", true},
      {R"({"n": "1,,3,4"})", R"({"n": [1, null, [3, [4]]]})", "{}", true},
      {R"({"n": "[object Object]"})", R"({"n": {"a": 1}})", "{}", true},
      {R"({"n": "null"})", R"({})", "{}", true},
      {R"({"n": "true"})", R"({"n": true})", "{}", true},
      {R"({"n": 0})", R"({})", "{}", true},
      {R"({"n": 0})", R"({"n": ""})", "{}", true},
      {R"({"n": 0})", R"({"n": []})", "{}", true},
      {R"({"n": 5})", R"({"n": [5]})", "{}", true},
      {R"({"n": 16})", R"({"n": "0x10"})", "{}", true},
      {R"({"n": 5})", R"({"n": "0b101"})", "{}", true},
      {R"({"n": 5})", R"({"n": " 5\n"})", "{}", true},
      {R"({"n": 1})", R"({"n": true})", "{}", true},
      {R"({"n": 5})", R"({"n": "5px"})", "{}", false},
      {R"({"n": 0})", R"({"n": {}})", "{}", false},
      {R"({"n": -16})", R"({"n": "-0x10"})", "{}", false},
      {R"({"n": 500})", R"({"n": "5e2"})", "{}", true},
      {R"({"b": true})", R"({"b": "x"})", "{}", true},
      {R"({"b": true})", R"({"b": []})", "{}", true},
      {R"({"b": false})", R"({"b": 0})", "{}", true},
      {R"({"b": false})", R"({})", "{}", false},
      {R"({"n": {"$gt": 5}})", R"({"n": "10"})", "{}", true},
      {R"({"n": {"$gt": "5"}})", R"({"n": "10"})", "{}", false},
      {R"({"n": {"$lt": 1}})", R"({})", "{}", true},
      {R"({"n": {"$lte": 0}})", R"({})", "{}", true},
      {R"({"n": {"$gte": 0}})", R"({"n": "abc"})", "{}", false},
      {R"({"n": {"$lt": 0}})", R"({"n": "abc"})", "{}", false},
      {R"({"n": {"$lt": 10}})", R"({"n": [5]})", "{}", true},
      {R"({"n": {"$gt": "a"}})", R"({"n": ["b"]})", "{}", true},
      {R"({"n": {"$gt": 0}})", R"({"n": true})", "{}", true},
      {R"({"s": {"$lt": "\ue000"}})", R"({"s": "😀"})", "{}", true},
      {R"({"s": {"$gt": "\ue000"}})", R"({"s": "😀"})", "{}", false},
      {R"({"n": {"$eq": 1}})", R"({"n": 1.0})", "{}", true},
      {R"({"n": {"$eq": "1"}})", R"({"n": 1})", "{}", false},
      {R"({"n": {"$eq": null}})", R"({})", "{}", true},
      {R"({"n": {"$ne": [1]}})", R"({"n": [1]})", "{}", true},
      {R"({"n": {"$eq": [1]}})", R"({"n": [1]})", "{}", false},
      {R"({"n": {"$eq": 9007199254740993}})", R"({"n": 9007199254740992})", "{}", true},
      {R"({"n": {"$exists": 0}})", R"({})", "{}", true},
      {R"({"n": {"$exists": "x"}})", R"({"n": null})", "{}", false},
      {R"({"n": {"$exists": []}})", R"({"n": 0})", "{}", true},
      {R"({"n": {"$in": [null]}})", R"({})", "{}", true},
      {R"({"n": {"$in": [1]}})", R"({"n": "1"})", "{}", false},
      {R"({"n": {"$in": [[1]]}})", R"({"n": [1]})", "{}", false},
      {R"({"n": {"$in": [1]}})", R"({"n": [[1]]})", "{}", false},
      {R"({"n": {"$in": [9007199254740993]}})", R"({"n": 9007199254740992})", "{}", true},
      {R"({"n": {"$in": [true, "x"]}})", R"({"n": [false, true]})", "{}", true},
      {R"({"n": {"$nin": "abc"}})", R"({"n": "x"})", "{}", false},
      {R"({"n": {"$ini": ["ÄRGER"]}})", R"({"n": "ärger"})", "{}", true},
      {R"({"n": {"$ini": ["ΟΔΟΣ"]}})", R"({"n": "οδος"})", "{}", true},
      {R"({"n": {"$ini": ["ΟΔΟΣ"]}})", R"({"n": "οδοσ"})", "{}", false},
      {R"({"n": {"$ini": ["İ"]}})", R"({"n": "i̇"})", "{}", true},
      {R"({"n": {"$ini": ["İ"]}})", R"({"n": "i"})", "{}", false},
      {R"({"n": {"$nini": ["A", 1]}})", R"({"n": ["b", "1"]})", "{}", true},
      {R"({"t": {"$alli": ["A", 1]}})", R"({"t": ["a", "1"]})", "{}", true},
      {R"({"t": {"$alli": [{"$eq": "A"}]}})", R"({"t": ["a"]})", "{}", false},
      {R"({"t": {"$all": []}})", R"({"t": []})", "{}", true},
      {R"({"t": {"$all": []}})", R"({"t": "x"})", "{}", false},
      {R"({"t": {"$elemMatch": {"$exists": false}}})", R"({"t": [null, 0, ""]})", "{}", false},
      {R"({"t": {"$elemMatch": "ab"}})", R"({"t": [["a", "b"]]})", "{}", true},
      {R"({"t": {"$elemMatch": 5}})", R"({"t": [0, 1]})", "{}", true},
      {R"({"t": {"$elemMatch": 5}})", R"({"t": [0]})", "{}", false},
      {R"({"t": {"$elemMatch": {"$or": [{"a": 1}, {"b": 2}]}}})", R"({"t": [{"a": 2}, {"b": 2}]})", "{}", false},
      {R"({"t": {"$size": "2"}})", R"({"t": [1, 2]})", "{}", true},
      {R"({"t": {"$size": {"$in": [1, 2]}}})", R"({"t": [1, 2]})", "{}", true},
      {R"({"t": {"$type": "undefined"}})", R"({})", "{}", false},
      {R"({"t": {"$type": "null"}})", R"({})", "{}", true},
      {R"({"t": {"$type": "object"}})", R"({"t": []})", "{}", false},
      {R"({"s": {"$regex": "^nu"}})", R"({})", "{}", true},
      {R"({"s": {"$regex": "^1,2$"}})", R"({"s": [1, 2]})", "{}", true},
      {R"({"s": {"$regex": 5}})", R"({"s": "5"})", "{}", false},
      {R"({"s": {"$regexi": "^TRUE$"}})", R"({"s": true})", "{}", true},
      {R"({"v": {"$veq": "0"}})", R"({})", "{}", true},
      {R"({"v": {"$vgt": 1}})", R"({"v": "1.5"})", "{}", true},
      {R"({"v": {"$veq": "1.2.3"}})", R"({"v": "v1.2.3+build\nx"})", "{}", false},
      {R"({"v": {"$veq": "1.2.3"}})", R"({"v": "v1.2.3+build"})", "{}", true},
      // "+" is cut only where no line terminator follows it: the first such "+" after the last one
      {R"({"v": {"$veq": "1.2.3+a\nb"}})", R"({"v": "1.2.3+a\nb+c+d"})", "{}", true},
      {R"({"v": {"$veq": "1.2.3+a\rb"}})", R"({"v": "1.2.3+a\rb"})", "{}", true},
      {R"({"v": {"$veq": "1.2.3"}})", R"({"v": "1.2.3+a\u2028b"})", "{}", false},
      {R"({"v": {"$veq": "1.2.3+a\u2029b"}})", R"({"v": "1.2.3+a\u2029b+c"})", "{}", true},
      {R"({"v": {"$veq": "1.2.3+a\u2027"}})", R"({"v": "1.2.3"})", "{}", true},
      {R"({"v": {"$veq": "v"}})", R"({"v": ""})", "{}", false},
      {R"({"v": {"$veq": "1..2"}})", R"({"v": "1.-2"})", "{}", true},
      {R"({"v": {"$vgt": "1.2.3-rc.1"}})", R"({"v": "1.2.3-rc.0"})", "{}", false},
      {R"({"v": {"$vgt": "1.2.3-rc.1"}})", R"({"v": "1.2.3"})", "{}", true},
      {R"({"v": {"$vgt": "99999.0.0"}})", R"({"v": "100000.0.0"})", "{}", false},
      {R"({"v": {"$vlt": "4.2.0"}})", R"({"v": "4.10.0"})", "{}", false},
      {R"({"v": {"$vgt": "1.0.0"}})", R"({"v": 2})", "{}", true},
      {R"({"v": {"$vlt": "1.0.0"}})", R"({"v": ""})", "{}", true},
      {R"({"v": {"$veq": ""}})", R"({"v": false})", "{}", true},
      {R"({"tags.0": "a"})", R"({"tags": ["a", "b"]})", "{}", true},
      {R"({"tags.length": 2})", R"({"tags": ["a", "b"]})", "{}", true},
      {R"({"tags.1": "b"})", R"({"tags": ["a", "b"]})", "{}", true},
      {R"({"tags.01": "b"})", R"({"tags": ["a", "b"]})", "{}", false},
      {R"({"name.length": 3})", R"({"name": "abc"})", "{}", false},
      {R"({"tags.length.x": null})", R"({"tags": []})", "{}", true},
      {R"({"a.b.c": 1})", R"({"a": {"b": {"c": 1}}})", "{}", true},
      {R"({"a.b": {"$exists": false}})", R"({"a": "xyz"})", "{}", true},
      {R"({"o": {"a": [1, {"b": null}]}})", R"({"o": {"a": [1.0, {"b": null}]}})", "{}", true},
      {R"({"o": []})", R"({})", "{}", false},
      {R"({"o": {}})", R"({"o": {}})", "{}", true},
      {R"({"o": {}})", R"({})", "{}", false},
      {R"({"o": {"a": 1, "$b": 2}})", R"({"o": {"a": 1, "$b": 2}})", "{}", true},
      {R"({"$or": "ab"})", R"({"0": "b"})", "{}", true},
      {R"({"$or": "ab"})", R"({"0": "c"})", "{}", false},
      {R"({"$or": 5})", R"({})", "{}", true},
      {R"({"$nor": {}})", R"({})", "{}", false},
      {R"({"$and": "x"})", R"({"0": "y"})", "{}", false},
      {R"({"$not": "a"})", R"({"0": "a"})", "{}", false},
      {R"({"$not": [{"$exists": true}]})", R"({"0": 1})", "{}", false},
      {R"({"$not": 5})", R"({})", "{}", false},
      {R"({"$not": {"$or": null}})", R"({})", "{}", false},                        // JavaScript throws
      {R"({"$not": {"t": {"$elemMatch": null}}})", R"({"t": [1]})", "{}", false},  // JavaScript throws
      {R"({"$not": {"t": {"$elemMatch": null}}})", R"({"t": "x"})", "{}", true},
      {R"({"$nor": [null]})", R"({})", "{}", false},  // JavaScript throws
      {R"({"$not": {"1": {"$eq": 0}, "2": {"$elemMatch": null}}})", R"({"2": [1]})", "{}", true},
      {R"({"id": {"$inGroup": "s"}})", R"({"id": "ell"})", R"({"s": "hello"})", true},
      {R"({"id": {"$inGroup": "s"}})", R"({"id": ["x", "lo"]})", R"({"s": "hello"})", true},
      {R"({"id": {"$notInGroup": "n"}})", R"({"id": []})", R"({"n": 5})", true},
      {R"({"$not": {"id": {"$notInGroup": "n"}}})", R"({"id": [1]})", R"({"n": 5})", false},  // JavaScript throws
      {R"({"id": {"$inGroup": "z"}})", R"({"id": 0})", R"({"z": 0})", false},
      {R"({"id": {"$inGroup": 1}})", R"({"id": "a"})", R"({"1": ["a"]})", true},
      {R"({"id": {"$inGroup": "g"}})", R"({"id": ["x", 2]})", R"({"g": [1, 2]})", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.condition) + " on " + c.attributes);
    EXPECT_EQ(Eval(c.condition, c.attributes, c.saved_groups), c.expected);
  }
}

TEST(Condition, LenientModeEvaluatesMistakesAsGrowthBookDoes) {
  EXPECT_FALSE(Eval(R"({"a": {"$gtt": 1}})", R"({"a": 2})"));
  EXPECT_FALSE(Eval(R"({"a": {"$regex": "("}})", R"({"a": "("})"));
  EXPECT_FALSE(Eval(R"({"a": {"$in": "x"}})", R"({"a": "x"})"));
  EXPECT_FALSE(Eval(R"({"a": {"$nin": "x"}})", R"({"a": "y"})"));
  EXPECT_FALSE(Eval(R"({"a": {"$type": "int"}})", R"({"a": 1})"));
  EXPECT_TRUE(Eval(R"({"a": {"$ne": {"b": 1}}})", R"({"a": {"b": 1}})"));
  EXPECT_FALSE(Eval(R"({"a": {"$inGroup": "none"}})", R"({"a": 1})"));
  EXPECT_TRUE(Eval(R"({"a": {"$notInGroup": "none"}})", R"({"a": 1})"));
  EXPECT_TRUE(Eval("5", R"({"a": 1})"));  // Object.entries(5) is empty
  EXPECT_TRUE(Eval(R"("ab")", R"({"0": "a", "1": "b"})"));
  EXPECT_FALSE(Eval(R"("ab")", R"({"0": "a", "1": "c"})"));
  EXPECT_TRUE(Eval(R"([{"$gt": 1}])", R"({"0": 2})"));
  EXPECT_FALSE(Eval("null", "{}"));                        // Object.entries(null) throws
  EXPECT_FALSE(Eval(R"({"$or": "😀"})", R"({"0": "😀"})"));  // halves of a surrogate pair never match
}

TEST(Condition, RefusesDeepOrLargeConditionsInBothModes) {
  auto nested = [](int levels) {
    std::string text;
    for (int i = 1; i < levels; ++i) text += R"({"$not": )";
    text += "{}";
    text += std::string(static_cast<std::size_t>(levels - 1), '}');
    return Json::parse(text);
  };
  for (ConditionMode mode : {ConditionMode::kStrict, ConditionMode::kLenient}) {
    EXPECT_NO_THROW(Compile(nested(kMaxConditionDepth), mode));
    for (int levels : {kMaxConditionDepth + 1, 5000}) {
      try {
        Compile(nested(levels), mode);
        ADD_FAILURE() << levels << " levels accepted";
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::kProgramLimit);
        EXPECT_STREQ(e.what(), "condition is nested too deeply");
      }
    }
    // Deep literals and operands count as much as nested conditions.
    Json deep_literal = Json::parse(std::string(5000, '[') + std::string(5000, ']'));
    EXPECT_THROW(Compile(Json{{"a", std::move(deep_literal)}}, mode), Error);

    Json ids = Json::array();
    for (int i = 0; i < kMaxConditionValues; ++i) ids.push_back(i);
    try {
      Compile(Json{{"id", Json{{"$in", ids}}}}, mode);
      ADD_FAILURE() << "too large a condition accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kProgramLimit);
      EXPECT_STREQ(e.what(), "condition is too large");
    }
    ids.erase(ids.end() - 3, ids.end());  // with the object, the $in object and the array: exactly the limit
    EXPECT_NO_THROW(Compile(Json{{"id", Json{{"$in", ids}}}}, mode));
  }
  // What a string expands to in lenient mode counts as well.
  EXPECT_THROW(Compile(Json{{"$or", std::string(kMaxConditionValues, 'x')}}, ConditionMode::kLenient), Error);
}

TEST(Condition, EmptyConditionMatchesWithoutReadingAttributes) {
  CountingAttributes attributes(Json{{"a", 1}});
  EXPECT_TRUE(Condition().empty());
  EXPECT_TRUE(Condition().Matches(attributes));
  for (ConditionMode mode : {ConditionMode::kStrict, ConditionMode::kLenient}) {
    Condition condition = Compile(Json::object(), mode);
    EXPECT_TRUE(condition.empty());
    EXPECT_TRUE(condition.Matches(attributes));
  }
  EXPECT_FALSE(Compile(Json{{"$and", Json::array()}}, ConditionMode::kStrict).empty());
  EXPECT_TRUE(attributes.lookups.empty());
}

TEST(Condition, ReadsOnlyThePathsItUses) {
  Json document = Json::object();
  for (int i = 0; i < 50; ++i) document["attribute" + std::to_string(i)] = i;
  document["device"] = {{"os", "ios"}};
  CountingAttributes attributes(document);
  Condition condition = Compile(
      Json::parse(
          R"({"attribute3": {"$gte": 3}, "device.os": {"$in": ["ios", "android"]}, "$or": [{"attribute7": 7}]})"),
      ConditionMode::kStrict);
  EXPECT_TRUE(condition.Matches(attributes));
  EXPECT_EQ(attributes.lookups, (std::map<std::string, int>{{"attribute3", 1}, {"attribute7", 1}, {"device.os", 1}}));

  // A clause that fails ends the evaluation: the paths after it are not read.
  CountingAttributes short_circuit(document);
  EXPECT_FALSE(Compile(Json::parse(R"({"$and": [{"attribute1": 2}, {"attribute2": 2}]})"), ConditionMode::kStrict)
                   .Matches(short_circuit));
  EXPECT_EQ(short_circuit.lookups, (std::map<std::string, int>{{"attribute1", 1}}));
}

TEST(Condition, CompilesRegularExpressionsOnce) {
  StdRegexEngine engine;
  Condition condition =
      Condition::Compile(Json::parse(R"({"ua": {"$regex": "Mobile"}, "$or": [{"ua": {"$regexi": "tablet"}}]})"),
                         Json::object(), engine, ConditionMode::kStrict);
  EXPECT_EQ(engine.compiled, 2);
  for (int i = 0; i < 3; ++i) {
    Json document = {{"ua", "Mobile TABLET"}};
    JsonAttributes attributes(document);
    EXPECT_TRUE(condition.Matches(attributes));
  }
  EXPECT_EQ(engine.compiled, 2);
}

TEST(Condition, SavedGroupsAreResolvedAtCompilation) {
  Json groups = {{"beta", {"u1", "u2"}}};
  Condition condition = Compile(Json::parse(R"({"id": {"$inGroup": "beta"}})"), ConditionMode::kStrict, groups);
  groups["beta"] = Json::array();
  Json document = {{"id", "u2"}};
  JsonAttributes attributes(document);
  EXPECT_TRUE(condition.Matches(attributes));
  Condition copy = condition;  // copies share the compiled tree
  EXPECT_TRUE(copy.Matches(attributes));
}

TEST(Condition, JsonAttributesFollowGetPath) {
  Json document = Json::parse(R"({"a": {"b": [10, {"c": "x"}]}, "tags": ["p", "q"]})");
  JsonAttributes attributes(document);
  using Type = AttributeValue::Type;
  std::optional<AttributeValue> ten = attributes.Find({"a", "b", "0"});
  ASSERT_TRUE(ten);
  EXPECT_EQ(ten->type, Type::kNumber);
  EXPECT_EQ(ten->number, 10);
  std::optional<AttributeValue> x = attributes.Find({"a", "b", "1", "c"});
  ASSERT_TRUE(x);
  EXPECT_EQ(x->type, Type::kString);
  EXPECT_EQ(x->text, "x");
  std::optional<AttributeValue> length = attributes.Find({"tags", "length"});
  ASSERT_TRUE(length);
  EXPECT_EQ(length->type, Type::kNumber);
  EXPECT_EQ(length->number, 2);
  std::optional<AttributeValue> tags = attributes.Find({"tags"});
  ASSERT_TRUE(tags);
  EXPECT_EQ(tags->type, Type::kArray);
  EXPECT_EQ(tags->json, &document["tags"]);  // a view, not a copy
  EXPECT_FALSE(attributes.Find({"tags", "length", "x"}));
  EXPECT_FALSE(attributes.Find({"tags", "01"}));
  EXPECT_FALSE(attributes.Find({"tags", "2"}));
  EXPECT_FALSE(attributes.Find({"a", "b", "1", "c", "d"}));
  EXPECT_FALSE(attributes.Find({"missing"}));
}

// GrowthBook's paddedVersionString, written plainly (ASCII only): the reference for the version operators.
std::string ReferencePaddedVersion(std::string text) {
  if (!text.empty() && text[0] == 'v') text.erase(0, 1);
  std::size_t plus = text.find('+');
  if (plus != std::string::npos) text.erase(plus);
  std::vector<std::string> parts(1);
  for (char c : text) {
    if (c == '-' || c == '.') {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  if (parts.size() == 3) parts.push_back("~");
  std::string padded;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    bool digits = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    if (i > 0) padded += '-';
    padded += (digits && part.size() < 5 ? std::string(5 - part.size(), ' ') : std::string()) + part;
  }
  return padded;
}

// Every pair of versions orders under $veq .. $vlte as their padded forms do.
TEST(Condition, VersionOperatorsOrderAsPaddedVersions) {
  const std::vector<std::string> versions = {"1",          "1.0",        "1.0.0",     "1.0.0-rc",   "1.0.0-rc.1",
                                             "1.0.0-rc.10", "1.0.0-beta", "v1.0.0",    "1.0.0+b.7",  "1.2.3",
                                             "1.10.3",     "4.2.0",      "4.3.1",     "4.10",       "10.0.0",
                                             "99999.1.1",  "100000.0.0", "1.2.3.4",   "1..2",       "1.2.3-",
                                             "a.b.c",      "1.2.x",      "",          "0",          "1.02.3",
                                             // the short versions compared part by part, and their edges
                                             "4",          "4.2",        "4.2.0.0",   "04.2.0",     "4.2.00",
                                             "1234.5.6",   "9999.9999.9999", "12345.1.1", "1-2-3",   "1.2-3",
                                             "4.2.0+x",    "v4.2.0",     "1.2.3+",    "1.2.3+a+b",  "0.0.0",
                                             "1.2.3.4.5.6.7.8", "1.2.3.4.5.6.7.8.9", "v", "vv1.2", "+1.2", "1.2."};
  const std::pair<const char*, bool (*)(int)> operators[] = {
      {"$veq", [](int order) { return order == 0; }}, {"$vne", [](int order) { return order != 0; }},
      {"$vgt", [](int order) { return order > 0; }},  {"$vgte", [](int order) { return order >= 0; }},
      {"$vlt", [](int order) { return order < 0; }},  {"$vlte", [](int order) { return order <= 0; }},
  };
  for (const std::string& actual : versions) {
    for (const std::string& operand : versions) {
      std::string padded_actual = ReferencePaddedVersion(actual.empty() ? "0" : actual);
      std::string padded_operand = ReferencePaddedVersion(operand.empty() ? "0" : operand);
      int order = padded_actual.compare(padded_operand);
      for (const auto& [name, expected] : operators) {
        SCOPED_TRACE(actual + " " + name + " " + operand);
        Json condition = {{"v", {{name, operand}}}};
        Json document = {{"v", actual}};
        JsonAttributes source(document);
        EXPECT_EQ(Compile(condition, ConditionMode::kLenient).Matches(source), expected(order));
      }
    }
  }
}

// Random versions of digits, separators, "v" and "+" order as their padded forms do: short versions are
// compared part by part, the others through the padded text, and the two must agree.
TEST(Condition, RandomVersionsOrderAsPaddedVersions) {
  std::mt19937 random(11);
  const std::string alphabet = "0123456789..--v+a";
  auto version = [&] {
    std::string text;
    std::size_t length = random() % 12;
    for (std::size_t i = 0; i < length; ++i) text += alphabet[random() % alphabet.size()];
    if (random() % 2 == 0) {  // mostly digits and dots, as versions are
      text.clear();
      for (std::size_t part = 0, parts = 1 + random() % 5; part < parts; ++part)
        text += (part ? "." : "") + std::to_string(random() % (random() % 2 ? 10 : 100000));
    }
    return text;
  };
  for (int i = 0; i < 3000; ++i) {
    std::string actual = version(), operand = version();
    int order = ReferencePaddedVersion(actual.empty() ? "0" : actual)
                    .compare(ReferencePaddedVersion(operand.empty() ? "0" : operand));
    SCOPED_TRACE(actual + " vs " + operand);
    Json document = {{"v", actual}};
    JsonAttributes source(document);
    EXPECT_EQ(Compile({{"v", {{"$vgt", operand}}}}, ConditionMode::kLenient).Matches(source), order > 0);
    EXPECT_EQ(Compile({{"v", {{"$veq", operand}}}}, ConditionMode::kLenient).Matches(source), order == 0);
  }
}

// Strings in $in, $nin, $ini and literals are found exactly at every length around the 8 bytes compared
// as one word: strings of the same length that differ in one byte (first, middle, last) are not equal.
TEST(Condition, StringsOfEveryLengthCompareExactly) {
  std::vector<std::string> strings;
  for (std::size_t length = 0; length <= 17; ++length) {
    std::string base(length, 'k');
    strings.push_back(base);
    for (std::size_t at : {std::size_t{0}, length / 2, length - 1}) {
      if (length == 0) break;
      std::string near = base;
      near[at] = 'j';
      strings.push_back(near);
      near[at] = 'K';  // differs from base only in case: equal under $ini
      strings.push_back(near);
    }
  }
  auto lower = [](std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  };
  std::mt19937 random(7);
  for (int i = 0; i < 400; ++i) {
    Json list = Json::array();
    std::vector<std::string> chosen;
    for (std::size_t n = random() % 14; n > 0; --n) {  // both sides of the 8 a set compares one by one
      chosen.push_back(strings[random() % strings.size()]);
      list.push_back(chosen.back());
    }
    for (const std::string& actual : strings) {
      SCOPED_TRACE(actual + " in " + list.dump());
      Json document = {{"s", actual}};
      JsonAttributes source(document);
      bool in = std::find(chosen.begin(), chosen.end(), actual) != chosen.end();
      bool in_insensitive = std::any_of(chosen.begin(), chosen.end(),
                                        [&](const std::string& c) { return lower(c) == lower(actual); });
      EXPECT_EQ(Compile({{"s", {{"$in", list}}}}, ConditionMode::kStrict).Matches(source), in);
      EXPECT_EQ(Compile({{"s", {{"$nin", list}}}}, ConditionMode::kStrict).Matches(source), !in);
      EXPECT_EQ(Compile({{"s", {{"$ini", list}}}}, ConditionMode::kStrict).Matches(source), in_insensitive);
      if (!chosen.empty())
        EXPECT_EQ(Compile({{"s", chosen[0]}}, ConditionMode::kStrict).Matches(source), actual == chosen[0]);
    }
  }
}

// AttributeValue::Of reads each JSON type as the evaluator expects.
TEST(Condition, AttributeValueOfJson) {
  using Type = AttributeValue::Type;
  Json document = Json::parse(R"({"n": null, "t": true, "i": -3, "u": 7, "f": 1.5, "s": "iOS", "a": [1], "o": {}})");
  EXPECT_EQ(AttributeValue::Of(document["n"]).type, Type::kNull);
  EXPECT_TRUE(AttributeValue::Of(document["t"]).boolean);
  EXPECT_EQ(AttributeValue::Of(document["i"]).number, -3);
  EXPECT_EQ(AttributeValue::Of(document["u"]).number, 7);
  EXPECT_EQ(AttributeValue::Of(document["f"]).number, 1.5);
  EXPECT_EQ(AttributeValue::Of(document["s"]).text, "iOS");
  EXPECT_EQ(AttributeValue::Of(document["a"]).type, Type::kArray);
  EXPECT_EQ(AttributeValue::Of(document["o"]).type, Type::kObject);
}

}  // namespace
}  // namespace abtest
