#include "core/html_report.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "outcome_sample.hpp"

namespace abtest {
namespace {

using sample::ChallengerRow;
using sample::ControlRow;
using sample::DailySeries;
using sample::Metric;
using sample::SampleInput;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::size_t Count(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++count;
  return count;
}

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// The text of the section whose id is `id` (up to its closing tag).
std::string Section(const std::string& page, const std::string& id) {
  const std::size_t at = page.find("id=\"" + id + "\"");
  if (at == std::string::npos) return "";
  const std::size_t start = page.rfind('<', at);
  const std::size_t end = page.find("</section>", start);
  return page.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// Neither NaN nor infinity anywhere (printf spells them nan and inf), and every number
// in an SVG geometry attribute is finite.
void ExpectFiniteEverywhere(const std::string& page) {
  const std::string lower = Lower(page);
  EXPECT_FALSE(Contains(lower, "nan")) << "a NaN in the page";
  EXPECT_FALSE(Contains(lower, "inf")) << "an infinity in the page";
  static const std::regex attribute(R"re(\s(x|y|x1|x2|y1|y2|cx|cy|r|width|height|viewBox|points)="([^"]*)")re");
  static const std::regex number(R"re(-?[0-9]+(\.[0-9]+)?)re");
  for (auto it = std::sregex_iterator(page.begin(), page.end(), attribute); it != std::sregex_iterator(); ++it) {
    std::string value = (*it)[2];
    if ((*it)[1] == "width" && value == "100%") continue;
    // Only numbers, separated by spaces and commas.
    std::string rest = std::regex_replace(value, number, "");
    rest.erase(std::remove_if(rest.begin(), rest.end(), [](char c) { return c == ' ' || c == ','; }), rest.end());
    EXPECT_TRUE(rest.empty()) << (*it)[1] << "=\"" << value << "\"";
  }
}

void ExpectSelfContained(const std::string& page) {
  const std::string lower = Lower(page);
  EXPECT_FALSE(Contains(lower, "<script")) << "a script";
  EXPECT_FALSE(Contains(lower, "http:")) << "an external URL";
  EXPECT_FALSE(Contains(lower, "https:")) << "an external URL";
  EXPECT_FALSE(Contains(lower, "url(")) << "a CSS URL";
  EXPECT_FALSE(Contains(lower, " src=")) << "an embedded resource";
  EXPECT_FALSE(Contains(lower, "@import")) << "an imported style sheet";
}

void ExpectWellFormedPage(const std::string& page) {
  EXPECT_EQ(page.rfind("<!DOCTYPE html>\n", 0), 0u);
  EXPECT_TRUE(Contains(page, "<meta charset=\"utf-8\">"));
  EXPECT_EQ(page.substr(page.size() - 8), "</html>\n");
  EXPECT_EQ(Count(page, "<svg"), Count(page, "</svg>"));
  EXPECT_EQ(Count(page, "<section"), Count(page, "</section>"));
  EXPECT_EQ(Count(page, "<table"), Count(page, "</table>"));
  ExpectSelfContained(page);
  ExpectFiniteEverywhere(page);
}

// A dev aid, not a check: ABTEST_HTML_SAMPLE=/tmp/sample.html make unit writes the sample
// page there, to look at in a browser or render with test/render/check_report.py.
TEST(ReportHtml, WritesTheSamplePageWhenAsked) {
  const char* path = std::getenv("ABTEST_HTML_SAMPLE");
  if (path == nullptr || *path == '\0') GTEST_SKIP() << "ABTEST_HTML_SAMPLE not set";
  std::ofstream out(path, std::ios::binary);
  out << ReportHtml(SampleInput());
  ASSERT_TRUE(out.good()) << path;
}

TEST(ReportHtml, EverySectionOfTheSamplePage) {
  const HtmlReportInput input = SampleInput();
  const std::string page = ReportHtml(input);
  ExpectWellFormedPage(page);
  EXPECT_TRUE(Contains(page, "<title>checkout_v2 &#8212; abtest report</title>"));
  for (const char* id : {"summary", "verdict", "sample-ratio", "metric-1", "metric-2", "metric-3", "metric-4"})
    EXPECT_TRUE(Contains(page, std::string("id=\"") + id + "\"")) << id;
  EXPECT_FALSE(Contains(page, "id=\"no-metrics\""));

  // The summary: state, strategy, start, confidence, every branch with its allocation and users.
  const std::string summary = page.substr(page.find("id=\"summary\""), page.find("</header>") - page.find("id=\"summary\""));
  for (const char* text : {"active", "hash", "2024-05-01 10:00:00+00", "95%", "One-page checkout", "50.00%",
                           "25.00%", "10012", "4975", "5013", "20000"})
    EXPECT_TRUE(Contains(summary, text)) << text;

  // The verdict states DecideVerdict's headline and warnings.
  const Verdict verdict = DecideVerdict(input.metrics, input.sample_ratio);
  const std::string verdict_section = Section(page, "verdict");
  EXPECT_TRUE(Contains(verdict_section, "verdict-good"));
  EXPECT_TRUE(Contains(verdict_section, "Recommend one_page")) << verdict_section;
  EXPECT_EQ(Count(verdict_section, "<li>"), verdict.warnings.size());
  EXPECT_TRUE(Contains(verdict_section, "Guardrail page_load_ms is significantly worse in two_step"));
  EXPECT_TRUE(Contains(verdict_section, "refund_rate could not be analysed"));

  // The sample-ratio check: its statistics and one pair of bars per branch.
  const std::string srm = Section(page, "sample-ratio");
  EXPECT_TRUE(Contains(srm, "chi-square 0.41 with 2 df"));
  EXPECT_TRUE(Contains(srm, "p = 0.8100"));
  EXPECT_TRUE(Contains(srm, "tag-better\">ok<"));
  EXPECT_EQ(Count(srm, "<svg class=\"chart srm-chart\""), 1u);
  EXPECT_EQ(Count(srm, "class=\"srm-expected\""), 3u);
  EXPECT_EQ(Count(srm, "class=\"srm-observed\""), 3u);
  EXPECT_TRUE(Contains(srm, "observed 49.75% &#183; expected 25.00%") ||
              Contains(srm, "observed 24.88% &#183; expected 25.00%"));

  // Each analysed metric: a table, an interval plot and an over-time chart; the failed one
  // its error instead.
  for (const char* id : {"metric-1", "metric-2", "metric-3"}) {
    const std::string section = Section(page, id);
    EXPECT_EQ(Count(section, "<table class=\"metric-table\""), 1u) << id;
    EXPECT_EQ(Count(section, "<svg class=\"chart ci-plot\""), 1u) << id;
    EXPECT_EQ(Count(section, "<svg class=\"chart over-time\""), 1u) << id;
    EXPECT_EQ(Count(section, "class=\"ci-mark "), 2u) << id;          // one interval per challenger
    EXPECT_EQ(Count(section, "class=\"ci-estimate\""), 2u) << id;
    EXPECT_EQ(Count(section, "class=\"zero-line\""), 2u) << id;       // in both charts
    EXPECT_EQ(Count(section, "<polygon class=\"ot-band\""), 2u) << id;  // one band per challenger
    EXPECT_EQ(Count(section, "<polyline class=\"ot-line\""), 2u) << id;
    EXPECT_EQ(Count(section, "<tr><td class=\"branch\">"), 3u) << id;
    EXPECT_TRUE(Contains(section, "2024-05-02")) << id;  // time axis labels
  }
  const std::string revenue = Section(page, "metric-1");
  EXPECT_TRUE(Contains(revenue, "role-goal"));
  EXPECT_TRUE(Contains(revenue, "CUPED reduced the variance by 28.4%"));
  EXPECT_TRUE(Contains(revenue, "Relative lift vs control"));
  EXPECT_EQ(Count(revenue, "ci-mark ci-better"), 1u);
  EXPECT_EQ(Count(revenue, "ci-mark ci-neutral"), 1u);
  EXPECT_TRUE(Contains(revenue, "+6.66%")) << "the lift of one_page";
  // Lower is better: the significant increase of two_step is worse, drawn so.
  const std::string latency = Section(page, "metric-2");
  EXPECT_TRUE(Contains(latency, "lower is better"));
  EXPECT_EQ(Count(latency, "ci-mark ci-worse"), 1u);
  EXPECT_EQ(Count(latency, "ci-mark ci-neutral"), 1u);
  EXPECT_TRUE(Contains(latency, "&#8592; better"));
  EXPECT_TRUE(Contains(latency, "worse &#8594;"));
  // No lift: the plot shows the difference.
  const std::string ratio = Section(page, "metric-3");
  EXPECT_TRUE(Contains(ratio, "Difference vs control"));
  EXPECT_TRUE(Contains(ratio, ">ratio<"));
  const std::string failed = Section(page, "metric-4");
  EXPECT_TRUE(Contains(failed, "Not analysed: the source table public.refunds"));
  EXPECT_FALSE(Contains(failed, "<svg"));
  EXPECT_FALSE(Contains(failed, "<table"));

  EXPECT_EQ(Count(page, "<svg"), 1u + 3u * 2u);
  EXPECT_LT(page.size(), 80000u) << "the page should stay small";
}

TEST(ReportHtml, EscapesEveryText) {
  const std::string evil = "<script>alert('x')</script>&\"";
  HtmlReportInput input = SampleInput();
  input.experiment = evil;
  input.description = evil;
  input.state = evil;
  input.strategy = evil;
  input.started_at = evil;
  input.winner = evil;
  input.generated_at = evil;
  input.users_source = evil;
  for (HtmlBranch& branch : input.branches) branch.name = evil + branch.name;
  for (MetricReport& metric : input.metrics) {
    metric.name = evil + metric.name;
    metric.description = evil;
    metric.role = evil;
    for (std::string& name : metric.branches) name = evil + name;
    for (auto& series : metric.over_time)
      for (TimePoint& p : series) p.at = evil;
    if (metric.error) metric.error = evil;
  }
  const std::string page = ReportHtml(input);
  ExpectWellFormedPage(page);
  EXPECT_FALSE(Contains(page, "<script>"));
  EXPECT_FALSE(Contains(page, "alert('x')"));
  EXPECT_TRUE(Contains(page, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
  // The charts are still drawn.
  EXPECT_EQ(Count(page, "<svg"), 1u + 3u * 2u);
}

TEST(ReportHtml, NoMetricsSaysHowToAttachOne) {
  HtmlReportInput input = SampleInput();
  input.metrics.clear();
  const std::string page = ReportHtml(input);
  ExpectWellFormedPage(page);
  const std::string note = Section(page, "no-metrics");
  EXPECT_TRUE(Contains(note, "ab_define_metric"));
  EXPECT_TRUE(Contains(note, "ab_attach_metric('checkout_v2'"));
  EXPECT_TRUE(Contains(Section(page, "verdict"), "No metric attached"));
  EXPECT_EQ(Count(page, "<svg"), 1u);  // the sample-ratio chart only
}

TEST(ReportHtml, SampleRatioMismatchIsTheVerdict) {
  HtmlReportInput input = SampleInput();
  input.sample_ratio = SampleRatioCheck{std::numeric_limits<double>::infinity(), 2, 0, true};
  const std::string page = ReportHtml(input);
  ExpectWellFormedPage(page);
  const std::string verdict = Section(page, "verdict");
  EXPECT_TRUE(Contains(verdict, "verdict-bad"));
  EXPECT_TRUE(Contains(verdict, "Sample ratio mismatch"));
  EXPECT_FALSE(Contains(verdict, "Recommend"));
  const std::string srm = Section(page, "sample-ratio");
  EXPECT_TRUE(Contains(srm, "users in a branch allocated 0%"));
  EXPECT_TRUE(Contains(srm, "tag-worse\">mismatch<"));
}

TEST(ReportHtml, NobodyYet) {
  HtmlReportInput input = SampleInput();
  input.started_at.reset();
  input.state = "draft";
  input.sample_ratio.reset();
  for (HtmlBranch& branch : input.branches) branch.users = 0;
  for (MetricReport& metric : input.metrics) {
    if (metric.error) continue;
    for (OutcomeRow& row : metric.rows) row = OutcomeRow{};
    metric.over_time.clear();
  }
  const std::string page = ReportHtml(input);
  ExpectWellFormedPage(page);
  EXPECT_TRUE(Contains(page, "not started"));
  EXPECT_TRUE(Contains(Section(page, "sample-ratio"), "nothing to check"));
  EXPECT_TRUE(Contains(Section(page, "verdict"), "No data yet"));
  EXPECT_TRUE(Contains(Section(page, "metric-1"), "No interval yet"));
  EXPECT_TRUE(Contains(Section(page, "metric-1"), "No cumulative effect yet"));
  EXPECT_EQ(Count(page, "<svg"), 0u);
  EXPECT_EQ(Count(page, "ci-mark"), 0u);
}

TEST(ReportHtml, RowsWithNulls) {
  HtmlReportInput input = SampleInput();
  MetricReport& revenue = input.metrics[0];
  // one_page: an estimate without interval; two_step: nothing at all.
  revenue.rows[1].diff_ci_low = revenue.rows[1].diff_ci_high = std::nullopt;
  revenue.rows[1].lift_ci_low = revenue.rows[1].lift_ci_high = std::nullopt;
  revenue.rows[1].adjusted_p_value = std::nullopt;
  revenue.rows[1].is_significant = false;
  revenue.rows[2] = OutcomeRow{};
  revenue.rows[2].users = 1;
  revenue.rows[0].mean = revenue.rows[0].stddev = std::nullopt;
  // Over time: gaps in the middle of one series.
  for (std::size_t k = 5; k < 8; ++k) revenue.over_time[1][k].diff = std::nullopt;
  revenue.over_time[2][3].diff_ci_low = std::nullopt;
  const std::string page = ReportHtml(input);
  ExpectWellFormedPage(page);
  const std::string section = Section(page, "metric-1");
  EXPECT_EQ(Count(section, "class=\"ci-mark "), 0u);
  EXPECT_EQ(Count(section, "class=\"ci-estimate\""), 1u);
  EXPECT_TRUE(Contains(section, "n/a: too few users"));
  EXPECT_TRUE(Contains(section, ">n/a<"));
  // The gap splits one_page's line and band in two; the missing bound splits two_step's band.
  EXPECT_EQ(Count(section, "<polyline class=\"ot-line\""), 3u);
  EXPECT_EQ(Count(section, "<polygon class=\"ot-band\""), 4u);
}

TEST(ReportHtml, ASinglePointInTime) {
  HtmlReportInput input = SampleInput();
  for (MetricReport& metric : input.metrics)
    for (auto& series : metric.over_time)
      if (series.size() > 1) series.resize(1);
  const std::string page = ReportHtml(input);
  ExpectWellFormedPage(page);
  const std::string section = Section(page, "metric-1");
  EXPECT_EQ(Count(section, "<polyline"), 0u);
  EXPECT_EQ(Count(section, "<rect class=\"ot-band\""), 2u);
  EXPECT_EQ(Count(section, "class=\"ot-point\""), 2u);
  EXPECT_TRUE(Contains(section, "2024-05-02"));
}

TEST(ReportHtml, AllValuesEqual) {
  HtmlReportInput input = SampleInput();
  for (MetricReport& metric : input.metrics) {
    for (std::size_t i = 1; i < metric.rows.size(); ++i) {
      OutcomeRow& row = metric.rows[i];
      row.diff = row.diff_ci_low = row.diff_ci_high = 0.0;
      row.relative_lift = row.lift_ci_low = row.lift_ci_high = 0.0;
      row.is_significant = false;
    }
    for (auto& series : metric.over_time)
      for (TimePoint& p : series) {
        p.at_epoch = 1714557600.0;  // every step at the same instant
        p.diff = p.diff_ci_low = p.diff_ci_high = 0.0;
      }
  }
  const std::string page = ReportHtml(input);
  ExpectWellFormedPage(page);
  EXPECT_EQ(Count(Section(page, "metric-1"), "class=\"ci-mark ci-neutral\""), 2u);
}

TEST(ReportHtml, ExtremeAndNonFiniteValuesStayOutOfTheSvg) {
  HtmlReportInput input = SampleInput();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  MetricReport& revenue = input.metrics[0];
  revenue.rows[1].diff_ci_low = -1e300;
  revenue.rows[1].diff_ci_high = 1e300;
  revenue.rows[1].lift_ci_low = -inf;
  revenue.rows[1].lift_ci_high = nan;
  revenue.rows[2].mean = nan;
  revenue.rows[2].diff = 1e-300;
  revenue.rows[2].p_value = inf;
  revenue.over_time[1][2].diff = nan;
  revenue.over_time[1][3].diff_ci_high = inf;
  revenue.over_time[2][4].at_epoch = nan;
  revenue.over_time[2][5].diff = 1e308;
  input.metrics[1].rows[1].variance_reduction = nan;
  input.metrics[1].rows[0].stddev = -inf;
  input.confidence_level = 0.95;
  const std::string page = ReportHtml(input);
  ExpectWellFormedPage(page);
}

TEST(ReportHtml, ManyStepsAreThinned) {
  HtmlReportInput input = SampleInput();
  for (MetricReport& metric : input.metrics)
    for (auto& series : metric.over_time)
      if (!series.empty()) series = DailySeries(3000, 1.0, 0.5, 5000);
  const std::string page = ReportHtml(input);
  ExpectWellFormedPage(page);
  EXPECT_LT(page.size(), 400000u);
}

TEST(ReportHtml, OneBranchOnly) {
  HtmlReportInput input = SampleInput();
  input.branches.resize(1);
  input.branches[0].allocation = 10000;
  input.sample_ratio = SampleRatioCheck{0, 0, 1, false};
  for (MetricReport& metric : input.metrics) {
    if (metric.error) continue;
    metric.branches.resize(1);
    metric.rows.resize(1);
    metric.over_time.resize(1);
  }
  const std::string page = ReportHtml(input);
  ExpectWellFormedPage(page);
  EXPECT_TRUE(Contains(Section(page, "metric-1"), "nothing to compare with"));
}

}  // namespace
}  // namespace abtest
