#include "glue/outcomes/outcome_query.hpp"

#include "glue/guard.hpp"
#include "glue/outcomes/exposure_query.hpp"

namespace abtest::glue::outcomes {
namespace {

std::string Literal(const std::string& text) {
  const char* quoted = PgCall([&] { return quote_literal_cstr(text.c_str()); });
  return quoted;
}

std::string IntervalLiteral(const std::string& interval) { return Literal(interval) + "::pg_catalog.interval"; }

std::string Float8Literal(double value) {
  char buffer[64];
  snprintf(buffer, sizeof buffer, "%.17g", value);  // PostgreSQL's snprintf (port.h)
  return Literal(buffer) + "::pg_catalog.float8";
}

// Every component's facts as (component, user_id text, at timestamptz, value float8).
std::string FactsCte(const std::vector<Component>& components) {
  std::string sql = "facts AS (";
  for (std::size_t i = 0; i < components.size(); ++i) {
    const ResolvedSource& source = components[i].source;
    if (i > 0) sql += " UNION ALL ";
    sql += "SELECT " + std::to_string(i) + " AS component, (f." + source.user_column +
           ")::pg_catalog.text AS user_id, (f." + source.time_column + ")::pg_catalog.timestamptz AS at, " +
           (source.value_column ? "(f." + *source.value_column + ")::pg_catalog.float8" : "NULL::pg_catalog.float8") +
           " AS value FROM " + source.relation + " AS f";
  }
  return sql + ")";
}

// Whether a single component's window can go into the join itself (no filter per row).
bool WindowInJoin(const std::vector<Component>& components, bool pre_period) {
  return components.size() == 1 && !pre_period;
}

// The facts of component i in its window, relative to `log`'s assigned_at; empty when
// the join already says so.
std::string InWindow(const std::vector<Component>& components, std::size_t i, const std::string& log, bool pre_period) {
  if (WindowInJoin(components, pre_period)) return "";
  std::string filter = "facts.component = " + std::to_string(i) + " AND facts.at >= " + log + ".assigned_at";
  if (components[i].window) filter += " AND facts.at < " + log + ".assigned_at + " + IntervalLiteral(*components[i].window);
  return filter;
}

std::string Filter(const std::string& condition) {
  return condition.empty() ? "" : " FILTER (WHERE " + condition + ")";
}

bool CountsRows(const Component& c) {
  return c.aggregation == Aggregation::kCount || (c.aggregation == Aggregation::kSum && !c.source.value_column);
}

bool IsAny(const Component& c) {
  return c.aggregation == Aggregation::kAny || (c.aggregation == Aggregation::kMax && !c.source.value_column);
}

// A user's value from the facts matching `condition` (README: 0 without facts).
std::string UserValue(const Component& c, const std::string& condition) {
  std::string filter = Filter(condition);
  if (CountsRows(c)) return "(count(facts.at)" + filter + ")::pg_catalog.float8";
  if (IsAny(c)) return "(count(facts.at)" + filter + " > 0)::pg_catalog.int4::pg_catalog.float8";
  const char* aggregate = c.aggregation == Aggregation::kMax ? "max" : "sum";
  return std::string("coalesce(") + aggregate + "(facts.value)" + filter + ", 0)";
}

// The join of the log to the facts: a user's facts from the earliest instant any
// column needs (the pre-period with CUPED) until now.
std::string FactsJoin(const std::vector<Component>& components, const std::string& log,
                      const std::optional<std::string>& cuped_window) {
  std::string join = "facts.user_id = " + log + ".user_id AND facts.at >= " + log + ".assigned_at";
  if (cuped_window) join += " - " + IntervalLiteral(*cuped_window);
  join += " AND facts.at < pg_catalog.now()";
  if (WindowInJoin(components, cuped_window.has_value()) && components[0].window)
    join += " AND facts.at < " + log + ".assigned_at + " + IntervalLiteral(*components[0].window);
  return join;
}

bool AnyPercentile(const std::vector<Component>& components) {
  for (const Component& c : components)
    if (c.cap_percentile && !c.cap) return true;
  return false;
}

// WITH facts, per_user: one row per user of the log with y<i> per component, x0 (the
// pre-period value) with CUPED, and h<i> (has a fact) where a percentile cap needs it.
std::string PerUserCtes(const std::vector<Component>& components, const std::optional<std::string>& cuped_window) {
  const std::string log = kExposureLogAlias;
  bool pre = cuped_window.has_value();
  std::string columns = log + ".branch";
  for (std::size_t i = 0; i < components.size(); ++i) {
    columns += ", " + UserValue(components[i], InWindow(components, i, log, pre)) + " AS y" + std::to_string(i);
    if (components[i].cap_percentile && !components[i].cap) {
      columns += ", count(facts.at)" + Filter(InWindow(components, i, log, pre)) + " > 0 AS h" + std::to_string(i);
    }
  }
  if (pre) columns += ", " + UserValue(components[0], "facts.at < " + log + ".assigned_at") + " AS x0";
  return "WITH " + FactsCte(components) + ", per_user AS (SELECT " + columns + " FROM abtest.assignments AS " + log +
         " LEFT JOIN facts ON " + FactsJoin(components, log, cuped_window) + " WHERE " + log +
         ".experiment_id = $1 GROUP BY " + log + ".user_id, " + log + ".branch)";
}

// The cap of component i as an expression: a literal, caps.c<i>, or NULL (least()
// ignores NULL, so no cap).
std::string CapOf(const std::vector<Component>& components, std::size_t i) {
  const Component& c = components[i];
  if (c.cap) return Float8Literal(*c.cap);
  if (c.cap_percentile) return "caps.c" + std::to_string(i);
  return "NULL::pg_catalog.float8";
}

std::string CapsSelect(const std::vector<Component>& components) {
  std::string columns;
  for (std::size_t i = 0; i < components.size(); ++i) {
    if (i > 0) columns += ", ";
    const Component& c = components[i];
    if (c.cap) {
      columns += Float8Literal(*c.cap);
    } else if (c.cap_percentile) {
      columns += "percentile_cont(" + Float8Literal(*c.cap_percentile) + ") WITHIN GROUP (ORDER BY y" +
                 std::to_string(i) + ") FILTER (WHERE h" + std::to_string(i) + ")";
    } else {
      columns += "NULL::pg_catalog.float8";
    }
    columns += " AS c" + std::to_string(i);
  }
  return "SELECT " + columns + " FROM per_user";
}

}  // namespace

std::string PerBranchQuery(const std::vector<Component>& components, const std::optional<std::string>& cuped_window) {
  std::string sql = PerUserCtes(components, cuped_window);
  bool percentile = AnyPercentile(components);
  if (percentile) sql += ", caps AS (" + CapsSelect(components) + ")";
  std::string a = "least(y0, " + CapOf(components, 0) + ")";
  std::string b = cuped_window            ? "least(x0, " + CapOf(components, 0) + ")"
                  : components.size() > 1 ? "least(y1, " + CapOf(components, 1) + ")"
                                          : "0::pg_catalog.float8";
  sql += " SELECT branch, count(*), avg(a), var_samp(a), avg(b), var_samp(b), covar_samp(a, b) FROM (SELECT "
         "per_user.branch, " + a + " AS a, " + b + " AS b FROM per_user" + (percentile ? " CROSS JOIN caps" : "") +
         ") AS v GROUP BY branch";
  return sql;
}

std::string CapsQuery(const std::vector<Component>& components) {
  return PerUserCtes(components, std::nullopt) + " " + CapsSelect(components);
}

std::string OverTimeQuery(const std::vector<Component>& components) {
  const std::string log = kExposureLogAlias;
  // Per user and step, each component's partial aggregate of the facts of that step;
  // then running aggregates per user (sum, or max for any/max), capped; then the
  // increments of the values, squares and products, which sum over users per step.
  std::string partials, running, increments;
  for (std::size_t i = 0; i < components.size(); ++i) {
    const Component& c = components[i];
    std::string n = std::to_string(i);
    std::string condition = "facts.component = " + n;
    if (c.window) condition += " AND facts.at < exposure.assigned_at + " + IntervalLiteral(*c.window);
    std::string filter = Filter(condition);
    std::string partial;
    if (CountsRows(c)) partial = "count(facts.at)" + filter;
    else if (IsAny(c)) partial = "(count(facts.at)" + filter + " > 0)::pg_catalog.int4";
    else if (c.aggregation == Aggregation::kMax) partial = "max(facts.value)" + filter;
    else partial = "sum(facts.value)" + filter;
    partials += ", (" + partial + ")::pg_catalog.float8 AS p" + n;
    const char* run = IsAny(c) || c.aggregation == Aggregation::kMax ? "max" : "sum";
    running += std::string(", least(coalesce(") + run + "(p" + n + ") OVER per_user, 0), " +
               (c.cap ? Float8Literal(*c.cap) : "NULL::pg_catalog.float8") + ") AS y" + n;
  }
  std::string y1 = components.size() > 1 ? "y1" : "0::pg_catalog.float8";
  auto increment = [](const std::string& expression, const std::string& name) {
    return ", " + expression + " - lag(" + expression + ", 1, 0::pg_catalog.float8) OVER per_user AS " + name;
  };
  increments += increment("y0", "d0") + increment("y0 * y0", "d00") + increment(y1, "d1") +
                increment(y1 + " * " + y1, "d11") + increment("y0 * " + y1, "d01");
  return "WITH " + FactsCte(components) +
         ", bounds AS (SELECT $2::pg_catalog.timestamptz[] AS t)"
         ", exposure AS (SELECT " + log + ".user_id, " + log + ".branch, " + log + ".assigned_at FROM abtest.assignments AS " +
         log + " WHERE " + log + ".experiment_id = $1 AND " + log + ".assigned_at < pg_catalog.now())"
         ", user_steps AS (SELECT exposure.user_id, exposure.branch, width_bucket(facts.at, bounds.t) + 1 AS step" +
         partials +
         " FROM exposure JOIN facts ON facts.user_id = exposure.user_id AND facts.at >= exposure.assigned_at"
         " AND facts.at < pg_catalog.now() CROSS JOIN bounds GROUP BY 1, 2, 3)"
         ", running AS (SELECT user_id, branch, step" + running +
         " FROM user_steps WINDOW per_user AS (PARTITION BY user_id ORDER BY step))"
         ", increments AS (SELECT branch, step" + increments +
         " FROM running WINDOW per_user AS (PARTITION BY user_id ORDER BY step))"
         " SELECT branch, step, 0::pg_catalog.int8, sum(d0), sum(d00), sum(d1), sum(d11), sum(d01)"
         " FROM increments GROUP BY branch, step"
         " UNION ALL SELECT branch, width_bucket(assigned_at, bounds.t) + 1, count(*), 0, 0, 0, 0, 0"
         " FROM exposure CROSS JOIN bounds GROUP BY 1, 2";
}

}  // namespace abtest::glue::outcomes
