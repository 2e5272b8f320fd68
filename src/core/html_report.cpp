#include "core/html_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

namespace abtest {
namespace {

// The palette. test/render/check_report.py reads the marks' colours from the markup and
// counts their pixels in a rendering: nothing else on the page may use them (legend
// swatches aside, which it allows for).
constexpr const char* kBetterColour = "#2f8f5b";
constexpr const char* kWorseColour = "#c8423b";
constexpr const char* kNeutralColour = "#8a94a6";
constexpr const char* kObservedColour = "#3d6fb0";
constexpr const char* kExpectedColour = "#c5ccd6";
constexpr const char* kSeriesColours[] = {"#5b4ea8", "#c26a1b", "#2a8c8c", "#b0407a", "#6b7a2a"};
constexpr double kBandOpacity = 0.18;
constexpr const char* kGridColour = "#e6e9ee";
constexpr const char* kAxisColour = "#3a3f47";

// Wider than any plausible statistic; keeps the arithmetic of the scales finite.
constexpr double kLargestPlotted = 1e15;
// At most this many points per line of the over-time chart: the page stays small.
constexpr std::size_t kMaxPointsPerSeries = 400;

bool Finite(const std::optional<double>& value) { return value && std::isfinite(*value); }

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

std::string Escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// An SVG coordinate: one decimal, and never NaN or infinity whatever reaches it.
std::string Coord(double value) {
  if (!std::isfinite(value)) value = 0;
  return Format("%.1f", std::clamp(value, -1e6, 1e6));
}

std::string Percent(double fraction, const char* format = "%.1f%%") { return Format(format, 100 * fraction); }
std::string SignedPercent(const std::optional<double>& fraction) {
  return Finite(fraction) ? Format("%+.2f%%", 100 * *fraction) : std::string("n/a");
}
std::string PValue(const std::optional<double>& p) {
  if (!Finite(p)) return "n/a";
  return *p < 0.0001 ? std::string("&lt;0.0001") : Format("%.4f", *p);
}
std::string Level(double confidence_level) { return Format("%.4g%%", 100 * confidence_level); }

// A value interval on one axis, with ticks at 1, 2, 2.5 or 5 times a power of ten.
struct Axis {
  double low = -1;
  double high = 1;
  double step = 0.5;
  std::vector<double> ticks;
};

// The axis over `values` (non-finite ones ignored) and zero, padded a little so that no
// mark touches the frame. Never of zero width.
Axis MakeAxis(const std::vector<double>& values, int target_ticks) {
  double low = 0, high = 0;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    v = std::clamp(v, -kLargestPlotted, kLargestPlotted);
    low = std::min(low, v);
    high = std::max(high, v);
  }
  if (!(high > low)) {
    // All values zero: a unit interval around it.
    low = -1;
    high = 1;
  }
  const double padding = (high - low) * 0.06;
  low -= padding;
  high += padding;
  const double raw = (high - low) / std::max(target_ticks, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double factor : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (raw <= factor * magnitude) {
      step = factor * magnitude;
      break;
    }
  Axis axis;
  axis.low = low;
  axis.high = high;
  axis.step = step;
  if (!(step > 0) || !std::isfinite(step)) return axis;
  for (double k = std::ceil(low / step); k * step <= high && axis.ticks.size() < 20; k += 1)
    axis.ticks.push_back(std::fabs(k * step) < step * 1e-9 ? 0.0 : k * step);
  return axis;
}

// Pixel position of `value` on [axis.low, axis.high] mapped to [from, to].
double Position(const Axis& axis, double value, double from, double to) {
  if (!std::isfinite(value)) value = 0;
  value = std::clamp(value, axis.low, axis.high);
  return from + (value - axis.low) / (axis.high - axis.low) * (to - from);
}

// A tick label with as many decimals as the step needs; fractions in percent.
std::string TickLabel(double value, double step, bool percent) {
  if (percent) {
    value *= 100;
    step *= 100;
  }
  if (std::fabs(value) < step * 1e-6) return percent ? "0%" : "0";
  std::string text;
  if (std::fabs(value) >= 1e6 || step < 1e-6) {
    text = Format("%+.3g", value);
  } else {
    // The fewest decimals that write the step exactly (0.25 needs two).
    int decimals = 0;
    for (double scaled = step; decimals < 6 && std::fabs(scaled - std::round(scaled)) > 1e-6 * scaled; scaled *= 10)
      ++decimals;
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%+.*f", decimals, value);
    text = buffer;
  }
  return percent ? text + "%" : text;
}

std::string SvgOpen(const char* css_class, double width, double height, const std::string& label) {
  return "<svg class=\"chart " + std::string(css_class) + "\" viewBox=\"0 0 " +
         Coord(width) + " " + Coord(height) + "\" width=\"" + Coord(width) + "\" height=\"" + Coord(height) +
         "\" role=\"img\" aria-label=\"" + Escape(label) + "\">\n<rect x=\"0\" y=\"0\" width=\"" + Coord(width) +
         "\" height=\"" + Coord(height) + "\" fill=\"#ffffff\"/>\n";
}

std::string Text(double x, double y, const std::string& escaped, const char* anchor = "start",
                 const char* css_class = nullptr) {
  return "<text x=\"" + Coord(x) + "\" y=\"" + Coord(y) + "\" text-anchor=\"" + anchor + "\"" +
         (css_class ? " class=\"" + std::string(css_class) + "\"" : std::string()) + ">" + escaped + "</text>\n";
}

std::string Line(double x1, double y1, double x2, double y2, const char* colour, double width,
                 const char* extra = "") {
  return "<line x1=\"" + Coord(x1) + "\" y1=\"" + Coord(y1) + "\" x2=\"" + Coord(x2) + "\" y2=\"" + Coord(y2) +
         "\" stroke=\"" + colour + "\" stroke-width=\"" + Format("%.2f", width) + "\"" + extra + "/>\n";
}

const std::string& BranchName(const MetricReport& metric, std::size_t index) {
  static const std::string unknown = "?";
  return index < metric.branches.size() ? metric.branches[index] : unknown;
}

const char* SeriesColour(std::size_t challenger) {
  constexpr std::size_t count = sizeof kSeriesColours / sizeof kSeriesColours[0];
  return kSeriesColours[(challenger - 1) % count];
}

// ---------------------------------------------------------------------------------------
// The confidence-interval plot of one metric.

struct PlottedInterval {
  bool has_interval = false;
  bool has_estimate = false;
  double low = 0, estimate = 0, high = 0;
};

std::string IntervalPlot(const MetricReport& metric, double confidence_level) {
  const std::size_t rows = metric.rows.size() > 1 ? metric.rows.size() - 1 : 0;
  if (rows == 0) return "<p class=\"note\">A single branch: nothing to compare with.</p>\n";

  // The lift when every challenger with an interval has one of its lift, else the diff.
  bool lift_scale = true, any_estimate = false;
  for (std::size_t i = 1; i < metric.rows.size(); ++i) {
    const OutcomeRow& row = metric.rows[i];
    if (Finite(row.diff)) any_estimate = true;
    if (Finite(row.diff) && !Finite(row.relative_lift)) lift_scale = false;
    if (Finite(row.diff_ci_low) && Finite(row.diff_ci_high) && !(Finite(row.lift_ci_low) && Finite(row.lift_ci_high)))
      lift_scale = false;
  }
  if (!any_estimate)
    return "<p class=\"note\">No interval yet: every challenger needs at least two users, with some variation in "
           "the values.</p>\n";

  std::vector<PlottedInterval> plotted(metric.rows.size());
  std::vector<double> extent;
  for (std::size_t i = 1; i < metric.rows.size(); ++i) {
    const OutcomeRow& row = metric.rows[i];
    PlottedInterval& p = plotted[i];
    const auto& estimate = lift_scale ? row.relative_lift : row.diff;
    const auto& low = lift_scale ? row.lift_ci_low : row.diff_ci_low;
    const auto& high = lift_scale ? row.lift_ci_high : row.diff_ci_high;
    if (Finite(estimate)) {
      p.has_estimate = true;
      p.estimate = *estimate;
      extent.push_back(p.estimate);
    }
    if (p.has_estimate && Finite(low) && Finite(high)) {
      p.has_interval = true;
      p.low = std::min(*low, *high);
      p.high = std::max(*low, *high);
      extent.push_back(p.low);
      extent.push_back(p.high);
    }
  }
  const Axis axis = MakeAxis(extent, 6);

  constexpr double kWidth = 960, kLeft = 150, kRight = 250, kTop = 14, kRowHeight = 40, kBottom = 52;
  const double height = kTop + kRowHeight * static_cast<double>(rows) + kBottom;
  const double plot_left = kLeft, plot_right = kWidth - kRight, plot_bottom = kTop + kRowHeight * rows;
  const std::string title = (lift_scale ? "Relative lift" : "Difference") + std::string(" vs ") +
                            BranchName(metric, 0) + ", " + Level(confidence_level) + " confidence intervals";
  std::string svg = SvgOpen("ci-plot", kWidth, height, title);

  for (double tick : axis.ticks) {
    const double x = Position(axis, tick, plot_left, plot_right);
    svg += Line(x, kTop, x, plot_bottom, kGridColour, 1);
    svg += Text(x, plot_bottom + 18, TickLabel(tick, axis.step, lift_scale), "middle", "tick");
  }
  svg += Line(plot_left, plot_bottom, plot_right, plot_bottom, "#b9c0ca", 1);
  const double zero = Position(axis, 0, plot_left, plot_right);
  svg += Line(zero, kTop - 4, zero, plot_bottom, kAxisColour, 1.5, " class=\"zero-line\"");

  // Which side is better depends on the metric's direction.
  const std::string left_hint = metric.higher_is_better ? "&#8592; worse" : "&#8592; better";
  const std::string right_hint = metric.higher_is_better ? "better &#8594;" : "worse &#8594;";
  svg += Text(plot_left, plot_bottom + 40, left_hint, "start", "hint");
  svg += Text(plot_right, plot_bottom + 40, right_hint, "end", "hint");
  svg += Text((plot_left + plot_right) / 2, plot_bottom + 40,
              Escape(lift_scale ? "relative lift vs " + BranchName(metric, 0) : "difference vs " + BranchName(metric, 0)),
              "middle", "axis-title");

  for (std::size_t i = 1; i < metric.rows.size(); ++i) {
    const OutcomeRow& row = metric.rows[i];
    const PlottedInterval& p = plotted[i];
    const double y = kTop + kRowHeight * (static_cast<double>(i) - 0.5);
    svg += Text(plot_left - 14, y + 4, Escape(BranchName(metric, i)), "end", "row-label");
    const Effect effect = SignificantEffect(row, metric.higher_is_better);
    const char* colour = effect == Effect::kBetter ? kBetterColour
                         : effect == Effect::kWorse ? kWorseColour
                                                    : kNeutralColour;
    const char* kind = effect == Effect::kBetter ? "ci-better" : effect == Effect::kWorse ? "ci-worse" : "ci-neutral";
    if (!p.has_estimate) {
      svg += Text(plot_left + 8, y + 4, "n/a: too few users or no variation", "start", "hint");
      continue;
    }
    const double scale = p.has_interval ? LargestMagnitude({p.low, p.estimate, p.high}) : std::fabs(p.estimate);
    std::string value_text = lift_scale ? SignedPercent(p.estimate) : FormatStatistic(p.estimate, true, scale);
    if (p.has_interval) {
      // At least 24 px wide: a very narrow interval still shows on both sides of its estimate.
      double x1 = Position(axis, p.low, plot_left, plot_right), x2 = Position(axis, p.high, plot_left, plot_right);
      if (x2 - x1 < 24) {
        const double middle = (x1 + x2) / 2;
        x1 = middle - 12;
        x2 = middle + 12;
      }
      svg += "<rect class=\"ci-mark " + std::string(kind) + "\" x=\"" + Coord(x1) + "\" y=\"" + Coord(y - 6) +
             "\" width=\"" + Coord(x2 - x1) + "\" height=\"12\" rx=\"6\" fill=\"" + colour + "\"/>\n";
      value_text += lift_scale ? " [" + SignedPercent(p.low) + ", " + SignedPercent(p.high) + "]"
                               : " [" + FormatStatistic(p.low, true, scale) + ", " +
                                     FormatStatistic(p.high, true, scale) + "]";
    }
    const double x = Position(axis, p.estimate, plot_left, plot_right);
    svg += "<circle class=\"ci-estimate\" cx=\"" + Coord(x) + "\" cy=\"" + Coord(y) +
           "\" r=\"6\" fill=\"#ffffff\" stroke=\"#1f2430\" stroke-width=\"2\"/>\n";
    svg += Text(plot_right + 16, y + 4, value_text, "start", "value");
  }
  svg += "</svg>\n";

  std::string legend = "<div class=\"legend\">";
  legend += "<span><i class=\"swatch\" style=\"background:" + std::string(kBetterColour) +
            "\"></i>significantly better</span>";
  legend += "<span><i class=\"swatch\" style=\"background:" + std::string(kWorseColour) +
            "\"></i>significantly worse</span>";
  legend += "<span><i class=\"swatch\" style=\"background:" + std::string(kNeutralColour) +
            "\"></i>not significant</span>";
  legend += "<span>&#9675; point estimate, bar: " + Level(confidence_level) + " interval" +
            (metric.higher_is_better ? ", higher is better" : ", lower is better") + "</span></div>\n";
  return svg + legend;
}

// ---------------------------------------------------------------------------------------
// The cumulative effect over time.

// Short labels for the time axis from PostgreSQL's "YYYY-MM-DD HH:MM:SS+TZ": the date
// when every point has the same time of day, the time when all share a date, else both.
std::vector<std::string> TimeLabels(const std::vector<const TimePoint*>& points) {
  bool same_time = true, same_date = true, standard = true;
  for (const TimePoint* p : points) {
    if (p->at.size() < 16 || p->at[4] != '-' || p->at[10] != ' ') standard = false;
  }
  std::vector<std::string> labels;
  if (!standard || points.empty()) {
    for (const TimePoint* p : points) labels.push_back(p->at);
    return labels;
  }
  for (const TimePoint* p : points) {
    same_time = same_time && p->at.compare(11, 5, points[0]->at, 11, 5) == 0;
    same_date = same_date && p->at.compare(0, 10, points[0]->at, 0, 10) == 0;
  }
  for (const TimePoint* p : points) {
    if (points.size() == 1)
      labels.push_back(p->at.substr(0, 16));
    else if (same_time && !same_date)
      labels.push_back(p->at.substr(0, 10));
    else if (same_date)
      labels.push_back(p->at.substr(11, 5));
    else
      labels.push_back(p->at.substr(5, 11));
  }
  return labels;
}

// Evenly spaced indices into `count` points, the first and the last always among them.
std::vector<std::size_t> Thin(std::size_t count, std::size_t at_most) {
  std::vector<std::size_t> indices;
  if (count <= at_most) {
    for (std::size_t i = 0; i < count; ++i) indices.push_back(i);
    return indices;
  }
  for (std::size_t k = 0; k < at_most; ++k) indices.push_back(k * (count - 1) / (at_most - 1));
  return indices;
}

std::string OverTimeChart(const MetricReport& metric, double confidence_level) {
  // Series with at least one diff; the time axis spans every point of every series.
  std::vector<std::size_t> series;
  double first = 0, last = 0;
  bool any_time = false;
  const std::vector<TimePoint>* longest = nullptr;
  for (std::size_t i = 1; i < metric.over_time.size(); ++i) {
    bool has_diff = false;
    for (const TimePoint& p : metric.over_time[i]) {
      if (!std::isfinite(p.at_epoch)) continue;
      if (!any_time) first = last = p.at_epoch;
      any_time = true;
      first = std::min(first, p.at_epoch);
      last = std::max(last, p.at_epoch);
      has_diff = has_diff || Finite(p.diff);
    }
    if (has_diff) series.push_back(i);
    if (longest == nullptr || metric.over_time[i].size() > longest->size()) longest = &metric.over_time[i];
  }
  if (series.empty())
    return "<p class=\"note\">No cumulative effect yet: the over-time analysis has no step with enough users.</p>\n";

  std::vector<double> extent;
  for (std::size_t s : series)
    for (const TimePoint& p : metric.over_time[s]) {
      if (!Finite(p.diff)) continue;
      extent.push_back(*p.diff);
      if (Finite(p.diff_ci_low) && Finite(p.diff_ci_high)) {
        extent.push_back(*p.diff_ci_low);
        extent.push_back(*p.diff_ci_high);
      }
    }
  const Axis axis = MakeAxis(extent, 5);

  constexpr double kWidth = 960, kHeight = 300, kLeft = 78, kRight = 150, kTop = 16, kBottom = 44;
  const double plot_left = kLeft, plot_right = kWidth - kRight, plot_top = kTop, plot_bottom = kHeight - kBottom;
  const bool single_instant = !(last > first);
  // One instant only: it sits in the middle.
  auto x_of = [&](double epoch) {
    if (single_instant) return (plot_left + plot_right) / 2;
    return plot_left + (std::clamp(epoch, first, last) - first) / (last - first) * (plot_right - plot_left);
  };
  auto y_of = [&](double value) { return Position(axis, value, plot_bottom, plot_top); };

  std::string svg = SvgOpen("over-time", kWidth, kHeight,
                            "Cumulative difference vs " + BranchName(metric, 0) + " over time, " +
                                Level(confidence_level) + " band");
  for (double tick : axis.ticks) {
    const double y = y_of(tick);
    svg += Line(plot_left, y, plot_right, y, kGridColour, 1);
    svg += Text(plot_left - 10, y + 4, TickLabel(tick, axis.step, false), "end", "tick");
  }
  svg += Line(plot_left, plot_bottom, plot_right, plot_bottom, "#b9c0ca", 1);
  svg += Line(plot_left, y_of(0), plot_right, y_of(0), kAxisColour, 1.5, " class=\"zero-line\"");
  const double title_y = (plot_top + plot_bottom) / 2;
  svg += "<text x=\"18\" y=\"" + Coord(title_y) + "\" text-anchor=\"middle\" class=\"axis-title\" transform=\"rotate(-90 18 " +
         Coord(title_y) + ")\">" + Escape((metric.ratio ? "ratio" : "mean") + std::string(" minus ") +
                                          BranchName(metric, 0)) + "</text>\n";

  // Time labels from the longest series, at most six, never crowded.
  if (longest != nullptr && !longest->empty()) {
    std::vector<const TimePoint*> points;
    for (const TimePoint& p : *longest) points.push_back(&p);
    const std::vector<std::string> labels = TimeLabels(points);
    double previous_x = -1e9;
    for (std::size_t index : Thin(points.size(), 6)) {
      const double x = x_of(points[index]->at_epoch);
      if (x - previous_x < 90) continue;
      previous_x = x;
      svg += Line(x, plot_bottom, x, plot_bottom + 5, "#b9c0ca", 1);
      svg += Text(x, plot_bottom + 20, Escape(labels[index]), "middle", "tick");
    }
  }

  // Bands first, then the lines over them, then the end labels.
  std::string bands, lines;
  std::vector<std::pair<double, std::size_t>> end_labels;
  for (std::size_t s : series) {
    const char* colour = SeriesColour(s);
    const std::vector<TimePoint>& all = metric.over_time[s];
    std::vector<const TimePoint*> points;
    for (std::size_t index : Thin(all.size(), kMaxPointsPerSeries))
      if (std::isfinite(all[index].at_epoch)) points.push_back(&all[index]);
    // A NULL diff or interval breaks the line or the band: a run is drawn on its own.
    std::vector<std::vector<const TimePoint*>> band_runs(1), line_runs(1);
    for (const TimePoint* p : points) {
      const bool has_band = Finite(p->diff) && Finite(p->diff_ci_low) && Finite(p->diff_ci_high);
      if (has_band) band_runs.back().push_back(p);
      else if (!band_runs.back().empty()) band_runs.emplace_back();
      if (Finite(p->diff)) line_runs.back().push_back(p);
      else if (!line_runs.back().empty()) line_runs.emplace_back();
    }
    const std::string band_style = "fill=\"" + std::string(colour) + "\" fill-opacity=\"" +
                                   Format("%.2f", kBandOpacity) + "\"";
    for (const auto& run : band_runs) {
      if (run.empty()) continue;
      if (run.size() == 1) {
        // A lone point: its interval as a short bar of the band's colour.
        const TimePoint* p = run[0];
        const double x = x_of(p->at_epoch), top = y_of(*p->diff_ci_high), bottom = y_of(*p->diff_ci_low);
        bands += "<rect class=\"ot-band\" x=\"" + Coord(x - 9) + "\" y=\"" + Coord(std::min(top, bottom)) +
                 "\" width=\"18\" height=\"" + Coord(std::max(std::fabs(bottom - top), 2.0)) + "\" " + band_style +
                 "/>\n";
        continue;
      }
      std::string polygon;
      for (const TimePoint* p : run) polygon += Coord(x_of(p->at_epoch)) + "," + Coord(y_of(*p->diff_ci_high)) + " ";
      for (auto it = run.rbegin(); it != run.rend(); ++it)
        polygon += Coord(x_of((*it)->at_epoch)) + "," + Coord(y_of(*(*it)->diff_ci_low)) + " ";
      polygon.pop_back();
      bands += "<polygon class=\"ot-band\" points=\"" + polygon + "\" " + band_style + "/>\n";
    }
    for (const auto& run : line_runs) {
      if (run.empty()) continue;
      if (run.size() == 1 || single_instant) {
        for (const TimePoint* p : run)
          lines += "<circle class=\"ot-point\" cx=\"" + Coord(x_of(p->at_epoch)) + "\" cy=\"" + Coord(y_of(*p->diff)) +
                   "\" r=\"4\" fill=\"" + colour + "\"/>\n";
        continue;
      }
      std::string polyline;
      for (const TimePoint* p : run) polyline += Coord(x_of(p->at_epoch)) + "," + Coord(y_of(*p->diff)) + " ";
      polyline.pop_back();
      lines += "<polyline class=\"ot-line\" points=\"" + polyline + "\" fill=\"none\" stroke=\"" + colour +
               "\" stroke-width=\"2.25\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n";
    }
    for (auto it = points.rbegin(); it != points.rend(); ++it)
      if (Finite((*it)->diff)) {
        end_labels.emplace_back(y_of(*(*it)->diff), s);
        break;
      }
  }
  svg += bands + lines;

  // Labels at the right end of each line, pushed apart so that they do not overlap.
  std::sort(end_labels.begin(), end_labels.end());
  for (std::size_t k = 1; k < end_labels.size(); ++k)
    end_labels[k].first = std::max(end_labels[k].first, end_labels[k - 1].first + 15);
  for (const auto& [y, s] : end_labels)
    svg += "<text x=\"" + Coord(plot_right + 12) + "\" y=\"" + Coord(y + 4) + "\" class=\"series-label\" fill=\"" +
           SeriesColour(s) + "\">" + Escape(BranchName(metric, s)) + "</text>\n";
  svg += "</svg>\n";

  std::string legend = "<div class=\"legend\">";
  for (std::size_t s : series)
    legend += "<span><i class=\"line-swatch\" style=\"background:" + std::string(SeriesColour(s)) + "\"></i>" +
              Escape(BranchName(metric, s)) + "</span>";
  legend += "<span>line: cumulative difference in " + std::string(metric.ratio ? "the ratio" : "the mean") +
            " vs " + Escape(BranchName(metric, 0)) + "; band: its " + Level(confidence_level) + " interval</span>";
  legend += "</div>\n";
  return svg + legend;
}

// ---------------------------------------------------------------------------------------
// The page's sections.

std::string MetricTable(const MetricReport& metric) {
  std::string html = "<div class=\"table-wrap\"><table class=\"metric-table\">\n<thead><tr><th>branch</th>"
                     "<th class=\"num\">users</th><th class=\"num\">mean</th><th class=\"num\">std. dev.</th>"
                     "<th class=\"num\">diff vs control</th><th class=\"num\">lift</th>"
                     "<th class=\"num\">p</th><th class=\"num\">Holm p</th><th>significant</th>"
                     "<th class=\"num\" title=\"P(beats control)\">P(better)</th>"
                     "<th class=\"num\" title=\"always-valid (sequential) p-value\">seq. p</th></tr></thead>\n<tbody>\n";
  for (std::size_t i = 0; i < metric.rows.size(); ++i) {
    const OutcomeRow& row = metric.rows[i];
    html += "<tr><td class=\"branch\">" + Escape(BranchName(metric, i)) + "</td><td class=\"num\">" +
            std::to_string(row.users) + "</td><td class=\"num\">" + Escape(FormatStatistic(row.mean)) +
            "</td><td class=\"num\">" + Escape(FormatStatistic(row.stddev)) + "</td>";
    if (i == 0) {
      html += "<td class=\"num muted\" colspan=\"2\">control</td><td></td><td></td><td></td><td></td><td></td></tr>\n";
      continue;
    }
    const double scale = LargestMagnitude({row.diff, row.diff_ci_low, row.diff_ci_high});
    std::string diff = Escape(FormatStatistic(row.diff, true, scale));
    if (Finite(row.diff) && Finite(row.diff_ci_low) && Finite(row.diff_ci_high))
      diff += "<br><small>[" + Escape(FormatStatistic(row.diff_ci_low, true, scale)) + ", " +
              Escape(FormatStatistic(row.diff_ci_high, true, scale)) + "]</small>";
    std::string lift = SignedPercent(row.relative_lift);
    if (Finite(row.relative_lift) && Finite(row.lift_ci_low) && Finite(row.lift_ci_high))
      lift += "<br><small>[" + SignedPercent(row.lift_ci_low) + ", " + SignedPercent(row.lift_ci_high) + "]</small>";
    std::string significant;
    switch (SignificantEffect(row, metric.higher_is_better)) {
      case Effect::kBetter: significant = "<span class=\"tag tag-better\">better</span>"; break;
      case Effect::kWorse: significant = "<span class=\"tag tag-worse\">worse</span>"; break;
      case Effect::kNotSignificant:
        significant = Finite(row.adjusted_p_value) ? "<span class=\"tag\">no</span>" : "<span class=\"muted\">n/a</span>";
        break;
    }
    html += "<td class=\"num\">" + diff + "</td><td class=\"num\">" + lift + "</td><td class=\"num\">" +
            PValue(row.p_value) + "</td><td class=\"num\">" + PValue(row.adjusted_p_value) + "</td><td>" + significant +
            "</td><td class=\"num\">" +
            (Finite(row.prob_beats_control) ? Percent(*row.prob_beats_control) : std::string("n/a")) +
            "</td><td class=\"num\">" + PValue(row.sequential_p_value) + "</td></tr>\n";
  }
  return html + "</tbody></table></div>\n";
}

std::string MetricSection(const MetricReport& metric, std::size_t index, double confidence_level) {
  std::string html = "<section class=\"card metric\" id=\"metric-" + std::to_string(index + 1) + "\">\n<h2>" +
                     Escape(metric.name) + " <span class=\"badge role-" + Escape(metric.role) + "\">" +
                     Escape(metric.role) + "</span>";
  html += "<span class=\"badge\">" + std::string(metric.higher_is_better ? "higher is better" : "lower is better") +
          "</span>";
  if (metric.ratio) html += "<span class=\"badge\">ratio</span>";
  if (metric.cuped) html += "<span class=\"badge\">CUPED</span>";
  html += "</h2>\n";
  if (!metric.description.empty()) html += "<p class=\"description\">" + Escape(metric.description) + "</p>\n";
  if (metric.error) return html + "<p class=\"error\">Not analysed: " + Escape(*metric.error) + "</p>\n</section>\n";
  if (metric.cuped && !metric.rows.empty() && Finite(metric.rows[0].variance_reduction))
    html += "<p class=\"note\">CUPED reduced the variance by " + Percent(*metric.rows[0].variance_reduction) +
            " (pre-period covariate: the same metric before assignment).</p>\n";
  if (metric.rows.empty()) return html + "<p class=\"note\">No branches to analyse.</p>\n</section>\n";
  html += MetricTable(metric);
  html += "<h3>Effect vs control</h3>\n" + IntervalPlot(metric, confidence_level);
  html += "<h3>Cumulative effect over time</h3>\n" + OverTimeChart(metric, confidence_level);
  return html + "</section>\n";
}

std::string SampleRatioSection(const HtmlReportInput& input) {
  std::string html = "<section class=\"card\" id=\"sample-ratio\">\n<h2>Sample ratio check</h2>\n";
  std::int64_t total = 0;
  for (const HtmlBranch& b : input.branches) total += std::max<std::int64_t>(b.users, 0);
  const auto& check = input.sample_ratio;
  if (!check || total == 0)
    return html + "<p class=\"note\">No " + Escape(input.users_source) +
           " yet: nothing to check the split against.</p>\n</section>\n";

  const std::string statistic = std::isfinite(check->chi_square)
                                    ? "chi-square " + Format("%.2f", check->chi_square) + " with " +
                                          std::to_string(check->degrees_of_freedom) + " df"
                                    : std::string("users in a branch allocated 0%");
  html += "<p>" + std::string(check->mismatch ? "<span class=\"tag tag-worse\">mismatch</span> "
                                              : "<span class=\"tag tag-better\">ok</span> ") +
          "Observed " + Escape(input.users_source) + " per branch against the allocation: " + statistic + ", p = " +
          PValue(check->p_value) + (check->mismatch ? " (below 0.001: find the cause before trusting any result)." : ".") +
          "</p>\n";

  // Two bars per branch: the expected share above the observed one.
  constexpr double kWidth = 960, kLeft = 170, kRight = 250, kTop = 10, kRowHeight = 44, kBottom = 30;
  const double height = kTop + kRowHeight * static_cast<double>(input.branches.size()) + kBottom;
  const double plot_left = kLeft, plot_right = kWidth - kRight, plot_bottom = height - kBottom;
  double largest = 0;
  for (const HtmlBranch& b : input.branches) {
    largest = std::max(largest, std::clamp(b.allocation / 10000.0, 0.0, 1.0));
    largest = std::max(largest, static_cast<double>(std::max<std::int64_t>(b.users, 0)) / static_cast<double>(total));
  }
  const Axis axis = MakeAxis({0.0, largest}, 5);
  auto x_of = [&](double share) { return Position(axis, share, plot_left, plot_right); };
  std::string svg = SvgOpen("srm-chart", kWidth, height, "Observed and expected share per branch");
  for (double tick : axis.ticks) {
    if (tick < 0) continue;
    const double x = x_of(tick);
    svg += Line(x, kTop, x, plot_bottom, kGridColour, 1);
    svg += Text(x, plot_bottom + 18, Format("%.4g%%", 100 * tick), "middle", "tick");
  }
  for (std::size_t i = 0; i < input.branches.size(); ++i) {
    const HtmlBranch& b = input.branches[i];
    const double expected = std::clamp(b.allocation / 10000.0, 0.0, 1.0);
    const double observed = static_cast<double>(std::max<std::int64_t>(b.users, 0)) / static_cast<double>(total);
    const double y = kTop + kRowHeight * static_cast<double>(i);
    svg += Text(plot_left - 14, y + 24, Escape(b.name), "end", "row-label");
    const double zero = x_of(0);
    svg += "<rect class=\"srm-expected\" x=\"" + Coord(zero) + "\" y=\"" + Coord(y + 7) + "\" width=\"" +
           Coord(std::max(x_of(expected) - zero, 0.0)) + "\" height=\"12\" fill=\"" + kExpectedColour + "\"/>\n";
    svg += "<rect class=\"srm-observed\" x=\"" + Coord(zero) + "\" y=\"" + Coord(y + 21) + "\" width=\"" +
           Coord(std::max(x_of(observed) - zero, 0.0)) + "\" height=\"12\" fill=\"" + kObservedColour + "\"/>\n";
    svg += Text(plot_right + 14, y + 24,
                "observed " + Percent(observed, "%.2f%%") + " &#183; expected " + Percent(expected, "%.2f%%"), "start",
                "value");
  }
  svg += Line(x_of(0), kTop, x_of(0), plot_bottom, kAxisColour, 1);
  svg += "</svg>\n";
  html += svg + "<div class=\"legend\"><span><i class=\"swatch square\" style=\"background:" +
          std::string(kExpectedColour) + "\"></i>expected (allocation)</span><span><i class=\"swatch square\" " +
          "style=\"background:" + kObservedColour + "\"></i>observed (" + Escape(input.users_source) +
          ")</span></div>\n";
  return html + "</section>\n";
}

std::string SummarySection(const HtmlReportInput& input) {
  auto fact = [](const std::string& term, const std::string& escaped_value) {
    return "<div><dt>" + term + "</dt><dd>" + escaped_value + "</dd></div>";
  };
  std::string html = "<dl class=\"facts\">";
  html += fact("state", "<span class=\"state state-" + Escape(input.state) + "\">" + Escape(input.state) + "</span>");
  html += fact("strategy", Escape(input.strategy));
  html += fact("started", input.started_at ? Escape(*input.started_at) : std::string("not started"));
  if (input.winner) html += fact("winner", Escape(*input.winner));
  html += fact("confidence", Level(input.confidence_level));
  html += fact("min. sample", std::to_string(input.min_sample_size) + " per branch");
  html += "</dl>\n";

  std::int64_t total = 0;
  for (const HtmlBranch& b : input.branches) total += std::max<std::int64_t>(b.users, 0);
  html += "<table class=\"branches\"><thead><tr><th>branch</th><th class=\"num\">allocation</th><th class=\"num\">" +
          Escape(input.users_source) + "</th><th class=\"num\">share</th></tr></thead><tbody>\n";
  for (std::size_t i = 0; i < input.branches.size(); ++i) {
    const HtmlBranch& b = input.branches[i];
    html += "<tr><td class=\"branch\">" + Escape(b.name) +
            (i == 0 && b.name != "control" ? " <span class=\"muted\">(control)</span>" : std::string()) +
            "</td><td class=\"num\">" +
            Percent(b.allocation / 10000.0, "%.2f%%") + "</td><td class=\"num\">" + std::to_string(b.users) +
            "</td><td class=\"num\">" +
            (total > 0 ? Percent(static_cast<double>(b.users) / static_cast<double>(total), "%.2f%%")
                       : std::string("n/a")) +
            "</td></tr>\n";
  }
  html += "<tr class=\"total\"><td>total</td><td></td><td class=\"num\">" + std::to_string(total) +
          "</td><td></td></tr>\n</tbody></table>\n";
  return html;
}

std::string VerdictSection(const HtmlReportInput& input, const Verdict& verdict) {
  const bool mismatch = input.sample_ratio && input.sample_ratio->mismatch;
  const char* tone = mismatch                         ? "verdict-bad"
                     : verdict.recommended_branch     ? "verdict-good"
                     : !verdict.warnings.empty()      ? "verdict-warn"
                                                      : "verdict-neutral";
  std::string html = "<section class=\"verdict " + std::string(tone) + "\" id=\"verdict\">\n<h2>Verdict</h2>\n";
  html += "<p class=\"headline\">" + Escape(verdict.headline) + "</p>\n";
  if (!verdict.warnings.empty()) {
    html += "<ul class=\"warnings\">\n";
    for (const std::string& warning : verdict.warnings) html += "<li>" + Escape(warning) + "</li>\n";
    html += "</ul>\n";
  }
  return html + "</section>\n";
}

constexpr const char* kStyle = R"CSS(
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f7; color: #1f2430;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 15px; line-height: 1.45; }
main { max-width: 1040px; margin: 0 auto; padding: 28px 24px 40px; }
header { margin-bottom: 18px; }
.kicker { margin: 0; color: #6b7380; font-size: 12px; letter-spacing: .08em; text-transform: uppercase; }
h1 { margin: 2px 0 4px; font-size: 28px; font-weight: 650; }
h2 { margin: 0 0 10px; font-size: 19px; font-weight: 620; }
h3 { margin: 22px 0 6px; font-size: 14px; font-weight: 600; color: #4a5160; text-transform: uppercase;
  letter-spacing: .05em; }
.description { margin: 0 0 10px; color: #4a5160; }
.card, .verdict { background: #ffffff; border: 1px solid #dfe3e9; border-radius: 10px; padding: 18px 22px;
  margin: 0 0 18px; }
.facts { display: flex; flex-wrap: wrap; gap: 6px 28px; margin: 10px 0 14px; }
.facts div { min-width: 110px; }
.facts dt { font-size: 12px; color: #6b7380; text-transform: uppercase; letter-spacing: .05em; }
.facts dd { margin: 0; font-weight: 560; }
.state { padding: 1px 8px; border-radius: 10px; background: #e8ebf0; }
.state-active { background: #dcefe3; color: #1f6a42; }
.state-paused { background: #f6ecd5; color: #7a5512; }
.state-completed { background: #dde6f4; color: #254f8a; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 13.5px; }
th, td { padding: 6px 6px; white-space: nowrap; border-bottom: 1px solid #e6e9ee; text-align: left; vertical-align: top; }
th { font-size: 11.5px; font-weight: 600; color: #5b6470; text-transform: uppercase; letter-spacing: .02em;
  border-bottom: 1.5px solid #cfd5dd; }
td.num, th.num { text-align: right; }
td small { color: #6b7380; font-size: 11.5px; }
tr.total td { border-bottom: none; color: #4a5160; font-weight: 560; }
.table-wrap { overflow-x: auto; }
table.branches { width: auto; min-width: 480px; }
.branch { font-weight: 560; }
.muted { color: #8a919c; }
.verdict { border-left: 6px solid #a3abb8; }
.verdict-good { border-left-color: #3f9d6a; background: #f4faf6; }
.verdict-bad { border-left-color: #d4574f; background: #fdf5f4; }
.verdict-warn { border-left-color: #d39a2c; background: #fdf9f0; }
.headline { margin: 0; font-size: 20px; font-weight: 600; }
.warnings { margin: 10px 0 0; padding-left: 20px; color: #7d3b1c; }
.warnings li { margin: 3px 0; }
.badge { display: inline-block; margin-left: 8px; padding: 1px 8px; border-radius: 9px; font-size: 12px;
  font-weight: 560; vertical-align: middle; background: #eceff3; color: #4a5160; }
.role-goal { background: #dde6f4; color: #254f8a; }
.role-guardrail { background: #f6ecd5; color: #7a5512; }
.tag { padding: 1px 7px; border-radius: 8px; font-size: 12px; font-weight: 600; background: #eceff3; color: #5b6470; }
.tag-better { background: #dcefe3; color: #1f6a42; }
.tag-worse { background: #f7dedc; color: #93302a; }
.note { color: #5b6470; }
.error { color: #93302a; background: #fdf1f0; border: 1px solid #efc9c5; border-radius: 6px; padding: 8px 12px; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px;
  background: #eef0f4; padding: 1px 5px; border-radius: 4px; }
svg.chart { display: block; width: 100%; max-width: 960px; height: auto; margin: 6px 0 2px; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 12px; fill: #5b6470; }
svg text.row-label { font-size: 13px; font-weight: 600; fill: #1f2430; }
svg text.value { font-size: 12.5px; fill: #1f2430; font-variant-numeric: tabular-nums; }
svg text.hint { font-size: 12px; fill: #8a919c; }
svg text.axis-title { font-size: 12px; fill: #4a5160; }
svg text.series-label { font-size: 13px; font-weight: 600; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 12.5px; color: #5b6470; margin: 4px 0 4px; }
.legend span { display: inline-flex; align-items: center; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 6px; }
.swatch.square { border-radius: 2px; }
.line-swatch { display: inline-block; width: 18px; height: 3px; border-radius: 2px; margin-right: 6px; }
footer { color: #6b7380; font-size: 12.5px; margin-top: 8px; }
)CSS";

}  // namespace

std::string ReportHtml(const HtmlReportInput& input) {
  const Verdict verdict = DecideVerdict(input.metrics, input.sample_ratio);
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                     "<title>" + Escape(input.experiment) + " &#8212; abtest report</title>\n<style>" +
                     kStyle + "</style>\n</head>\n<body>\n<main>\n";

  html += "<header id=\"summary\">\n<p class=\"kicker\">abtest experiment report</p>\n<h1>" +
          Escape(input.experiment) + "</h1>\n";
  if (!input.description.empty()) html += "<p class=\"description\">" + Escape(input.description) + "</p>\n";
  html += SummarySection(input) + "</header>\n";

  html += VerdictSection(input, verdict);
  html += SampleRatioSection(input);

  if (input.metrics.empty()) {
    html += "<section class=\"card\" id=\"no-metrics\">\n<h2>Metrics</h2>\n<p class=\"note\">No metric is attached "
            "to this experiment. Define one over a table you already have, e.g. <code>SELECT ab_define_metric("
            "'revenue', 'orders', 'user_id', 'created_at', 'amount')</code>, and attach it with <code>SELECT "
            "ab_attach_metric('" +
            Escape(input.experiment) + "', 'revenue', 'goal')</code>.</p>\n</section>\n";
  }
  for (std::size_t i = 0; i < input.metrics.size(); ++i)
    html += MetricSection(input.metrics[i], i, input.confidence_level);

  html += "<footer>Generated by abtest at " + Escape(input.generated_at) + ". One unit = one user; intervals at " +
          Level(input.confidence_level) + " confidence; p-values adjusted across the challengers with Holm's "
          "method; a result is significant when its Holm p is below " +
          Format("%.4g", 1 - input.confidence_level) + " and both branches have at least " +
          std::to_string(input.min_sample_size) + " users.</footer>\n</main>\n</body>\n</html>\n";
  return html;
}

}  // namespace abtest
