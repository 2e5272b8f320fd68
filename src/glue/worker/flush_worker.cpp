// The flush worker: one per database while it has something to write. It writes
// queued sticky assignments to abtest.assignments in batches, and the metrics
// counters to abtest.branch_metrics, abtest.event_metrics and abtest.query_metrics
// (in one transaction), at least every
// abtest.flush_interval, and everything when it is told to stop (a clean shutdown);
// it loads logs into the sticky cache after a restart (warm_start.hpp) and purges the
// logs of deleted experiments (log_purge.hpp);
// it leaves when its queue has stayed empty for a few seconds, no counter changed since
// and no purge is in hand, or after a few writes when another database waits for a
// background worker slot.
//
// It runs no C++ object with a destructor: its errors are PostgreSQL's, recovered
// like pg_cron's worker does, with a sigsetjmp at the top of the loop.

#include "glue/catalog/assignment_batch.hpp"
#include "glue/shmem/assignment_queue.hpp"
#include "glue/worker/auto_complete.hpp"
#include "glue/guard.hpp"
#include "glue/worker/metrics_persistence.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/shmem/query_metrics.hpp"
#include "glue/shmem/shared_state.hpp"
#include "glue/shmem/sticky_cache.hpp"
#include "glue/sticky.hpp"
#include "glue/worker/log_purge.hpp"
#include "glue/worker/query_persistence.hpp"
#include "glue/worker/warm_start.hpp"

extern "C" {
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

PGDLLEXPORT void abtest_flush_worker_main(Datum main_arg);
}

namespace abtest::glue {
namespace {

constexpr Size kBatchBytes = 4 * 1024 * 1024;

// How long an idle worker stays before it leaves. Starting a worker (a process) costs
// the routing statement that asks for it several ms on the 2-core bench VM (10,000 new
// users: 14-16 ms with the start, 7-8 ms without), so recurring bursts and steady
// traffic keep theirs. Below the 5 s that DROP DATABASE waits for other sessions to
// leave; with a longer abtest.flush_interval the worker leaves at its first idle wake-up.
constexpr long kLingerMs = 3000;

volatile sig_atomic_t stop_requested = false;

void HandleSigterm(SIGNAL_ARGS) {
  int saved_errno = errno;
  stop_requested = true;
  SetLatch(MyLatch);
  errno = saved_errno;
}

// Takes one batch and writes it in one transaction, then marks its cache entries
// persisted. Returns false when the queue was empty.
//
// Lock order against clears (ab_clear_sticky_cache, ab_clear_user_cache,
// ab_delete_experiment), which take SHARE ROW EXCLUSIVE on abtest.assignments before
// they forget anything: the worker takes ROW EXCLUSIVE before it takes the batch.
// Either it commits first, and the clear's DELETE sees its rows; or the clear does,
// and the batch, taken afterwards, is filtered by the clear's epoch and marks. A lock
// timeout hits before the batch is taken, so it loses nothing.
bool FlushBatch(int queue, char* batch) {
  if (!QueueHasRecords(queue)) return false;  // an idle wake-up runs no transaction
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  SPI_connect();
  PushActiveSnapshot(GetTransactionSnapshot());
  pgstat_report_activity(STATE_RUNNING, "abtest: writing sticky assignments");
  if (SPI_execute("LOCK TABLE abtest.assignments IN ROW EXCLUSIVE MODE", false, 0) != SPI_OK_UTILITY)
    elog(ERROR, "abtest flush worker: could not lock abtest.assignments");
  Size bytes = TakeBatch(queue, batch, kBatchBytes);
  PopActiveSnapshot();
  PushActiveSnapshot(GetTransactionSnapshot());  // what committed while we waited for the lock
  assignment_batch::WriteRecords(batch, bytes);
  SPI_finish();
  PopActiveSnapshot();
  CommitTransactionCommand();
  pgstat_report_activity(STATE_IDLE, nullptr);
  if (bytes == 0) return false;

  std::uint64_t written = 0;
  ForEachRecordIn(batch, bytes, [&](QueuedAssignment& record) {
    StickyMarkPersisted(sticky::KeyOf(record));
    ++written;
  });
  CountFlushed(written, GetCurrentTimestamp());
  return true;
}

// Returns whether anything was written.
bool FlushAll(int queue, char* batch) {
  bool wrote = false;
  while (FlushBatch(queue, batch)) wrote = true;
  return wrote;
}

// Completes the experiments whose results decide them (auto_complete), at most once
// per flush interval; only after the metrics were loaded, so that it judges totals.
void AutoComplete(Oid database) {
  if (!metrics::Loaded(database)) return;
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  pgstat_report_activity(STATE_RUNNING, "abtest: auto-completing experiments");
  CompleteDecidedExperiments();
  PopActiveSnapshot();
  CommitTransactionCommand();
  pgstat_report_activity(STATE_IDLE, nullptr);
}

// Loads the logs that routing asked for (warm_start.hpp), a chunk per transaction,
// flushing the queue between chunks so that new assignments keep flowing.
void WarmStart(int queue, char* batch) {
  if (!WarmStartPending(MyDatabaseId)) return;
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  bool more = warm_start::TakeRequests();
  PopActiveSnapshot();
  CommitTransactionCommand();
  while (more && !stop_requested) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "abtest: loading sticky assignments into the cache");
    more = warm_start::LoadChunk();
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    pgstat_report_activity(STATE_IDLE, nullptr);
    FlushAll(queue, batch);
    CHECK_FOR_INTERRUPTS();
  }
}

// Purges the logs of deleted experiments (log_purge.hpp), a batch per transaction,
// flushing the queue between batches, for at most a flush interval per round so that
// metrics and warm starts take their turn. Returns whether more is to do at once.
bool PurgeDeletedLogs(int queue, char* batch) {
  if (TakePurgeRequest(queue)) {  // else no query: nothing was deleted
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    log_purge::ReadRequests();
    PopActiveSnapshot();
    CommitTransactionCommand();
  }
  if (!log_purge::Pending()) return false;
  TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), flush_interval_ms);
  log_purge::Step step;
  do {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    pgstat_report_activity(STATE_RUNNING, "abtest: purging the assignment log of deleted experiments");
    step = log_purge::PurgeBatch();
    SPI_finish();
    CommitTransactionCommand();
    pgstat_report_activity(STATE_IDLE, nullptr);
    FlushAll(queue, batch);
    CHECK_FOR_INTERRUPTS();
  } while (step == log_purge::Step::kMore && !stop_requested && GetCurrentTimestamp() < until);
  return step == log_purge::Step::kMore;
}

// Set while the metrics are being written: an error puts the dirty flag back.
volatile bool writing_metrics = false;

// Writes every counter of the database, if its persisted totals were merged in (a
// write before that would replace the table's totals with smaller ones). The query
// entries written count as written only once the transaction committed.
void FlushMetrics(Oid database) {
  if (!metrics::Loaded(database)) return;
  writing_metrics = true;
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  SPI_connect();
  PushActiveSnapshot(GetTransactionSnapshot());
  pgstat_report_activity(STATE_RUNNING, "abtest: writing metrics");
  metrics::WritePersisted(database);
  query_metrics::WriteWindow queries = query_metrics::WritePersisted(database);
  SPI_finish();
  PopActiveSnapshot();
  CommitTransactionCommand();
  query_metrics::EndWrite(database, queries);
  pgstat_report_activity(STATE_IDLE, nullptr);
  writing_metrics = false;
}

}  // namespace
}  // namespace abtest::glue

using namespace abtest::glue;

void abtest_flush_worker_main(Datum main_arg) {
  Oid database = DatumGetObjectId(main_arg);
  pqsignal(SIGTERM, HandleSigterm);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);

  // The worker always yields to DDL (DROP EXTENSION, ALTER TABLE): waiting less than
  // deadlock_timeout, it gives up its batch before a deadlock check would pick the DDL.
  SetConfigOption("lock_timeout", "200", PGC_SUSET, PGC_S_OVERRIDE);

  int queue = QueueOfDatabase(database);
  if (queue < 0 || !AttachWorker(queue)) proc_exit(0);
  RequestPurge(queue);  // a purge left by a restart or a restored dump resumes
  ResetLatch(MyLatch);  // set during startup: the first wait must collect a whole interval
  char* batch = static_cast<char*>(MemoryContextAlloc(TopMemoryContext, kBatchBytes));
  MemoryContext loop_context = AllocSetContextCreate(TopMemoryContext, "abtest flush", ALLOCSET_DEFAULT_SIZES);

  // An error drops the batch in hand (its users stay pending in the cache, where
  // they are still sticky) and the worker carries on after a pause.
  sigjmp_buf local_sigjmp_buf;
  if (sigsetjmp(local_sigjmp_buf, 1) != 0) {
    // The frames that pushed error context callbacks are gone: a stale stack would
    // make the next error's report loop through freed frames (found by 010_sql_fuzz).
    error_context_stack = nullptr;
    HOLD_INTERRUPTS();
    disable_all_timeouts(false);  // a lock_timeout that fired must not fire again later
    QueryCancelPending = false;
    EmitErrorReport();
    AbortOutOfAnyTransaction();
    FlushErrorState();
    MemoryContextSwitchTo(TopMemoryContext);
    RESUME_INTERRUPTS();
    if (writing_metrics) {
      writing_metrics = false;
      metrics::SetDirty(database);  // written next time
    }
    warm_start::Abandon();  // an unfinished load is requested again
    log_purge::Abandon(queue);  // and a purge
    if (stop_requested) proc_exit(1);
    pg_usleep(1000000L);
  }
  PG_exception_stack = &local_sigjmp_buf;

  int writes = 0;
  bool purging = false;
  TimestampTz last_work = GetCurrentTimestamp();
  // Collect for one interval (or until a queue half full wakes us), write, and leave
  // once the queue has stayed empty for kLingerMs.
  while (!stop_requested) {
    if (!WarmStartPending(database) && !purging) {  // a warm start or a purge does not wait for the interval
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, flush_interval_ms, PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
    }
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
    MemoryContextSwitchTo(loop_context);
    MemoryContextReset(loop_context);
    bool worked = FlushAll(queue, batch);
    if (metrics::TakeDirty(database)) {
      FlushMetrics(database);
      AutoComplete(database);
      worked = true;
    }
    WarmStart(queue, batch);
    purging = PurgeDeletedLogs(queue, batch);
    if (worked || purging) last_work = GetCurrentTimestamp();
    if (!log_purge::Pending() && TimestampDifferenceExceeds(last_work, GetCurrentTimestamp(), kLingerMs) &&
        DetachWorkerIfIdle(queue))
      proc_exit(0);
    // Another database waits for a background worker slot: after a few writes this
    // one hands its slot over (it has just written everything) and its database
    // starts a new worker later.
    constexpr int kWritesBeforeYielding = 3;
    if (++writes >= kWritesBeforeYielding && WorkerShouldYield(queue)) {
      if (log_purge::Pending()) RequestPurge(queue);  // the next worker reads the table again
      YieldWorker(queue);
      proc_exit(0);
    }
  }
  // Stopping (a clean shutdown): everything goes to the tables first.
  MemoryContextSwitchTo(loop_context);
  FlushAll(queue, batch);
  metrics::TakeDirty(database);
  FlushMetrics(database);
  proc_exit(0);
}
