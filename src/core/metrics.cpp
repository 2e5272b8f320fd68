#include "core/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"
#include "core/limits.hpp"

namespace abtest {

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char buffer[48];
  int digits = 1;
  for (; digits < 17; ++digits) {
    std::snprintf(buffer, sizeof buffer, "%.*e", digits - 1, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  std::snprintf(buffer, sizeof buffer, "%.*e", digits - 1, value);
  const int exponent = std::atoi(std::strchr(buffer, 'e') + 1);
  if (exponent < -4 || exponent >= 15) return buffer;
  std::snprintf(buffer, sizeof buffer, "%.*f", std::max(0, digits - 1 - exponent), value);
  return buffer;
}

namespace {

[[noreturn]] void Refuse(const std::string& message, const std::string& experiment, const std::string& branch,
                         const std::string& hint, ErrorKind kind = ErrorKind::kInvalidParameter) {
  throw Error(kind, message, "For branch " + Quoted(branch) + " of experiment " + Quoted(experiment) + ".", hint);
}

}  // namespace

void RunningMoments::Add(double value) {
  ++count;
  sum += value;
  const double delta = value - mean;
  mean += delta / static_cast<double>(count);
  m2 += delta * (value - mean);  // the old and the new deviation: never negative
}

void RunningMoments::Merge(const RunningMoments& other) {
  if (other.count == 0) return;
  if (count == 0) {
    *this = other;
    return;
  }
  const double n_a = static_cast<double>(count);
  const double n_b = static_cast<double>(other.count);
  const double n = n_a + n_b;
  const double delta = other.mean - mean;
  count += other.count;
  sum += other.sum;
  mean += delta * (n_b / n);
  m2 += other.m2 + delta * delta * (n_a * n_b / n);
}

std::optional<double> RunningMoments::Variance() const {
  if (count < 2) return std::nullopt;
  // m2 cannot go negative in exact arithmetic; guard the last bit anyway.
  return std::max(0.0, m2 / static_cast<double>(count - 1));
}

std::optional<double> RunningMoments::StandardDeviation() const {
  const auto variance = Variance();
  if (!variance) return std::nullopt;
  return std::sqrt(*variance);
}

void QueryCounters::Record(double latency_ms, bool success, std::int64_t now) {
  if (latency_ms == 0) latency_ms = 0;  // -0 is 0: a minimum of -0 would print as "-0"
  if (latency.count == 0) {
    min_latency_ms = max_latency_ms = latency_ms;
    first_query = last_query = now;
  } else {
    min_latency_ms = std::min(min_latency_ms, latency_ms);
    max_latency_ms = std::max(max_latency_ms, latency_ms);
    // Clocks of concurrent backends are read before the lock: keep the latest.
    last_query = std::max(last_query, now);
  }
  latency.Add(latency_ms);
  if (success) ++successes;
}

void QueryCounters::Merge(const QueryCounters& other) {
  if (other.queries() == 0) return;
  if (queries() == 0) {
    *this = other;
    return;
  }
  successes += other.successes;
  latency.Merge(other.latency);
  min_latency_ms = std::min(min_latency_ms, other.min_latency_ms);
  max_latency_ms = std::max(max_latency_ms, other.max_latency_ms);
  first_query = std::min(first_query, other.first_query);
  last_query = std::max(last_query, other.last_query);
}

double QueryCounters::SuccessRate() const {
  if (queries() == 0) return 0;
  return static_cast<double>(successes) / static_cast<double>(queries());
}

double QueryCounters::ErrorRate() const {
  if (queries() == 0) return 0;
  return static_cast<double>(failures()) / static_cast<double>(queries());
}

double QueryCounters::AverageLatency() const {
  if (queries() == 0) return 0;
  return latency.sum / static_cast<double>(queries());
}

void ValidateLatency(double latency_ms, const std::string& experiment, const std::string& branch) {
  if (!std::isfinite(latency_ms) || latency_ms < 0)
    Refuse("latency_ms must be a finite number >= 0, not " + FormatValue(latency_ms), experiment, branch,
           "latency_ms is the duration of the query in milliseconds.");
  if (latency_ms > kMaxLatencyMs)
    Refuse("latency_ms must be at most " + FormatValue(kMaxLatencyMs) + ", not " + FormatValue(latency_ms),
           experiment, branch,
           "latency_ms is in milliseconds; percentiles cover up to 1000000 ms (16 min 40 s). Record a query that "
           "ran longer as a failure at 1000000 ms.");
}

void ValidateEventValue(double value, const std::string& experiment, const std::string& branch) {
  if (!std::isfinite(value))
    Refuse("value must be a finite number, not " + FormatValue(value), experiment, branch,
           "Negative values are allowed; NaN and infinities would poison the sums.");
  if (std::fabs(value) > kMaxEventValue)
    Refuse("value must be between -" + FormatValue(kMaxEventValue) + " and " + FormatValue(kMaxEventValue) +
               ", not " + FormatValue(value),
           experiment, branch,
           "Record the value in a larger unit (thousands rather than cents, seconds rather than microseconds): "
           "sums and variances must stay finite and exact.",
           ErrorKind::kOutOfRange);
}

}  // namespace abtest
