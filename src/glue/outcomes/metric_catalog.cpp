#include "glue/outcomes/metric_catalog.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"

namespace abtest::glue::outcomes {
namespace {

using Json = nlohmann::json;

constexpr const char* kMetricDocument = R"sql(
SELECT jsonb_build_object('name', m.name, 'kind', m.kind, 'source', m.source::oid::bigint,
         'user_column', m.user_column, 'time_column', m.time_column, 'value_column', m.value_column,
         'aggregation', m.aggregation, 'conversion_window', m.conversion_window::text,
         'cap', m.cap, 'cap_percentile', m.cap_percentile, 'numerator', m.numerator,
         'denominator', m.denominator, 'description', m.description,
         'higher_is_better', m.higher_is_better)::text
  FROM abtest.metrics m WHERE m.name = $1)sql";

constexpr const char* kInsertSimple = R"sql(
INSERT INTO abtest.metrics (name, kind, source, user_column, time_column, value_column, aggregation,
                            conversion_window, cap, cap_percentile, description, higher_is_better)
SELECT d->>'name', 'simple', (d->>'source')::oid::regclass, d->>'user_column', d->>'time_column',
       d->>'value_column', d->>'aggregation', (d->>'conversion_window')::interval, (d->>'cap')::float8,
       (d->>'cap_percentile')::float8, d->>'description', (d->>'higher_is_better')::boolean
  FROM (SELECT $1::jsonb AS d) doc)sql";

constexpr const char* kInsertRatio = R"sql(
INSERT INTO abtest.metrics (name, kind, numerator, denominator, description, higher_is_better)
SELECT d->>'name', 'ratio', d->>'numerator', d->>'denominator', d->>'description',
       (d->>'higher_is_better')::boolean
  FROM (SELECT $1::jsonb AS d) doc)sql";

// Who depends on a metric: the experiments it is attached to, the ratios it is part of.
constexpr const char* kDependents = R"sql(
SELECT concat_ws('; ',
         (SELECT 'attached to ' || string_agg(quote_ident(e.name), ', ' ORDER BY e.name)
            FROM abtest.experiment_metrics em JOIN abtest.experiments e ON e.id = em.experiment_id
           WHERE em.metric = $1),
         (SELECT 'part of ratio metric ' || string_agg(quote_ident(r.name), ', ' ORDER BY r.name)
            FROM abtest.metrics r WHERE r.numerator = $1 OR r.denominator = $1))
 WHERE EXISTS (SELECT FROM abtest.experiment_metrics WHERE metric = $1)
    OR EXISTS (SELECT FROM abtest.metrics WHERE numerator = $1 OR denominator = $1))sql";

constexpr const char* kAttach = R"sql(
INSERT INTO abtest.experiment_metrics (experiment_id, metric, role) VALUES ($1::uuid, $2, $3)
ON CONFLICT (experiment_id, metric) DO UPDATE SET role = excluded.role)sql";

constexpr const char* kAttached = R"sql(
SELECT coalesce(jsonb_agg(jsonb_build_array(metric, role)
                ORDER BY array_position(ARRAY['goal', 'guardrail', 'secondary'], role), metric), '[]')::text
  FROM abtest.experiment_metrics WHERE experiment_id = $1::uuid)sql";

[[noreturn]] void RefuseUnknown(const std::string& name) {
  throw Error(ErrorKind::kUndefinedObject, "metric " + Quoted(name) + " does not exist", {},
              "List the metrics with SELECT name FROM abtest.metric_overview.");
}

std::optional<std::string> OptionalString(const Json& doc, const char* key) {
  const Json& value = doc[key];
  if (value.is_string()) return value.get<std::string>();
  return std::nullopt;
}

std::optional<double> OptionalNumber(const Json& doc, const char* key) {
  const Json& value = doc[key];
  if (value.is_number()) return value.get<double>();
  return std::nullopt;
}

Json LoadDocument(const std::string& name) {
  std::optional<std::string> text = catalog::QueryAsOwner(kMetricDocument, {name.c_str()});
  if (!text) RefuseUnknown(name);
  return Json::parse(*text);
}

SimpleMetric SimpleFrom(const Json& doc) {
  SimpleMetric metric;
  metric.name = doc["name"].get<std::string>();
  metric.source = doc["source"].get<Oid>();
  metric.user_column = doc["user_column"].get<std::string>();
  metric.time_column = doc["time_column"].get<std::string>();
  metric.value_column = OptionalString(doc, "value_column");
  metric.aggregation = ParseAggregation(metric.name, doc["aggregation"].get<std::string>());
  metric.conversion_window = OptionalString(doc, "conversion_window");
  metric.cap = OptionalNumber(doc, "cap");
  metric.cap_percentile = OptionalNumber(doc, "cap_percentile");
  return metric;
}

enum class ColumnUse { kUser, kTime, kValue };

// The column's quoted name, after checking that it exists and that its type fits its use.
std::string ResolveColumn(const SimpleMetric& metric, const std::string& source, const std::string& column,
                          ColumnUse use) {
  const char* use_name = use == ColumnUse::kUser ? "user_column" : use == ColumnUse::kTime ? "time_column" : "value_column";
  Oid relation = metric.source;
  AttrNumber number = PgCall([&] { return get_attnum(relation, column.c_str()); });
  if (number <= 0)
    throw Error(ErrorKind::kUndefinedColumn,
                "column " + Quoted(column) + " of " + source + " does not exist (" + use_name + " of metric " +
                    Quoted(metric.name) + ")",
                {}, "Name a column of the table or view, or write a view that computes it.");
  Oid base = PgCall([&] { return getBaseType(get_atttype(relation, number)); });
  char type_kind = PgCall([&] { return get_typtype(base); });
  bool array = PgCall([&] { return type_is_array(base); });
  bool fits = false;
  const char* wanted = "";
  switch (use) {
    case ColumnUse::kUser:
      fits = !array && (type_kind == TYPTYPE_BASE || type_kind == TYPTYPE_ENUM);
      wanted = "a scalar type (it is compared as text with abtest.assignments.user_id)";
      break;
    case ColumnUse::kTime:
      fits = base == TIMESTAMPTZOID || base == TIMESTAMPOID;
      wanted = "timestamptz or timestamp";
      break;
    case ColumnUse::kValue:
      fits = base == INT2OID || base == INT4OID || base == INT8OID || base == FLOAT4OID || base == FLOAT8OID ||
             base == NUMERICOID;
      wanted = "a number (smallint, integer, bigint, real, double precision or numeric)";
      break;
  }
  if (!fits) {
    const char* type_name = PgCall([&] { return format_type_be(base); });
    throw Error(ErrorKind::kDatatypeMismatch,
                "column " + Quoted(column) + " of " + source + " is of type " + type_name + ", but the " + use_name +
                    " of metric " + Quoted(metric.name) + " must be " + wanted,
                {}, "Write a view that converts the column, and define the metric over the view.");
  }
  return PgCall([&] { return quote_identifier(column.c_str()); });
}

}  // namespace

std::string RelationName(Oid relation) {
  const char* name = PgCall([&]() -> const char* {
    char* rel = get_rel_name(relation);
    if (rel == nullptr) return nullptr;
    return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relation)), rel);
  });
  if (name == nullptr) return "(OID " + std::to_string(relation) + ")";
  return name;
}

ResolvedSource ResolveSource(const SimpleMetric& metric) {
  Oid relation = metric.source;
  char kind = PgCall([&] { return get_rel_relkind(relation); });
  if (kind == '\0')
    throw Error(ErrorKind::kUndefinedTable,
                "the source of metric " + Quoted(metric.name) + " (OID " + std::to_string(relation) +
                    ") no longer exists",
                {}, "Drop the metric with ab_drop_metric and define it again over an existing table or view.");
  std::string source = RelationName(relation);
  if (kind != RELKIND_RELATION && kind != RELKIND_VIEW && kind != RELKIND_MATVIEW && kind != RELKIND_FOREIGN_TABLE &&
      kind != RELKIND_PARTITIONED_TABLE)
    throw Error(ErrorKind::kWrongObjectType,
                "the source " + source + " of metric " + Quoted(metric.name) + " is not a table or view");
  ResolvedSource resolved;
  resolved.relation = source;
  resolved.user_column = ResolveColumn(metric, source, metric.user_column, ColumnUse::kUser);
  resolved.time_column = ResolveColumn(metric, source, metric.time_column, ColumnUse::kTime);
  if (metric.value_column)
    resolved.value_column = ResolveColumn(metric, source, *metric.value_column, ColumnUse::kValue);
  return resolved;
}

void DefineSimple(const SimpleMetric& metric, const std::optional<std::string>& description, bool higher_is_better) {
  ResolveSource(metric);
  if (catalog::QueryAsOwner(kMetricDocument, {metric.name.c_str()}))
    throw Error(ErrorKind::kDuplicateObject, "metric " + Quoted(metric.name) + " already exists", {},
                "Drop it first with ab_drop_metric (after detaching it from its experiments).");
  Json doc = {{"name", metric.name},
              {"source", std::to_string(metric.source)},
              {"user_column", metric.user_column},
              {"time_column", metric.time_column},
              {"aggregation", AggregationName(metric.aggregation)},
              {"higher_is_better", higher_is_better}};
  if (metric.value_column) doc["value_column"] = *metric.value_column;
  if (metric.conversion_window) doc["conversion_window"] = *metric.conversion_window;
  if (metric.cap) doc["cap"] = *metric.cap;
  if (metric.cap_percentile) doc["cap_percentile"] = *metric.cap_percentile;
  if (description) doc["description"] = *description;
  catalog::QueryAsOwner(kInsertSimple, {doc.dump().c_str()});
}

void DefineRatio(const std::string& name, const std::string& numerator, const std::string& denominator,
                 const std::optional<std::string>& description, bool higher_is_better) {
  for (const std::string& part : {numerator, denominator}) {
    Json doc = LoadDocument(part);
    if (doc["kind"] != "simple")
      throw Error(ErrorKind::kInvalidParameter,
                  "the numerator and denominator of ratio metric " + Quoted(name) + " must be simple metrics, and " +
                      Quoted(part) + " is a ratio metric");
  }
  if (catalog::QueryAsOwner(kMetricDocument, {name.c_str()}))
    throw Error(ErrorKind::kDuplicateObject, "metric " + Quoted(name) + " already exists", {},
                "Drop it first with ab_drop_metric (after detaching it from its experiments).");
  Json doc = {{"name", name}, {"numerator", numerator}, {"denominator", denominator},
              {"higher_is_better", higher_is_better}};
  if (description) doc["description"] = *description;
  catalog::QueryAsOwner(kInsertRatio, {doc.dump().c_str()});
}

void Drop(const std::string& name) {
  LoadDocument(name);
  if (std::optional<std::string> dependents = catalog::QueryAsOwner(kDependents, {name.c_str()}))
    throw Error(ErrorKind::kDependentObjects, "metric " + Quoted(name) + " is still in use", "It is " + *dependents + ".",
                "Detach it with ab_detach_metric, or drop the ratio metrics first.");
  catalog::QueryAsOwner("DELETE FROM abtest.metrics WHERE name = $1", {name.c_str()});
}

Metric Load(const std::string& name) {
  Json doc = LoadDocument(name);
  Metric metric;
  metric.name = name;
  metric.description = OptionalString(doc, "description").value_or("");
  metric.higher_is_better = doc["higher_is_better"].get<bool>();
  if (doc["kind"] == "ratio") {
    metric.ratio = true;
    metric.simple = SimpleFrom(LoadDocument(doc["numerator"].get<std::string>()));
    metric.denominator = SimpleFrom(LoadDocument(doc["denominator"].get<std::string>()));
  } else {
    metric.simple = SimpleFrom(doc);
  }
  return metric;
}

void Attach(const std::string& experiment_id, const std::string& metric, MetricRole role) {
  LoadDocument(metric);
  catalog::QueryAsOwner(kAttach, {experiment_id.c_str(), metric.c_str(), MetricRoleName(role)});
}

void Detach(const std::string& experiment_id, const std::string& experiment, const std::string& metric) {
  LoadDocument(metric);
  if (!catalog::QueryAsOwner("DELETE FROM abtest.experiment_metrics WHERE experiment_id = $1::uuid AND metric = $2 "
                             "RETURNING metric",
                             {experiment_id.c_str(), metric.c_str()}))
    throw Error(ErrorKind::kUndefinedObject,
                "metric " + Quoted(metric) + " is not attached to experiment " + Quoted(experiment), {},
                "See SELECT name, attached_to FROM abtest.metric_overview.");
}

std::vector<Attached> AttachedMetrics(const std::string& experiment_id) {
  Json list = Json::parse(catalog::QueryAsOwner(kAttached, {experiment_id.c_str()}).value_or("[]"));
  std::vector<Attached> attached;
  for (const Json& pair : list) {
    std::string metric = pair[0].get<std::string>();
    attached.push_back({metric, ParseMetricRole(metric, pair[1].get<std::string>())});
  }
  return attached;
}

}  // namespace abtest::glue::outcomes
