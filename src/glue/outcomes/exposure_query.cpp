#include "glue/outcomes/exposure_query.hpp"

#include <cstring>

#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"

extern "C" {
#include "executor/executor.h"
#include "executor/tstoreReceiver.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "rewrite/rewriteHandler.h"
#include "tcop/tcopprot.h"
#include "utils/snapmgr.h"
}

namespace abtest::glue::outcomes {
namespace {

bool GrantLogWalker(Node* node, void* context);

// The walker as query_tree_walker's PostgreSQL 15 prototype takes it.
auto Walker() { return reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(GrantLogWalker)); }

struct LogAccess {
  Oid log;
  Oid owner;
};

// Marks this code's scans of the log (relation and alias both match) to be checked as
// the owner. Runs before the rewriter expands views, so a view over the log that the
// caller names keeps its own owner's check.
bool GrantLogWalker(Node* node, void* context) {
  if (node == nullptr) return false;
  const LogAccess* access = static_cast<const LogAccess*>(context);
  if (IsA(node, RangeTblEntry)) {
    RangeTblEntry* rte = reinterpret_cast<RangeTblEntry*>(node);
    if (rte->rtekind == RTE_RELATION && rte->relid == access->log && rte->alias != nullptr &&
        std::strcmp(rte->alias->aliasname, kExposureLogAlias) == 0)
      rte->checkAsUser = access->owner;
    return false;
  }
  if (IsA(node, Query))
    return query_tree_walker(reinterpret_cast<Query*>(node), Walker(), context,
                             QTW_EXAMINE_RTES_BEFORE);
  return expression_tree_walker(node, Walker(), context);
}

// The result, palloc'd: rows x columns cells, nullptr for NULL.
struct Table {
  int rows;
  int columns;
  char** cells;
};

Table* Execute(const char* sql, int count, const Oid* types, const char* const* texts, Oid owner) {
  int guc_level = NewGUCNestLevel();
  (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                          false);
  (void)set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

  CommandCounterIncrement();  // see what this transaction wrote before the call
  ParamListInfo params = makeParamList(count);
  for (int i = 0; i < count; ++i) {
    ParamExternData* param = &params->params[i];
    Oid input, io_param;
    getTypeInputInfo(types[i], &input, &io_param);
    param->isnull = texts[i] == nullptr;
    param->value = OidInputFunctionCall(input, const_cast<char*>(texts[i]), io_param, -1);
    param->pflags = PARAM_FLAG_CONST;
    param->ptype = types[i];
  }

  List* parsed = pg_parse_query(sql);
  if (list_length(parsed) != 1) elog(ERROR, "abtest: an analysis query must be one statement");
  RawStmt* raw = linitial_node(RawStmt, parsed);
  // Names are looked up as the owner: the caller may have no USAGE on schema abtest.
  // Privileges on what the query reads are checked at execution, as the caller.
  Oid caller;
  int security_context;
  GetUserIdAndSecContext(&caller, &security_context);
  SetUserIdAndSecContext(owner, security_context | SECURITY_LOCAL_USERID_CHANGE);
  Query* query = parse_analyze_fixedparams(raw, sql, types, count, nullptr);
  SetUserIdAndSecContext(caller, security_context);
  LogAccess access{get_relname_relid("assignments", get_namespace_oid("abtest", false)), owner};
  query_tree_walker(query, Walker(), &access, QTW_EXAMINE_RTES_BEFORE);
  List* rewritten = QueryRewrite(query);
  if (list_length(rewritten) != 1) elog(ERROR, "abtest: an analysis query must rewrite to one statement");
  PlannedStmt* plan = pg_plan_query(linitial_node(Query, rewritten), sql, CURSOR_OPT_PARALLEL_OK, params);

  PushActiveSnapshot(GetTransactionSnapshot());
  Tuplestorestate* store = tuplestore_begin_heap(false, false, work_mem);
  DestReceiver* dest = CreateDestReceiver(DestTuplestore);
  SetTuplestoreDestReceiverParams(dest, store, CurrentMemoryContext, false, nullptr, nullptr);
  QueryDesc* desc = CreateQueryDesc(plan, sql, GetActiveSnapshot(), InvalidSnapshot, dest, params, nullptr, 0);
  ExecutorStart(desc, 0);
  ExecutorRun(desc, ForwardScanDirection, 0, true);
  ExecutorFinish(desc);
  TupleDesc tuple_desc = CreateTupleDescCopy(desc->tupDesc);
  ExecutorEnd(desc);
  FreeQueryDesc(desc);
  dest->rDestroy(dest);
  PopActiveSnapshot();

  Table* table = static_cast<Table*>(palloc(sizeof(Table)));
  table->columns = tuple_desc->natts;
  table->rows = static_cast<int>(tuplestore_tuple_count(store));
  table->cells = static_cast<char**>(palloc0(sizeof(char*) * static_cast<size_t>(table->rows * table->columns + 1)));
  TupleTableSlot* slot = MakeSingleTupleTableSlot(tuple_desc, &TTSOpsMinimalTuple);
  for (int row = 0; tuplestore_gettupleslot(store, true, false, slot); ++row) {
    for (int column = 0; column < table->columns; ++column) {
      bool is_null;
      Datum value = slot_getattr(slot, column + 1, &is_null);
      if (is_null) continue;
      Oid output;
      bool varlena;
      getTypeOutputInfo(TupleDescAttr(tuple_desc, column)->atttypid, &output, &varlena);
      table->cells[row * table->columns + column] = OidOutputFunctionCall(output, value);
    }
  }
  ExecDropSingleTupleTableSlot(slot);
  tuplestore_end(store);
  AtEOXact_GUC(true, guc_level);
  return table;
}

}  // namespace

std::vector<Row> RunAsCaller(const std::string& sql, const std::vector<QueryParam>& params) {
  Oid owner = catalog::Owner();
  int count = static_cast<int>(params.size());
  std::vector<Oid> types;
  std::vector<const char*> texts;
  for (const QueryParam& param : params) {
    types.push_back(param.type);
    texts.push_back(param.text ? param.text->c_str() : nullptr);
  }
  const char* text = sql.c_str();
  const Oid* type_list = types.data();
  const char* const* text_list = texts.data();
  Table* table = PgCall([&] { return Execute(text, count, type_list, text_list, owner); });
  std::vector<Row> rows(static_cast<std::size_t>(table->rows));
  for (int row = 0; row < table->rows; ++row)
    for (int column = 0; column < table->columns; ++column) {
      const char* cell = table->cells[row * table->columns + column];
      rows[static_cast<std::size_t>(row)].push_back(cell ? std::optional<std::string>(cell) : std::nullopt);
    }
  return rows;
}

}  // namespace abtest::glue::outcomes
