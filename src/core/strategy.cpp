#include "core/strategy.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/allocation.hpp"
#include "core/error.hpp"

namespace abtest {
namespace {

using Json = nlohmann::json;

struct StrategyInfo {
  StrategyKind kind;
  const char* name;
  std::vector<const char*> params;
};

const std::vector<StrategyInfo>& Strategies() {
  static const std::vector<StrategyInfo> strategies = {
      {StrategyKind::kHash, "hash", {}},
      {StrategyKind::kModulo, "modulo", {"divisor"}},
      {StrategyKind::kAttribute, "attribute", {"name", "mapping"}},
      {StrategyKind::kGroup, "group", {"mapping"}},
      {StrategyKind::kPercentage, "percentage", {"coverage"}},
      {StrategyKind::kFixed, "fixed", {"branch"}},
      {StrategyKind::kRoundRobin, "round_robin", {}},
  };
  return strategies;
}

[[noreturn]] void RefuseParams(const std::string& strategy, const std::string& why, std::string hint = {}) {
  throw Error(ErrorKind::kInvalidParameter, "invalid parameters for strategy " + Quoted(strategy) + ": " + why,
              {}, std::move(hint));
}

void RequireBranch(const std::string& experiment, const std::vector<std::string>& branches,
                   const std::string& branch) {
  if (std::find(branches.begin(), branches.end(), branch) == branches.end())
    throw Error(ErrorKind::kUndefinedObject,
                "branch " + Quoted(branch) + " does not exist in experiment " + Quoted(experiment));
}

std::string RequireString(const std::string& strategy, const Json& value, const char* what) {
  if (!value.is_string()) RefuseParams(strategy, std::string(what) + " must be a string");
  return value.get<std::string>();
}

std::vector<std::pair<std::string, std::string>> ParseMapping(const std::string& experiment,
                                                              const std::string& strategy, const Json& value,
                                                              const std::vector<std::string>& branches) {
  if (!value.is_object() || value.empty())
    RefuseParams(strategy, "\"mapping\" must be a non-empty object", "For example {\"mapping\": {\"beta\": \"treatment\"}}.");
  std::vector<std::pair<std::string, std::string>> mapping;
  for (const auto& [key, branch] : value.items()) {
    std::string branch_name = RequireString(strategy, branch, "each value of \"mapping\"");
    RequireBranch(experiment, branches, branch_name);
    mapping.emplace_back(key, branch_name);
  }
  return mapping;
}

}  // namespace

const char* StrategyName(StrategyKind kind) {
  for (const auto& info : Strategies())
    if (info.kind == kind) return info.name;
  return "unknown";
}

Strategy ParseStrategy(const std::string& experiment, std::string_view name, std::string_view params_json,
                       const std::vector<std::string>& branches) {
  const StrategyInfo* info = nullptr;
  for (const auto& candidate : Strategies())
    if (name == candidate.name) info = &candidate;
  if (info == nullptr)
    throw Error(ErrorKind::kInvalidParameter, "unknown assignment strategy " + Quoted(std::string(name)), {},
                "The strategies are hash, modulo, attribute, group, percentage, fixed and round_robin.");
  const std::string strategy_name = info->name;

  Json params = Json::parse(params_json.begin(), params_json.end(), nullptr, /*allow_exceptions=*/false);
  if (params.is_discarded() || !params.is_object()) RefuseParams(strategy_name, "parameters must be a JSON object");
  for (const auto& item : params.items()) {
    const auto& allowed = info->params;
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* p) { return item.key() == p; }))
      RefuseParams(strategy_name, "unknown parameter " + Quoted(item.key()));
  }

  Strategy strategy;
  strategy.kind = info->kind;
  switch (info->kind) {
    case StrategyKind::kHash:
    case StrategyKind::kRoundRobin:
      break;
    case StrategyKind::kModulo: {
      const Json* divisor = params.contains("divisor") ? &params["divisor"] : nullptr;
      bool positive = divisor && (divisor->is_number_unsigned() ||
                                  (divisor->is_number_integer() && divisor->get<std::int64_t>() > 0));
      if (!positive || divisor->get<std::uint64_t>() == 0 || divisor->get<std::uint64_t>() > kMaxModuloDivisor)
        RefuseParams(strategy_name, "\"divisor\" must be an integer from 1 to " + std::to_string(kMaxModuloDivisor),
                     "For example {\"divisor\": 100}.");
      strategy.divisor = divisor->get<std::uint64_t>();
      break;
    }
    case StrategyKind::kAttribute:
      if (!params.contains("name")) RefuseParams(strategy_name, "\"name\" is required", "For example {\"name\": \"country\", \"mapping\": {\"DE\": \"treatment\"}}.");
      strategy.attribute = RequireString(strategy_name, params["name"], "\"name\"");
      if (strategy.attribute.empty()) RefuseParams(strategy_name, "\"name\" must not be empty");
      if (!params.contains("mapping")) RefuseParams(strategy_name, "\"mapping\" is required");
      strategy.mapping = ParseMapping(experiment, strategy_name, params["mapping"], branches);
      break;
    case StrategyKind::kGroup:
      if (!params.contains("mapping")) RefuseParams(strategy_name, "\"mapping\" is required", "For example {\"mapping\": {\"beta\": \"treatment\"}}.");
      strategy.mapping = ParseMapping(experiment, strategy_name, params["mapping"], branches);
      break;
    case StrategyKind::kPercentage:
      if (params.contains("coverage")) {
        if (!params["coverage"].is_number())
          RefuseParams(strategy_name, "\"coverage\" must be a number from 0 to 100");
        strategy.coverage = ParsePercent(params["coverage"].dump(), "coverage");
      }
      break;
    case StrategyKind::kFixed:
      if (!params.contains("branch")) RefuseParams(strategy_name, "\"branch\" is required", "For example {\"branch\": \"treatment\"}.");
      strategy.branch = RequireString(strategy_name, params["branch"], "\"branch\"");
      RequireBranch(experiment, branches, strategy.branch);
      break;
  }
  return strategy;
}

std::string StrategyParamsJson(const Strategy& strategy) {
  Json params = Json::object();
  switch (strategy.kind) {
    case StrategyKind::kHash:
    case StrategyKind::kRoundRobin:
      break;
    case StrategyKind::kModulo:
      params["divisor"] = strategy.divisor;
      break;
    case StrategyKind::kAttribute:
    case StrategyKind::kGroup: {
      if (strategy.kind == StrategyKind::kAttribute) params["name"] = strategy.attribute;
      Json mapping = Json::object();
      for (const auto& [key, branch] : strategy.mapping) mapping[key] = branch;
      params["mapping"] = mapping;
      break;
    }
    case StrategyKind::kPercentage:
      params["coverage"] = Json::parse(FormatPercent(strategy.coverage));
      break;
    case StrategyKind::kFixed:
      params["branch"] = strategy.branch;
      break;
  }
  return params.dump();
}

}  // namespace abtest
