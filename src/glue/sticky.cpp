#include "glue/sticky.hpp"

namespace abtest::glue::sticky {

// No store yet (see sticky.hpp): nothing to find, keep or forget.
std::optional<int> Remembered(const CompiledExperiment&, std::string_view) { return std::nullopt; }
int Remember(const CompiledExperiment&, std::string_view, int branch) { return branch; }
void ForgetExperiment(const std::string&) {}
void ForgetUser(const std::string&) {}

}  // namespace abtest::glue::sticky
