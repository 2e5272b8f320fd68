// ab_report_html: one self-contained HTML page about an experiment (no external URL,
// no script), its charts drawn as inline SVG. Built here from plain inputs so that the
// page is unit-tested without a server; the glue gathers the inputs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/outcome_report.hpp"
#include "core/statistics.hpp"

namespace abtest {

struct HtmlBranch {
  std::string name;
  int allocation = 0;       // basis points
  std::int64_t users = 0;   // assigned users (sticky) or exposures
};

struct HtmlReportInput {
  std::string experiment;
  std::string description;
  std::string state;
  std::string strategy;
  std::optional<std::string> started_at;
  std::optional<std::string> winner;
  std::string generated_at;
  double confidence_level = 0.95;
  std::int64_t min_sample_size = 100;
  std::string users_source;  // "assigned users" or "exposures"
  std::vector<HtmlBranch> branches;  // the control first
  std::optional<SampleRatioCheck> sample_ratio;
  std::vector<MetricReport> metrics;   // goal metrics first, then guardrails, then secondary
};

// The page, UTF-8. Every text from the input is HTML-escaped.
std::string ReportHtml(const HtmlReportInput& input);

}  // namespace abtest
