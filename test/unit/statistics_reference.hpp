// Reads test/reference/statistics_reference.tsv, the SciPy reference values written by
// test/reference/statistics_reference.py (and tables of the same format, such as
// query_comparison_reference.tsv), and compares doubles to them.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace abtest::reference {

using Row = std::vector<std::string>;  // the fields after the function name

// Next to this file's directory, so that the path holds whatever the working directory;
// the Makefile compiles from the repository root, where __FILE__ is test/unit/....
inline std::string TablePath(const std::string& table = "statistics_reference.tsv") {
  std::string here = __FILE__;
  std::size_t slash = here.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : here.substr(0, slash);
  return dir + "/../reference/" + table;
}

// All rows of one function in `table` (statistics_reference.tsv, or another table of
// test/reference/ in the same format). A missing or empty table fails the calling test:
// the reference comparison must never be skipped quietly.
inline std::vector<Row> Rows(const std::string& function, const std::string& table = "statistics_reference.tsv") {
  static std::map<std::string, std::map<std::string, std::vector<Row>>> tables;
  if (tables.find(table) == tables.end()) {
    std::map<std::string, std::vector<Row>>& rows = tables[table];
    std::ifstream in(TablePath(table));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream fields(line);
      std::string name, field;
      std::getline(fields, name, '\t');
      Row row;
      while (std::getline(fields, field, '\t')) row.push_back(field);
      rows[name].push_back(row);
    }
  }
  const std::map<std::string, std::vector<Row>>& rows = tables[table];
  auto it = rows.find(function);
  if (it == rows.end() || it->second.size() < 200) {
    std::string script = table.substr(0, table.rfind('.')) + ".py";
    ADD_FAILURE() << "fewer than 200 reference cases for " << function << " in " << TablePath(table)
                  << " (run /usr/bin/python3 test/reference/" << script << ")";
    return {};
  }
  return it->second;
}

inline double Double(const std::string& field) { return std::strtod(field.c_str(), nullptr); }
inline std::int64_t Int(const std::string& field) { return std::strtoll(field.c_str(), nullptr, 10); }
inline std::optional<double> Optional(const std::string& field) {
  if (field == "none") return std::nullopt;
  return Double(field);
}
inline std::vector<double> Doubles(const std::string& field) {
  std::vector<double> values;
  std::istringstream in(field);
  std::string item;
  while (std::getline(in, item, ',')) values.push_back(Double(item));
  return values;
}

// Relative agreement; `scale` is the magnitude below which agreement is absolute
// (a confidence bound near 0 is judged against the width of its interval).
inline ::testing::AssertionResult Close(double actual, double expected, double relative = 1e-9, double scale = 0) {
  double tolerance = relative * std::max({std::fabs(expected), std::fabs(actual), scale}) + 1e-300;
  if (std::fabs(actual - expected) <= tolerance) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << actual << " differs from the reference " << expected << " by "
                                       << std::fabs(actual - expected) << " (relative "
                                       << std::fabs(actual - expected) / std::max(std::fabs(expected), 1e-300) << ")";
}

inline std::string Describe(const Row& row) {
  std::string text;
  for (const auto& field : row) text += (text.empty() ? "" : " ") + field;
  return text;
}

}  // namespace abtest::reference
