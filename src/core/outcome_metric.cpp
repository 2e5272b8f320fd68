#include "core/outcome_metric.hpp"

#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "core/names.hpp"

namespace abtest {
namespace {

std::string Number(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

}  // namespace

Aggregation ParseAggregation(const std::string& metric, const std::string& text) {
  if (text == "sum") return Aggregation::kSum;
  if (text == "count") return Aggregation::kCount;
  if (text == "any") return Aggregation::kAny;
  if (text == "max") return Aggregation::kMax;
  throw Error(ErrorKind::kInvalidParameter, "unknown aggregation " + Quoted(text) + " for metric " + Quoted(metric),
              {}, "Use 'sum', 'count', 'any' or 'max'.");
}

const char* AggregationName(Aggregation aggregation) {
  switch (aggregation) {
    case Aggregation::kSum: return "sum";
    case Aggregation::kCount: return "count";
    case Aggregation::kAny: return "any";
    case Aggregation::kMax: return "max";
  }
  return "sum";
}

MetricRole ParseMetricRole(const std::string& metric, const std::string& text) {
  if (text == "goal") return MetricRole::kGoal;
  if (text == "guardrail") return MetricRole::kGuardrail;
  if (text == "secondary") return MetricRole::kSecondary;
  throw Error(ErrorKind::kInvalidParameter, "unknown role " + Quoted(text) + " for metric " + Quoted(metric), {},
              "Use 'goal', 'guardrail' or 'secondary'.");
}

const char* MetricRoleName(MetricRole role) {
  switch (role) {
    case MetricRole::kGoal: return "goal";
    case MetricRole::kGuardrail: return "guardrail";
    case MetricRole::kSecondary: return "secondary";
  }
  return "goal";
}

void ValidateCaps(const std::string& metric, const std::optional<double>& cap,
                  const std::optional<double>& cap_percentile) {
  if (cap && cap_percentile)
    throw Error(ErrorKind::kInvalidParameter, "metric " + Quoted(metric) + " has both cap and cap_percentile", {},
                "Give one of them: a fixed cap, or the percentile of users with a value to cap at.");
  if (cap && !(std::isfinite(*cap) && *cap > 0))
    throw Error(ErrorKind::kInvalidParameter,
                "cap of metric " + Quoted(metric) + " must be a positive number, not " + Number(*cap));
  if (cap_percentile && !(*cap_percentile > 0 && *cap_percentile < 1))
    throw Error(ErrorKind::kInvalidParameter,
                "cap_percentile of metric " + Quoted(metric) + " must be between 0 and 1 (exclusive), not " +
                    Number(*cap_percentile),
                {}, "For example 0.99 caps each user's value at the 99th percentile.");
}

void ValidateConversionWindow(const std::string& metric, double seconds) {
  if (!(seconds > 0))
    throw Error(ErrorKind::kInvalidParameter, "conversion_window of metric " + Quoted(metric) + " must be positive",
                {}, "Give an interval such as '7 days', or NULL to count facts until now.");
}

void ValidateForwardInterval(const char* what, int months, int days, long long microseconds) {
  if (months < 0 || days < 0 || microseconds < 0 || (months == 0 && days == 0 && microseconds == 0))
    throw Error(ErrorKind::kInvalidParameter, std::string(what) + " must be a positive interval", {},
                "Give an interval without negative parts, such as '1 day' or '6 hours'.");
}

}  // namespace abtest
