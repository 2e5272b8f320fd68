// The experiment model and every change an administrator can make to it.
//
// Each operation validates completely before it changes anything, so a refused
// change leaves the model as it was. Timestamps and durations are opaque text: the
// catalog owns their type, the core only records when a transition happened.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/branch_settings.hpp"
#include "core/lifecycle.hpp"
#include "core/strategy.hpp"

namespace abtest {

// Most branches an experiment may have: every branch must be able to hold a bucket.
constexpr std::size_t kMaxBranches = 100;

struct Branch {
  std::string name;
  int allocation = 0;  // basis points
  BranchSettings settings;  // what ab_enter sets (catalog 1.4; ab_set_branch_settings)
};

// Experiments that share a namespace and have non-overlapping ranges never share a
// user: each user has one position in [0, 1) per namespace (GrowthBook's namespace hash).
struct NamespaceRange {
  std::string name;
  double start = 0;  // 0 <= start < end <= 1
  double end = 1;
};

struct Config {
  bool sticky = true;
  bool allow_reassignment = false;
  std::vector<std::string> included_groups;
  std::vector<std::string> excluded_groups;
  std::int64_t min_sample_size = 100;
  double confidence_level = 0.95;
  bool auto_complete = false;
  std::optional<std::string> max_duration;  // interval text; NULL means no limit
  std::string salt;                         // hashing salt; the experiment name by default
  // Targeting: a GrowthBook condition over the user's attributes (canonical JSON text),
  // absent when everyone may enter.
  std::optional<std::string> condition;
  std::optional<NamespaceRange> namespace_range;  // absent: in no namespace
};

// ab_configure's arguments: an unset field leaves that setting as it is.
struct ConfigChange {
  std::optional<bool> sticky;
  std::optional<std::vector<std::string>> included_groups;
  std::optional<std::vector<std::string>> excluded_groups;
  std::optional<std::int64_t> min_sample_size;
  std::optional<double> confidence_level;
  std::optional<bool> allow_reassignment;
  std::optional<bool> auto_complete;
  std::optional<std::string> max_duration;
  std::optional<double> max_duration_seconds;  // how the glue tells the core its sign
  std::optional<std::string> salt;
  std::optional<std::string> condition;  // JSON text; "{}" removes the condition
  std::optional<std::string> namespace_name;  // "" leaves the namespace
  std::optional<std::pair<double, double>> namespace_range;  // with a namespace; default [0, 1)
};

struct Experiment {
  std::string id;  // uuid text, assigned by the catalog
  std::string name;
  std::optional<std::string> description;
  std::optional<std::string> owner;
  std::vector<std::string> tags;
  std::vector<Branch> branches;  // in order; the first is the control
  State state = State::kDraft;
  std::optional<std::string> created_at, started_at, completed_at;
  std::optional<std::string> winner;
  Config config;
  Strategy strategy;
  // Users forced into a branch (ab_force), for QA: sorted by user id. They get that
  // branch whatever else holds, and are not in the experiment's counts.
  std::vector<std::pair<std::string, std::string>> forced_users;
  bool is_default = false;

  // A new draft experiment. Without `allocation` (percent texts) the split is equal.
  static Experiment Create(std::string name, std::vector<std::string> branch_names,
                           const std::optional<std::vector<std::string>>& allocation,
                           std::optional<std::string> description, std::optional<std::string> owner,
                           std::vector<std::string> tags);

  std::vector<std::string> BranchNames() const;
  int BranchIndex(std::string_view branch) const;  // -1 when absent
  int RequireBranch(const std::string& branch) const;

  // Lifecycle: `now` is the transaction time as text; `winner` only for kComplete.
  void Apply(Action action, const std::string& now, const std::optional<std::string>& winner = std::nullopt);

  // {branch: percent text}; branches left out get 0, unknown names are refused.
  void SetAllocation(const std::vector<std::pair<std::string, std::string>>& shares);
  void Configure(const ConfigChange& change);
  void SetAssignment(std::string_view strategy_name, std::string_view params_json);
};

// A fraction as the shortest text that reads back exactly.
std::string FormatFraction(double value);

}  // namespace abtest
