#include "glue/pg_regex.hpp"

#include <vector>

#include "glue/guard.hpp"

extern "C" {
#include "catalog/pg_collation.h"
#include "mb/pg_wchar.h"
#include "regex/regex.h"
}

namespace abtest::glue {
namespace {

// The text as pg_wchar code points, as the regex engine reads it.
std::vector<pg_wchar> WideChars(std::string_view text) {
  std::vector<pg_wchar> wide(text.size() + 1);
  int length = PgCall([&] { return pg_mb2wchar_with_len(text.data(), wide.data(), static_cast<int>(text.size())); });
  wide.resize(static_cast<std::size_t>(length));
  return wide;
}

class PgRegex final : public CompiledRegex {
 public:
  PgRegex() = default;
  PgRegex(const PgRegex&) = delete;
  PgRegex& operator=(const PgRegex&) = delete;
  ~PgRegex() override {
    if (compiled_) pg_regfree(&regex_);  // the engine's memory is malloc'ed: no memory context involved
  }

  bool Compile(std::string_view pattern, bool case_insensitive) {
    std::vector<pg_wchar> wide = WideChars(pattern);
    int flags = REG_ADVANCED | (case_insensitive ? REG_ICASE : 0);
    int status = PgCall([&] { return pg_regcomp(&regex_, wide.data(), wide.size(), flags, DEFAULT_COLLATION_OID); });
    compiled_ = status == REG_OKAY;
    return compiled_;
  }

  bool Search(std::string_view subject) const override {
    std::vector<pg_wchar> wide = WideChars(subject);
    regex_t* regex = &regex_;
    int status = PgCall(
        [&] { return pg_regexec(regex, wide.data(), wide.size(), 0, nullptr, 0, nullptr, 0); });
    return status == REG_OKAY;
  }

 private:
  mutable regex_t regex_{};
  bool compiled_ = false;
};

}  // namespace

std::shared_ptr<const CompiledRegex> PgRegexEngine::Compile(std::string_view pattern, bool case_insensitive) {
  auto regex = std::make_shared<PgRegex>();
  if (!regex->Compile(pattern, case_insensitive)) return nullptr;
  return regex;
}

}  // namespace abtest::glue
