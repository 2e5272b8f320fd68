// Routing: which branch a user gets.
//
// The order, for one call:
//   1. state   draft/archived refuse; paused routes to the control; completed to the
//              winner (or the control when there is none)
//   2. groups  a user in an excluded group, or in no included group when some are
//              set, gets the control
//   3. sticky  a sticky experiment returns the user's remembered branch if any
//   4. assign  the strategy computes a branch, which a sticky experiment remembers
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

#include "core/experiment.hpp"

namespace abtest {

// An experiment prepared for routing: everything derivable is derived once.
class CompiledExperiment {
 public:
  explicit CompiledExperiment(Experiment experiment);

  const Experiment& model() const { return model_; }
  const std::string& name() const { return model_.name; }
  const std::string& branch(int index) const { return model_.branches[index].name; }

  int BranchOfBucket(int bucket) const;       // cumulative allocation ranges
  std::uint64_t UserHashValue(std::string_view user_id) const;  // the salted user hash
  int HashBucket(std::string_view user_id) const;  // 0..9999, the hash strategy's bucket
  bool InCoverage(std::string_view user_id) const;  // percentage strategy's draw
  std::optional<int> Mapped(std::string_view key) const;  // attribute / group mapping
  bool Excluded(const std::vector<std::string_view>& groups) const;
  // Whether routing looks at the user's groups at all (lets the glue skip reading them).
  bool uses_groups() const;

  int completed_branch() const { return completed_branch_; }
  // Changes whenever the allocation, salt or strategy changes: what a user's hash-based
  // assignment depends on. allow_reassignment re-buckets users whose fingerprint differs.
  std::uint32_t assignment_fingerprint() const { return fingerprint_; }

  // For the glue's use: where it keeps this experiment's shared state (-1: not looked
  // up yet), and the stamp that tells whether that is still valid.
  mutable int shared_slot = -1;
  mutable std::uint64_t shared_slot_stamp = 0;
  const std::vector<int>& turn_branches() const { return turn_branches_; }

 private:
  Experiment model_;
  std::vector<int> upper_bounds_;  // exclusive upper bucket of each branch
  std::uint64_t seed_ = 0;
  std::uint64_t coverage_seed_ = 0;
  int completed_branch_ = 0;
  std::uint32_t fingerprint_ = 0;
  std::vector<int> turn_branches_;  // round robin: branches with a non-zero share
  std::map<std::string, int, std::less<>> mapping_;
  std::set<std::string, std::less<>> included_, excluded_;
};

class RoutingEnvironment {
 public:
  virtual ~RoutingEnvironment() = default;
  // The user's attribute as text, if present (attribute strategy only).
  virtual std::optional<std::string> Attribute(std::string_view name) = 0;
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

// The branch index for the request; throws kWrongState for a draft or archived experiment.
int Route(const CompiledExperiment& experiment, const RouteRequest& request, RoutingEnvironment& environment);

// Step 4 alone: what the strategy gives, ignoring state, groups and stickiness.
int Assign(const CompiledExperiment& experiment, const RouteRequest& request, RoutingEnvironment& environment);

// The modulo strategy's value: a decimal user id's integer value, otherwise its hash.
std::optional<std::uint64_t> DecimalUserId(std::string_view user_id);

}  // namespace abtest
