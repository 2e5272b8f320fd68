#include "core/router.hpp"

#include <limits>

#include "core/allocation.hpp"
#include "core/error.hpp"
#include "core/hashing.hpp"

namespace abtest {

CompiledExperiment::CompiledExperiment(Experiment experiment) : model_(std::move(experiment)) {
  int cumulative = 0;
  for (std::size_t i = 0; i < model_.branches.size(); ++i) {
    cumulative += model_.branches[i].allocation;
    upper_bounds_.push_back(cumulative);
    if (model_.branches[i].allocation > 0) turn_branches_.push_back(static_cast<int>(i));
  }
  seed_ = SaltSeed(model_.config.salt);
  std::string assignment = model_.config.salt + '\n' + StrategyName(model_.strategy.kind) + '\n' +
                           StrategyParamsJson(model_.strategy);
  for (const auto& branch : model_.branches) assignment += '\n' + std::to_string(branch.allocation);
  fingerprint_ = static_cast<std::uint32_t>(SaltSeed(assignment));
  coverage_seed_ = CoverageSeed(model_.config.salt);
  if (model_.winner) completed_branch_ = model_.RequireBranch(*model_.winner);
  for (const auto& [key, branch] : model_.strategy.mapping) mapping_.emplace(key, model_.RequireBranch(branch));
  included_.insert(model_.config.included_groups.begin(), model_.config.included_groups.end());
  excluded_.insert(model_.config.excluded_groups.begin(), model_.config.excluded_groups.end());
}

int CompiledExperiment::BranchOfBucket(int bucket) const {
  for (std::size_t i = 0; i < upper_bounds_.size(); ++i)
    if (bucket < upper_bounds_[i]) return static_cast<int>(i);
  return static_cast<int>(upper_bounds_.size()) - 1;  // unreachable: the shares sum to kBuckets
}

std::uint64_t CompiledExperiment::UserHashValue(std::string_view user_id) const { return UserHash(user_id, seed_); }

int CompiledExperiment::HashBucket(std::string_view user_id) const { return BucketOf(UserHashValue(user_id)); }

bool CompiledExperiment::uses_groups() const {
  return !included_.empty() || !excluded_.empty() || model_.strategy.kind == StrategyKind::kGroup;
}

bool CompiledExperiment::InCoverage(std::string_view user_id) const {
  return BucketOf(UserHash(user_id, coverage_seed_)) < model_.strategy.coverage;
}

std::optional<int> CompiledExperiment::Mapped(std::string_view key) const {
  auto it = mapping_.find(key);
  if (it == mapping_.end()) return std::nullopt;
  return it->second;
}

bool CompiledExperiment::Excluded(const std::vector<std::string_view>& groups) const {
  for (auto group : groups)
    if (excluded_.count(group) != 0) return true;
  if (included_.empty()) return false;
  for (auto group : groups)
    if (included_.count(group) != 0) return false;
  return true;
}

std::optional<std::uint64_t> DecimalUserId(std::string_view user_id) {
  if (user_id.empty() || user_id.size() > 20) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : user_id) {
    if (c < '0' || c > '9') return std::nullopt;
    std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

namespace {

// The seed's modulo mapping: branch i covers the next floor(share * divisor / 100%)
// values; what is left over at the top goes to the last branch.
int ModuloBranch(const CompiledExperiment& experiment, std::uint64_t value) {
  const auto& branches = experiment.model().branches;
  std::uint64_t divisor = experiment.model().strategy.divisor;
  std::uint64_t slot = value % divisor;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < branches.size(); ++i) {
    cumulative += static_cast<std::uint64_t>(branches[i].allocation) * divisor / kBuckets;
    if (slot < cumulative) return static_cast<int>(i);
  }
  return static_cast<int>(branches.size()) - 1;
}

}  // namespace

int Assign(const CompiledExperiment& experiment, const RouteRequest& request, RoutingEnvironment& environment) {
  const Strategy& strategy = experiment.model().strategy;
  switch (strategy.kind) {
    case StrategyKind::kHash:
      return experiment.BranchOfBucket(experiment.HashBucket(request.user_id));
    case StrategyKind::kModulo: {
      std::optional<std::uint64_t> number = DecimalUserId(request.user_id);
      std::uint64_t value = number ? *number : experiment.UserHashValue(request.user_id);
      return ModuloBranch(experiment, value);
    }
    case StrategyKind::kAttribute: {
      std::optional<std::string> value = environment.Attribute(strategy.attribute);
      std::optional<int> branch = value ? experiment.Mapped(*value) : std::nullopt;
      return branch.value_or(0);
    }
    case StrategyKind::kGroup:
      for (auto group : request.groups)
        if (std::optional<int> branch = experiment.Mapped(group)) return *branch;
      return 0;
    case StrategyKind::kPercentage:
      if (!experiment.InCoverage(request.user_id)) return 0;
      return experiment.BranchOfBucket(experiment.HashBucket(request.user_id));
    case StrategyKind::kFixed:
      return experiment.model().RequireBranch(strategy.branch);
    case StrategyKind::kRoundRobin: {
      const auto& turns = experiment.turn_branches();
      return turns[environment.NextTurn(experiment) % turns.size()];
    }
  }
  throw Error(ErrorKind::kInternal, "unhandled assignment strategy");
}

int Route(const CompiledExperiment& experiment, const RouteRequest& request, RoutingEnvironment& environment) {
  const Experiment& model = experiment.model();
  switch (model.state) {
    case State::kDraft:
    case State::kArchived:
      throw Error(ErrorKind::kWrongState, "experiment " + Quoted(model.name) + " is not active",
                  std::string("It is ") + StateName(model.state) + ".",
                  model.state == State::kDraft ? "Start it with ab_start('" + model.name + "')." : std::string());
    case State::kPaused:
      return 0;
    case State::kCompleted:
      return experiment.completed_branch();
    case State::kActive:
      break;
  }
  if (experiment.Excluded(request.groups)) return 0;
  if (model.config.sticky) {
    if (std::optional<int> remembered = environment.Remembered(experiment, request.user_id)) return *remembered;
  }
  int branch = Assign(experiment, request, environment);
  if (model.config.sticky) branch = environment.Remember(experiment, request.user_id, branch);
  return branch;
}

}  // namespace abtest
