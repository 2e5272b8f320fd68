#include "core/limits.hpp"

#include <string>

#include "core/error.hpp"

namespace abtest {

void RefuseLongUserId(const char* what, std::size_t bytes) {
  throw Error(ErrorKind::kStringTooLong,
              std::string(what) + " is too long: " + std::to_string(bytes) + " bytes, the limit is " +
                  std::to_string(kMaxUserIdBytes),
              {},
              "Identify users by a key of at most " + std::to_string(kMaxUserIdBytes) +
                  " bytes, for example a hash of a longer identifier.");
}

}  // namespace abtest
