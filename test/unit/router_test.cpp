#include "core/router.hpp"

#include <gtest/gtest.h>

#include <map>
#include <regex>

#include "core/error.hpp"
#include "core/hashing.hpp"

namespace abtest {
namespace {

// A routing environment with a remembered-branch map and a local turn counter.
class FakeEnvironment : public RoutingEnvironment {
 public:
  std::map<std::string, std::string> attributes;
  std::map<std::string, int> remembered;
  std::uint64_t turn = 0;
  int remember_calls = 0;

  std::optional<std::string> Attribute(std::string_view name) override {
    auto it = attributes.find(std::string(name));
    if (it == attributes.end()) return std::nullopt;
    return it->second;
  }
  std::uint64_t NextTurn(const CompiledExperiment&) override { return turn++; }
  std::optional<int> Remembered(const CompiledExperiment&, std::string_view user) override {
    auto it = remembered.find(std::string(user));
    if (it == remembered.end()) return std::nullopt;
    return it->second;
  }
  int Remember(const CompiledExperiment&, std::string_view user, int branch) override {
    ++remember_calls;
    return remembered.emplace(std::string(user), branch).first->second;  // the first one wins
  }
};

Experiment Active(std::vector<std::string> branches = {"control", "treatment"}) {
  Experiment e = Experiment::Create("exp", std::move(branches), std::nullopt, std::nullopt, std::nullopt, {});
  e.id = "00000000-0000-0000-0000-000000000001";
  e.Apply(Action::kStart, "now");
  e.config.sticky = false;
  return e;
}

std::string RouteOf(const Experiment& e, const std::string& user, std::vector<std::string_view> groups = {},
                    FakeEnvironment* env = nullptr) {
  CompiledExperiment compiled(e);
  FakeEnvironment local;
  FakeEnvironment& environment = env ? *env : local;
  return compiled.branch(Route(compiled, RouteRequest{user, std::move(groups)}, environment).branch);
}

TEST(Router, StatesDecideFirst) {
  Experiment e = Experiment::Create("exp", {"control", "treatment"}, std::nullopt, std::nullopt, std::nullopt, {});
  try {
    RouteOf(e, "u");
    ADD_FAILURE();
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kWrongState);
    EXPECT_STREQ(error.what(), "experiment \"exp\" is not active");
  }
  e.SetAllocation({{"treatment", "100"}});
  e.Apply(Action::kStart, "t");
  EXPECT_EQ(RouteOf(e, "u"), "treatment");
  e.Apply(Action::kPause, "t");
  EXPECT_EQ(RouteOf(e, "u"), "control");
  e.Apply(Action::kComplete, "t");
  EXPECT_EQ(RouteOf(e, "u"), "control");  // no winner: the control, not an error
  e.winner = "treatment";
  EXPECT_EQ(RouteOf(e, "u"), "treatment");
  e.Apply(Action::kArchive, "t");
  EXPECT_THROW(RouteOf(e, "u"), Error);
}

TEST(Router, GroupsExcludeAndInclude) {
  Experiment e = Active();
  e.SetAllocation({{"treatment", "100"}});
  e.config.excluded_groups = {"staff"};
  EXPECT_EQ(RouteOf(e, "u", {"staff"}), "control");
  EXPECT_EQ(RouteOf(e, "u", {"beta"}), "treatment");
  e.config.included_groups = {"beta"};
  EXPECT_EQ(RouteOf(e, "u", {}), "control");
  EXPECT_EQ(RouteOf(e, "u", {"beta"}), "treatment");
  EXPECT_EQ(RouteOf(e, "u", {"beta", "staff"}), "control");  // exclusion wins
}

TEST(Router, HashIsDeterministicAndFollowsTheAllocation) {
  Experiment e = Active();
  e.SetAllocation({{"control", "80"}, {"treatment", "20"}});
  CompiledExperiment compiled(e);
  int treatment = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string user = "user" + std::to_string(i);
    std::string branch = RouteOf(e, user);
    ASSERT_EQ(branch, RouteOf(e, user));
    ASSERT_EQ(branch, compiled.HashBucket(user) < 8000 ? "control" : "treatment");
    treatment += branch == "treatment";
  }
  EXPECT_NEAR(treatment / 20000.0, 0.20, 0.015);
  EXPECT_EQ(compiled.HashBucket("user42"), BucketOf(UserHash("user42", SaltSeed("exp"))));
}

TEST(Router, SaltChangesTheSplit) {
  Experiment e = Active();
  Experiment salted = e;
  salted.config.salt = "another";
  int differ = 0;
  for (int i = 0; i < 1000; ++i) differ += RouteOf(e, std::to_string(i)) != RouteOf(salted, std::to_string(i));
  EXPECT_GT(differ, 400);
  EXPECT_LT(differ, 600);
}

TEST(Router, ModuloMapsLikeTheSeed) {
  Experiment e = Active({"a", "b", "c"});
  e.SetAllocation({{"a", "50"}, {"b", "25"}, {"c", "25"}});
  e.SetAssignment("modulo", R"({"divisor": 4})");
  // slots 0,1 -> a (2 of 4), 2 -> b, 3 -> c
  EXPECT_EQ(RouteOf(e, "0"), "a");
  EXPECT_EQ(RouteOf(e, "1"), "a");
  EXPECT_EQ(RouteOf(e, "2"), "b");
  EXPECT_EQ(RouteOf(e, "3"), "c");
  EXPECT_EQ(RouteOf(e, "1002"), "b");
  // Divisor 3 with 50/50: floor(1.5) = 1 slot for the first, the rest falls to the last.
  Experiment two = Active();
  two.SetAssignment("modulo", R"({"divisor": 3})");
  EXPECT_EQ(RouteOf(two, "0"), "control");
  EXPECT_EQ(RouteOf(two, "1"), "treatment");
  EXPECT_EQ(RouteOf(two, "2"), "treatment");
  // A non-numeric id uses its hash.
  CompiledExperiment compiled(e);
  std::uint64_t slot = compiled.UserHashValue("alice") % 4;
  EXPECT_EQ(RouteOf(e, "alice"), slot < 2 ? "a" : slot == 2 ? "b" : "c");
}

TEST(Router, FingerprintFollowsWhatAssignmentDependsOn) {
  Experiment e = Active();
  std::uint32_t base = CompiledExperiment(e).assignment_fingerprint();
  Experiment same = e;
  same.config.min_sample_size = 5000;  // analysis settings do not re-bucket anyone
  EXPECT_EQ(CompiledExperiment(same).assignment_fingerprint(), base);
  Experiment ramped = e;
  ramped.SetAllocation({{"control", "90"}, {"treatment", "10"}});
  EXPECT_NE(CompiledExperiment(ramped).assignment_fingerprint(), base);
  Experiment salted = e;
  salted.config.salt = "x";
  EXPECT_NE(CompiledExperiment(salted).assignment_fingerprint(), base);
  Experiment strategy = e;
  strategy.SetAssignment("percentage", R"({"coverage": 50})");
  EXPECT_NE(CompiledExperiment(strategy).assignment_fingerprint(), base);
}

TEST(Router, DecimalUserIds) {
  EXPECT_EQ(DecimalUserId("0"), 0u);
  EXPECT_EQ(DecimalUserId("18446744073709551615"), 18446744073709551615ULL);
  EXPECT_FALSE(DecimalUserId("18446744073709551616"));
  EXPECT_FALSE(DecimalUserId(""));
  EXPECT_FALSE(DecimalUserId("-1"));
  EXPECT_FALSE(DecimalUserId("12a"));
}

TEST(Router, AttributeAndGroupMappings) {
  Experiment e = Active();
  e.SetAssignment("attribute", R"({"name": "country", "mapping": {"DE": "treatment"}})");
  FakeEnvironment env;
  env.attributes["country"] = "DE";
  EXPECT_EQ(RouteOf(e, "u", {}, &env), "treatment");
  env.attributes["country"] = "FR";
  EXPECT_EQ(RouteOf(e, "u", {}, &env), "control");
  env.attributes.clear();
  EXPECT_EQ(RouteOf(e, "u", {}, &env), "control");

  Experiment g = Active({"control", "b", "c"});
  g.SetAssignment("group", R"({"mapping": {"beta": "b", "vip": "c"}})");
  EXPECT_EQ(RouteOf(g, "u", {"other", "vip", "beta"}), "c");  // the user's first mapped group
  EXPECT_EQ(RouteOf(g, "u", {"beta"}), "b");
  EXPECT_EQ(RouteOf(g, "u", {"other"}), "control");
}

TEST(Router, PercentageRolloutIsIndependentAndGrowsMonotonically) {
  Experiment e = Active();
  e.SetAllocation({{"treatment", "100"}});
  e.SetAssignment("percentage", R"({"coverage": 10})");
  Experiment wider = e;
  wider.SetAssignment("percentage", R"({"coverage": 50})");
  int in_ten = 0, in_fifty = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string user = "u" + std::to_string(i);
    bool ten = RouteOf(e, user) == "treatment";
    bool fifty = RouteOf(wider, user) == "treatment";
    if (ten) {
      ASSERT_TRUE(fifty) << "raising coverage must keep everyone already in";
    }
    in_ten += ten;
    in_fifty += fifty;
  }
  EXPECT_NEAR(in_ten / 20000.0, 0.10, 0.01);
  EXPECT_NEAR(in_fifty / 20000.0, 0.50, 0.015);

  // Coverage is drawn independently of the split: among covered users the split holds.
  Experiment half = Active();
  half.SetAssignment("percentage", R"({"coverage": 50})");
  CompiledExperiment compiled(half);
  int covered = 0, covered_treatment = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string user = "u" + std::to_string(i);
    if (!compiled.InCoverage(user)) continue;
    ++covered;
    covered_treatment += RouteOf(half, user) == "treatment";
  }
  EXPECT_NEAR(static_cast<double>(covered_treatment) / covered, 0.5, 0.02);
}

TEST(Router, FixedAndRoundRobin) {
  Experiment e = Active({"a", "b", "c"});
  e.SetAssignment("fixed", R"({"branch": "c"})");
  EXPECT_EQ(RouteOf(e, "anyone"), "c");

  Experiment rr = Active({"a", "b", "c"});
  rr.SetAllocation({{"a", "50"}, {"b", "0"}, {"c", "50"}});
  rr.SetAssignment("round_robin", "{}");
  FakeEnvironment env;
  std::vector<std::string> seen;
  for (int i = 0; i < 4; ++i) seen.push_back(RouteOf(rr, "u" + std::to_string(i), {}, &env));
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "c", "a", "c"}));  // 0% branches are skipped
}

TEST(Router, StickyExperimentsUseTheSeam) {
  Experiment e = Active();
  e.config.sticky = true;
  FakeEnvironment env;
  env.remembered["u"] = 1;
  e.SetAllocation({{"control", "100"}});
  EXPECT_EQ(RouteOf(e, "u", {}, &env), "treatment");  // remembered beats the new allocation
  EXPECT_EQ(RouteOf(e, "v", {}, &env), "control");
  EXPECT_EQ(env.remembered.at("v"), 0);
  EXPECT_EQ(env.remember_calls, 1);

  e.config.sticky = false;
  EXPECT_EQ(RouteOf(e, "u", {}, &env), "control");  // not sticky: the seam is not asked
  EXPECT_EQ(env.remember_calls, 1);

  // A branch remembered by another session first is the one returned.
  class Racing : public FakeEnvironment {
   public:
    std::optional<int> Remembered(const CompiledExperiment&, std::string_view) override { return std::nullopt; }
    int Remember(const CompiledExperiment&, std::string_view, int) override { return 1; }
  } racing;
  e.config.sticky = true;
  EXPECT_EQ(RouteOf(e, "racer", {}, &racing), "treatment");

  e.config.excluded_groups = {"staff"};
  EXPECT_EQ(RouteOf(e, "w", {"staff"}, &env), "control");
  EXPECT_EQ(env.remembered.count("w"), 0u);  // excluded users are not assigned
}

}  // namespace
}  // namespace abtest

namespace abtest {
namespace {

// std::regex stands in for PostgreSQL's engine here.
class StdRegexEngine final : public RegexEngine {
 public:
  std::shared_ptr<const CompiledRegex> Compile(std::string_view pattern, bool case_insensitive) override {
    struct Regex final : CompiledRegex {
      std::regex regex;
      bool Search(std::string_view subject) const override {
        return std::regex_search(subject.begin(), subject.end(), regex);
      }
    };
    auto compiled = std::make_shared<Regex>();
    compiled->regex = std::regex(std::string(pattern), case_insensitive ? std::regex::icase : std::regex::ECMAScript);
    return compiled;
  }
};

// A FakeEnvironment with attributes as JSON for conditions.
class TargetingEnvironment : public FakeEnvironment {
 public:
  explicit TargetingEnvironment(Json document) : document_(std::move(document)), source_(document_) {}
  AttributeSource* Attributes() override { return &source_; }
  std::optional<std::string> Attribute(std::string_view name) override {
    auto it = document_.find(std::string(name));
    if (it == document_.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  }

 private:
  Json document_;
  JsonAttributes source_;
};

RouteDecision Decide(const Experiment& e, const std::string& user, Json attributes = Json::object(),
                     std::vector<std::string_view> groups = {}, TargetingEnvironment* env = nullptr) {
  StdRegexEngine regex;
  CompiledExperiment compiled(e, &regex);
  TargetingEnvironment local(std::move(attributes));
  return Route(compiled, RouteRequest{user, std::move(groups)}, env ? *env : local);
}

TEST(Targeting, ForcedUsersWinOverStatesButAreNotInTheExperiment) {
  Experiment e = Active();
  e.forced_users = {{"qa", "treatment"}};
  e.SetAllocation({{"control", "100"}});
  RouteDecision forced = Decide(e, "qa");
  EXPECT_EQ(forced.branch, 1);
  EXPECT_FALSE(forced.in_experiment);
  EXPECT_EQ(forced.reason, RouteReason::kForced);
  e.Apply(Action::kPause, "t");
  EXPECT_EQ(Decide(e, "qa").branch, 1);
  EXPECT_EQ(Decide(e, "other").reason, RouteReason::kPaused);
  EXPECT_FALSE(Decide(e, "other").in_experiment);
  e.Apply(Action::kArchive, "t");
  EXPECT_THROW(Decide(e, "qa"), Error);  // archived refuses even a forced user
}

TEST(Targeting, OnlyUsersInTheExperimentAreRemembered) {
  Experiment e = Active();
  e.config.sticky = true;
  e.config.excluded_groups = {"staff"};
  e.config.condition = R"({"country": "DE"})";
  TargetingEnvironment outside(Json{{"country", "FR"}});
  EXPECT_EQ(Decide(e, "u1", Json{{"country", "FR"}}, {}, &outside).reason, RouteReason::kCondition);
  TargetingEnvironment staff(Json{{"country", "DE"}});
  EXPECT_EQ(Decide(e, "u1", Json{{"country", "DE"}}, {"staff"}, &staff).reason, RouteReason::kExcludedGroup);
  EXPECT_EQ(outside.remember_calls + staff.remember_calls, 0);
  TargetingEnvironment inside(Json{{"country", "DE"}});
  RouteDecision in = Decide(e, "u1", Json{{"country", "DE"}}, {}, &inside);
  EXPECT_TRUE(in.in_experiment);
  EXPECT_EQ(inside.remember_calls, 1);
}

TEST(Targeting, StickinessWinsOverALaterCondition) {
  Experiment e = Active();
  e.config.sticky = true;
  e.config.condition = R"({"country": "DE"})";
  TargetingEnvironment env(Json{{"country", "FR"}});
  env.remembered["u1"] = 1;
  RouteDecision decision = Decide(e, "u1", Json{{"country", "FR"}}, {}, &env);
  EXPECT_EQ(decision.branch, 1);
  EXPECT_TRUE(decision.in_experiment);
  EXPECT_TRUE(decision.sticky);
  EXPECT_EQ(decision.reason, RouteReason::kSticky);
}

TEST(Targeting, ConditionsWithRegularExpressions) {
  Experiment e = Active();
  e.SetAllocation({{"treatment", "100"}});
  e.config.condition = R"({"email": {"$regex": "@example\\.org$"}, "age": {"$gte": 18}})";
  EXPECT_TRUE(Decide(e, "u", Json{{"email", "a@example.org"}, {"age", 30}}).in_experiment);
  EXPECT_EQ(Decide(e, "u", Json{{"email", "a@example.com"}, {"age", 30}}).reason, RouteReason::kCondition);
  EXPECT_EQ(Decide(e, "u", Json{{"email", "a@example.org"}}).reason, RouteReason::kCondition);
  // Without a regex engine a $regex condition cannot be compiled: a bug, not a user's mistake.
  EXPECT_THROW(CompiledExperiment{e}, Error);
}

TEST(Targeting, NamespacesKeepExperimentsApart) {
  // Three experiments over one namespace: every user is in exactly one of them.
  std::vector<Experiment> experiments;
  const std::pair<double, double> ranges[] = {{0, 0.25}, {0.25, 0.7}, {0.7, 1}};
  for (const auto& [start, end] : ranges) {
    Experiment e = Active();
    e.config.namespace_range = NamespaceRange{"checkout", start, end};
    experiments.push_back(e);
  }
  int in_first = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string user = "user" + std::to_string(i);
    int in = 0;
    for (const Experiment& e : experiments) in += Decide(e, user).in_experiment ? 1 : 0;
    ASSERT_EQ(in, 1) << user;
    if (Decide(experiments[0], user).in_experiment) ++in_first;
  }
  EXPECT_NEAR(in_first / 20000.0, 0.25, 0.02);
  // Outside its range a user is out, with the namespace position as the bucket.
  for (int i = 0; i < 100; ++i) {
    RouteDecision decision = Decide(experiments[0], "user" + std::to_string(i));
    if (decision.in_experiment) continue;
    EXPECT_EQ(decision.reason, RouteReason::kNamespace);
    ASSERT_TRUE(decision.bucket.has_value());
    EXPECT_GE(*decision.bucket, 0.25);
  }
}

TEST(Targeting, CoverageLeavesUsersOut) {
  Experiment e = Active();
  e.SetAssignment("percentage", R"({"coverage": 10})");
  int in = 0;
  for (int i = 0; i < 10000; ++i) {
    RouteDecision decision = Decide(e, "user" + std::to_string(i));
    if (decision.in_experiment) {
      ++in;
    } else {
      EXPECT_EQ(decision.reason, RouteReason::kCoverage);
      EXPECT_EQ(decision.branch, 0);
    }
  }
  EXPECT_NEAR(in / 10000.0, 0.10, 0.015);
}

TEST(Targeting, GrowthBookStrategyNeedsItsHashAttribute) {
  Experiment e = Active();
  e.SetAssignment("growthbook", R"({"hash_attribute": "device", "fallback_attribute": "anon", "hash_version": 1,
                                     "seed": "my-test"})");
  EXPECT_EQ(Decide(e, "u").reason, RouteReason::kMissingHashAttribute);
  EXPECT_EQ(Decide(e, "u", Json{{"device", ""}}).reason, RouteReason::kMissingHashAttribute);
  // The SDK's "default weights - 1" case: id "1" in my-test (v1) is variation 1, hash 0.969.
  RouteDecision by_device = Decide(e, "ignored", Json{{"device", "1"}});
  EXPECT_EQ(by_device.branch, 1);
  EXPECT_DOUBLE_EQ(by_device.bucket.value_or(-1), 0.969);
  EXPECT_EQ(Decide(e, "ignored", Json{{"anon", "1"}}).branch, 1);  // the fallback attribute
  // A forced variation: users who would be in get it, and are not counted.
  e.SetAssignment("growthbook", R"({"hash_version": 1, "seed": "my-test", "force": 0})");
  RouteDecision forced = Decide(e, "1");
  EXPECT_EQ(forced.branch, 0);
  EXPECT_FALSE(forced.in_experiment);
  EXPECT_EQ(forced.reason, RouteReason::kForced);
}

TEST(Targeting, GrowthBookWeightsThatDoNotAddUpSplitEqually) {
  Experiment uneven = Active();
  uneven.SetAssignment("growthbook", R"({"weights": [0.4, 0.1]})");
  Experiment equal = Active();
  equal.SetAssignment("growthbook", R"({"weights": [0.5, 0.5]})");
  for (int i = 0; i < 2000; ++i) {
    std::string user = "user" + std::to_string(i);
    ASSERT_EQ(Decide(uneven, user).branch, Decide(equal, user).branch) << user;
  }
}

TEST(Targeting, EveryReasonHasAName) {
  for (RouteReason reason : {RouteReason::kPaused, RouteReason::kCompleted, RouteReason::kForced,
                             RouteReason::kExcludedGroup, RouteReason::kNotIncludedGroup, RouteReason::kSticky,
                             RouteReason::kCondition, RouteReason::kNamespace, RouteReason::kMissingHashAttribute,
                             RouteReason::kCoverage, RouteReason::kAssigned})
    EXPECT_STRNE(RouteReasonName(reason), "");
  EXPECT_STREQ(RouteReasonName(RouteReason::kNotIncludedGroup), "not_included_group");
}

}  // namespace
}  // namespace abtest
