// libFuzzer target: abtest::ParsePercent and FormatPercent.
//
// The whole input is the percent text. If ParsePercent accepts it, the value must be
// 0..10000 basis points, and FormatPercent of it must parse back to the same value and
// be the canonical text (formatting that again gives the same string).
#include <cstdint>
#include <string>

#include "core/allocation.hpp"
#include "fuzz_common.hpp"

using abtest_fuzz::Finding;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = abtest_fuzz::AsText(data, size);
  abtest_fuzz::Guarded("ParsePercent", [&] {
    const int value = abtest::ParsePercent(text, "coverage");
    if (value < 0 || value > abtest::kBuckets)
      Finding("ParsePercent(\"" + std::string(text) + "\") = " + std::to_string(value) + ", outside 0..10000");
    const std::string formatted = abtest::FormatPercent(value);
    int again = -1;
    try {
      again = abtest::ParsePercent(formatted);
    } catch (const abtest::Error& e) {
      Finding("FormatPercent(" + std::to_string(value) + ") = \"" + formatted +
              "\" is refused by ParsePercent: " + e.what());
    }
    if (again != value)
      Finding("round trip changed the value: \"" + std::string(text) + "\" -> " + std::to_string(value) +
              " -> \"" + formatted + "\" -> " + std::to_string(again));
    if (abtest::FormatPercent(again) != formatted)
      Finding("FormatPercent is not canonical for " + std::to_string(value));
  });
  return 0;
}
