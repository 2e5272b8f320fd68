// PostgreSQL's regular expressions (the ARE flavour of ~ and regexp_match) for the
// core's targeting conditions: $regex and $regexi are compiled once, when the
// condition is compiled, and matched without the per-call cache lookup of
// RE_compile_and_execute.
#pragma once

#include "core/condition.hpp"

namespace abtest::glue {

class PgRegexEngine final : public RegexEngine {
 public:
  // nullptr for a pattern PostgreSQL refuses.
  std::shared_ptr<const CompiledRegex> Compile(std::string_view pattern, bool case_insensitive) override;
};

}  // namespace abtest::glue
