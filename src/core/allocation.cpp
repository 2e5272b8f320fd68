#include "core/allocation.hpp"

#include "core/error.hpp"

namespace abtest {
namespace {

[[noreturn]] void RefusePercent(std::string_view text, const char* what, const char* why) {
  constexpr std::size_t kShown = 40;  // a 400-digit number need not be repeated in full
  std::string shown(text.substr(0, kShown));
  if (text.size() > kShown) shown += "...";
  throw Error(ErrorKind::kInvalidParameter, std::string("invalid ") + what + " " + Quoted(shown) + ": " + why,
              {}, std::string("A ") + what + " is a percentage from 0 to 100 with at most two decimals.");
}

}  // namespace

int ParsePercent(std::string_view text, const char* what) {
  if (text.empty()) RefusePercent(text, what, "empty");
  if (text.front() == '-') RefusePercent(text, what, "negative");
  std::size_t pos = text.front() == '+' ? 1 : 0;

  long whole = 0;
  std::size_t whole_digits = 0;
  for (; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos, ++whole_digits) {
    if (whole > 1000) RefusePercent(text, what, "above 100");  // stop before it can overflow
    whole = whole * 10 + (text[pos] - '0');
  }
  int fraction = 0;  // hundredths
  std::size_t fraction_digits = 0;
  if (pos < text.size() && text[pos] == '.') {
    for (++pos; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos, ++fraction_digits) {
      int digit = text[pos] - '0';
      if (fraction_digits == 0) fraction += digit * 10;
      else if (fraction_digits == 1) fraction += digit;
      else if (digit != 0) RefusePercent(text, what, "more than two decimals");
    }
  }
  if (pos != text.size() || whole_digits + fraction_digits == 0) RefusePercent(text, what, "not a number");
  long basis_points = whole * 100 + fraction;
  if (basis_points > kBuckets) RefusePercent(text, what, "above 100");
  return static_cast<int>(basis_points);
}

std::string FormatPercent(int basis_points) {
  if (basis_points < 0) return "-" + FormatPercent(-basis_points);
  std::string text = std::to_string(basis_points / 100);
  int hundredths = basis_points % 100;
  if (hundredths != 0) {
    text += '.';
    text += static_cast<char>('0' + hundredths / 10);
    if (hundredths % 10 != 0) text += static_cast<char>('0' + hundredths % 10);
  }
  return text;
}

std::vector<int> EqualSplit(std::size_t branch_count) {
  if (branch_count == 0) return {};
  std::vector<int> shares(branch_count, kBuckets / static_cast<int>(branch_count));
  shares[0] += kBuckets % static_cast<int>(branch_count);
  return shares;
}

void ValidateAllocation(const std::vector<int>& basis_points, std::size_t branch_count) {
  if (basis_points.size() != branch_count)
    throw Error(ErrorKind::kInvalidParameter, "allocation must have one entry per branch",
                "There are " + std::to_string(branch_count) + " branches and " +
                    std::to_string(basis_points.size()) + " allocation entries.");
  long total = 0;
  for (int share : basis_points) {
    if (share < 0 || share > kBuckets)
      throw Error(ErrorKind::kInvalidParameter, "allocation " + FormatPercent(share) + " is out of range");
    total += share;
  }
  if (total != kBuckets)
    throw Error(ErrorKind::kInvalidParameter, "allocation must sum to 100",
                "It sums to " + FormatPercent(static_cast<int>(total)) + ".",
                "Give each branch a share so that the shares add up to exactly 100.");
}

}  // namespace abtest
