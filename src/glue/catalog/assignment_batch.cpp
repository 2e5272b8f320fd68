#include "glue/catalog/assignment_batch.hpp"

#include <deque>

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

// The experiments of a batch's slots, each looked up once (a batch holds few).
class BatchExperiments {
 public:
  // The record's experiment, or nullptr when it is not to be written: forgotten, or
  // its experiment cleared or deleted since it was queued.
  const pg_uuid_t* Of(const QueuedAssignment& record) {
    if (record.forgotten) return nullptr;
    for (const Known& known : known_)
      if (known.slot == record.slot && known.epoch == record.epoch) return known.live ? &known.experiment : nullptr;
    Known known{record.slot, record.epoch, false, {}};
    known.live = SlotExperimentAt(record.slot, record.epoch, &known.experiment);
    known_.push_back(known);
    return known.live ? &known_.back().experiment : nullptr;
  }

 private:
  struct Known {
    std::int32_t slot;
    std::uint32_t epoch;
    bool live;
    pg_uuid_t experiment;
  };
  std::deque<Known> known_;  // stable addresses: the arrays point into it
};

void WriteKind(char* batch, Size bytes, bool reassigned) {
  BatchExperiments experiment_of;
  // The record's experiment when it is to be written by this statement, else nullptr.
  auto wanted = [&](const QueuedAssignment& record) -> const pg_uuid_t* {
    return record.reassigned == reassigned ? experiment_of.Of(record) : nullptr;
  };
  int count = 0;
  ForEachRecordIn(batch, bytes, [&](QueuedAssignment& record) { count += wanted(record) != nullptr; });
  if (count == 0) return;

  Datum* experiments = static_cast<Datum*>(palloc(sizeof(Datum) * count));
  Datum* users = static_cast<Datum*>(palloc(sizeof(Datum) * count));
  Datum* positions = static_cast<Datum*>(palloc(sizeof(Datum) * count));
  Datum* times = static_cast<Datum*>(palloc(sizeof(Datum) * count));
  int i = 0;
  ForEachRecordIn(batch, bytes, [&](QueuedAssignment& record) {
    const pg_uuid_t* experiment = wanted(record);
    if (experiment == nullptr) return;
    experiments[i] = UUIDPGetDatum(const_cast<pg_uuid_t*>(experiment));
    users[i] = PointerGetDatum(cstring_to_text_with_len(record.user_id, static_cast<int>(record.user_length)));
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
