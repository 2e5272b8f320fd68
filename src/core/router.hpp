// Routing: which branch a user gets, and whether the user is in the experiment.
//
// The order, for one call:
//   1. state      draft/archived refuse
//   2. forced     a forced user (ab_force) gets that branch
//   3. state      paused routes to the control; completed to the winner (or the control)
//   4. groups     a user in an excluded group, or in no included group when some are
//                 set, gets the control
//   5. sticky     a sticky experiment returns the user's remembered branch if any: it
//                 wins over later changes of targeting (as GrowthBook's sticky bucketing)
//   6. condition  the targeting condition over the user's attributes (first, the
//                 growthbook strategy's hash attribute must be there)
//   7. namespace  the user's position in the namespace must fall in the range
//   8. assign     the strategy computes a branch, which a sticky experiment remembers;
//                 a strategy may leave the user out (coverage)
// Only a user who reaches a branch through 5 or 8 is in the experiment: the others get
// the control (or the forced or winning branch) and leave no trace in its counts, its
// assignment log or its analysis.
//
// What needs the database or shared memory (remembered branches, the cluster-wide
// round-robin turn, the user's attributes) comes through RoutingEnvironment.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/condition.hpp"
#include "core/experiment.hpp"
#include "core/growthbook.hpp"

namespace abtest {

// An experiment prepared for routing: everything derivable is derived once. A condition
// with $regex needs `regex` (the glue's PostgreSQL engine); without one it is refused.
class CompiledExperiment {
 public:
  explicit CompiledExperiment(Experiment experiment, RegexEngine* regex = nullptr);

  const Experiment& model() const { return model_; }
  const std::string& name() const { return model_.name; }
  const std::string& branch(int index) const { return model_.branches[index].name; }

  int BranchOfBucket(int bucket) const;       // cumulative allocation ranges
  std::uint64_t UserHashValue(std::string_view user_id) const;  // the salted user hash
  int HashBucket(std::string_view user_id) const;  // 0..9999, the hash strategy's bucket
  bool InCoverage(std::string_view user_id) const;  // percentage strategy's draw
  int CoverageBucket(std::string_view user_id) const;  // 0..9999, the draw's bucket
  std::optional<int> Mapped(std::string_view key) const;  // attribute / group mapping
  // In an excluded group; in none of the included ones when some are set. Inline, so that
  // an experiment without groups, what most calls route, pays a test each and no call.
  bool ExcludedByGroup(const std::vector<std::string_view>& groups) const {
    return !excluded_.empty() && AnyIn(excluded_, groups);
  }
  bool OutsideIncludedGroups(const std::vector<std::string_view>& groups) const {
    return !included_.empty() && !AnyIn(included_, groups);
  }
  // Whether routing looks at the user's groups at all (lets the glue skip reading them).
  bool uses_groups() const { return uses_groups_; }
  const Condition& condition() const { return condition_; }
  bool has_condition() const { return has_condition_; }  // a non-empty condition
  // The forced branch of a user, if any.
  std::optional<int> Forced(std::string_view user_id) const;
  bool has_forced_users() const { return !forced_.empty(); }
  // The allocation as fractions, GrowthBook's weights when the strategy gives none.
  const std::vector<double>& allocation_weights() const { return allocation_weights_; }
  // The growthbook strategy's seed: its own, or the experiment's name.
  const std::string& growthbook_seed() const;
  // The growthbook strategy's hash with its seed, and the namespace's ("__" + name, v1).
  const growthbook::SeededHash& growthbook_hash() const { return growthbook_hash_; }
  const growthbook::SeededHash& namespace_hash() const { return namespace_hash_; }
  // The growthbook strategy's ranges looked up by the hash's position.
  const growthbook::VariationTable& growthbook_variations() const { return growthbook_variations_; }

  int completed_branch() const { return completed_branch_; }
  // Changes whenever the allocation, salt or strategy changes: what a user's hash-based
  // assignment depends on. allow_reassignment re-buckets users whose fingerprint differs.
  std::uint32_t assignment_fingerprint() const { return fingerprint_; }

  // For the glue's use: where it keeps this experiment's shared state (-1: not looked
  // up yet), and the stamp that tells whether that is still valid.
  mutable int shared_slot = -1;
  mutable std::uint64_t shared_slot_stamp = 0;
  // Likewise where the glue's metrics keep this experiment's keys (-1: not looked up).
  mutable int metrics_slot = -1;
  mutable std::uint64_t metrics_serial = 0;
  const std::vector<int>& turn_branches() const { return turn_branches_; }

 private:
  static bool AnyIn(const std::set<std::string, std::less<>>& set, const std::vector<std::string_view>& groups);

  Experiment model_;
  std::vector<int> upper_bounds_;  // exclusive upper bucket of each branch
  std::uint64_t seed_ = 0;
  std::uint64_t coverage_seed_ = 0;
  int completed_branch_ = 0;
  std::uint32_t fingerprint_ = 0;
  std::vector<int> turn_branches_;  // round robin: branches with a non-zero share
  std::map<std::string, int, std::less<>> mapping_;
  std::set<std::string, std::less<>> included_, excluded_;
  bool uses_groups_ = false;
  Condition condition_;
  bool has_condition_ = false;
  std::map<std::string, int, std::less<>> forced_;
  std::vector<double> allocation_weights_;
  growthbook::SeededHash growthbook_hash_;
  growthbook::SeededHash namespace_hash_;
  growthbook::VariationTable growthbook_variations_;
};

// Why a user got the branch they got (ab_explain's reason).
enum class RouteReason {
  kPaused,
  kCompleted,
  kForced,
  kExcludedGroup,
  kNotIncludedGroup,
  kSticky,
  kCondition,
  kNamespace,
  kMissingHashAttribute,
  kCoverage,
  kAssigned,
};
const char* RouteReasonName(RouteReason reason);

struct RouteDecision {
  int branch = 0;
  bool in_experiment = false;  // only then is the user counted, logged and analysed
  RouteReason reason = RouteReason::kAssigned;
  std::optional<double> bucket;  // the hash position in [0, 1) the decision used, if any
  bool sticky = false;           // the branch is the user's remembered one
};

class RoutingEnvironment {
 public:
  virtual ~RoutingEnvironment() = default;
  // The user's attribute as text, if present (attribute strategy, hash attribute).
  virtual std::optional<std::string> Attribute(std::string_view name) = 0;
  // The user's attributes for the targeting condition; nullptr stands for none ({}).
  virtual AttributeSource* Attributes() { return nullptr; }
  // A ticket from the experiment's cluster-wide turn counter (round robin only).
  virtual std::uint64_t NextTurn(const CompiledExperiment& experiment) = 0;
  // The sticky seam: a remembered branch, and remembering a new one. Remember
  // returns the branch that is now remembered, which is another session's when it
  // remembered one for the same user first.
  virtual std::optional<int> Remembered(const CompiledExperiment& experiment, std::string_view user_id) = 0;
  virtual int Remember(const CompiledExperiment& experiment, std::string_view user_id, int branch) = 0;
};

struct RouteRequest {
  std::string_view user_id;
  std::vector<std::string_view> groups;
};

// The decision for the request; throws kWrongState for a draft or archived experiment.
RouteDecision Route(const CompiledExperiment& experiment, const RouteRequest& request,
                    RoutingEnvironment& environment);

// Steps 7 and 8 alone: what namespace and strategy give, ignoring state, groups,
// stickiness and the condition.
RouteDecision Assign(const CompiledExperiment& experiment, const RouteRequest& request,
                     RoutingEnvironment& environment);

// The modulo strategy's value: a decimal user id's integer value, otherwise its hash.
std::optional<std::uint64_t> DecimalUserId(std::string_view user_id);

}  // namespace abtest
