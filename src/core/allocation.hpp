// Traffic allocation: each branch's share of the 10,000 buckets, in basis points.
//
// Percentages are exact decimals with at most two digits after the point, so
// 33.34% is 3334 buckets; nothing is ever rounded through floating point.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace abtest {

constexpr int kBuckets = 10000;  // 100.00% in basis points

// Parses "50", "33.34", "12.50", "0.5" into basis points. Throws kInvalidParameter for
// anything else: a sign, an exponent, more than two significant decimals, above 100.
// `what` names the value in messages ("allocation", "coverage").
int ParsePercent(std::string_view text, const char* what = "allocation");

// Basis points back to the shortest exact decimal: 3334 -> "33.34", 5000 -> "50".
std::string FormatPercent(int basis_points);

// The default split: equal shares, the remainder on the first branch (3 -> 3334/3333/3333).
std::vector<int> EqualSplit(std::size_t branch_count);

// Throws unless there is one share per branch and the shares sum to exactly kBuckets.
void ValidateAllocation(const std::vector<int>& basis_points, std::size_t branch_count);

}  // namespace abtest
