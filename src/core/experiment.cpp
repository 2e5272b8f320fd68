#include "core/experiment.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <tuple>

#include "core/allocation.hpp"
#include "core/error.hpp"
#include "core/names.hpp"

namespace abtest {

std::string FormatFraction(double value) {
  char text[32];
  for (int digits = 15; digits <= 17; ++digits) {  // the shortest that reads back exactly
    std::snprintf(text, sizeof text, "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return text;
}

Experiment Experiment::Create(std::string name, std::vector<std::string> branch_names,
                              const std::optional<std::vector<std::string>>& allocation,
                              std::optional<std::string> description, std::optional<std::string> owner,
                              std::vector<std::string> tags) {
  ValidateName("experiment name", name);
  if (branch_names.size() < 2)
    throw Error(ErrorKind::kInvalidParameter, "experiment " + Quoted(name) + " needs at least two branches",
                {}, "Name the control first, then one or more treatments: ARRAY['control', 'treatment'].");
  if (branch_names.size() > kMaxBranches)
    throw Error(ErrorKind::kProgramLimit, "experiment " + Quoted(name) + " has too many branches",
                "It has " + std::to_string(branch_names.size()) + "; the limit is " + std::to_string(kMaxBranches) + ".");
  ValidateNameList("branch name", branch_names);
  ValidateNameList("tag", tags);

  std::vector<int> shares;
  if (allocation) {
    for (const auto& text : *allocation) shares.push_back(ParsePercent(text));
  } else {
    shares = EqualSplit(branch_names.size());
  }
  ValidateAllocation(shares, branch_names.size());

  Experiment experiment;
  experiment.name = std::move(name);
  experiment.description = std::move(description);
  experiment.owner = std::move(owner);
  experiment.tags = std::move(tags);
  for (std::size_t i = 0; i < branch_names.size(); ++i)
    experiment.branches.push_back(Branch{std::move(branch_names[i]), shares[i], {}});
  experiment.config.salt = experiment.name;
  return experiment;
}

std::vector<std::string> Experiment::BranchNames() const {
  std::vector<std::string> names;
  for (const auto& branch : branches) names.push_back(branch.name);
  return names;
}

int Experiment::BranchIndex(std::string_view branch) const {
  for (std::size_t i = 0; i < branches.size(); ++i)
    if (branches[i].name == branch) return static_cast<int>(i);
  return -1;
}

int Experiment::RequireBranch(const std::string& branch) const {
  int index = BranchIndex(branch);
  if (index < 0)
    throw Error(ErrorKind::kUndefinedObject,
                "branch " + Quoted(branch) + " does not exist in experiment " + Quoted(name), {},
                "The branches are listed by ab_get_experiment('" + name + "').");
  return index;
}

void Experiment::Apply(Action action, const std::string& now, const std::optional<std::string>& new_winner) {
  if (new_winner && action == Action::kComplete) RequireBranch(*new_winner);
  State next = Transition(name, state, action);
  switch (action) {
    case Action::kStart:
      if (!started_at) started_at = now;  // resuming keeps the original start
      break;
    case Action::kComplete:
      completed_at = now;
      winner = new_winner;
      break;
    case Action::kPause:
    case Action::kArchive:
      break;
  }
  state = next;
}

void Experiment::SetAllocation(const std::vector<std::pair<std::string, std::string>>& shares) {
  std::vector<int> basis_points(branches.size(), 0);
  std::vector<bool> given(branches.size(), false);
  for (const auto& [branch, percent] : shares) {
    int index = RequireBranch(branch);
    if (given[index]) throw Error(ErrorKind::kInvalidParameter, "branch " + Quoted(branch) + " is given twice");
    given[index] = true;
    basis_points[index] = ParsePercent(percent);
  }
  ValidateAllocation(basis_points, branches.size());
  for (std::size_t i = 0; i < branches.size(); ++i) branches[i].allocation = basis_points[i];
}

void Experiment::Configure(const ConfigChange& change) {
  Config next = config;
  if (change.sticky) next.sticky = *change.sticky;
  if (change.allow_reassignment) next.allow_reassignment = *change.allow_reassignment;
  if (change.auto_complete) next.auto_complete = *change.auto_complete;
  if (change.included_groups) {
    ValidateNameList("group", *change.included_groups);
    next.included_groups = *change.included_groups;
  }
  if (change.excluded_groups) {
    ValidateNameList("group", *change.excluded_groups);
    next.excluded_groups = *change.excluded_groups;
  }
  if (change.min_sample_size) {
    if (*change.min_sample_size < 1)
      throw Error(ErrorKind::kInvalidParameter, "min_sample_size must be at least 1",
                  "It is " + std::to_string(*change.min_sample_size) + ".");
    next.min_sample_size = *change.min_sample_size;
  }
  if (change.confidence_level) {
    double level = *change.confidence_level;
    if (!(level > 0.0 && level < 1.0))  // also refuses NaN
      throw Error(ErrorKind::kInvalidParameter, "confidence_level must be between 0 and 1 (exclusive)", {},
                  "A typical value is 0.95.");
    next.confidence_level = level;
  }
  if (change.max_duration) {
    double seconds = change.max_duration_seconds.value_or(-1.0);
    if (!(seconds >= 0.0))
      throw Error(ErrorKind::kInvalidParameter, "max_duration must not be negative",
                  "It is " + *change.max_duration + ".", "A zero interval removes the limit.");
    if (seconds == 0.0) next.max_duration.reset();  // '0' is how a limit is lifted
    else next.max_duration = change.max_duration;
  }
  if (change.salt) {
    ValidateName("salt", *change.salt);
    next.salt = *change.salt;
  }
  if (change.condition) {
    if (*change.condition == "{}") next.condition.reset();
    else next.condition = change.condition;
  }
  if (change.namespace_name && change.namespace_name->empty()) {
    if (change.namespace_range)
      throw Error(ErrorKind::kInvalidParameter, "namespace_range needs a namespace", {},
                  "Name the namespace the range is in: namespace => 'checkout'.");
    next.namespace_range.reset();
  } else if (change.namespace_name || change.namespace_range) {
    if (!change.namespace_name && !next.namespace_range)
      throw Error(ErrorKind::kInvalidParameter, "namespace_range needs a namespace", {},
                  "Name the namespace the range is in: namespace => 'checkout'.");
    NamespaceRange range = next.namespace_range.value_or(NamespaceRange{});
    if (change.namespace_name) {
      ValidateName("namespace", *change.namespace_name);
      range.name = *change.namespace_name;
    }
    if (change.namespace_range) std::tie(range.start, range.end) = *change.namespace_range;
    if (!(range.start >= 0.0 && range.start < range.end && range.end <= 1.0))  // also refuses NaN
      throw Error(ErrorKind::kInvalidParameter, "namespace_range must be {start, end} with 0 <= start < end <= 1",
                  "It is {" + FormatFraction(range.start) + ", " + FormatFraction(range.end) + "}.",
                  "For example namespace_range => '{0, 0.5}'.");
    next.namespace_range = range;
  }
  config = std::move(next);
}

void Experiment::SetAssignment(std::string_view strategy_name, std::string_view params_json) {
  strategy = ParseStrategy(name, strategy_name, params_json, BranchNames());
}

}  // namespace abtest
