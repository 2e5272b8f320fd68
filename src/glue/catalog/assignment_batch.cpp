#include "glue/catalog/assignment_batch.hpp"

#include "glue/shmem/shared_state.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/uuid.h"
}

namespace abtest::glue::assignment_batch {
namespace {

// The rows of one batch, one per user (within a batch the last record of a user
// wins), with their branch names; experiments deleted meanwhile have no branches.
#define ABTEST_BATCH_ROWS                                                                                \
  "INSERT INTO abtest.assignments AS a (experiment_id, user_id, branch, assigned_at) "                     \
  "SELECT DISTINCT ON (r.experiment_id, r.user_id) r.experiment_id, r.user_id, b.name, r.assigned_at "   \
  "  FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[]) WITH ORDINALITY "                   \
  "       AS r(experiment_id, user_id, position, assigned_at, ord) "                                      \
  "  JOIN abtest.branches b ON b.experiment_id = r.experiment_id AND b.position = r.position "            \
  " ORDER BY r.experiment_id, r.user_id, r.ord DESC "

// First assignments never overwrite (another session's, or a former server
// lifetime's, stays); reassignments do.
constexpr const char* kInsertSql = ABTEST_BATCH_ROWS "ON CONFLICT (experiment_id, user_id) DO NOTHING";
constexpr const char* kReassignSql = ABTEST_BATCH_ROWS
    "ON CONFLICT (experiment_id, user_id) DO UPDATE SET branch = excluded.branch, assigned_at = excluded.assigned_at";

// Whether the record is still to be written: not forgotten, its experiment not cleared.
bool Live(const QueuedAssignment* record) { return !record->forgotten && SlotEpoch(record->slot) == record->epoch; }

void WriteKind(char* batch, Size bytes, bool reassigned) {
  auto wanted = [reassigned](const QueuedAssignment& record) { return record.reassigned == reassigned && Live(&record); };
  int count = 0;
  ForEachRecordIn(batch, bytes, [&](QueuedAssignment& record) { count += wanted(record); });
  if (count == 0) return;

  Datum* experiments = static_cast<Datum*>(palloc(sizeof(Datum) * count));
  Datum* users = static_cast<Datum*>(palloc(sizeof(Datum) * count));
  Datum* positions = static_cast<Datum*>(palloc(sizeof(Datum) * count));
  Datum* times = static_cast<Datum*>(palloc(sizeof(Datum) * count));
  int i = 0;
  ForEachRecordIn(batch, bytes, [&](QueuedAssignment& record) {
    if (!wanted(record)) return;
    experiments[i] = UUIDPGetDatum(&record.experiment);
    users[i] = PointerGetDatum(
        cstring_to_text_with_len(reinterpret_cast<char*>(&record + 1), static_cast<int>(record.user_length)));
    positions[i] = Int32GetDatum(record.branch);
    times[i] = TimestampTzGetDatum(record.assigned_at);
    ++i;
  });
  Oid types[4] = {UUIDARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID};
  Datum values[4] = {
      PointerGetDatum(construct_array(experiments, count, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR)),
      PointerGetDatum(construct_array(users, count, TEXTOID, -1, false, TYPALIGN_INT)),
      PointerGetDatum(construct_array(positions, count, INT4OID, 4, true, TYPALIGN_INT)),
      PointerGetDatum(construct_array(times, count, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
  };
  int rc = SPI_execute_with_args(reassigned ? kReassignSql : kInsertSql, 4, types, values, nullptr, false, 0);
  if (rc != SPI_OK_INSERT) elog(ERROR, "abtest: writing assignments failed: %s", SPI_result_code_string(rc));
}

}  // namespace

void WriteRecords(char* batch, Size bytes) {
  WriteKind(batch, bytes, false);
  WriteKind(batch, bytes, true);
}

}  // namespace abtest::glue::assignment_batch
