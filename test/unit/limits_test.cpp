#include "core/limits.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"

namespace abtest {
namespace {

TEST(UserIdLimit, AtTheLimitIsAccepted) {
  EXPECT_NO_THROW(ValidateUserId("user_id", ""));
  EXPECT_NO_THROW(ValidateUserId("user_id", std::string(kMaxUserIdBytes, 'u')));
  // Bytes, not characters: 682 three-byte characters are 2,046 bytes.
  std::string wide;
  for (int i = 0; i < 682; ++i) wide += "\xe3\x83\xa6";  // ユ
  EXPECT_NO_THROW(ValidateUserId("user_id", wide));
}

TEST(UserIdLimit, OneByteAboveIsRefusedWithTheLimitInTheMessage) {
  try {
    ValidateUserId("session_id", std::string(kMaxUserIdBytes + 1, 's'));
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kStringTooLong);
    EXPECT_EQ(std::string(e.what()), "session_id is too long: 2049 bytes, the limit is 2048");
    EXPECT_NE(e.hint().find("2048 bytes"), std::string::npos);
  }
  std::string wide;
  for (int i = 0; i < 683; ++i) wide += "\xe3\x83\xa6";  // 2,049 bytes
  EXPECT_THROW(ValidateUserId("user_id", wide), Error);
}

TEST(UserIdLimit, TheLimitIsAtLeastOneKilobyte) { static_assert(kMaxUserIdBytes >= 1024); }

}  // namespace
}  // namespace abtest
