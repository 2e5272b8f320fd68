#include "core/outcome_report.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <string>
#include <vector>

#include "outcome_sample.hpp"

namespace abtest {
namespace {

using sample::ChallengerRow;
using sample::ControlRow;
using sample::Metric;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const std::vector<std::string> kBranches = {"control", "a", "b"};

// A metric where challenger a moves by diff_a and b by diff_b (each +-1: significant when
// |diff| > 1), on a control mean of 10.
MetricReport TwoChallengers(const std::string& name, const std::string& role, bool higher_is_better, double diff_a,
                            double diff_b) {
  return Metric(name, role, higher_is_better, kBranches,
                {ControlRow(1000, 10, 3), ChallengerRow(1000, 10, 3, diff_a, 1), ChallengerRow(1000, 10, 3, diff_b, 1)});
}

SampleRatioCheck Balanced() { return SampleRatioCheck{0.4, 2, 0.82, false}; }

std::string Joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

// ---------------------------------------------------------------------------------------
// SignificantEffect and FormatStatistic

TEST(SignificantEffect, FollowsTheMetricsDirection) {
  const OutcomeRow up = ChallengerRow(1000, 10, 3, 2, 1), down = ChallengerRow(1000, 10, 3, -2, 1),
                   unclear = ChallengerRow(1000, 10, 3, 0.5, 1);
  EXPECT_EQ(SignificantEffect(up, true), Effect::kBetter);
  EXPECT_EQ(SignificantEffect(up, false), Effect::kWorse);
  EXPECT_EQ(SignificantEffect(down, true), Effect::kWorse);
  EXPECT_EQ(SignificantEffect(down, false), Effect::kBetter);
  EXPECT_EQ(SignificantEffect(unclear, true), Effect::kNotSignificant);
  EXPECT_EQ(SignificantEffect(unclear, false), Effect::kNotSignificant);
  OutcomeRow no_diff = up;
  no_diff.diff.reset();
  EXPECT_EQ(SignificantEffect(no_diff, true), Effect::kNotSignificant);
  EXPECT_EQ(SignificantEffect(OutcomeRow{}, true), Effect::kNotSignificant);
}

TEST(FormatStatistic, FourSignificantDigits) {
  EXPECT_EQ(FormatStatistic(12.3456), "12.35");
  EXPECT_EQ(FormatStatistic(1234.56), "1235");
  EXPECT_EQ(FormatStatistic(0.0123456), "0.01235");
  EXPECT_EQ(FormatStatistic(-3.5), "-3.500");
  EXPECT_EQ(FormatStatistic(3.5, true), "+3.500");
  EXPECT_EQ(FormatStatistic(-3.5, true), "-3.500");
  EXPECT_EQ(FormatStatistic(0.0), "0");
  EXPECT_EQ(FormatStatistic(0.0, true), "0");
  EXPECT_EQ(FormatStatistic(2.5e7), "2.500e+07");
  EXPECT_EQ(FormatStatistic(-4e-5, true), "-4.000e-05");
  EXPECT_EQ(FormatStatistic(std::nullopt), "n/a");
  EXPECT_EQ(FormatStatistic(std::numeric_limits<double>::quiet_NaN()), "n/a");
  EXPECT_EQ(FormatStatistic(std::numeric_limits<double>::infinity(), true), "n/a");
}

// ---------------------------------------------------------------------------------------
// DecideVerdict

TEST(DecideVerdict, RecommendsASignificantlyBetterChallenger) {
  const Verdict verdict = DecideVerdict({TwoChallengers("revenue", "goal", true, 2, 0.3)}, Balanced());
  ASSERT_TRUE(verdict.recommended_branch);
  EXPECT_EQ(*verdict.recommended_branch, 1);
  EXPECT_EQ(verdict.headline,
            "Recommend a: significantly better than control on revenue (lift +20.00%, Holm p = 0.0080).");
  EXPECT_TRUE(verdict.warnings.empty());
}

TEST(DecideVerdict, TheLargestLiftWinsAmongSeveral) {
  Verdict verdict = DecideVerdict({TwoChallengers("revenue", "goal", true, 2, 3)}, Balanced());
  ASSERT_TRUE(verdict.recommended_branch);
  EXPECT_EQ(*verdict.recommended_branch, 2);
  // Across goals too: b's 15% on orders beats a's 12% on revenue.
  verdict = DecideVerdict({TwoChallengers("revenue", "goal", true, 1.2, 0), TwoChallengers("orders", "goal", true, 0, 1.5)},
                          Balanced());
  ASSERT_TRUE(verdict.recommended_branch);
  EXPECT_EQ(*verdict.recommended_branch, 2);
  EXPECT_TRUE(Contains(verdict.headline, "on orders")) << verdict.headline;
  // Lower is better: the largest decrease is the largest improvement.
  verdict = DecideVerdict({TwoChallengers("load_ms", "goal", false, -2, -4)}, Balanced());
  ASSERT_TRUE(verdict.recommended_branch);
  EXPECT_EQ(*verdict.recommended_branch, 2);
  EXPECT_TRUE(Contains(verdict.headline, "lift -40.00%")) << verdict.headline;
}

TEST(DecideVerdict, AGuardrailThatGotWorseBlocksItsBranch) {
  // a is better on the goal but worse on the guardrail (lower is better, it went up).
  Verdict verdict = DecideVerdict(
      {TwoChallengers("revenue", "goal", true, 2, 0), TwoChallengers("load_ms", "guardrail", false, 3, 0)}, Balanced());
  EXPECT_FALSE(verdict.recommended_branch);
  EXPECT_TRUE(Contains(verdict.headline, "No recommendation")) << verdict.headline;
  ASSERT_EQ(verdict.warnings.size(), 1u);
  EXPECT_EQ(verdict.warnings[0],
            "Guardrail load_ms is significantly worse in a than in control (lift +30.00%, Holm p = 0.0080).");

  // The guardrail got worse in b only: a is still recommended, the warning names b.
  verdict = DecideVerdict(
      {TwoChallengers("revenue", "goal", true, 2, 0), TwoChallengers("load_ms", "guardrail", false, 0, 3)}, Balanced());
  ASSERT_TRUE(verdict.recommended_branch);
  EXPECT_EQ(*verdict.recommended_branch, 1);
  ASSERT_EQ(verdict.warnings.size(), 1u);
  EXPECT_TRUE(Contains(verdict.warnings[0], "worse in b than in control")) << verdict.warnings[0];

  // A guardrail that improved (lower is better, it went down) is no warning.
  verdict = DecideVerdict(
      {TwoChallengers("revenue", "goal", true, 2, 0), TwoChallengers("load_ms", "guardrail", false, -3, 0)}, Balanced());
  EXPECT_TRUE(verdict.warnings.empty());
  EXPECT_TRUE(verdict.recommended_branch);
  // Higher is better: a significant drop is worse.
  verdict = DecideVerdict(
      {TwoChallengers("revenue", "goal", true, 2, 0), TwoChallengers("retention", "guardrail", true, -3, 0)},
      Balanced());
  EXPECT_FALSE(verdict.recommended_branch);
  EXPECT_EQ(verdict.warnings.size(), 1u);
}

TEST(DecideVerdict, AChallengerWorseOnAGoalIsWarnedAboutAndNotRecommended) {
  const Verdict verdict = DecideVerdict(
      {TwoChallengers("revenue", "goal", true, 2, -2), TwoChallengers("orders", "goal", true, -2, 0)}, Balanced());
  EXPECT_FALSE(verdict.recommended_branch);
  ASSERT_EQ(verdict.warnings.size(), 2u);
  EXPECT_TRUE(Contains(verdict.warnings[0], "b is significantly worse than control on the goal revenue"));
  EXPECT_TRUE(Contains(verdict.warnings[1], "a is significantly worse than control on the goal orders"));
}

TEST(DecideVerdict, SecondaryMetricsDoNotDecide) {
  Verdict verdict = DecideVerdict({TwoChallengers("clicks", "secondary", true, 2, -2)}, Balanced());
  EXPECT_FALSE(verdict.recommended_branch);
  EXPECT_TRUE(verdict.warnings.empty());
  EXPECT_TRUE(Contains(verdict.headline, "No goal metric attached")) << verdict.headline;
  verdict = DecideVerdict({TwoChallengers("revenue", "goal", true, 0.1, 0.2),
                           TwoChallengers("clicks", "secondary", true, 2, -2)},
                          Balanced());
  EXPECT_EQ(verdict.headline, "Keep running: no challenger is significantly better than control on a goal metric yet.");
}

TEST(DecideVerdict, ASampleRatioMismatchComesFirst) {
  const SampleRatioCheck mismatch{31.7, 2, 1.3e-7, true};
  const Verdict verdict = DecideVerdict(
      {TwoChallengers("revenue", "goal", true, 2, 0), TwoChallengers("load_ms", "guardrail", false, 0, 3)}, mismatch);
  EXPECT_FALSE(verdict.recommended_branch);
  EXPECT_EQ(verdict.headline.rfind("Sample ratio mismatch (p < 0.0001)", 0), 0u) << verdict.headline;
  EXPECT_EQ(verdict.warnings.size(), 1u);  // the guardrail is still reported
}

TEST(DecideVerdict, NothingToDecideOn) {
  EXPECT_TRUE(Contains(DecideVerdict({}, std::nullopt).headline, "ab_attach_metric"));
  EXPECT_TRUE(Contains(DecideVerdict({}, std::nullopt).headline, "ab_define_metric"));

  MetricReport empty = Metric("revenue", "goal", true, kBranches, {OutcomeRow{}, OutcomeRow{}, OutcomeRow{}});
  EXPECT_EQ(DecideVerdict({empty}, std::nullopt).headline, "No data yet: no user is in the experiment.");

  MetricReport failed = Metric("revenue", "goal", true, kBranches, {});
  failed.error = "its source was dropped";
  const Verdict verdict = DecideVerdict({failed}, Balanced());
  EXPECT_EQ(verdict.headline, "No metric could be analysed (see the warnings).");
  ASSERT_EQ(verdict.warnings.size(), 1u);
  EXPECT_EQ(verdict.warnings[0], "Metric revenue could not be analysed: its source was dropped");
}

TEST(DecideVerdict, WithoutALiftTheDiffIsQuoted) {
  MetricReport metric = TwoChallengers("revenue", "goal", true, 2, 0);
  metric.rows[1].relative_lift.reset();
  const Verdict verdict = DecideVerdict({metric}, Balanced());
  ASSERT_TRUE(verdict.recommended_branch);
  EXPECT_TRUE(Contains(verdict.headline, "(diff +2.000, Holm p = 0.0080)")) << verdict.headline;
}

// ---------------------------------------------------------------------------------------
// MetricReportLines

TEST(MetricReportLines, HeadingTableAndIntervals) {
  MetricReport metric = TwoChallengers("revenue", "goal", true, 2, 0.3);
  metric.description = "Order amount per user";
  metric.cuped = true;
  for (OutcomeRow& row : metric.rows) row.variance_reduction = 0.25;
  const std::vector<std::string> lines = MetricReportLines(metric, 0.95);
  ASSERT_GE(lines.size(), 9u);
  EXPECT_EQ(lines[0], "Metric revenue: goal, higher is better, CUPED (variance reduced by 25.0%)");
  EXPECT_EQ(lines[1], "  Order amount per user");
  EXPECT_TRUE(Contains(lines[2], "branch")) << lines[2];
  EXPECT_TRUE(Contains(lines[2], "diff vs control [95% CI]")) << lines[2];
  EXPECT_TRUE(Contains(lines[2], "lift [95% CI]")) << lines[2];
  EXPECT_TRUE(Contains(lines[2], "p (Holm)")) << lines[2];
  EXPECT_EQ(lines[3].rfind("  control ", 0), 0u) << lines[3];
  EXPECT_TRUE(Contains(lines[3], "(control)"));
  EXPECT_TRUE(Contains(lines[3], "10.00"));
  EXPECT_TRUE(Contains(lines[4], "+2.000 [+1.000, +3.000]")) << lines[4];
  EXPECT_TRUE(Contains(lines[4], "+20.00% [+10.00%, +30.00%]")) << lines[4];
  EXPECT_TRUE(Contains(lines[4], "0.0080")) << lines[4];
  EXPECT_TRUE(Contains(lines[4], "yes, better")) << lines[4];
  EXPECT_TRUE(Contains(lines[5], "0.6200")) << lines[5];
  EXPECT_TRUE(Contains(lines[5], " no")) << lines[5];
  // The columns line up: every row of the table is as long as the header or shorter.
  EXPECT_EQ(lines[4].find("+2.000"), lines[2].find("diff vs control"));
  EXPECT_TRUE(Contains(lines[6], "Lift vs control, 95% intervals on one scale")) << lines[6];
  EXPECT_TRUE(Contains(lines[7], "[")) << lines[7];
  EXPECT_TRUE(Contains(lines[7], "*")) << lines[7];
  EXPECT_EQ(lines[7].rfind("    a ", 0), 0u) << lines[7];
  EXPECT_EQ(lines.size(), 9u);
}

TEST(MetricReportLines, GuardrailWarningAndDirection) {
  MetricReport metric = TwoChallengers("load_ms", "guardrail", false, 0.2, 3);
  metric.ratio = true;
  const std::vector<std::string> lines = MetricReportLines(metric, 0.99);
  EXPECT_EQ(lines[0], "Metric load_ms: guardrail, lower is better, ratio");
  EXPECT_TRUE(Contains(lines[1], "[99% CI]"));
  EXPECT_TRUE(Contains(Joined(lines), "yes, worse"));
  EXPECT_EQ(lines.back(),
            "  ! Guardrail load_ms is significantly worse in b than in control (lift +30.00%, Holm p = 0.0080).");
}

TEST(MetricReportLines, NullsAreNotApplicable) {
  MetricReport metric = TwoChallengers("revenue", "goal", true, 2, 0.3);
  metric.rows[0].mean.reset();
  metric.rows[1] = OutcomeRow{};
  metric.rows[1].users = 1;
  metric.rows[2].relative_lift.reset();
  metric.rows[2].lift_ci_low.reset();
  metric.rows[2].lift_ci_high.reset();
  const std::vector<std::string> lines = MetricReportLines(metric, 0.95);
  const std::string text = Joined(lines);
  EXPECT_TRUE(Contains(lines[2], "n/a")) << lines[2];  // the control's mean
  EXPECT_TRUE(Contains(lines[3], "n/a")) << lines[3];
  // b has a diff but no lift: the intervals are drawn on the diff's scale.
  EXPECT_TRUE(Contains(text, "Difference vs control")) << text;
  EXPECT_TRUE(Contains(text, "(no interval)")) << text;
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  EXPECT_FALSE(Contains(lower, "nan"));
  EXPECT_FALSE(Contains(lower, "inf"));
}

TEST(MetricReportLines, AnErrorInsteadOfTheTable) {
  MetricReport metric = Metric("refunds", "guardrail", false, kBranches, {});
  metric.error = "the source public.refunds was dropped";
  const std::vector<std::string> lines = MetricReportLines(metric, 0.95);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "  Not analysed: the source public.refunds was dropped");
}

TEST(MetricReportLines, NoUsersYet) {
  MetricReport metric = Metric("revenue", "goal", true, kBranches, {OutcomeRow{}, OutcomeRow{}, OutcomeRow{}});
  const std::vector<std::string> lines = MetricReportLines(metric, 0.95);
  EXPECT_EQ(lines.back(), "  No users yet.");
  EXPECT_FALSE(Contains(Joined(lines), "intervals on one scale"));
}

}  // namespace
}  // namespace abtest
