// Rules for the names users give to experiments, branches and groups.
#pragma once

#include <string>
#include <vector>

namespace abtest {

// Longest name accepted, in bytes; long enough for any sane name, short enough for messages.
constexpr std::size_t kMaxNameBytes = 200;

// Throws unless `name` is non-empty, at most kMaxNameBytes long and free of control
// characters. `what` names the kind of object in the message ("experiment name").
void ValidateName(const char* what, const std::string& name);

// Validates every element and refuses duplicates.
void ValidateNameList(const char* what, const std::vector<std::string>& names);

}  // namespace abtest
