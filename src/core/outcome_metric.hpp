// Metrics over the application's tables, as ab_define_metric and ab_attach_metric take
// them: the rules that need no database (names, aggregation, caps, window, role). The
// glue checks the source and its columns against the system catalogs.
#pragma once

#include <optional>
#include <string>

namespace abtest {

// How a user's facts become one value (README, "Analyse outcomes you already store").
enum class Aggregation { kSum, kCount, kAny, kMax };

// Throws kInvalidParameter naming the metric and listing the choices.
Aggregation ParseAggregation(const std::string& metric, const std::string& text);
const char* AggregationName(Aggregation aggregation);

enum class MetricRole { kGoal, kGuardrail, kSecondary };
MetricRole ParseMetricRole(const std::string& metric, const std::string& text);
const char* MetricRoleName(MetricRole role);

// A cap is a positive number (the per-user value is capped above, so users without
// facts keep 0); cap_percentile lies in (0, 1); not both. Throws kInvalidParameter.
void ValidateCaps(const std::string& metric, const std::optional<double>& cap,
                  const std::optional<double>& cap_percentile);

// A conversion window is positive (its length in seconds, as PostgreSQL counts an interval).
void ValidateConversionWindow(const std::string& metric, double seconds);

// A window or step of time: no negative part (months, days, time), and not all zero,
// so that adding it always moves forward. `what` names it ("cuped_window", "step").
void ValidateForwardInterval(const char* what, int months, int days, long long microseconds);

}  // namespace abtest
