#include "glue/worker/log_purge.hpp"

#include <algorithm>
#include <deque>
#include <string>
#include <vector>

#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"
#include "glue/shmem/assignment_queue.hpp"
#include "glue/transaction_end.hpp"

extern "C" {
#include "storage/lock.h"
#include "storage/procarray.h"
#include "utils/snapmgr.h"
}

namespace abtest::glue::log_purge {
namespace {

constexpr int kBatchRows = 10000;

constexpr const char* kPending =
    "SELECT d.experiment_id::text, d.name FROM abtest.deleted_experiments d "
    "WHERE NOT EXISTS (SELECT FROM abtest.experiments e WHERE e.id = d.experiment_id) "
    "ORDER BY d.deleted_at, d.experiment_id";

// A batch: the next rows of the experiment in primary-key order, deleted by their
// ctid (a TID scan), and the last user id deleted, from which the next batch goes on
// without walking the index entries of the rows already gone. Two statements:
// `user_id > $2` cannot start from the first user id, which may be the empty string.
// The experiment must still be absent from the catalog (a row of
// abtest.deleted_experiments typed by hand never purges a live log).
#define ABTEST_PURGE_BATCH(after)                                                                               \
  "WITH doomed AS (SELECT ctid FROM abtest.assignments WHERE experiment_id = $1::uuid" after                  \
  "  ORDER BY user_id LIMIT 10000), "                                                                          \
  "gone AS (DELETE FROM abtest.assignments WHERE ctid = ANY (ARRAY(SELECT ctid FROM doomed)) "                 \
  "  AND NOT EXISTS (SELECT FROM abtest.experiments WHERE id = $1::uuid) RETURNING user_id) "                  \
  "SELECT count(*), max(user_id) FROM gone"
constexpr const char* kFirstBatch = ABTEST_PURGE_BATCH("");
constexpr const char* kNextBatch = ABTEST_PURGE_BATCH(" AND user_id > $2");

constexpr const char* kFinish = "DELETE FROM abtest.deleted_experiments WHERE experiment_id = $1::uuid";

// One deleted experiment's purge in progress.
struct Purge {
  std::string experiment_id;
  std::string name;
  // Transactions of the database that were running when the worker first saw the
  // deletion: any of them may still write a row of the experiment.
  std::vector<VirtualTransactionId> older;
  bool started = false;  // the next batch goes on after `after`
  std::string after;
  bool swept = false;  // a scan from the start found nothing: only `older` can add rows
  std::uint64_t deleted = 0;
  TimestampTz since = 0;
};

// Outlives the transactions of a purge; static, so an error's longjmp leaves no frame owning it.
std::deque<Purge> purges;
int requested_queue = -1;  // backend side: the queue to wake at commit
bool callback_registered = false;

void Log(const std::string& message) {
  PgCall([&] { ereport(LOG, (errmsg("%s", message.c_str()))); });
}

// The running transactions of this database other than this worker's (vacuum's
// included: it writes no log row, but it is short anyway).
std::vector<VirtualTransactionId> RunningTransactions() {
  std::vector<VirtualTransactionId> running;
  int count = 0;
  VirtualTransactionId* vxids =
      PgCall([&] { return GetCurrentVirtualXIDs(InvalidTransactionId, false, false, 0, &count); });
  running.assign(vxids, vxids + count);
  PgCall([&] { pfree(vxids); });
  return running;
}

// Drops the transactions of `older` that have ended; true when none is left.
bool OlderEnded(Purge& purge) {
  auto ended = [](const VirtualTransactionId& vxid) {
    VirtualTransactionId copy = vxid;
    return PgCall([&] { return VirtualXactLock(copy, false); });
  };
  purge.older.erase(std::remove_if(purge.older.begin(), purge.older.end(), ended), purge.older.end());
  return purge.older.empty();
}

Datum ReadRequestsBody(FunctionCallInfo) {
  if (!catalog::HasDeletedExperimentsCatalog()) return 0;  // a catalog older than 1.6
  std::vector<std::pair<std::string, std::string>> rows;
  PgCall([&] {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    if (SPI_execute(kPending, true, 0) != SPI_OK_SELECT) elog(ERROR, "abtest: reading abtest.deleted_experiments failed");
  });
  for (uint64 i = 0; i < SPI_processed; ++i) {
    char* id = PgCall([&] { return SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1); });
    char* name = PgCall([&] { return SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2); });
    if (id != nullptr) rows.emplace_back(id, name != nullptr ? name : "");
  }
  PgCall([] { SPI_finish(); });
  if (rows.empty()) return 0;
  std::vector<VirtualTransactionId> running = RunningTransactions();
  TimestampTz now = GetCurrentTimestamp();
  for (auto& [id, name] : rows) {
    bool known = std::any_of(purges.begin(), purges.end(), [&](const Purge& p) { return p.experiment_id == id; });
    if (known) continue;
    Purge purge;
    purge.experiment_id = id;
    purge.name = name;
    purge.older = running;
    purge.since = now;
    purges.push_back(std::move(purge));
  }
  return 0;
}

// Runs one batch statement; returns the rows deleted and sets *last to the last user
// id deleted.
std::uint64_t DeleteBatch(const Purge& purge, std::string* last) {
  bool next = purge.started;
  const char* id = purge.experiment_id.c_str();
  const char* after = purge.after.c_str();
  char* max_user = nullptr;
  std::uint64_t count = PgCall([&]() -> std::uint64_t {
    Oid types[2] = {TEXTOID, TEXTOID};
    Datum values[2] = {CStringGetTextDatum(id), CStringGetTextDatum(after)};
    int rc = SPI_execute_with_args(next ? kNextBatch : kFirstBatch, next ? 2 : 1, types, values, nullptr, false, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "abtest: purging abtest.assignments failed: %s", SPI_result_code_string(rc));
    bool null = false;
    Datum deleted = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &null);
    max_user = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
    return null ? 0 : static_cast<std::uint64_t>(DatumGetInt64(deleted));
  });
  if (max_user != nullptr) last->assign(max_user);
  return count;
}

Step BatchOf(Purge& purge, bool older_ended);

Datum PurgeBatchBody(FunctionCallInfo) {
  if (purges.empty()) return Int32GetDatum(static_cast<int>(Step::kDone));
  Purge& purge = purges.front();
  // Before the snapshot: a transaction found ended here has committed (or not) before
  // the batch looks, so the batch sees every row it wrote.
  bool older_ended = OlderEnded(purge);
  if (purge.swept && !older_ended) return Int32GetDatum(static_cast<int>(Step::kWaiting));
  PgCall([] { PushActiveSnapshot(GetTransactionSnapshot()); });
  Step step = BatchOf(purge, older_ended);
  PgCall([] { PopActiveSnapshot(); });
  return Int32GetDatum(static_cast<int>(step));
}

// One batch of `purge`, with a snapshot active.
Step BatchOf(Purge& purge, bool older_ended) {
  std::string last;
  std::uint64_t deleted = DeleteBatch(purge, &last);
  purge.deleted += deleted;
  if (deleted == static_cast<std::uint64_t>(kBatchRows)) {
    purge.started = true;
    purge.after = last;
    purge.swept = false;
    return Step::kMore;
  }
  // The end of its key range: scan again from the start, until a scan from the start
  // finds nothing after the older transactions ended.
  bool from_start = !purge.started;
  purge.started = false;
  purge.after.clear();
  if (deleted > 0 || !from_start) {
    purge.swept = false;
    return Step::kMore;
  }
  if (!older_ended) {
    purge.swept = true;
    return Step::kWaiting;
  }
  const char* id = purge.experiment_id.c_str();
  PgCall([&] {
    Oid types[1] = {TEXTOID};
    Datum values[1] = {CStringGetTextDatum(id)};
    int rc = SPI_execute_with_args(kFinish, 1, types, values, nullptr, false, 0);
    if (rc != SPI_OK_DELETE) elog(ERROR, "abtest: updating abtest.deleted_experiments failed");
  });
  long seconds = 0;
  int microseconds = 0;
  TimestampDifference(purge.since, GetCurrentTimestamp(), &seconds, &microseconds);
  char elapsed[32];
  snprintf(elapsed, sizeof elapsed, "%.1f", static_cast<double>(seconds) + microseconds / 1e6);
  Log("abtest: purged " + std::to_string(purge.deleted) + " rows of deleted experiment \"" + purge.name +
      "\" from abtest.assignments in " + elapsed + " s");
  purges.pop_front();
  return purges.empty() ? Step::kDone : Step::kMore;
}

// Transaction callbacks cannot raise; RequestPurge takes a lock and registers a
// worker quietly, neither of which raises.
void OnTransactionEnd(XactEvent event, void*) {
  if (requested_queue < 0) return;
  if (Commits(event)) RequestPurge(requested_queue);
  // A prepared transaction's purge is found at the worker's next start.
  if (Ends(event)) requested_queue = -1;
}

}  // namespace

void RequestAtCommit() {
  int queue = ClaimDatabaseQueue();
  if (queue < 0) return;  // no slot for this database: its next worker finds the row at its start
  if (!callback_registered) {
    PgCall([] { RegisterXactCallback(OnTransactionEnd, nullptr); });
    callback_registered = true;
  }
  requested_queue = queue;
}

void ReadRequests() { RunGuarded(ReadRequestsBody, nullptr); }

bool Pending() { return !purges.empty(); }

Step PurgeBatch() { return static_cast<Step>(DatumGetInt32(RunGuarded(PurgeBatchBody, nullptr))); }

void Abandon(int queue) {
  purges.clear();
  RequestPurge(queue);  // also when the error came before the table was read
}

}  // namespace abtest::glue::log_purge
