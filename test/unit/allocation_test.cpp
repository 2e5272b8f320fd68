#include "core/allocation.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace abtest {
namespace {

TEST(Allocation, ParsesExactDecimals) {
  EXPECT_EQ(ParsePercent("50"), 5000);
  EXPECT_EQ(ParsePercent("33.34"), 3334);
  EXPECT_EQ(ParsePercent("0.5"), 50);
  EXPECT_EQ(ParsePercent("0.01"), 1);
  EXPECT_EQ(ParsePercent("100"), 10000);
  EXPECT_EQ(ParsePercent("100.00"), 10000);
  EXPECT_EQ(ParsePercent("12.500"), 1250);  // numeric's trailing zeros are fine
  EXPECT_EQ(ParsePercent(".5"), 50);
  EXPECT_EQ(ParsePercent("+7"), 700);
}

TEST(Allocation, RefusesWhatIsNotAPercentage) {
  for (const char* bad : {"", "-1", "-0.01", "100.01", "101", "33.333", "1e2", "abc", "5,5", ".", "50.", "  5",
                          "99999999999999999999", "NaN", "Infinity"}) {
    SCOPED_TRACE(bad);
    if (std::string(bad) == "50.") {
      EXPECT_EQ(ParsePercent(bad), 5000);  // "50." is a complete decimal
      continue;
    }
    try {
      ParsePercent(bad);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidParameter);
    }
  }
}

TEST(Allocation, FormatsEveryShareBackExactly) {
  for (int bp = 0; bp <= kBuckets; ++bp) ASSERT_EQ(ParsePercent(FormatPercent(bp)), bp);
  EXPECT_EQ(FormatPercent(3334), "33.34");
  EXPECT_EQ(FormatPercent(5000), "50");
  EXPECT_EQ(FormatPercent(1250), "12.5");
  EXPECT_EQ(FormatPercent(-5), "-0.05");
}

TEST(Allocation, EqualSplitPutsTheRemainderFirst) {
  EXPECT_EQ(EqualSplit(2), (std::vector<int>{5000, 5000}));
  EXPECT_EQ(EqualSplit(3), (std::vector<int>{3334, 3333, 3333}));
  EXPECT_EQ(EqualSplit(7), (std::vector<int>{1432, 1428, 1428, 1428, 1428, 1428, 1428}));
  for (std::size_t n = 1; n <= 100; ++n) EXPECT_NO_THROW(ValidateAllocation(EqualSplit(n), n));
}

TEST(Allocation, ValidatesSumAndLength) {
  EXPECT_NO_THROW(ValidateAllocation({8000, 2000}, 2));
  EXPECT_NO_THROW(ValidateAllocation({10000, 0}, 2));
  EXPECT_THROW(ValidateAllocation({5000, 4999}, 2), Error);
  EXPECT_THROW(ValidateAllocation({5000, 5001}, 2), Error);
  EXPECT_THROW(ValidateAllocation({10000}, 2), Error);
  EXPECT_THROW(ValidateAllocation({12000, -2000}, 2), Error);
}

}  // namespace
}  // namespace abtest
