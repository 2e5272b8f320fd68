// Assignment strategies and their validated parameters.
//
//   hash        bucket of the salted user hash against the allocation (the default)
//   modulo      {"divisor": N}: numeric user id (else its hash) mod N, mapped like the seed
//   attribute   {"name": a, "mapping": {value: branch}}: the mapped branch, else the control
//   group       {"mapping": {group: branch}}: first of the user's groups mapped, else the control
//   percentage  {"coverage": 0..100}: a rollout; only that share of users enters the split
//   fixed       {"branch": b}: always b
//   round_robin the next branch in turn (branches with a 0% allocation are skipped)
//   growthbook  GrowthBook SDK bucketing (core/growthbook.hpp): {"hash_version": 1|2, "seed": s,
//               "coverage": 0..1, "hash_attribute": a, "fallback_attribute": a,
//               "ranges": [[start, end], ...], "weights": [w, ...], "force": i}, all optional
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace abtest {

enum class StrategyKind { kHash, kModulo, kAttribute, kGroup, kPercentage, kFixed, kRoundRobin, kGrowthBook };

// Upper bound for the modulo divisor, so that the seed's range arithmetic cannot overflow.
constexpr std::uint64_t kMaxModuloDivisor = 1000000000000ULL;

struct Strategy {
  StrategyKind kind = StrategyKind::kHash;
  std::uint64_t divisor = 0;                                  // modulo
  std::string attribute;                                      // attribute
  std::vector<std::pair<std::string, std::string>> mapping;   // attribute, group: key -> branch
  int coverage = 10000;                                       // percentage, basis points
  std::string branch;                                         // fixed

  // growthbook. Ranges, when given, decide alone (the SDK then ignores coverage and weights).
  int hash_version = 2;                           // 1 or 2
  std::optional<std::string> seed;                // absent: the experiment name
  double growthbook_coverage = 1;                 // share of users in the experiment, 0..1
  std::optional<std::string> hash_attribute;      // absent: the user_id argument
  std::optional<std::string> fallback_attribute;  // hashed when the hash attribute is missing
  std::optional<std::vector<double>> weights;     // one per branch; absent: the allocations
  // GrowthBook's experiment-level force: users who would be in the experiment get this
  // variation instead, and are not in it (an index outside the branches: the control).
  std::optional<std::int64_t> force;
  // One [start, end) per branch.
  std::optional<std::vector<std::pair<double, double>>> ranges;
};

const char* StrategyName(StrategyKind kind);

// Parses and validates a strategy for an experiment with `branches`. Unknown strategy
// names, unknown or ill-typed parameters and branches not in the experiment are refused.
Strategy ParseStrategy(const std::string& experiment, std::string_view name,
                       std::string_view params_json, const std::vector<std::string>& branches);

// The canonical parameters of `strategy` as a JSON object (what the catalog stores).
std::string StrategyParamsJson(const Strategy& strategy);

}  // namespace abtest
