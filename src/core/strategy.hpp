// Assignment strategies and their validated parameters.
//
//   hash        bucket of the salted user hash against the allocation (the default)
//   modulo      {"divisor": N}: numeric user id (else its hash) mod N, mapped like the seed
//   attribute   {"name": a, "mapping": {value: branch}}: the mapped branch, else the control
//   group       {"mapping": {group: branch}}: first of the user's groups mapped, else the control
//   percentage  {"coverage": 0..100}: a rollout; only that share of users enters the split
//   fixed       {"branch": b}: always b
//   round_robin the next branch in turn (branches with a 0% allocation are skipped)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace abtest {

enum class StrategyKind { kHash, kModulo, kAttribute, kGroup, kPercentage, kFixed, kRoundRobin };

// Upper bound for the modulo divisor, so that the seed's range arithmetic cannot overflow.
constexpr std::uint64_t kMaxModuloDivisor = 1000000000000ULL;

struct Strategy {
  StrategyKind kind = StrategyKind::kHash;
  std::uint64_t divisor = 0;                                  // modulo
  std::string attribute;                                      // attribute
  std::vector<std::pair<std::string, std::string>> mapping;   // attribute, group: key -> branch
  int coverage = 10000;                                       // percentage, basis points
  std::string branch;                                         // fixed
};

const char* StrategyName(StrategyKind kind);

// Parses and validates a strategy for an experiment with `branches`. Unknown strategy
// names, unknown or ill-typed parameters and branches not in the experiment are refused.
Strategy ParseStrategy(const std::string& experiment, std::string_view name,
                       std::string_view params_json, const std::vector<std::string>& branches);

// The canonical parameters of `strategy` as a JSON object (what the catalog stores).
std::string StrategyParamsJson(const Strategy& strategy);

}  // namespace abtest
