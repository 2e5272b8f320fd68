// libFuzzer target: abtest::ParseStrategy and StrategyParamsJson.
//
// Input: the strategy name, a newline, then the params JSON (no newline: the whole
// input is the name and the params are "{}"). Branches are fixed. When a strategy is
// accepted: every branch it names is in the experiment, the coverage is 0..10000, the
// divisor 1..kMaxModuloDivisor, and its canonical params parse back to the same strategy
// with the same canonical text.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/allocation.hpp"
#include "core/strategy.hpp"
#include "fuzz_common.hpp"

using abtest_fuzz::Finding;

namespace {

const std::vector<std::string> kBranches = {"control", "treatment", "beta"};

bool IsBranch(const std::string& name) {
  return std::find(kBranches.begin(), kBranches.end(), name) != kBranches.end();
}

bool Same(const abtest::Strategy& a, const abtest::Strategy& b) {
  return a.kind == b.kind && a.divisor == b.divisor && a.attribute == b.attribute && a.mapping == b.mapping &&
         a.coverage == b.coverage && a.branch == b.branch;
}

void CheckAccepted(const abtest::Strategy& s, std::string_view name) {
  if (name != abtest::StrategyName(s.kind))
    Finding("strategy \"" + std::string(name) + "\" parsed as " + abtest::StrategyName(s.kind));
  if (s.coverage < 0 || s.coverage > abtest::kBuckets) Finding("coverage out of range: " + std::to_string(s.coverage));
  if (s.kind == abtest::StrategyKind::kModulo && (s.divisor == 0 || s.divisor > abtest::kMaxModuloDivisor))
    Finding("divisor out of range: " + std::to_string(s.divisor));
  if (s.kind == abtest::StrategyKind::kFixed && !IsBranch(s.branch)) Finding("fixed branch not in experiment");
  for (const auto& [key, branch] : s.mapping)
    if (!IsBranch(branch)) Finding("mapping to a branch not in the experiment: " + branch);
  if ((s.kind == abtest::StrategyKind::kAttribute || s.kind == abtest::StrategyKind::kGroup) && s.mapping.empty())
    Finding("empty mapping accepted");
  if (s.kind == abtest::StrategyKind::kAttribute && s.attribute.empty()) Finding("empty attribute name accepted");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = abtest_fuzz::AsText(data, size);
  const std::size_t newline = input.find('\n');
  const std::string_view name = input.substr(0, newline);
  const std::string_view params = newline == std::string_view::npos ? std::string_view("{}") : input.substr(newline + 1);

  abtest_fuzz::Guarded("ParseStrategy", [&] {
    const abtest::Strategy strategy = abtest::ParseStrategy("e", name, params, kBranches);
    CheckAccepted(strategy, name);
    std::string canonical;
    try {
      canonical = abtest::StrategyParamsJson(strategy);
    } catch (const abtest::Error& e) {
      Finding(std::string("StrategyParamsJson threw abtest::Error for an accepted strategy: ") + e.what());
    }
    abtest::Strategy again;
    try {
      again = abtest::ParseStrategy("e", abtest::StrategyName(strategy.kind), canonical, kBranches);
    } catch (const abtest::Error& e) {
      Finding("canonical params " + canonical + " are refused: " + e.what());
    }
    if (!Same(strategy, again)) Finding("canonical params " + canonical + " parse to a different strategy");
    if (abtest::StrategyParamsJson(again) != canonical) Finding("canonical params not stable: " + canonical);
  });
  return 0;
}
