// nlohmann first: PostgreSQL's port.h redefines snprintf, which <cstdio> then trips on.
#include <nlohmann/json.hpp>

#include "glue/worker/query_persistence.hpp"

#include <algorithm>

#include "core/latency_histogram.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/shmem/shared_state.hpp"
#include "glue/worker/persistence_columns.hpp"

namespace abtest::glue::query_metrics {
namespace {

using persistence::Column;
using persistence::FloatFromHex;
using persistence::IntegerOr0;
using persistence::NewColumn;

constexpr const char* kRead =
    "SELECT coalesce(jsonb_agg(jsonb_build_array(m.experiment_id::text, b.position, m.queryid, m.query, m.calls, "
    "  m.failures, " ABTEST_FLOAT_HEX("m.latency_sum") ", " ABTEST_FLOAT_HEX("m.latency_mean") ", "
    ABTEST_FLOAT_HEX("m.latency_m2") ", " ABTEST_FLOAT_HEX("m.log_latency_sum") ", "
    ABTEST_FLOAT_HEX("m.log_latency_mean") ", " ABTEST_FLOAT_HEX("m.log_latency_m2") ", "
    ABTEST_FLOAT_HEX("m.min_latency_ms") ", " ABTEST_FLOAT_HEX("m.max_latency_ms") ", m.latency_histogram, "
    ABTEST_FLOAT_HEX("m.usage") ")), '[]') "
    "FROM abtest.query_metrics m JOIN abtest.branches b ON b.experiment_id = m.experiment_id AND b.name = m.branch";

// Changed entries, joined to the branches by position (an experiment deleted meanwhile
// has none, so its rows are dropped). An entry without text keeps the row's.
constexpr const char* kWrite =
    "INSERT INTO abtest.query_metrics AS m (experiment_id, branch, queryid, query, calls, failures, latency_sum, "
    "  latency_mean, latency_m2, log_latency_sum, log_latency_mean, log_latency_m2, min_latency_ms, "
    "  max_latency_ms, latency_histogram, usage, updated_at) "
    "SELECT r.e, b.name, r.q, r.t, r.c, r.f, r.s, r.mean, r.m2, r.ls, r.lmean, r.lm2, r.lo, r.hi, r.h::bigint[], "
    "       r.u, now() "
    "  FROM unnest($1::uuid[], $2::int[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::float8[], "
    "              $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::float8[], $13::float8[], "
    "              $14::float8[], $15::text[], $16::float8[]) "
    "       AS r(e, p, q, t, c, f, s, mean, m2, ls, lmean, lm2, lo, hi, h, u) "
    "  JOIN abtest.branches b ON b.experiment_id = r.e AND b.position = r.p "
    "ON CONFLICT (experiment_id, branch, queryid) DO UPDATE SET query = coalesce(excluded.query, m.query), "
    "  calls = excluded.calls, failures = excluded.failures, latency_sum = excluded.latency_sum, "
    "  latency_mean = excluded.latency_mean, latency_m2 = excluded.latency_m2, "
    "  log_latency_sum = excluded.log_latency_sum, log_latency_mean = excluded.log_latency_mean, "
    "  log_latency_m2 = excluded.log_latency_m2, min_latency_ms = excluded.min_latency_ms, "
    "  max_latency_ms = excluded.max_latency_ms, latency_histogram = excluded.latency_histogram, "
    "  usage = excluded.usage, updated_at = excluded.updated_at";

// The rows of entries no longer in shared memory (evicted): every key of the database
// is the parameter.
constexpr const char* kDeleteEvicted =
    "DELETE FROM abtest.query_metrics m "
    " WHERE NOT EXISTS (SELECT FROM unnest($1::uuid[], $2::int[], $3::bigint[]) AS k(e, p, q) "
    "                     JOIN abtest.branches b ON b.experiment_id = k.e AND b.position = k.p "
    "                    WHERE k.e = m.experiment_id AND b.name = m.branch AND k.q = m.queryid)";

void DeleteEvicted(const QueryKeyRow* keys, int count) {
  constexpr int kColumns = 3;
  Column columns[kColumns];
  for (Column& column : columns) column = NewColumn(count);
  for (int i = 0; i < count; ++i) {
    columns[0].values[i] = UUIDPGetDatum(&keys[i].experiment);
    columns[1].values[i] = Int32GetDatum(keys[i].position);
    columns[2].values[i] = Int64GetDatum(static_cast<std::int64_t>(keys[i].queryid));
  }
  const Oid element_types[kColumns] = {UUIDOID, INT4OID, INT8OID};
  persistence::ExecuteColumns(kDeleteEvicted, SPI_OK_DELETE, "evicted query metrics", columns, element_types, kColumns,
                              count);
}

void WriteChanged(Oid database, const WriteWindow& window) {
  int count = 0;
  QuerySnapshot* rows = persistence::SnapshotAll<QuerySnapshot>(
      [&](QuerySnapshot* out, int capacity) { return Snapshot(database, nullptr, true, window.since, out, capacity); },
      &count);
  if (count == 0) return;
  constexpr int kColumns = 16;
  Column columns[kColumns];
  for (Column& column : columns) column = NewColumn(count);
  std::uint64_t histogram[kLatencyBuckets];
  for (int i = 0; i < count; ++i) {
    const QuerySnapshot& row = rows[i];
    const QueryLatency& q = row.latency;
    columns[0].values[i] = UUIDPGetDatum(&rows[i].experiment);
    columns[1].values[i] = Int32GetDatum(row.position);
    columns[2].values[i] = Int64GetDatum(static_cast<std::int64_t>(row.queryid));
    columns[3].values[i] = CStringGetTextDatum(row.query);
    columns[3].nulls[i] = row.query_len == 0;
    columns[4].values[i] = Int64GetDatum(static_cast<std::int64_t>(q.calls()));
    columns[5].values[i] = Int64GetDatum(static_cast<std::int64_t>(q.failures));
    columns[6].values[i] = Float8GetDatum(q.latency.sum);
    columns[7].values[i] = Float8GetDatum(q.latency.mean);
    columns[8].values[i] = Float8GetDatum(q.latency.m2);
    columns[9].values[i] = Float8GetDatum(q.log_latency.sum);
    columns[10].values[i] = Float8GetDatum(q.log_latency.mean);
    columns[11].values[i] = Float8GetDatum(q.log_latency.m2);
    columns[12].values[i] = Float8GetDatum(q.min_ms);
    columns[13].values[i] = Float8GetDatum(q.max_ms);
    columns[12].nulls[i] = columns[13].nulls[i] = q.successes() == 0;
    q.histogram.Widen(histogram);
    columns[14].values[i] = persistence::HistogramText(histogram);
    columns[15].values[i] = Float8GetDatum(row.usage);
  }
  const Oid element_types[kColumns] = {UUIDOID,   INT4OID,   INT8OID,   TEXTOID,   INT8OID,   INT8OID,
                                       FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID,
                                       FLOAT8OID, FLOAT8OID, TEXTOID,   FLOAT8OID};
  persistence::ExecuteColumns(kWrite, SPI_OK_INSERT, "query metrics", columns, element_types, kColumns, count);
}

}  // namespace

void ReadPersisted(std::vector<PersistedQuery>& rows) {
  if (!catalog::HasQueryMetricsCatalog()) return;
  nlohmann::json persisted = nlohmann::json::parse(catalog::QueryAsOwner(kRead, {}).value_or("[]"));
  std::uint64_t histogram[kLatencyBuckets];
  for (const auto& row : persisted) {
    PersistedQuery query;
    query.experiment = UuidFromText(row.at(0).get<std::string>());
    query.position = row.at(1).get<int>();
    query.queryid = static_cast<std::uint64_t>(IntegerOr0(row.at(2)));
    if (row.at(3).is_string()) query.query = row.at(3).get<std::string>();
    auto calls = static_cast<std::uint64_t>(std::max<std::int64_t>(0, IntegerOr0(row.at(4))));
    QueryLatency& q = query.latency;
    q.failures = std::min(calls, static_cast<std::uint64_t>(std::max<std::int64_t>(0, IntegerOr0(row.at(5)))));
    q.latency.count = q.log_latency.count = calls - q.failures;
    q.latency.sum = FloatFromHex(row.at(6));
    q.latency.mean = FloatFromHex(row.at(7));
    q.latency.m2 = FloatFromHex(row.at(8));
    q.log_latency.sum = FloatFromHex(row.at(9));
    q.log_latency.mean = FloatFromHex(row.at(10));
    q.log_latency.m2 = FloatFromHex(row.at(11));
    q.min_ms = FloatFromHex(row.at(12));
    q.max_ms = FloatFromHex(row.at(13));
    std::fill(std::begin(histogram), std::end(histogram), 0);
    const nlohmann::json& counts = row.at(14);
    if (counts.is_array())
      for (std::size_t i = 0; i < counts.size() && i < static_cast<std::size_t>(kLatencyBuckets); ++i)
        histogram[i] = static_cast<std::uint64_t>(std::max<std::int64_t>(0, IntegerOr0(counts[i])));
    q.histogram.Merge(histogram);
    query.usage = FloatFromHex(row.at(15));
    rows.push_back(std::move(query));
  }
}

void LockPersistedForClear() {
  if (catalog::HasQueryMetricsCatalog())
    catalog::QueryAsOwner("LOCK TABLE abtest.query_metrics IN SHARE ROW EXCLUSIVE MODE", {});
}

void DeletePersisted(const std::string& experiment_id) {
  if (!catalog::HasQueryMetricsCatalog()) return;
  const char* id = experiment_id.empty() ? nullptr : experiment_id.c_str();
  catalog::QueryAsOwner("DELETE FROM abtest.query_metrics WHERE $1::uuid IS NULL OR experiment_id = $1::uuid", {id});
}

WriteWindow WritePersisted(Oid database) {
  WriteWindow window{false, 0, 0};
  if (!OidIsValid(catalog::AbtestRelation("query_metrics"))) return window;  // an older catalog
  // Before the window and the snapshots: a clear holding its lock has finished with
  // shared memory by the time this returns (see LockPersistedForClear).
  if (SPI_execute("LOCK TABLE abtest.query_metrics IN ROW EXCLUSIVE MODE", false, 0) != SPI_OK_UTILITY)
    elog(ERROR, "abtest flush worker: could not lock abtest.query_metrics");
  window = BeginWrite(database);
  if (!window.valid) return window;
  // The keys are copied before EvictedSince is read: see query_metrics.hpp.
  int key_count = 0;
  QueryKeyRow* keys = persistence::SnapshotAll<QueryKeyRow>(
      [&](QueryKeyRow* out, int capacity) { return SnapshotKeys(database, out, capacity); }, &key_count);
  if (EvictedSince(window)) DeleteEvicted(keys, key_count);
  WriteChanged(database, window);
  return window;
}

}  // namespace abtest::glue::query_metrics
