#include "core/branch_settings.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace abtest {
namespace {

BranchSettings Parse(const std::string& json) { return ParseBranchSettings(json, "exp", "b"); }

ErrorKind KindOf(const std::string& json) {
  try {
    Parse(json);
  } catch (const Error& e) {
    return e.kind();
  }
  return ErrorKind::kInternal;  // not refused
}

TEST(BranchSettings, ValuesBecomeTheTextSetWouldBeGiven) {
  BranchSettings settings = Parse(R"({"work_mem": "64MB", "jit": false, "enable_seqscan": true,
                                      "random_page_cost": 1.1, "max_parallel_workers_per_gather": 4})");
  ASSERT_EQ(settings.size(), 5u);  // in the order of their names
  EXPECT_EQ(settings[4].name, "work_mem");
  EXPECT_EQ(settings[4].value, "64MB");
  EXPECT_EQ(settings[1].value, "off");
  EXPECT_EQ(settings[0].value, "on");
  EXPECT_EQ(settings[3].value, "1.1");
  EXPECT_EQ(settings[2].value, "4");
  EXPECT_EQ(BranchSettingsJson(settings),
            R"({"enable_seqscan":"on","jit":"off","max_parallel_workers_per_gather":"4",)"
            R"("random_page_cost":"1.1","work_mem":"64MB"})");
  EXPECT_TRUE(Parse("{}").empty());
  EXPECT_EQ(Parse(R"({"Work_Mem": "1MB"})")[0].name, "work_mem");
}

TEST(BranchSettings, RefusesWhatNoBranchMaySet) {
  for (const char* json : {R"({"role": "x"})", R"({"SESSION_AUTHORIZATION": "x"})",
                           R"({"transaction_isolation": "serializable"})", R"({"transaction_read_only": true})",
                           R"({"abtest.track_nested": "on"})", R"({"ABTEST.sticky_durability": "sync"})"})
    EXPECT_EQ(KindOf(json), ErrorKind::kInvalidParameter) << json;
  EXPECT_TRUE(RefusedSettingReason("default_transaction_isolation").empty());
  EXPECT_TRUE(RefusedSettingReason("myapp.role").empty());
}

TEST(BranchSettings, RefusesBadShapes) {
  for (const char* json : {"[]", "1", "\"s\"", "null", "{", R"({"": "x"})", R"({"work_mem": ""})",
                           R"({"work_mem": null})", R"({"work_mem": ["64MB"]})", R"({"work_mem": {"v": 1}})",
                           R"({"work_mem": "1MB", "WORK_MEM": "2MB"})"})
    EXPECT_EQ(KindOf(json), ErrorKind::kInvalidParameter) << json;
  std::string long_name = "{\"" + std::string(kMaxSettingNameBytes + 1, 'n') + "\": \"1\"}";
  EXPECT_EQ(KindOf(long_name), ErrorKind::kInvalidParameter);
  std::string long_value = "{\"search_path\": \"" + std::string(kMaxSettingValueBytes + 1, 's') + "\"}";
  EXPECT_EQ(KindOf(long_value), ErrorKind::kInvalidParameter);
  std::string many = "{";
  for (std::size_t i = 0; i <= kMaxBranchSettings; ++i) many += (i ? ",\"p" : "\"p") + std::to_string(i) + "\": 1";
  EXPECT_EQ(KindOf(many + "}"), ErrorKind::kInvalidParameter);
}

TEST(BranchSettings, ManyKeysAreRefusedQuickly) {
  std::string many = "{";
  for (int i = 0; i < 200000; ++i) many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\": 1";
  EXPECT_EQ(KindOf(many + "}"), ErrorKind::kInvalidParameter);  // seconds, were it quadratic
}

TEST(BranchSettings, MessagesNameTheBranchAndTheSetting) {
  try {
    Parse(R"({"work_mem": [1]})");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"work_mem\""), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("branch \"b\" of experiment \"exp\""), std::string::npos);
  }
}

}  // namespace
}  // namespace abtest
