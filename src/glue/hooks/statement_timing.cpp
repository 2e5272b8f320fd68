#include "glue/hooks/statement_timing.hpp"

#include <algorithm>

#include "core/limits.hpp"
#include "core/query_latency.hpp"
#include "glue/branches/entered_branch.hpp"
#include "glue/catalog/log_lookup.hpp"
#include "glue/guard.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/shmem/pending_queries.hpp"
#include "glue/shmem/query_metrics.hpp"
#include "glue/transaction_end.hpp"

extern "C" {
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "portability/instr_time.h"
#include "tcop/utility.h"
#include "utils/queryjumble.h"
}

namespace abtest::glue::statement_timing {

bool track_nested = false;
bool track_utility = false;

namespace {

ExecutorStart_hook_type previous_start = nullptr;
ExecutorRun_hook_type previous_run = nullptr;
ExecutorFinish_hook_type previous_finish = nullptr;
ExecutorEnd_hook_type previous_end = nullptr;
ProcessUtility_hook_type previous_utility = nullptr;

// How deep in executor runs and utility statements this backend is; 0 at top level.
int nesting_level = 0;

// A statement being timed. A fixed array: the hooks and the abort callbacks neither
// allocate nor fail. Statements nested deeper than it holds are not timed.
struct TimedStatement {
  const void* key;  // its QueryDesc, or a utility statement's PlannedStmt
  instr_time start;
  metrics::BranchHandle branch;
  SubTransactionId subtransaction;  // where it started: its rollback is its failure
  std::uint64_t queryid;            // PostgreSQL's (0: none computed)
  // Where the statement's text starts in its source, valid until the statement ends
  // (read at executor end only), and its length (-1: up to the NUL).
  const char* source;
  int source_len;
  bool text_stored;  // the query store's entry has a text already (pending_queries::HasStoredText)
  // The start of the text, copied when the statement starts if the store may have no
  // text for it: at an abort the source may be gone, and a query that has only failed
  // so far should still show its text.
  int text_len;  // 0: not copied
  char text[query_metrics::kQueryTextBytes + 1];  // one byte more: the store cuts at a character
};
constexpr int kMaxTimed = 32;
TimedStatement timed[kMaxTimed];
int timed_count = 0;
bool callbacks_registered = false;

double Milliseconds(instr_time end, const instr_time& start) {
  INSTR_TIME_SUBTRACT(end, start);
  return std::clamp(INSTR_TIME_GET_MILLISEC(end), 0.0, kMaxLatencyMs);
}

// Into this backend's batch (pending_queries.hpp): the branch's counters and, with its
// query id, the query store, at the end of the transaction.
void Record(const TimedStatement& statement, const instr_time& end, bool success, const char* text, int text_len) {
  QuerySample sample = QuerySample::Of(Milliseconds(end, statement.start), success);  // the bucket, once
  pending_queries::Add(statement.branch, statement.queryid, sample, end, text, text_len);
}

// A failure: the statement's source may be gone, only its copy is read.
void RecordFailure(const TimedStatement& statement, const instr_time& now) {
  Record(statement, now, false, statement.text_len > 0 ? statement.text : nullptr, statement.text_len);
}

void RemoveAt(int index) {
  for (int i = index + 1; i < timed_count; ++i) timed[i - 1] = timed[i];
  --timed_count;
}

// Statements still timed when their (sub)transaction aborts never reached executor
// end: they failed. Those of a committed transaction were left by an executor that
// was never ended (it cannot happen through a portal) and are dropped. Then the
// transaction's statements reach shared memory.
void OnTransactionEnd(XactEvent event, void*) {
  if (!Ends(event)) return;
  bool abort = Aborts(event);
  if (abort && timed_count > 0) {
    instr_time now;
    INSTR_TIME_SET_CURRENT(now);
    for (int i = 0; i < timed_count; ++i) RecordFailure(timed[i], now);
  }
  timed_count = 0;
  nesting_level = 0;
  pending_queries::Publish();
}

void OnSubtransactionEnd(SubXactEvent event, SubTransactionId mine, SubTransactionId parent, void*) {
  if (timed_count == 0) return;
  instr_time now;
  INSTR_TIME_SET_ZERO(now);
  for (int i = timed_count - 1; i >= 0; --i) {
    if (timed[i].subtransaction != mine) continue;
    if (event == SUBXACT_EVENT_ABORT_SUB) {
      if (INSTR_TIME_IS_ZERO(now)) INSTR_TIME_SET_CURRENT(now);
      RecordFailure(timed[i], now);
      RemoveAt(i);
    } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
      timed[i].subtransaction = parent;
    }
  }
}

// Whether a statement starting now is timed.
bool Measured() {
  return entered_branch::measured_branch != nullptr && (nesting_level == 0 || track_nested) &&
         timed_count < kMaxTimed;
}

// The clock starts; called from a hook, so only plain C calls (guard.hpp, rule 2).
void Begin(const void* key, const PlannedStmt* planned, const char* source) {
  if (!callbacks_registered) {
    RegisterXactCallback(OnTransactionEnd, nullptr);
    RegisterSubXactCallback(OnSubtransactionEnd, nullptr);
    callbacks_registered = true;
  }
  TimedStatement& statement = timed[timed_count++];
  statement.key = key;
  statement.branch = *entered_branch::measured_branch;
  statement.subtransaction = GetCurrentSubTransactionId();
  statement.queryid = planned != nullptr ? planned->queryId : 0;
  statement.source = nullptr;
  statement.source_len = -1;
  statement.text_stored = false;
  statement.text_len = 0;
  if (source != nullptr && statement.queryid != 0) {
    const char* text = source;
    int length = -1;
    if (planned->stmt_location >= 0) {
      text += planned->stmt_location;
      if (planned->stmt_len > 0) length = planned->stmt_len;
    }
    statement.source = text;
    statement.source_len = length;
    statement.text_stored = pending_queries::HasStoredText(statement.branch, statement.queryid);
    if (!statement.text_stored) {
      constexpr std::size_t kMax = sizeof statement.text - 1;
      std::size_t copied = length < 0 ? strnlen(text, kMax) : std::min<std::size_t>(length, kMax);
      memcpy(statement.text, text, copied);
      statement.text[copied] = '\0';
      statement.text_len = static_cast<int>(copied);
    }
  }
  INSTR_TIME_SET_CURRENT(statement.start);
}

// A success: the statement's source is still there.
void End(const void* key) {
  for (int i = timed_count - 1; i >= 0; --i) {
    if (timed[i].key != key) continue;
    instr_time now;
    INSTR_TIME_SET_CURRENT(now);
    const TimedStatement& statement = timed[i];
    if (statement.text_stored)
      Record(statement, now, true, nullptr, 0);
    else if (statement.text_len > 0)
      Record(statement, now, true, statement.text, statement.text_len);
    else
      Record(statement, now, true, statement.source, statement.source_len);
    RemoveAt(i);
    return;
  }
}

void OnExecutorStart(QueryDesc* query, int eflags) {
  if (Measured() && !(eflags & EXEC_FLAG_EXPLAIN_ONLY)) Begin(query, query->plannedstmt, query->sourceText);
  if (previous_start)
    previous_start(query, eflags);
  else
    standard_ExecutorStart(query, eflags);
}

void OnExecutorRun(QueryDesc* query, ScanDirection direction, uint64 count, bool execute_once) {
  ++nesting_level;
  PG_TRY();
  {
    if (previous_run)
      previous_run(query, direction, count, execute_once);
    else
      standard_ExecutorRun(query, direction, count, execute_once);
  }
  PG_FINALLY();
  { --nesting_level; }
  PG_END_TRY();
}

void OnExecutorFinish(QueryDesc* query) {
  ++nesting_level;
  PG_TRY();
  {
    if (previous_finish)
      previous_finish(query);
    else
      standard_ExecutorFinish(query);
  }
  PG_FINALLY();
  { --nesting_level; }
  PG_END_TRY();
}

void OnExecutorEnd(QueryDesc* query) {
  if (previous_end)
    previous_end(query);
  else
    standard_ExecutorEnd(query);
  if (timed_count > 0) End(query);
}

void RunUtility(PlannedStmt* statement, const char* text, bool read_only_tree, ProcessUtilityContext context,
                ParamListInfo params, QueryEnvironment* environment, DestReceiver* destination,
                QueryCompletion* completion) {
  if (previous_utility)
    previous_utility(statement, text, read_only_tree, context, params, environment, destination, completion);
  else
    standard_ProcessUtility(statement, text, read_only_tree, context, params, environment, destination, completion);
}

// A utility statement is one statement: what the executor runs inside it (CREATE
// TABLE AS, EXPLAIN ANALYZE, a SQL cursor) is nested. EXECUTE, PREPARE and
// DEALLOCATE are not statements of their own: the prepared statement EXECUTE runs is
// timed by the executor hooks at this level, as pg_stat_statements does.
void OnProcessUtility(PlannedStmt* statement, const char* text, bool read_only_tree, ProcessUtilityContext context,
                      ParamListInfo params, QueryEnvironment* environment, DestReceiver* destination,
                      QueryCompletion* completion) {
  // The log lookups keep abtest.assignments open for the transaction; DDL on it (DROP
  // EXTENSION, REINDEX, ...) refuses a table the session holds open. No lookup is
  // under way here: each runs to its end inside one routing call.
  catalog::log_lookup::Close();
  Node* tree = statement->utilityStmt;
  if (IsA(tree, ExecuteStmt) || IsA(tree, PrepareStmt) || IsA(tree, DeallocateStmt)) {
    RunUtility(statement, text, read_only_tree, context, params, environment, destination, completion);
    return;
  }
  bool timed_here = track_utility && !IsA(tree, TransactionStmt) && Measured();
  if (timed_here) Begin(statement, statement, text);
  ++nesting_level;
  PG_TRY();
  { RunUtility(statement, text, read_only_tree, context, params, environment, destination, completion); }
  PG_FINALLY();
  { --nesting_level; }
  PG_END_TRY();
  if (timed_here) End(statement);
}

}  // namespace

void InstallHooks() {
  EnableQueryId();  // compute_query_id = auto computes them now
  previous_start = ExecutorStart_hook;
  ExecutorStart_hook = OnExecutorStart;
  previous_run = ExecutorRun_hook;
  ExecutorRun_hook = OnExecutorRun;
  previous_finish = ExecutorFinish_hook;
  ExecutorFinish_hook = OnExecutorFinish;
  previous_end = ExecutorEnd_hook;
  ExecutorEnd_hook = OnExecutorEnd;
  previous_utility = ProcessUtility_hook;
  ProcessUtility_hook = OnProcessUtility;
}

}  // namespace abtest::glue::statement_timing
