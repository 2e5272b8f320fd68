// nlohmann first: PostgreSQL's port.h redefines snprintf, which <cstdio> then trips on.
#include <nlohmann/json.hpp>

#include "glue/worker/metrics_persistence.hpp"

#include "core/error.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/shmem/shared_state.hpp"
#include "glue/worker/persistence_columns.hpp"
#include "glue/worker/query_persistence.hpp"

namespace abtest::glue::metrics {
namespace {

using persistence::Column;
using persistence::FloatFromHex;
using persistence::IntegerOr0;
using persistence::NewColumn;

// Floats travel as hex (ABTEST_FLOAT_HEX), timestamps as microseconds since 2000-01-01
// (PostgreSQL's own TimestampTz).
#define ABTEST_MICROSECONDS(column) \
  "(extract(epoch FROM " column ") * 1000000)::bigint - 946684800000000"

constexpr const char* kReadBranches =
    "SELECT coalesce(jsonb_agg(jsonb_build_array(m.experiment_id::text, b.position, m.query_count, "
    "  m.success_count, " ABTEST_FLOAT_HEX("m.latency_sum") ", " ABTEST_FLOAT_HEX("m.latency_mean") ", "
    ABTEST_FLOAT_HEX("m.latency_m2") ", " ABTEST_FLOAT_HEX("m.min_latency_ms") ", "
    ABTEST_FLOAT_HEX("m.max_latency_ms") ", " ABTEST_MICROSECONDS("m.first_query") ", "
    ABTEST_MICROSECONDS("m.last_query") ", m.latency_histogram, m.exposures, m.assigned_users, "
    ABTEST_FLOAT_HEX("m.sequential_p_value") ")), '[]') "
    "FROM abtest.branch_metrics m JOIN abtest.branches b ON b.experiment_id = m.experiment_id AND b.name = m.branch";

constexpr const char* kReadEvents =
    "SELECT coalesce(jsonb_agg(jsonb_build_array(m.experiment_id::text, b.position, m.event_name, m.count, "
    ABTEST_FLOAT_HEX("m.sum") ", " ABTEST_FLOAT_HEX("m.mean") ", " ABTEST_FLOAT_HEX("m.m2") ")), '[]') "
    "FROM abtest.event_metrics m JOIN abtest.branches b ON b.experiment_id = m.experiment_id AND b.name = m.branch";

// The rows' statements: the shared-memory snapshot as arrays, joined to the branches
// by position (an experiment deleted meanwhile has none, so its rows are dropped).
constexpr const char* kWriteBranches =
    "INSERT INTO abtest.branch_metrics AS m (experiment_id, branch, query_count, success_count, latency_sum, "
    "  latency_mean, latency_m2, min_latency_ms, max_latency_ms, first_query, last_query, latency_histogram, "
    "  exposures, assigned_users, sequential_p_value, updated_at) "
    "SELECT r.e, b.name, r.q, r.s, r.sum, r.mean, r.m2, r.lo, r.hi, r.f, r.l, r.h::bigint[], r.x, r.a, r.sp, now() "
    "  FROM unnest($1::uuid[], $2::int[], $3::bigint[], $4::bigint[], $5::float8[], $6::float8[], $7::float8[], "
    "              $8::float8[], $9::float8[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::bigint[], "
    "              $14::bigint[], $15::float8[]) AS r(e, p, q, s, sum, mean, m2, lo, hi, f, l, h, x, a, sp) "
    "  JOIN abtest.branches b ON b.experiment_id = r.e AND b.position = r.p "
    "ON CONFLICT (experiment_id, branch) DO UPDATE SET query_count = excluded.query_count, "
    "  success_count = excluded.success_count, latency_sum = excluded.latency_sum, "
    "  latency_mean = excluded.latency_mean, latency_m2 = excluded.latency_m2, "
    "  min_latency_ms = excluded.min_latency_ms, max_latency_ms = excluded.max_latency_ms, "
    "  first_query = excluded.first_query, last_query = excluded.last_query, "
    "  latency_histogram = excluded.latency_histogram, exposures = excluded.exposures, "
    "  assigned_users = excluded.assigned_users, sequential_p_value = excluded.sequential_p_value, "
    "  updated_at = excluded.updated_at";

constexpr const char* kWriteEvents =
    "INSERT INTO abtest.event_metrics AS m (experiment_id, branch, event_name, count, sum, mean, m2, updated_at) "
    "SELECT r.e, b.name, r.n, r.c, r.s, r.mean, r.m2, now() "
    "  FROM unnest($1::uuid[], $2::int[], $3::text[], $4::bigint[], $5::float8[], $6::float8[], $7::float8[]) "
    "       AS r(e, p, n, c, s, mean, m2) "
    "  JOIN abtest.branches b ON b.experiment_id = r.e AND b.position = r.p "
    "ON CONFLICT (experiment_id, branch, event_name) DO UPDATE SET count = excluded.count, sum = excluded.sum, "
    "  mean = excluded.mean, m2 = excluded.m2, updated_at = excluded.updated_at";

void WriteBranches(Oid database) {
  int count = 0;
  BranchSnapshot* rows = persistence::SnapshotAll<BranchSnapshot>(
      [&](BranchSnapshot* out, int capacity) { return SnapshotBranches(database, nullptr, out, capacity); }, &count);
  if (count == 0) return;
  constexpr int kColumns = 15;
  Column columns[kColumns];
  for (Column& column : columns) column = NewColumn(count);
  for (int i = 0; i < count; ++i) {
    const BranchSnapshot& row = rows[i];
    const QueryCounters& q = row.queries;
    bool empty = q.queries() == 0;
    columns[0].values[i] = UUIDPGetDatum(&rows[i].experiment);
    columns[1].values[i] = Int32GetDatum(row.position);
    columns[2].values[i] = Int64GetDatum(static_cast<std::int64_t>(q.queries()));
    columns[3].values[i] = Int64GetDatum(static_cast<std::int64_t>(q.successes));
    columns[4].values[i] = Float8GetDatum(q.latency.sum);
    columns[5].values[i] = Float8GetDatum(q.latency.mean);
    columns[6].values[i] = Float8GetDatum(q.latency.m2);
    columns[7].values[i] = Float8GetDatum(q.min_latency_ms);
    columns[8].values[i] = Float8GetDatum(q.max_latency_ms);
    columns[9].values[i] = TimestampTzGetDatum(q.first_query);
    columns[10].values[i] = TimestampTzGetDatum(q.last_query);
    for (int c = 7; c <= 10; ++c) columns[c].nulls[i] = empty;
    columns[11].values[i] = persistence::HistogramText(row.histogram);
    columns[12].values[i] = Int64GetDatum(static_cast<std::int64_t>(row.exposures));
    columns[13].values[i] = Int64GetDatum(static_cast<std::int64_t>(row.assigned_users));
    columns[14].values[i] = Float8GetDatum(row.sequential_p);
  }
  const Oid element_types[kColumns] = {UUIDOID,   INT4OID,   INT8OID,        INT8OID,        FLOAT8OID,
                                       FLOAT8OID, FLOAT8OID, FLOAT8OID,      FLOAT8OID,      TIMESTAMPTZOID,
                                       TIMESTAMPTZOID, TEXTOID, INT8OID, INT8OID, FLOAT8OID};
  persistence::ExecuteColumns(kWriteBranches, SPI_OK_INSERT, "branch metrics", columns, element_types, kColumns,
                              count);
}

void WriteEvents(Oid database) {
  int count = 0;
  EventSnapshot* rows = persistence::SnapshotAll<EventSnapshot>(
      [&](EventSnapshot* out, int capacity) { return SnapshotEvents(database, nullptr, out, capacity); }, &count);
  if (count == 0) return;
  constexpr int kColumns = 7;
  Column columns[kColumns];
  for (Column& column : columns) column = NewColumn(count);
  for (int i = 0; i < count; ++i) {
    const EventSnapshot& row = rows[i];
    columns[0].values[i] = UUIDPGetDatum(&rows[i].experiment);
    columns[1].values[i] = Int32GetDatum(row.position);
    columns[2].values[i] = CStringGetTextDatum(row.name);
    columns[3].values[i] = Int64GetDatum(static_cast<std::int64_t>(row.moments.count));
    columns[4].values[i] = Float8GetDatum(row.moments.sum);
    columns[5].values[i] = Float8GetDatum(row.moments.mean);
    columns[6].values[i] = Float8GetDatum(row.moments.m2);
  }
  const Oid element_types[kColumns] = {UUIDOID, INT4OID, TEXTOID, INT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID};
  persistence::ExecuteColumns(kWriteEvents, SPI_OK_INSERT, "event metrics", columns, element_types, kColumns, count);
}

}  // namespace

void ReadPersisted(std::vector<PersistedBranch>& branches, std::vector<PersistedEvent>& events) {
  nlohmann::json branch_rows = nlohmann::json::parse(catalog::QueryAsOwner(kReadBranches, {}).value_or("[]"));
  for (const auto& row : branch_rows) {
    PersistedBranch branch;
    branch.experiment = UuidFromText(row.at(0).get<std::string>());
    branch.position = row.at(1).get<int>();
    QueryCounters& q = branch.queries;
    q.latency.count = static_cast<std::uint64_t>(IntegerOr0(row.at(2)));
    q.successes = static_cast<std::uint64_t>(IntegerOr0(row.at(3)));
    q.latency.sum = FloatFromHex(row.at(4));
    q.latency.mean = FloatFromHex(row.at(5));
    q.latency.m2 = FloatFromHex(row.at(6));
    q.min_latency_ms = FloatFromHex(row.at(7));
    q.max_latency_ms = FloatFromHex(row.at(8));
    q.first_query = IntegerOr0(row.at(9));
    q.last_query = IntegerOr0(row.at(10));
    const nlohmann::json& histogram = row.at(11);
    if (histogram.is_array())
      for (std::size_t i = 0; i < histogram.size() && i < branch.histogram.size(); ++i)
        branch.histogram[i] = static_cast<std::uint64_t>(IntegerOr0(histogram[i]));
    branch.exposures = static_cast<std::uint64_t>(IntegerOr0(row.at(12)));
    branch.assigned_users = static_cast<std::uint64_t>(IntegerOr0(row.at(13)));
    branch.sequential_p = row.at(14).is_null() ? 1 : FloatFromHex(row.at(14));
    branches.push_back(branch);
  }
  nlohmann::json event_rows = nlohmann::json::parse(catalog::QueryAsOwner(kReadEvents, {}).value_or("[]"));
  for (const auto& row : event_rows) {
    PersistedEvent event;
    event.experiment = UuidFromText(row.at(0).get<std::string>());
    event.position = row.at(1).get<int>();
    event.name = row.at(2).get<std::string>();
    event.moments.count = static_cast<std::uint64_t>(IntegerOr0(row.at(3)));
    event.moments.sum = FloatFromHex(row.at(4));
    event.moments.mean = FloatFromHex(row.at(5));
    event.moments.m2 = FloatFromHex(row.at(6));
    events.push_back(std::move(event));
  }
}

void LockPersistedForClear() {
  catalog::QueryAsOwner("LOCK TABLE abtest.branch_metrics, abtest.event_metrics IN SHARE ROW EXCLUSIVE MODE", {});
  query_metrics::LockPersistedForClear();  // in the worker's order: after these two
}

void DeletePersisted(const std::string& experiment_id) {
  const char* id = experiment_id.empty() ? nullptr : experiment_id.c_str();
  catalog::QueryAsOwner("DELETE FROM abtest.branch_metrics WHERE $1::uuid IS NULL OR experiment_id = $1::uuid", {id});
  catalog::QueryAsOwner("DELETE FROM abtest.event_metrics WHERE $1::uuid IS NULL OR experiment_id = $1::uuid", {id});
  query_metrics::DeletePersisted(experiment_id);
}

void WritePersisted(Oid database) {
  // Before the snapshot: a clear holding its lock has finished with shared memory by
  // the time this returns (see LockPersistedForClear).
  if (SPI_execute("LOCK TABLE abtest.branch_metrics, abtest.event_metrics IN ROW EXCLUSIVE MODE", false, 0) !=
      SPI_OK_UTILITY)
    elog(ERROR, "abtest flush worker: could not lock the metrics tables");
  WriteBranches(database);
  WriteEvents(database);
}

}  // namespace abtest::glue::metrics
