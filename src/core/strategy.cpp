#include "core/strategy.hpp"

#include <algorithm>
#include <cmath>
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
      {StrategyKind::kGrowthBook,
       "growthbook",
       {"hash_version", "seed", "coverage", "hash_attribute", "fallback_attribute", "ranges", "weights", "force"}},
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

// GrowthBook's refusals name the experiment too (the older strategies' messages stay as they were).
[[noreturn]] void RefuseGrowthBookParams(const std::string& experiment, const std::string& why, std::string hint = {}) {
  throw Error(ErrorKind::kInvalidParameter,
              "invalid parameters for strategy \"growthbook\" of experiment " + Quoted(experiment) + ": " + why, {},
              std::move(hint));
}

// GrowthBook's parameters mirror its SDK's experiment fields.
class GrowthBookParams {
 public:
  GrowthBookParams(const std::string& experiment, const Json& params, std::size_t branch_count)
      : experiment_(experiment), params_(params), branch_count_(branch_count) {}

  void ParseInto(Strategy& strategy) const {
    if (const Json* version = Find("hash_version")) {
      if (!version->is_number_integer() || (*version != 1 && *version != 2))
        Refuse("\"hash_version\" must be 1 or 2", "2 is GrowthBook's unbiased hash; 1 is its original one.");
      strategy.hash_version = version->get<int>();
    }
    if (const Json* seed = Find("seed")) strategy.seed = NonEmptyText(*seed, "seed", "the experiment name");
    if (const Json* coverage = Find("coverage")) strategy.growthbook_coverage = Fraction(*coverage, "\"coverage\"");
    if (const Json* attribute = Find("hash_attribute"))
      strategy.hash_attribute = NonEmptyText(*attribute, "hash_attribute", "the user_id argument");
    if (const Json* fallback = Find("fallback_attribute"))
      strategy.fallback_attribute = NonEmptyText(*fallback, "fallback_attribute", "no fallback");
    if (const Json* ranges = Find("ranges")) strategy.ranges = Ranges(*ranges);
    if (const Json* weights = Find("weights")) strategy.weights = Weights(*weights);
    if (const Json* force = Find("force")) {
      // Any integer, as the SDK takes it: an index outside the branches gives the control.
      if (!force->is_number_integer())
        Refuse("\"force\" must be an integer (a variation index)", "For example {\"force\": 1}.");
      strategy.force = force->get<std::int64_t>();
    }
  }

 private:
  [[noreturn]] void Refuse(const std::string& why, std::string hint = {}) const {
    RefuseGrowthBookParams(experiment_, why, std::move(hint));
  }

  const Json* Find(const char* key) const {
    auto it = params_.find(key);
    return it == params_.end() ? nullptr : &*it;
  }

  // The SDK treats an empty string as absent; here absent is spelt by leaving the parameter out.
  std::string NonEmptyText(const Json& value, const char* key, const char* when_absent) const {
    if (!value.is_string() || value.get_ref<const std::string&>().empty())
      Refuse(Quoted(key) + " must be a non-empty string",
             "Leave \"" + std::string(key) + "\" out for " + when_absent + ".");
    return value.get<std::string>();
  }

  double Fraction(const Json& value, const std::string& what) const {
    double number = value.is_number() ? value.get<double>() : std::nan("");
    if (!(number >= 0 && number <= 1)) Refuse(what + " must be a number from 0 to 1");  // NaN fails too
    return number;
  }

  void RequireOnePerBranch(const Json& value, const char* key, const char* example) const {
    if (!value.is_array() || value.size() != branch_count_)
      Refuse(Quoted(key) + " must be an array with one element per branch (" + std::to_string(branch_count_) + ")",
             std::string("For example ") + example + ", in the order of the branches.");
  }

  std::vector<std::pair<double, double>> Ranges(const Json& value) const {
    RequireOnePerBranch(value, "ranges", "{\"ranges\": [[0, 0.5], [0.5, 1]]}");
    std::vector<std::pair<double, double>> ranges;
    for (std::size_t i = 0; i < value.size(); ++i) {
      const Json& range = value[i];
      std::string what = "\"ranges\"[" + std::to_string(i) + "]";
      if (!range.is_array() || range.size() != 2) Refuse(what + " must be an array [start, end]");
      double start = Fraction(range[0], what + " start");
      double end = Fraction(range[1], what + " end");
      if (start > end) Refuse(what + " must not start after it ends");
      ranges.emplace_back(start, end);
    }
    return ranges;
  }

  std::vector<double> Weights(const Json& value) const {
    RequireOnePerBranch(value, "weights", "{\"weights\": [0.4, 0.6]}");
    std::vector<double> weights;
    for (std::size_t i = 0; i < value.size(); ++i)
      weights.push_back(Fraction(value[i], "\"weights\"[" + std::to_string(i) + "]"));
    // Weights that do not add up to 1 (within 0.01) are kept: bucketing then splits
    // equally, as the SDKs do with the same definition (growthbook::BucketRanges).
    return weights;
  }

  const std::string& experiment_;
  const Json& params_;
  std::size_t branch_count_;
};

// Integral values as integers, so that the catalog shows 1 and [0, 0.5] rather than 1.0 and [0.0, 0.5].
Json Number(double value) {
  if (value == std::floor(value) && std::fabs(value) <= 1) return static_cast<std::int64_t>(value);
  return value;
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
                "The strategies are hash, modulo, attribute, group, percentage, fixed, round_robin and growthbook.");
  const std::string strategy_name = info->name;

  auto refuse = [&](const std::string& why) {
    if (info->kind == StrategyKind::kGrowthBook) RefuseGrowthBookParams(experiment, why);
    RefuseParams(strategy_name, why);
  };
  Json params = Json::parse(params_json.begin(), params_json.end(), nullptr, /*allow_exceptions=*/false);
  if (params.is_discarded() || !params.is_object()) refuse("parameters must be a JSON object");
  for (const auto& item : params.items()) {
    const auto& allowed = info->params;
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* p) { return item.key() == p; }))
      refuse("unknown parameter " + Quoted(item.key()));
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
    case StrategyKind::kGrowthBook:
      GrowthBookParams(experiment, params, branches.size()).ParseInto(strategy);
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
    case StrategyKind::kGrowthBook: {
      params["hash_version"] = strategy.hash_version;
      params["coverage"] = Number(strategy.growthbook_coverage);
      if (strategy.seed) params["seed"] = *strategy.seed;
      if (strategy.hash_attribute) params["hash_attribute"] = *strategy.hash_attribute;
      if (strategy.fallback_attribute) params["fallback_attribute"] = *strategy.fallback_attribute;
      if (strategy.ranges) {
        Json ranges = Json::array();
        for (const auto& [start, end] : *strategy.ranges) ranges.push_back({Number(start), Number(end)});
        params["ranges"] = ranges;
      }
      if (strategy.weights) {
        Json weights = Json::array();
        for (double weight : *strategy.weights) weights.push_back(Number(weight));
        params["weights"] = weights;
      }
      if (strategy.force) params["force"] = *strategy.force;
      break;
    }
  }
  return params.dump();
}

}  // namespace abtest
