// Metrics over the application's tables (abtest.metrics, abtest.experiment_metrics):
// defining them, and loading them with their source checked against the system
// catalogs. Only administration and analysis come here, never a routing call.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/outcome_metric.hpp"
#include "glue/pg.hpp"

namespace abtest::glue::outcomes {

// A simple metric: one aggregated source.
struct SimpleMetric {
  std::string name;
  Oid source = InvalidOid;
  std::string user_column;
  std::string time_column;
  std::optional<std::string> value_column;
  Aggregation aggregation = Aggregation::kSum;
  std::optional<std::string> conversion_window;  // interval as PostgreSQL prints it
  std::optional<double> cap;
  std::optional<double> cap_percentile;
};

struct Metric {
  std::string name;
  bool ratio = false;
  SimpleMetric simple;                      // the metric itself, or the numerator of a ratio
  std::optional<SimpleMetric> denominator;  // ratio metrics only
  std::string description;
  bool higher_is_better = true;
};

// A source as a query reads it: the relation schema-qualified and every column quoted.
struct ResolvedSource {
  std::string relation;
  std::string user_column;
  std::string time_column;
  std::optional<std::string> value_column;
};

// The relation's name for messages and queries, schema-qualified and quoted as needed;
// "(OID n)" when it is gone.
std::string RelationName(Oid relation);

// Checks that `source` is a table, view, materialized view or foreign table and that
// its columns exist with usable types: the user column a scalar (compared as text), the
// time column timestamptz or timestamp, the value column a number. Refusals name the
// metric: 42P01 (the source is gone), 42809 (not a relation that holds rows), 42703,
// 42804.
ResolvedSource ResolveSource(const SimpleMetric& metric);

// Stores a new metric; 42710 when the name is taken, 42704 for unknown components of a ratio.
void DefineSimple(const SimpleMetric& metric, const std::optional<std::string>& description, bool higher_is_better);
void DefineRatio(const std::string& name, const std::string& numerator, const std::string& denominator,
                 const std::optional<std::string>& description, bool higher_is_better);
// 42704 for an unknown metric; 2BP01 while it is attached or part of a ratio.
void Drop(const std::string& name);

// 42704 for an unknown metric.
Metric Load(const std::string& name);

void Attach(const std::string& experiment_id, const std::string& metric, MetricRole role);
void Detach(const std::string& experiment_id, const std::string& experiment, const std::string& metric);

struct Attached {
  std::string metric;
  MetricRole role = MetricRole::kGoal;
};
// Goal metrics first, then guardrails, then secondary ones; by name within a role.
std::vector<Attached> AttachedMetrics(const std::string& experiment_id);

}  // namespace abtest::glue::outcomes
