// A database branch's settings: the parameters ab_enter sets for the rest of a
// transaction, like SET LOCAL. The core checks their shape and the names no branch
// may set; whether a name is a parameter an ordinary session may set, and whether the
// value is valid for it, is PostgreSQL's to say (the glue asks its GUC machinery).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace abtest {

struct BranchSetting {
  std::string name;   // lower case, as PostgreSQL reports parameter names
  std::string value;  // the text SET would be given
};
using BranchSettings = std::vector<BranchSetting>;

// Longest parameter name: PostgreSQL's identifiers (NAMEDATALEN - 1).
constexpr std::size_t kMaxSettingNameBytes = 63;
// Longest value (a search_path of many schemas fits easily).
constexpr std::size_t kMaxSettingValueBytes = 1024;
// Most settings a branch may carry.
constexpr std::size_t kMaxBranchSettings = 64;

// Parses a JSON object {"name": value} where a value is a string, a number or a
// boolean (true/false become on/off). Refuses (22023, naming the branch and the
// setting) anything else, an empty or over-long name or value, a name given twice
// in any case, and the names of RefusedSettingReason. Names are lowered.
BranchSettings ParseBranchSettings(std::string_view json, const std::string& experiment, const std::string& branch);

// Why no branch may set `name` (lower case), or empty when it may: the role and the
// session's identity (a branch must not change who runs the transaction), the
// transaction's own characteristics (fixed by the time ab_enter runs), and abtest's
// settings (a branch must not change how it is measured).
std::string_view RefusedSettingReason(std::string_view name);

// The settings as a JSON object (keys sorted).
std::string BranchSettingsJson(const BranchSettings& settings);

}  // namespace abtest
