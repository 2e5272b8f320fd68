#include "core/names.hpp"

#include <set>

#include "core/error.hpp"

namespace abtest {

void ValidateName(const char* what, const std::string& name) {
  if (name.empty())
    throw Error(ErrorKind::kInvalidParameter, std::string(what) + " must not be empty");
  if (name.size() > kMaxNameBytes)
    throw Error(ErrorKind::kInvalidParameter,
                std::string(what) + " is too long",
                "It has " + std::to_string(name.size()) + " bytes; the limit is " +
                    std::to_string(kMaxNameBytes) + ".");
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f)
      throw Error(ErrorKind::kInvalidParameter, std::string(what) + " contains a control character",
                  "Names are printable text: no newlines, tabs or other control characters.");
  }
}

void ValidateNameList(const char* what, const std::vector<std::string>& names) {
  std::set<std::string> seen;
  for (const auto& name : names) {
    ValidateName(what, name);
    if (!seen.insert(name).second)
      throw Error(ErrorKind::kInvalidParameter, std::string("duplicate ") + what + " " + Quoted(name));
  }
}

}  // namespace abtest
