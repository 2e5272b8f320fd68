#include "glue/hooks/statement_timing.hpp"

#include <algorithm>

#include "core/limits.hpp"
#include "glue/branches/entered_branch.hpp"
#include "glue/catalog/log_lookup.hpp"
#include "glue/guard.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/shmem/query_metrics.hpp"

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
  // The start of the statement's text, copied: at an abort the source may be gone,
  // and a query that has only failed so far should still show its text.
  char text[query_metrics::kQueryTextBytes + 1];  // one byte more: the store cuts at a character
  int text_len;
};
constexpr int kMaxTimed = 32;
TimedStatement timed[kMaxTimed];
int timed_count = 0;
bool callbacks_registered = false;

double MillisecondsSince(const instr_time& start) {
  instr_time now;
  INSTR_TIME_SET_CURRENT(now);
  INSTR_TIME_SUBTRACT(now, start);
  return std::clamp(INSTR_TIME_GET_MILLISEC(now), 0.0, kMaxLatencyMs);
}

// Into the branch's counters and, with its query id, the query store.
void Record(const TimedStatement& statement, bool success) {
  double ms = MillisecondsSince(statement.start);
  (void)metrics::RecordQueryAt(statement.branch, ms, success);
  if (statement.queryid != 0)
    query_metrics::Record(statement.branch.experiment, statement.branch.position, statement.queryid,
                          statement.text, statement.text_len, ms, success);
}

void RemoveAt(int index) {
  for (int i = index + 1; i < timed_count; ++i) timed[i - 1] = timed[i];
  --timed_count;
}

// Statements still timed when their (sub)transaction aborts never reached executor
// end: they failed. Those of a committed transaction were left by an executor that
// was never ended (it cannot happen through a portal) and are dropped.
void OnTransactionEnd(XactEvent event, void*) {
  bool abort = event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT;
  bool end = abort || event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
             event == XACT_EVENT_PREPARE;
  if (!end) return;
  if (abort)
    for (int i = 0; i < timed_count; ++i) Record(timed[i], false);
  timed_count = 0;
  nesting_level = 0;
}

void OnSubtransactionEnd(SubXactEvent event, SubTransactionId mine, SubTransactionId parent, void*) {
  for (int i = timed_count - 1; i >= 0; --i) {
    if (timed[i].subtransaction != mine) continue;
    if (event == SUBXACT_EVENT_ABORT_SUB) {
      Record(timed[i], false);
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
  statement.text_len = 0;
  if (source != nullptr && statement.queryid != 0) {
    const char* text = source;
    std::size_t length;
    if (planned->stmt_location >= 0) {
      text += planned->stmt_location;
      length = planned->stmt_len > 0 ? static_cast<std::size_t>(planned->stmt_len) : strlen(text);
    } else {
      length = strlen(text);
    }
    length = std::min(length, sizeof statement.text - 1);
    memcpy(statement.text, text, length);
    statement.text[length] = '\0';
    statement.text_len = static_cast<int>(length);
  }
  INSTR_TIME_SET_CURRENT(statement.start);
}

void End(const void* key) {
  for (int i = timed_count - 1; i >= 0; --i) {
    if (timed[i].key != key) continue;
    Record(timed[i], true);
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
