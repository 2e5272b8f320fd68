#include "core/experiment.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/experiment_json.hpp"

namespace abtest {
namespace {

Experiment TwoBranches() {
  return Experiment::Create("checkout", {"control", "treatment"}, std::nullopt, "desc", "team", {"web"});
}

ErrorKind KindOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no error";
  return ErrorKind::kInternal;
}

TEST(Experiment, CreateSplitsEquallyAndSaltsWithTheName) {
  Experiment e = Experiment::Create("x", {"a", "b", "c"}, std::nullopt, std::nullopt, std::nullopt, {});
  ASSERT_EQ(e.branches.size(), 3u);
  EXPECT_EQ(e.branches[0].allocation, 3334);
  EXPECT_EQ(e.branches[1].allocation, 3333);
  EXPECT_EQ(e.state, State::kDraft);
  EXPECT_EQ(e.config.salt, "x");
  EXPECT_TRUE(e.config.sticky);
  EXPECT_EQ(e.config.min_sample_size, 100);
  EXPECT_DOUBLE_EQ(e.config.confidence_level, 0.95);
  EXPECT_EQ(e.strategy.kind, StrategyKind::kHash);
}

TEST(Experiment, CreateRefusesBadInput) {
  auto create = [](std::string name, std::vector<std::string> branches,
                   std::optional<std::vector<std::string>> allocation = std::nullopt) {
    return [=] { Experiment::Create(name, branches, allocation, std::nullopt, std::nullopt, {}); };
  };
  EXPECT_EQ(KindOf(create("", {"a", "b"})), ErrorKind::kInvalidParameter);
  EXPECT_EQ(KindOf(create(std::string(201, 'x'), {"a", "b"})), ErrorKind::kInvalidParameter);
  EXPECT_EQ(KindOf(create("tab\tname", {"a", "b"})), ErrorKind::kInvalidParameter);
  EXPECT_EQ(KindOf(create("x", {"a"})), ErrorKind::kInvalidParameter);
  EXPECT_EQ(KindOf(create("x", {"a", "a"})), ErrorKind::kInvalidParameter);
  EXPECT_EQ(KindOf(create("x", {"a", ""})), ErrorKind::kInvalidParameter);
  EXPECT_EQ(KindOf(create("x", std::vector<std::string>(101, "b"))), ErrorKind::kProgramLimit);
  EXPECT_EQ(KindOf(create("x", {"a", "b"}, std::vector<std::string>{"50", "49.99"})), ErrorKind::kInvalidParameter);
  EXPECT_EQ(KindOf(create("x", {"a", "b"}, std::vector<std::string>{"100"})), ErrorKind::kInvalidParameter);
  EXPECT_EQ(KindOf(create("x", {"a", "b"}, std::vector<std::string>{"150", "-50"})), ErrorKind::kInvalidParameter);
  EXPECT_NO_THROW(create("naïve \"quoted\" 実験", {"a", "b"}, std::vector<std::string>{"99.99", "0.01"})());
}

TEST(Experiment, LifecycleRecordsTimes) {
  Experiment e = TwoBranches();
  e.Apply(Action::kStart, "t1");
  e.Apply(Action::kPause, "t2");
  e.Apply(Action::kStart, "t3");
  EXPECT_EQ(e.started_at, "t1");  // resuming keeps the first start
  e.Apply(Action::kComplete, "t4", std::string("treatment"));
  EXPECT_EQ(e.state, State::kCompleted);
  EXPECT_EQ(e.completed_at, "t4");
  EXPECT_EQ(e.winner, "treatment");
}

TEST(Experiment, CompleteRefusesAWinnerThatIsNoBranch) {
  Experiment e = TwoBranches();
  e.Apply(Action::kStart, "t1");
  EXPECT_EQ(KindOf([&] { e.Apply(Action::kComplete, "t2", std::string("nope")); }), ErrorKind::kUndefinedObject);
  EXPECT_EQ(e.state, State::kActive);  // unchanged
}

TEST(Experiment, SetAllocationIsAllOrNothing) {
  Experiment e = TwoBranches();
  e.SetAllocation({{"control", "80"}, {"treatment", "20"}});
  EXPECT_EQ(e.branches[0].allocation, 8000);
  EXPECT_EQ(KindOf([&] { e.SetAllocation({{"control", "80"}, {"bogus", "20"}}); }), ErrorKind::kUndefinedObject);
  EXPECT_EQ(KindOf([&] { e.SetAllocation({{"control", "80"}, {"treatment", "10"}}); }), ErrorKind::kInvalidParameter);
  EXPECT_EQ(KindOf([&] { e.SetAllocation({{"control", "50"}, {"control", "50"}}); }), ErrorKind::kInvalidParameter);
  EXPECT_EQ(e.branches[0].allocation, 8000);
  e.SetAllocation({{"treatment", "100"}});  // left-out branches get 0
  EXPECT_EQ(e.branches[0].allocation, 0);
}

TEST(Experiment, ConfigureChangesOnlyWhatIsGiven) {
  Experiment e = TwoBranches();
  ConfigChange change;
  change.min_sample_size = 500;
  change.excluded_groups = std::vector<std::string>{"staff"};
  e.Configure(change);
  EXPECT_EQ(e.config.min_sample_size, 500);
  EXPECT_EQ(e.config.excluded_groups, std::vector<std::string>{"staff"});
  EXPECT_TRUE(e.config.sticky);

  ConfigChange bad;
  bad.confidence_level = 1.0;
  bad.sticky = false;
  EXPECT_THROW(e.Configure(bad), Error);
  EXPECT_TRUE(e.config.sticky);  // nothing of a refused change is applied

  ConfigChange duration;
  duration.max_duration = "7 days";
  duration.max_duration_seconds = 604800;
  e.Configure(duration);
  EXPECT_EQ(e.config.max_duration, "7 days");
  duration.max_duration = "00:00:00";
  duration.max_duration_seconds = 0;
  e.Configure(duration);
  EXPECT_FALSE(e.config.max_duration.has_value());
  duration.max_duration = "-1 days";
  duration.max_duration_seconds = -86400;
  EXPECT_THROW(e.Configure(duration), Error);
}

TEST(Experiment, JsonRoundTrip) {
  Experiment e = TwoBranches();
  e.id = "e480f839-2714-48f3-b343-2acf329291cf";
  e.SetAllocation({{"control", "33.34"}, {"treatment", "66.66"}});
  e.SetAssignment("attribute", R"({"name":"country","mapping":{"DE":"treatment"}})");
  e.Apply(Action::kStart, "2026-01-01T00:00:00+00:00");
  Experiment back = ExperimentFromJson(ExperimentToJson(e));
  EXPECT_EQ(ExperimentToJson(back), ExperimentToJson(e));
  EXPECT_EQ(back.branches[0].allocation, 3334);
  EXPECT_EQ(back.strategy.attribute, "country");
  EXPECT_EQ(back.state, State::kActive);
}

TEST(Experiment, JsonIsHeldToTheRulesOfTheApi) {
  Experiment e = TwoBranches();  // no id yet: it round-trips all the same
  EXPECT_EQ(ExperimentToJson(ExperimentFromJson(ExperimentToJson(e))), ExperimentToJson(e));
  auto with = [&](const std::string& key, const std::string& value) {
    std::string doc = ExperimentToJson(e);
    std::string field = "\"" + key + "\":";
    std::size_t at = doc.find(field) + field.size();
    std::size_t end = doc.find_first_of(",}", at);
    return doc.substr(0, at) + value + doc.substr(end);
  };
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"min_sample_size", "1e300"}, {"min_sample_size", "1.9"}, {"min_sample_size", "0"},
           {"min_sample_size", "18446744073709551615"}, {"confidence_level", "7"}, {"salt", "\"\""},
           {"sticky", "1"}}) {
    SCOPED_TRACE(key + "=" + value);
    EXPECT_THROW(ExperimentFromJson(with(key, value)), Error);
  }
  EXPECT_EQ(ExperimentFromJson(with("min_sample_size", "250")).config.min_sample_size, 250);
}

TEST(Experiment, JsonFromTheCatalogIsValidated) {
  EXPECT_THROW(ExperimentFromJson("not json"), Error);
  EXPECT_THROW(ExperimentFromJson("{}"), Error);
  EXPECT_THROW(ExperimentsFromJson("{}"), Error);
  EXPECT_TRUE(ExperimentsFromJson("[]").empty());
}

}  // namespace
}  // namespace abtest
