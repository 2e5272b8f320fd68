#include "core/sample_size.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "core/error.hpp"
#include "statistics_reference.hpp"

namespace abtest {
namespace {

TEST(SampleSize, MatchesTheReferenceExactly) {
  for (const auto& row : reference::Rows("sample_size")) {
    SCOPED_TRACE(reference::Describe(row));
    SampleSizeRequest request{reference::Double(row[0]), reference::Double(row[1]), reference::Double(row[2]),
                              reference::Double(row[3])};
    EXPECT_EQ(RequiredSampleSize(request), reference::Int(row[4]));
  }
}

TEST(SampleSize, KnownValues) {
  // 10% -> 12%, alpha 0.05, power 0.8: 3840.85 per branch.
  EXPECT_EQ(RequiredSampleSize({0.1, 0.02, 0.05, 0.8}), 3841);
  EXPECT_EQ(RequiredSampleSize({0.1, 0.02}), 3841);  // the defaults
  // A decrease, 5% -> 4%, alpha 0.01, power 0.9: 12786.36.
  EXPECT_EQ(RequiredSampleSize({0.05, -0.01, 0.01, 0.9}), 12787);
  // Symmetric in the direction of the effect around one half.
  EXPECT_EQ(RequiredSampleSize({0.45, 0.1}), RequiredSampleSize({0.55, -0.1}));
  // Power so low that any sample reaches it.
  EXPECT_EQ(RequiredSampleSize({0.5, 0.4, 0.05, 1e-9}), 1);
}

void ExpectRefusal(const SampleSizeRequest& request, const std::string& argument) {
  try {
    RequiredSampleSize(request);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidParameter);
    EXPECT_NE(std::string(e.what()).find(argument), std::string::npos) << e.what();
  }
}

TEST(SampleSize, RefusesInvalidInputNamingTheArgument) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double p1 : {0.0, 1.0, -0.1, 1.5, nan}) ExpectRefusal({p1, 0.01}, "baseline_rate");
  for (double mde : {0.0, nan, std::numeric_limits<double>::infinity()}) ExpectRefusal({0.1, mde}, "mde");
  ExpectRefusal({0.1, 0.9}, "baseline_rate + mde");
  ExpectRefusal({0.1, -0.1}, "baseline_rate + mde");
  for (double alpha : {0.0, 1.0, nan}) ExpectRefusal({0.1, 0.01, alpha, 0.8}, "alpha");
  for (double power : {0.0, 1.0, nan}) ExpectRefusal({0.1, 0.01, 0.05, power}, "power");
  ExpectRefusal({0.1, 1e-9}, "mde");  // ~10^18 users per branch
  // Denormal levels: the normal quantile overflows (found by t/010_sql_fuzz.pl).
  const double denormal = std::numeric_limits<double>::denorm_min();
  ExpectRefusal({0.1, 0.01, denormal, 0.8}, "alpha and power");
  ExpectRefusal({0.1, 0.01, 0.05, denormal}, "alpha and power");
}

}  // namespace
}  // namespace abtest
