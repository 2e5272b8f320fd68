#include "core/report.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "core/comparison.hpp"
#include "core/limits.hpp"
#include "core/metrics.hpp"
#include "core/statistics.hpp"

namespace abtest {
namespace {

// n queries, the first s of them successes, at 10 ms.
QueryCounters Queries(std::uint64_t n, std::uint64_t s) {
  QueryCounters q;
  for (std::uint64_t i = 0; i < n; ++i) q.Record(10 + static_cast<double>(i % 3), i < s, 0);
  return q;
}

ReportBranch Branch(const std::string& name, int allocation, std::uint64_t n, std::uint64_t s) {
  ReportBranch branch;
  branch.name = name;
  branch.allocation = allocation;
  branch.queries = Queries(n, s);
  branch.users = n;  // one query per user: the per-user warning has its own test
  branch.p95_latency_ms = 12;
  return branch;
}

// An active sticky experiment of two branches, well within its max duration.
ReportInput Input(std::vector<ReportBranch> branches) {
  ReportInput input;
  input.experiment = "checkout";
  input.state = "active";
  input.strategy = "fixed";
  input.started_at = "2024-05-01 10:00:00+00";
  input.running_hours = 30;
  input.max_duration_hours = 72;
  input.branches = std::move(branches);
  input.users_source = "assignment log";
  return input;
}

bool StartsWith(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }
bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The first line that starts with `prefix`; "" when there is none.
std::string LineStartingWith(const std::vector<std::string>& lines, const std::string& prefix) {
  for (const std::string& line : lines)
    if (StartsWith(line, prefix)) return line;
  return "";
}

std::size_t CountContaining(const std::vector<std::string>& lines, const std::string& part) {
  return static_cast<std::size_t>(
      std::count_if(lines.begin(), lines.end(), [&](const std::string& line) { return Contains(line, part); }));
}

// The lines after "Warnings:" (or the "Warnings: none." line itself).
std::vector<std::string> Warnings(const std::vector<std::string>& lines) {
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (StartsWith(lines[i], "Warnings")) return std::vector<std::string>(lines.begin() + i, lines.end());
  ADD_FAILURE() << "no warnings section";
  return {};
}

// printf spells non-finite values nan and inf: neither may reach the user.
void ExpectPrintable(const std::vector<std::string>& lines) {
  for (const std::string& line : lines) {
    std::string lower = line;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    EXPECT_FALSE(Contains(lower, "nan")) << line;
    EXPECT_FALSE(Contains(lower, "inf")) << line;
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  }
}

// ---------------------------------------------------------------------------------------
// IntervalBar

TEST(IntervalBar, HasTheRequestedWidth) {
  for (int width : {3, 4, 10, 41, 80})
    EXPECT_EQ(IntervalBar(-0.05, 0.01, 0.07, -0.1, 0.1, width).size(), static_cast<std::size_t>(width));
  // Fewer than three characters cannot hold both brackets and a point.
  for (int width : {-5, 0, 1, 2}) EXPECT_EQ(IntervalBar(-0.05, 0.01, 0.07, -0.1, 0.1, width).size(), 3u);
}

TEST(IntervalBar, MarksTheIntervalZeroAndTheEstimate) {
  // Scale [-0.2, 0.2] on 41 characters: 0.01 per character, zero at 20.
  const std::string bar = IntervalBar(-0.1, 0.05, 0.1, -0.2, 0.2, 41);
  EXPECT_EQ(bar, std::string(10, '-') + "[" + std::string(9, '=') + "|" + std::string(4, '=') + "*" +
                     std::string(4, '=') + "]" + std::string(10, '-'));
  EXPECT_EQ(std::count(bar.begin(), bar.end(), '['), 1);
  EXPECT_EQ(std::count(bar.begin(), bar.end(), ']'), 1);
  EXPECT_EQ(std::count(bar.begin(), bar.end(), '|'), 1);
  EXPECT_EQ(std::count(bar.begin(), bar.end(), '*'), 1);

  // Zero outside the interval: still marked, on the dashes.
  EXPECT_EQ(IntervalBar(0.05, 0.1, 0.15, -0.2, 0.2, 41), std::string(20, '-') + "|" + std::string(4, '-') + "[" +
                                                             std::string(4, '=') + "*" + std::string(4, '=') + "]" +
                                                             std::string(5, '-'));
  // Zero at the scale's end, on the bracket.
  EXPECT_EQ(IntervalBar(0, 0.1, 0.2, 0, 0.2, 21), "|" + std::string(9, '=') + "*" + std::string(9, '=') + "]");
  // The estimate wins over zero.
  EXPECT_EQ(IntervalBar(-0.1, 0, 0.1, -0.1, 0.1, 5), "[=*=]");
}

TEST(IntervalBar, NoZeroMarkWhenZeroIsOffTheScale) {
  const std::string bar = IntervalBar(0.12, 0.15, 0.18, 0.1, 0.2, 11);
  EXPECT_EQ(bar, "--[==*==]--");  // [ at 2, * at 5, ] at 8
  EXPECT_EQ(bar.find('|'), std::string::npos);
}

TEST(IntervalBar, ClampsOutsideTheScale) {
  // Everything beyond the scale lands on its ends.
  EXPECT_EQ(IntervalBar(-5, 0, 5, -0.1, 0.1, 9), "[===*===]");
  EXPECT_EQ(IntervalBar(-5, -3, -1, -0.1, 0.1, 9), "*---|----");
  EXPECT_EQ(IntervalBar(1, 3, 5, -0.1, 0.1, 9), "----|---*");
  const std::string bar = IntervalBar(-1, 0.5, 0.05, -0.1, 0.1, 21);
  EXPECT_EQ(bar.size(), 21u);
  EXPECT_EQ(bar.front(), '[');
  EXPECT_EQ(bar.back(), '*');
}

TEST(IntervalBar, DegenerateScale) {
  // low == high: widened so that there is a middle; all marks meet there.
  EXPECT_EQ(IntervalBar(0, 0, 0, 0, 0, 41), std::string(20, '-') + "*" + std::string(20, '-'));
  EXPECT_EQ(IntervalBar(0.05, 0.05, 0.05, 0.05, 0.05, 5), "--*--");
  // An inverted scale is widened too, and stays within the bar.
  const std::string bar = IntervalBar(0.1, 0.2, 0.3, 1, -1, 15);
  EXPECT_EQ(bar.size(), 15u);
}

// ---------------------------------------------------------------------------------------
// ReportLines

TEST(ReportLines, Header) {
  ReportInput input = Input({Branch("control", 5000, 1000, 500), Branch("treatment", 5000, 1000, 505)});
  std::vector<std::string> lines = ReportLines(input);
  ASSERT_GE(lines.size(), 8u);
  EXPECT_EQ(lines[0], "Experiment \"checkout\": active, strategy fixed, sticky");
  EXPECT_EQ(lines[1], "Started 2024-05-01 10:00:00+00, running 30.0 hours (max duration 3.0 days)");
  EXPECT_EQ(lines[2],
            "Analysis: 95% confidence, at least 100 queries per branch, always-valid p-values with tau^2 = 0.0001");
  EXPECT_TRUE(StartsWith(lines[3], "Unit: the query table below counts each recorded query as one observation"));
  EXPECT_EQ(lines[4], "");
  EXPECT_TRUE(StartsWith(lines[5], "branch   ")) << lines[5];
  EXPECT_TRUE(Contains(lines[5], "diff vs control [95% CI]")) << lines[5];
  EXPECT_TRUE(Contains(lines[5], "p (Holm)")) << lines[5];

  input.state = "completed";
  input.sticky = false;
  input.winner = "treatment";
  input.running_hours = std::nullopt;
  input.max_duration_hours = std::nullopt;
  input.settings.confidence_level = 0.99;
  input.settings.min_sample_size = 250;
  input.settings.mixing_variance = 0.0004;
  lines = ReportLines(input);
  EXPECT_EQ(lines[0], "Experiment \"checkout\": completed, strategy fixed, not sticky");
  EXPECT_EQ(lines[1], "Started 2024-05-01 10:00:00+00");
  EXPECT_EQ(lines[2], "Winner: treatment");
  EXPECT_EQ(lines[3],
            "Analysis: 99% confidence, at least 250 queries per branch, always-valid p-values with tau^2 = 0.0004");
  EXPECT_TRUE(Contains(lines[6], "diff vs control [99% CI]")) << lines[6];

  input.started_at = std::nullopt;
  input.winner = std::nullopt;
  lines = ReportLines(input);
  EXPECT_EQ(lines[1], "Not started");
  ExpectPrintable(lines);
}

TEST(ReportLines, OneRowPerBranchInOrder) {
  ReportInput input = Input({Branch("control", 3400, 1000, 500), Branch("variant_with_long_name", 3300, 900, 470),
                             Branch("b", 3300, 800, 390)});
  const std::vector<std::string> lines = ReportLines(input);
  std::size_t header = 0;
  while (header < lines.size() && !StartsWith(lines[header], "branch ")) ++header;
  ASSERT_LT(header + 3, lines.size());
  // Names are padded to the longest, so that the columns line up.
  EXPECT_TRUE(StartsWith(lines[header], "branch                 ")) << lines[header];
  EXPECT_TRUE(StartsWith(lines[header + 1], "control                 ")) << lines[header + 1];
  EXPECT_TRUE(StartsWith(lines[header + 2], "variant_with_long_name ")) << lines[header + 2];
  EXPECT_TRUE(StartsWith(lines[header + 3], "b                      ")) << lines[header + 3];
  EXPECT_EQ(lines[header + 4], "");
  // Only the control is marked; the challengers carry their difference instead.
  EXPECT_EQ(CountContaining(lines, "(control)"), 1u);
  EXPECT_TRUE(Contains(lines[header + 1], "(control)"));
  EXPECT_TRUE(Contains(lines[header + 1], "34.00%")) << lines[header + 1];  // allocation
  EXPECT_TRUE(Contains(lines[header + 1], "50.00%")) << lines[header + 1];  // success rate
  EXPECT_TRUE(Contains(lines[header + 2], "+2.22 pp [")) << lines[header + 2];
  EXPECT_TRUE(Contains(lines[header + 3], "-1.25 pp [")) << lines[header + 3];
  EXPECT_TRUE(Contains(lines[header + 1], " 1000 ")) << lines[header + 1];
  EXPECT_TRUE(Contains(lines[header + 3], " 800 ")) << lines[header + 3];
  // Every row as wide as the header, up to the last column's width.
  for (std::size_t i = header + 1; i <= header + 3; ++i) EXPECT_EQ(lines[i].size(), lines[header].size()) << i;
  // The interval section: one bar per challenger.
  EXPECT_EQ(CountContaining(lines, "intervals on one scale"), 1u);
  const std::string bar_a = LineStartingWith(lines, "  variant_with_long_name  ");
  const std::string bar_b = LineStartingWith(lines, "  b                       ");
  EXPECT_TRUE(Contains(bar_a, "|") && Contains(bar_a, "*") && Contains(bar_a, "[")) << bar_a;
  EXPECT_TRUE(Contains(bar_b, "|") && Contains(bar_b, "*") && Contains(bar_b, "]")) << bar_b;  // both straddle zero
  ExpectPrintable(lines);
}

TEST(ReportLines, VerdictWithoutData) {
  ReportInput input = Input({Branch("control", 5000, 0, 0), Branch("treatment", 5000, 0, 0)});
  const std::vector<std::string> lines = ReportLines(input);
  EXPECT_EQ(LineStartingWith(lines, "Verdict"), "Verdict: no queries recorded yet.");
  EXPECT_EQ(CountContaining(lines, "intervals on one scale"), 0u);  // no interval to draw
  const std::string row = LineStartingWith(lines, "treatment");
  EXPECT_TRUE(Contains(row, " - ")) << row;  // no rate, no difference, no p-value
  ExpectPrintable(lines);
}

TEST(ReportLines, VerdictWithoutSignificantDifference) {
  ReportInput input = Input({Branch("control", 5000, 1000, 500), Branch("treatment", 5000, 1000, 510)});
  std::vector<std::string> lines = ReportLines(input);
  EXPECT_EQ(LineStartingWith(lines, "Verdict"), "Verdict: no significant difference from control yet.");
  EXPECT_EQ(CountContaining(lines, "continuous monitoring"), 0u);

  // A challenger without data among challengers with data: still just no difference.
  input.branches.push_back(Branch("empty", 0, 0, 0));
  input.branches[1].allocation = 5000;
  input.branches[0].allocation = 5000;
  lines = ReportLines(input);
  EXPECT_EQ(LineStartingWith(lines, "Verdict"), "Verdict: no significant difference from control yet.");
  EXPECT_TRUE(Contains(LineStartingWith(lines, "  empty"), "(no data)"));
  ExpectPrintable(lines);
}

TEST(ReportLines, VerdictWithASignificantWinner) {
  // 20% against 40% on 2000 each: overwhelming, under both kinds of p-value.
  ReportInput input = Input({Branch("control", 5000, 2000, 400), Branch("treatment", 5000, 2000, 800)});
  std::vector<std::string> lines = ReportLines(input);
  const auto verdict =
      std::find_if(lines.begin(), lines.end(), [](const std::string& line) { return StartsWith(line, "Verdict"); });
  ASSERT_NE(verdict, lines.end());
  EXPECT_EQ(*verdict, "Verdict: treatment beats control by +20.00 pp (Holm-adjusted p < 0.0001, below 0.05).");
  ASSERT_NE(verdict + 1, lines.end());
  EXPECT_EQ(*(verdict + 1), "         It holds under continuous monitoring too (always-valid p < 0.0001).");
  ExpectPrintable(lines);

  // Worse, and the largest significant difference is the one reported.
  input =
      Input({Branch("control", 3400, 2000, 800), Branch("small", 3300, 2000, 700), Branch("large", 3300, 2000, 400)});
  lines = ReportLines(input);
  EXPECT_EQ(LineStartingWith(lines, "Verdict"),
            "Verdict: large is worse than control by -20.00 pp (Holm-adjusted p < 0.0001, below 0.05).");
  ExpectPrintable(lines);
}

TEST(ReportLines, VerdictNotYetConclusiveUnderMonitoring) {
  // 50.0% against 54.8% on 1000 each: p = 0.032 at a fixed horizon, while the
  // always-valid p-value is far from 0.05.
  ReportInput input = Input({Branch("control", 5000, 1000, 500), Branch("treatment", 5000, 1000, 548)});
  const std::vector<std::string> lines = ReportLines(input);
  const auto verdict =
      std::find_if(lines.begin(), lines.end(), [](const std::string& line) { return StartsWith(line, "Verdict"); });
  ASSERT_NE(verdict, lines.end());
  EXPECT_TRUE(StartsWith(*verdict, "Verdict: treatment beats control by +4.80 pp (Holm-adjusted p = 0.03")) << *verdict;
  ASSERT_NE(verdict + 1, lines.end());
  EXPECT_TRUE(StartsWith(*(verdict + 1),
                         "         Not yet conclusive if the results are watched continuously "
                         "(always-valid p = 0."))
      << *(verdict + 1);
  EXPECT_TRUE(Contains(*(verdict + 1), "keep it running to be sure."));
  EXPECT_EQ(CountContaining(lines, "holds under continuous monitoring"), 0u);

  // An earlier look that was already decisive makes it hold (the running minimum).
  input.branches[1].sequential_p = 0.001;
  EXPECT_EQ(CountContaining(ReportLines(input), "It holds under continuous monitoring too (always-valid p = 0.0010)."),
            1u);
}

TEST(ReportLines, NoWarningsWhenClean) {
  ReportInput input = Input({Branch("control", 5000, 1000, 500), Branch("treatment", 5000, 1000, 505)});
  input.sample_ratio = CheckSampleRatio({500, 500}, {5000, 5000});
  ASSERT_TRUE(input.sample_ratio);
  const std::vector<std::string> lines = ReportLines(input);
  EXPECT_EQ(lines.back(), "Warnings: none.");
  EXPECT_EQ(lines[lines.size() - 2], "");
  EXPECT_EQ(CountContaining(lines, "Warnings"), 1u);
  ExpectPrintable(lines);
}

TEST(ReportLines, WarnsOfSampleRatioMismatch) {
  ReportInput input = Input({Branch("control", 5000, 1000, 500), Branch("treatment", 5000, 1000, 505)});
  input.sample_ratio = CheckSampleRatio({700, 300}, {5000, 5000});
  ASSERT_TRUE(input.sample_ratio && input.sample_ratio->mismatch);
  std::vector<std::string> warnings = Warnings(ReportLines(input));
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0], "Warnings:");
  EXPECT_EQ(warnings[1],
            "  ! Sample ratio mismatch: the assignment log per branch does not match the allocation "
            "(chi-square = 160.00, p < 0.0001). Find the cause before trusting any result.");

  // A check that passed is no warning.
  input.sample_ratio = CheckSampleRatio({510, 490}, {5000, 5000});
  EXPECT_EQ(Warnings(ReportLines(input)), std::vector<std::string>{"Warnings: none."});

  // Users in a branch that gets no traffic: chi-square is infinite, which must not be
  // printed as "inf".
  input.users_source = "exposures";
  input.branches[1].allocation = 0;
  input.branches[0].allocation = 10000;
  input.sample_ratio = CheckSampleRatio({900, 100}, {10000, 0});
  ASSERT_TRUE(input.sample_ratio && input.sample_ratio->mismatch);
  const std::vector<std::string> lines = ReportLines(input);
  warnings = Warnings(lines);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[1],
            "  ! Sample ratio mismatch: the exposures per branch does not match the allocation "
            "(users in a branch allocated 0%, p < 0.0001). Find the cause before trusting any result.");
  ExpectPrintable(lines);
}

TEST(ReportLines, WarnsWhenUsersRepeat) {
  ReportInput input = Input({Branch("control", 5000, 1000, 500), Branch("treatment", 5000, 1000, 505)});
  EXPECT_EQ(Warnings(ReportLines(input)), std::vector<std::string>{"Warnings: none."});
  input.branches[0].users = 100;
  input.branches[1].users = 100;
  input.events = 2000;
  const std::vector<std::string> warnings = Warnings(ReportLines(input));
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[1],
            "  ! Users repeat: 20.0 recorded queries and events per user. The query-level p-values above treat each "
            "as independent and are too small for such data; analyse per user with ab_analyze.");
}

TEST(ReportLines, AddsTheAttachedMetricsAndTheirVerdict) {
  ReportInput input = Input({Branch("control", 5000, 1000, 500), Branch("treatment", 5000, 1000, 505)});
  MetricReport revenue;
  revenue.name = "revenue";
  revenue.role = "goal";
  revenue.branches = {"control", "treatment"};
  revenue.rows.resize(2);
  revenue.rows[0].users = 1000;
  revenue.rows[0].mean = 10;
  revenue.rows[1].users = 1000;
  revenue.rows[1].mean = 12;
  revenue.rows[1].diff = 2;
  revenue.rows[1].diff_ci_low = 1;
  revenue.rows[1].diff_ci_high = 3;
  revenue.rows[1].p_value = 0.001;
  revenue.rows[1].adjusted_p_value = 0.001;
  revenue.rows[1].is_significant = true;
  input.metrics = {revenue};
  const std::vector<std::string> lines = ReportLines(input);
  bool section = false, verdict = false;
  for (const std::string& line : lines) {
    section |= Contains(line, "revenue");
    verdict |= StartsWith(line, "Verdict on the metrics: ") && Contains(line, "treatment");
  }
  EXPECT_TRUE(section);
  EXPECT_TRUE(verdict);
  ExpectPrintable(lines);
}

TEST(ReportLines, WarnsOfBranchesBelowMinSampleSize) {
  ReportInput input =
      Input({Branch("control", 3400, 1000, 500), Branch("young", 3300, 99, 50), Branch("empty", 3300, 0, 0)});
  const std::vector<std::string> warnings = Warnings(ReportLines(input));
  ASSERT_EQ(warnings.size(), 3u);
  EXPECT_EQ(warnings[1], "  ! Branch young has 99 queries, fewer than min_sample_size (100).");
  EXPECT_EQ(warnings[2], "  ! Branch empty has 0 queries, fewer than min_sample_size (100).");
  // Exactly min_sample_size is enough.
  input.branches[1] = Branch("young", 3300, 100, 50);
  input.branches[2] = Branch("empty", 3300, 100, 50);
  EXPECT_EQ(Warnings(ReportLines(input)), std::vector<std::string>{"Warnings: none."});
}

TEST(ReportLines, WarnsWhenRunningPastMaxDuration) {
  ReportInput input = Input({Branch("control", 5000, 1000, 500), Branch("treatment", 5000, 1000, 505)});
  input.running_hours = 100;
  std::vector<std::string> lines = ReportLines(input);
  EXPECT_EQ(lines[1], "Started 2024-05-01 10:00:00+00, running 4.2 days (max duration 3.0 days)");
  EXPECT_EQ(Warnings(lines), (std::vector<std::string>{"Warnings:",
                                                       "  ! Running for 4.2 days, past its max duration "
                                                       "of 3.0 days."}));
  // Only an active experiment is running.
  input.state = "completed";
  EXPECT_EQ(Warnings(ReportLines(input)), std::vector<std::string>{"Warnings: none."});
  input.state = "active";
  input.max_duration_hours = std::nullopt;
  EXPECT_EQ(Warnings(ReportLines(input)), std::vector<std::string>{"Warnings: none."});
  input.max_duration_hours = 100;  // at, not past
  EXPECT_EQ(Warnings(ReportLines(input)), std::vector<std::string>{"Warnings: none."});
}

TEST(ReportLines, AllWarningsTogether) {
  ReportInput input = Input({Branch("control", 5000, 1000, 500), Branch("treatment", 5000, 10, 5)});
  input.running_hours = 80;
  input.sample_ratio = CheckSampleRatio({900, 100}, {5000, 5000});
  const std::vector<std::string> warnings = Warnings(ReportLines(input));
  ASSERT_EQ(warnings.size(), 4u);
  EXPECT_TRUE(StartsWith(warnings[1], "  ! Sample ratio mismatch"));
  EXPECT_TRUE(StartsWith(warnings[2], "  ! Branch treatment has 10 queries"));
  EXPECT_TRUE(StartsWith(warnings[3], "  ! Running for 3.3 days"));
}

TEST(ReportLines, SingleBranch) {
  ReportInput input = Input({Branch("only", 10000, 1000, 500)});
  input.sample_ratio = CheckSampleRatio({500}, {10000});
  const std::vector<std::string> lines = ReportLines(input);
  EXPECT_EQ(CountContaining(lines, "(control)"), 1u);
  EXPECT_EQ(LineStartingWith(lines, "Verdict"), "Verdict: a single branch has nothing to be compared with.");
  EXPECT_EQ(CountContaining(lines, "intervals on one scale"), 0u);
  EXPECT_EQ(lines.back(), "Warnings: none.");
  ExpectPrintable(lines);

  // Without data, and without any branch at all: defined lines all the same.
  input.branches = {Branch("only", 10000, 0, 0)};
  input.sample_ratio = std::nullopt;
  ExpectPrintable(ReportLines(input));
  input.branches.clear();
  const std::vector<std::string> none = ReportLines(input);
  EXPECT_EQ(LineStartingWith(none, "Verdict"), "Verdict: a single branch has nothing to be compared with.");
  ExpectPrintable(none);
}

TEST(ReportLines, NoLineIsNaNOrInfinite) {
  // Degenerate counts of every kind: empty branches, rates of 0 and 1, a single query.
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> counts = {{0, 0},   {1, 0},     {1, 1},      {2, 1},
                                                                       {100, 0}, {100, 100}, {5000, 2500}};
  for (const auto& a : counts)
    for (const auto& b : counts) {
      SCOPED_TRACE(testing::Message() << a.first << "/" << a.second << " vs " << b.first << "/" << b.second);
      ReportInput input =
          Input({Branch("control", 5000, a.first, a.second), Branch("treatment", 5000, b.first, b.second)});
      input.branches[1].sequential_p = 0;
      input.sample_ratio =
          CheckSampleRatio({static_cast<std::int64_t>(a.first), static_cast<std::int64_t>(b.first)}, {5000, 5000});
      ExpectPrintable(ReportLines(input));
    }
}

// Latencies at the bounds ab_record_query accepts: 0, denormals and 1,000,000 ms; p95
// at the top; users in a branch allocated 0% (an infinite chi-square).
TEST(ReportLines, LatenciesAtTheBoundsPrintFinite) {
  ReportInput input = Input({Branch("control", 10000, 0, 0), Branch("treatment", 0, 0, 0)});
  for (int i = 0; i < 300; ++i) {
    input.branches[0].queries.Record(i % 2 == 0 ? kMaxLatencyMs : 5e-324, i % 3 == 0, i);
    input.branches[1].queries.Record(kMaxLatencyMs, i % 4 == 0, i);
  }
  input.branches[0].p95_latency_ms = kMaxLatencyMs;
  input.branches[1].p95_latency_ms = kMaxLatencyMs;
  input.sample_ratio = CheckSampleRatio({100, 3}, {10000, 0});
  const std::vector<std::string> lines = ReportLines(input);
  ExpectPrintable(lines);
  EXPECT_TRUE(Contains(LineStartingWith(lines, "treatment"), "1000000.00  1000000.00"));
  EXPECT_EQ(CountContaining(lines, "users in a branch allocated 0%"), 1u);
}

}  // namespace
}  // namespace abtest
