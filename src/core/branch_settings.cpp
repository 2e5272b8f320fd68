#include "core/branch_settings.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace abtest {
namespace {

using Json = nlohmann::json;  // keys sorted: the order of a jsonb object is its own anyway

std::string Lowered(std::string_view text) {
  std::string lowered(text);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lowered;
}

std::string Where(const std::string& experiment, const std::string& branch) {
  return "branch " + Quoted(branch) + " of experiment " + Quoted(experiment);
}

[[noreturn]] void Refuse(const std::string& message, std::string hint = {}) {
  throw Error(ErrorKind::kInvalidParameter, message, {}, std::move(hint));
}

std::string ValueText(const Json& value, const std::string& name, const std::string& where) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "on" : "off";
  if (value.is_number()) return value.dump();
  Refuse("setting " + Quoted(name) + " of " + where + " must be a string, a number or a boolean",
         "For example '{\"work_mem\": \"64MB\", \"jit\": false}'.");
}

}  // namespace

std::string_view RefusedSettingReason(std::string_view name) {
  if (name == "role" || name == "session_authorization")
    return "it would change the role that runs the transaction";
  if (name == "transaction_isolation" || name == "transaction_read_only" || name == "transaction_deferrable")
    return "a transaction's characteristics are fixed before ab_enter runs";
  if (name.rfind("abtest.", 0) == 0) return "a branch must not change how abtest routes and measures it";
  return {};
}

BranchSettings ParseBranchSettings(std::string_view json, const std::string& experiment, const std::string& branch) {
  const std::string where = Where(experiment, branch);
  Json document = Json::parse(json, nullptr, false);
  if (document.is_discarded() || !document.is_object())
    Refuse("settings of " + where + " must be a JSON object",
           "For example '{\"search_path\": \"app_v2, public\", \"work_mem\": \"64MB\"}'; '{}' clears them.");
  if (document.size() > kMaxBranchSettings)
    Refuse(where + " has " + std::to_string(document.size()) + " settings, more than " +
           std::to_string(kMaxBranchSettings));
  BranchSettings settings;
  std::set<std::string> seen;
  for (const auto& [key, value] : document.items()) {
    std::string name = Lowered(key);
    if (name.empty()) Refuse("a setting of " + where + " has an empty name");
    if (name.size() > kMaxSettingNameBytes)
      Refuse("setting name of " + where + " is longer than " + std::to_string(kMaxSettingNameBytes) + " bytes");
    if (!seen.insert(name).second) Refuse("setting " + Quoted(name) + " of " + where + " is given twice");
    std::string_view refused = RefusedSettingReason(name);
    if (!refused.empty())
      Refuse("setting " + Quoted(name) + " cannot be a setting of " + where + ": " + std::string(refused));
    std::string text = ValueText(value, name, where);
    if (text.empty()) Refuse("setting " + Quoted(name) + " of " + where + " has an empty value");
    if (text.size() > kMaxSettingValueBytes)
      Refuse("setting " + Quoted(name) + " of " + where + " is longer than " +
             std::to_string(kMaxSettingValueBytes) + " bytes");
    settings.push_back(BranchSetting{std::move(name), std::move(text)});
  }
  return settings;
}

std::string BranchSettingsJson(const BranchSettings& settings) {
  Json object = Json::object();
  for (const BranchSetting& setting : settings) object[setting.name] = setting.value;
  return object.dump();
}

}  // namespace abtest
