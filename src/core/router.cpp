#include "core/router.hpp"

#include <cmath>
#include <limits>
#include <memory>

#include "core/allocation.hpp"
#include "core/error.hpp"
#include "core/growthbook.hpp"
#include "core/hashing.hpp"

namespace abtest {
namespace {

// Stands in where no regex engine was given: only a condition with $regex needs one.
class NoRegexEngine final : public RegexEngine {
 public:
  std::shared_ptr<const CompiledRegex> Compile(std::string_view, bool) override {
    throw Error(ErrorKind::kInternal, "a condition with $regex was compiled without a regular expression engine");
  }
};

const Json& EmptyAttributes() {
  static const Json empty = Json::object();
  return empty;
}

}  // namespace

CompiledExperiment::CompiledExperiment(Experiment experiment, RegexEngine* regex) : model_(std::move(experiment)) {
  int cumulative = 0;
  for (std::size_t i = 0; i < model_.branches.size(); ++i) {
    cumulative += model_.branches[i].allocation;
    upper_bounds_.push_back(cumulative);
    allocation_weights_.push_back(static_cast<double>(model_.branches[i].allocation) / kBuckets);
    if (model_.branches[i].allocation > 0) turn_branches_.push_back(static_cast<int>(i));
  }
  // An equal split is GrowthBook's equal weights (1/n each), not its rounding to basis
  // points (33.34/33.33/33.33), so that users near a boundary land as in the SDKs.
  std::vector<int> shares;
  for (const auto& branch : model_.branches) shares.push_back(branch.allocation);
  if (shares == EqualSplit(shares.size())) allocation_weights_ = growthbook::EqualWeights(static_cast<int>(shares.size()));
  const Strategy& strategy = model_.strategy;
  if (strategy.kind == StrategyKind::kGrowthBook) {
    growthbook_hash_ = growthbook::SeededHash(growthbook_seed(), strategy.hash_version);
    growthbook_variations_ =
        growthbook::VariationTable(growthbook::StrategyRanges(strategy, allocation_weights_), growthbook_hash_);
  }
  if (const auto& range = model_.config.namespace_range) namespace_hash_ = growthbook::SeededHash("__" + range->name, 1);
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
  uses_groups_ = !included_.empty() || !excluded_.empty() || strategy.kind == StrategyKind::kGroup;
  for (const auto& [user, branch] : model_.forced_users) forced_.emplace(user, model_.RequireBranch(branch));
  if (model_.config.condition) {
    NoRegexEngine none;
    condition_ = Condition::Compile(Json::parse(*model_.config.condition), Json::object(), regex ? *regex : none,
                                    ConditionMode::kStrict);
    has_condition_ = !condition_.empty();
  }
}

const std::string& CompiledExperiment::growthbook_seed() const {
  const Strategy& strategy = model_.strategy;
  return strategy.seed && !strategy.seed->empty() ? *strategy.seed : model_.name;
}

std::optional<int> CompiledExperiment::Forced(std::string_view user_id) const {
  if (forced_.empty()) return std::nullopt;
  auto it = forced_.find(user_id);
  if (it == forced_.end()) return std::nullopt;
  return it->second;
}


// Counted rather than searched: the branch is the number of ranges ending at or below the
// bucket, which compiles without a branch to mispredict (a user's branch is a coin toss).
int CompiledExperiment::BranchOfBucket(int bucket) const {
  int branch = 0;
  for (int bound : upper_bounds_) branch += bucket >= bound;
  int last = static_cast<int>(upper_bounds_.size()) - 1;  // unreachable beyond it: the shares sum to kBuckets
  return branch < last ? branch : last;
}

std::uint64_t CompiledExperiment::UserHashValue(std::string_view user_id) const { return UserHash(user_id, seed_); }

int CompiledExperiment::HashBucket(std::string_view user_id) const { return BucketOf(UserHashValue(user_id)); }

int CompiledExperiment::CoverageBucket(std::string_view user_id) const {
  return BucketOf(UserHash(user_id, coverage_seed_));
}

bool CompiledExperiment::InCoverage(std::string_view user_id) const {
  return CoverageBucket(user_id) < model_.strategy.coverage;
}

std::optional<int> CompiledExperiment::Mapped(std::string_view key) const {
  auto it = mapping_.find(key);
  if (it == mapping_.end()) return std::nullopt;
  return it->second;
}

bool CompiledExperiment::AnyIn(const std::set<std::string, std::less<>>& set,
                               const std::vector<std::string_view>& groups) {
  for (auto group : groups)
    if (set.count(group) != 0) return true;
  return false;
}

const char* RouteReasonName(RouteReason reason) {
  switch (reason) {
    case RouteReason::kPaused: return "paused";
    case RouteReason::kCompleted: return "completed";
    case RouteReason::kForced: return "forced";
    case RouteReason::kExcludedGroup: return "excluded_group";
    case RouteReason::kNotIncludedGroup: return "not_included_group";
    case RouteReason::kSticky: return "sticky";
    case RouteReason::kCondition: return "condition";
    case RouteReason::kNamespace: return "namespace";
    case RouteReason::kMissingHashAttribute: return "missing_hash_attribute";
    case RouteReason::kCoverage: return "coverage";
    case RouteReason::kAssigned: return "assigned";
  }
  return "assigned";
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

RouteDecision In(int branch, std::optional<double> bucket = std::nullopt) {
  RouteDecision decision;
  decision.branch = branch;
  decision.in_experiment = true;
  decision.bucket = bucket;
  return decision;
}

RouteDecision Out(int branch, RouteReason reason, std::optional<double> bucket = std::nullopt) {
  RouteDecision decision;
  decision.branch = branch;
  decision.reason = reason;
  decision.bucket = bucket;
  return decision;
}

double Fraction(int bucket) { return static_cast<double>(bucket) / kBuckets; }

// The value GrowthBook hashes: the hash attribute (else the fallback attribute), or the
// user id when the strategy names none. Empty counts as missing, as in the SDKs.
// `storage` keeps an attribute's text alive; the user id is not copied.
std::optional<std::string_view> HashIdentity(const CompiledExperiment& experiment, const RouteRequest& request,
                                             RoutingEnvironment& environment, std::optional<std::string>& storage) {
  const Strategy& strategy = experiment.model().strategy;
  if (strategy.kind != StrategyKind::kGrowthBook || !strategy.hash_attribute) return request.user_id;
  storage = environment.Attribute(*strategy.hash_attribute);
  if ((!storage || storage->empty()) && strategy.fallback_attribute)
    storage = environment.Attribute(*strategy.fallback_attribute);
  if (!storage || storage->empty()) return std::nullopt;
  return std::string_view(*storage);
}

RouteDecision AssignByStrategy(const CompiledExperiment& experiment, const RouteRequest& request,
                               RoutingEnvironment& environment, std::string_view identity) {
  const Strategy& strategy = experiment.model().strategy;
  switch (strategy.kind) {
    case StrategyKind::kHash: {
      int bucket = experiment.HashBucket(request.user_id);
      return In(experiment.BranchOfBucket(bucket), Fraction(bucket));
    }
    case StrategyKind::kModulo: {
      std::optional<std::uint64_t> number = DecimalUserId(request.user_id);
      std::uint64_t value = number ? *number : experiment.UserHashValue(request.user_id);
      return In(ModuloBranch(experiment, value));
    }
    case StrategyKind::kAttribute: {
      std::optional<std::string> value = environment.Attribute(strategy.attribute);
      std::optional<int> branch = value ? experiment.Mapped(*value) : std::nullopt;
      return In(branch.value_or(0));
    }
    case StrategyKind::kGroup:
      for (auto group : request.groups)
        if (std::optional<int> branch = experiment.Mapped(group)) return In(*branch);
      return In(0);
    case StrategyKind::kPercentage: {
      int drawn = experiment.CoverageBucket(request.user_id);
      if (drawn >= strategy.coverage) return Out(0, RouteReason::kCoverage, Fraction(drawn));
      int bucket = experiment.HashBucket(request.user_id);
      return In(experiment.BranchOfBucket(bucket), Fraction(bucket));
    }
    case StrategyKind::kFixed:
      return In(experiment.model().RequireBranch(strategy.branch));
    case StrategyKind::kRoundRobin: {
      const auto& turns = experiment.turn_branches();
      return In(turns[environment.NextTurn(experiment) % turns.size()]);
    }
    case StrategyKind::kGrowthBook: {
      growthbook::Decision chosen = experiment.growthbook_variations().Choose(experiment.growthbook_hash(), identity);
      std::optional<double> bucket;
      if (!std::isnan(chosen.bucket)) bucket = chosen.bucket;
      int variation = chosen.variation;
      if (variation < 0) return Out(0, RouteReason::kCoverage, bucket);
      if (strategy.force) {
        std::int64_t forced = *strategy.force;
        bool valid = forced >= 0 && forced < static_cast<std::int64_t>(experiment.model().branches.size());
        return Out(valid ? static_cast<int>(forced) : 0, RouteReason::kForced, bucket);
      }
      return In(variation, bucket);
    }
  }
  throw Error(ErrorKind::kInternal, "unhandled assignment strategy");
}

// The condition over the call's attributes; an environment without attributes is {}.
bool ConditionHolds(const Condition& condition, RoutingEnvironment& environment) {
  if (AttributeSource* attributes = environment.Attributes()) return condition.Matches(*attributes);
  JsonAttributes none(EmptyAttributes());
  return condition.Matches(none);
}

// Steps 7 (namespace) and 8 (strategy), after the condition.
RouteDecision AssignWithin(const CompiledExperiment& experiment, const RouteRequest& request,
                           RoutingEnvironment& environment, std::string_view identity) {
  if (const auto& range = experiment.model().config.namespace_range) {
    // GrowthBook's namespace hash, for every strategy: experiments of one namespace stay
    // disjoint whatever their strategies, and agree with the SDKs.
    double position = *experiment.namespace_hash()(identity);
    if (!(position >= range->start && position < range->end)) return Out(0, RouteReason::kNamespace, position);
  }
  return AssignByStrategy(experiment, request, environment, identity);
}

// A sticky experiment remembers the branch of a user it assigned.
RouteDecision RememberAssigned(const CompiledExperiment& experiment, const RouteRequest& request,
                               RoutingEnvironment& environment, RouteDecision decision) {
  if (decision.in_experiment) decision.branch = environment.Remember(experiment, request.user_id, decision.branch);
  return decision;
}

}  // namespace

RouteDecision Assign(const CompiledExperiment& experiment, const RouteRequest& request,
                     RoutingEnvironment& environment) {
  std::optional<std::string> storage;
  std::optional<std::string_view> identity = HashIdentity(experiment, request, environment, storage);
  if (!identity) return Out(0, RouteReason::kMissingHashAttribute);
  return AssignWithin(experiment, request, environment, *identity);
}

RouteDecision Route(const CompiledExperiment& experiment, const RouteRequest& request,
                    RoutingEnvironment& environment) {
  const Experiment& model = experiment.model();
  if (model.state == State::kDraft || model.state == State::kArchived)
    throw Error(ErrorKind::kWrongState, "experiment " + Quoted(model.name) + " is not active",
                std::string("It is ") + StateName(model.state) + ".",
                model.state == State::kDraft ? "Start it with ab_start('" + model.name + "')." : std::string());
  if (experiment.has_forced_users())
    if (std::optional<int> forced = experiment.Forced(request.user_id)) return Out(*forced, RouteReason::kForced);
  if (model.state == State::kPaused) return Out(0, RouteReason::kPaused);
  if (model.state == State::kCompleted) return Out(experiment.completed_branch(), RouteReason::kCompleted);

  if (experiment.ExcludedByGroup(request.groups)) return Out(0, RouteReason::kExcludedGroup);
  if (experiment.OutsideIncludedGroups(request.groups)) return Out(0, RouteReason::kNotIncludedGroup);
  bool sticky = model.config.sticky;
  if (sticky) {
    if (std::optional<int> remembered = environment.Remembered(experiment, request.user_id)) {
      RouteDecision decision = In(*remembered);
      decision.reason = RouteReason::kSticky;
      decision.sticky = true;
      return decision;
    }
  }
  std::optional<std::string> storage;
  std::optional<std::string_view> identity = HashIdentity(experiment, request, environment, storage);
  if (!identity) return Out(0, RouteReason::kMissingHashAttribute);
  if (experiment.has_condition() && !ConditionHolds(experiment.condition(), environment))
    return Out(0, RouteReason::kCondition);
  // Returned as it is made: a decision copied after one member changed costs a stalled
  // load of the whole struct (store forwarding), on every call.
  if (!sticky) return AssignWithin(experiment, request, environment, *identity);
  return RememberAssigned(experiment, request, environment, AssignWithin(experiment, request, environment, *identity));
}

}  // namespace abtest
