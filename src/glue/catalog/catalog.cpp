#include "glue/catalog/catalog.hpp"

#include "glue/catalog/assignment_batch.hpp"

#include <initializer_list>

#include "core/error.hpp"
#include "core/experiment_json.hpp"
#include "core/limits.hpp"
#include "glue/catalog/log_lookup.hpp"
#include "glue/guard.hpp"
#include "glue/shmem/shared_state.hpp"

extern "C" {
#include "access/nbtree.h"
}

namespace abtest::glue::catalog {
namespace {

constexpr const char* kLoadForUpdate =
    "SELECT to_jsonb(o) FROM abtest.experiment_overview o "
    "WHERE o.id = (SELECT id FROM abtest.experiments WHERE name = $1 FOR UPDATE)";

constexpr const char* kLoadAll =
    "SELECT coalesce(jsonb_agg(to_jsonb(o) ORDER BY o.name), '[]') FROM abtest.experiment_overview o";

constexpr const char* kExists = "SELECT id FROM abtest.experiments WHERE name = $1";

// Columns not listed keep their defaults (id, created_at, state, winner, ...).
constexpr const char* kInsert =
    "WITH r AS (SELECT * FROM jsonb_populate_record(NULL::abtest.experiment_overview, $1::jsonb)), "
    "e AS (INSERT INTO abtest.experiments (name, description, owner, tags, sticky, allow_reassignment, "
    "  included_groups, excluded_groups, min_sample_size, confidence_level, auto_complete, max_duration, "
    "  salt, strategy, strategy_params) "
    "  SELECT name, description, owner, tags, sticky, allow_reassignment, included_groups, excluded_groups, "
    "  min_sample_size, confidence_level, auto_complete, max_duration, salt, strategy, strategy_params FROM r "
    "  RETURNING id), "
    "b AS (INSERT INTO abtest.branches (experiment_id, position, name, allocation) "
    "  SELECT e.id, u.position - 1, u.name, u.allocation "
    "  FROM e, r, unnest(r.branches, r.allocation) WITH ORDINALITY AS u(name, allocation, position)) "
    "SELECT id FROM e";

constexpr const char* kSave =
    "WITH r AS (SELECT * FROM jsonb_populate_record(NULL::abtest.experiment_overview, $1::jsonb)), "
    "b AS (UPDATE abtest.branches b SET allocation = u.allocation "
    "  FROM r, unnest(r.branches, r.allocation) AS u(name, allocation) "
    "  WHERE b.experiment_id = r.id AND b.name = u.name AND b.allocation <> u.allocation) "
    "UPDATE abtest.experiments e SET description = r.description, owner = r.owner, tags = r.tags, "
    "  state = r.state, started_at = r.started_at, completed_at = r.completed_at, winner = r.winner, "
    "  sticky = r.sticky, allow_reassignment = r.allow_reassignment, included_groups = r.included_groups, "
    "  excluded_groups = r.excluded_groups, min_sample_size = r.min_sample_size, "
    "  confidence_level = r.confidence_level, auto_complete = r.auto_complete, max_duration = r.max_duration, "
    "  salt = r.salt, strategy = r.strategy, strategy_params = r.strategy_params "
    "FROM r WHERE e.id = r.id";

// Catalog 1.2's targeting columns, written after kInsert / kSave when the installed
// catalog has them (the library works with the SQL of every version).
constexpr const char* kSaveTargeting =
    "WITH r AS (SELECT * FROM jsonb_populate_record(NULL::abtest.experiment_overview, $1::jsonb)) "
    "UPDATE abtest.experiments e SET condition = r.condition, namespace = r.namespace, "
    "  namespace_range = r.namespace_range "
    "FROM r WHERE e.id = coalesce(r.id, $2::uuid) "
    "  AND (e.condition, e.namespace, e.namespace_range) IS DISTINCT FROM (r.condition, r.namespace, r.namespace_range)";

constexpr const char* kForce =
    "INSERT INTO abtest.forced_users AS f (experiment_id, user_id, branch) VALUES ($1::uuid, $2, $3) "
    "ON CONFLICT (experiment_id, user_id) DO UPDATE SET branch = excluded.branch, forced_at = now() "
    "WHERE f.branch <> excluded.branch";
constexpr const char* kSetBranchSettings =
    "UPDATE abtest.branches SET settings = $3::jsonb WHERE experiment_id = $1::uuid AND name = $2";
constexpr const char* kUnforce = "DELETE FROM abtest.forced_users WHERE experiment_id = $1::uuid AND user_id = $2";

// Another active experiment of the namespace whose range overlaps [start, end).
constexpr const char* kNamespaceOverlap =
    "SELECT format('%s {%s, %s}', quote_ident(name), namespace_range[1], namespace_range[2]) "
    "FROM abtest.experiments WHERE namespace = $1 AND state = 'active' AND id <> $2::uuid "
    "  AND namespace_range[1] < $4::numeric AND $3::numeric < namespace_range[2] "
    "ORDER BY namespace_range[1] LIMIT 1";
constexpr const char* kLockNamespaces = "LOCK TABLE abtest.experiments IN SHARE ROW EXCLUSIVE MODE";

constexpr const char* kDelete = "DELETE FROM abtest.experiments WHERE name = $1 RETURNING id";

// Two statements: the single-default index is checked row by row, so the old
// default must be cleared before the new one is set.
constexpr const char* kClearDefault = "UPDATE abtest.experiments SET is_default = false WHERE is_default";
constexpr const char* kSetDefault = "UPDATE abtest.experiments SET is_default = true WHERE name = $1";

// The ORDER BY makes it a primary-key index scan: after a clear, the table may hold a
// heap of dead rows of the experiment that a sequential scan would read through.
constexpr const char* kAssignmentsExist =
    "SELECT 1 FROM abtest.assignments WHERE experiment_id = $1::uuid ORDER BY user_id LIMIT 1";
constexpr const char* kLoggedBranch =
    "SELECT branch FROM abtest.assignments WHERE experiment_id = $1::uuid AND user_id = $2";
constexpr const char* kLogAssignment =
    "INSERT INTO abtest.assignments AS a (experiment_id, user_id, branch, assigned_at) "
    "VALUES ($1::uuid, $2, $3, clock_timestamp()) "
    "ON CONFLICT (experiment_id, user_id) DO UPDATE SET branch = a.branch "  // locks and returns the earlier row
    "RETURNING branch";
constexpr const char* kRelogAssignment =
    "INSERT INTO abtest.assignments AS a (experiment_id, user_id, branch, assigned_at) "
    "VALUES ($1::uuid, $2, $3, clock_timestamp()) "
    "ON CONFLICT (experiment_id, user_id) DO UPDATE SET branch = excluded.branch, assigned_at = excluded.assigned_at "
    "RETURNING branch";
// The longest user id fits an entry of the log's primary key (experiment_id, user_id)
// uncompressed, the larger of its two btree indexes: no routing call can fail on it.
static_assert(MAXALIGN(sizeof(IndexTupleData) + sizeof(pg_uuid_t) + VARHDRSZ + kMaxUserIdBytes) <=
                  MAXALIGN_DOWN((BLCKSZ - MAXALIGN(SizeOfPageHeaderData + 3 * sizeof(ItemIdData) +
                                                   3 * sizeof(ItemPointerData)) -
                                 MAXALIGN(sizeof(BTPageOpaqueData))) / 3),
              "kMaxUserIdBytes must fit a btree entry of abtest.assignments (BTMaxItemSize)");
constexpr const char* kDeleteAssignments = "DELETE FROM abtest.assignments WHERE experiment_id = $1::uuid";
constexpr const char* kRecordDeletion =
    "INSERT INTO abtest.deleted_experiments (experiment_id, name) VALUES ($1::uuid, $2) "
    "ON CONFLICT (experiment_id) DO NOTHING";
constexpr const char* kDeleteUserAssignments = "DELETE FROM abtest.assignments WHERE user_id = $1";

// The role the catalog's statements run as: the owner of schema abtest (who created
// the extension). Callers need no privilege on the tables: routing is for everyone,
// and who may administer is decided by EXECUTE on the admin functions.
Oid CatalogOwner() {
  Oid schema = get_namespace_oid("abtest", false);
  HeapTuple tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(schema));
  if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for schema abtest");
  Oid owner = reinterpret_cast<Form_pg_namespace>(GETSTRUCT(tuple))->nspowner;
  ReleaseSysCache(tuple);
  return owner;
}

}  // namespace

namespace {

// A statement of the routing path (log lookups and writes), prepared once per backend
// and kept (SPI_keepplan): parsing and planning it cost three times its execution.
// The plan cache replans it when abtest's tables change.
struct KeptPlan {
  const char* sql;
  SPIPlanPtr plan;
};

KeptPlan kept_assignments_exist{kAssignmentsExist, nullptr};
KeptPlan kept_logged_branch{kLoggedBranch, nullptr};
KeptPlan kept_log_assignment{kLogAssignment, nullptr};
KeptPlan kept_relog_assignment{kRelogAssignment, nullptr};

// Runs `work` (PostgreSQL calls only, inside PgCall) as the catalog owner with SPI
// connected, a safe search_path, and security-restricted. An error is unwound by the
// transaction's abort.
template <typename Work>
void ConnectedAsOwner(Work&& work) {
  Oid saved_user;
  int saved_context;
  GetUserIdAndSecContext(&saved_user, &saved_context);
  SetUserIdAndSecContext(CatalogOwner(), saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
  int guc_level = NewGUCNestLevel();
  (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                          false);
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  work();
  SPI_finish();
  AtEOXact_GUC(true, guc_level);
  SetUserIdAndSecContext(saved_user, saved_context);
}

// Runs `sql` (or `kept`'s plan, prepared on first use) as the catalog owner, with a
// safe search_path; security-restricted as well. Returns the first column of the
// first row. An error is unwound by the transaction's abort.
std::optional<std::string> RunAsOwner(const char* sql, KeptPlan* kept, std::initializer_list<const char*> params) {
  constexpr int kMaxParams = 4;
  Oid types[kMaxParams];
  Datum values[kMaxParams];
  char nulls[kMaxParams];
  int count = 0;
  for (const char* param : params) {
    types[count] = TEXTOID;
    nulls[count] = param ? ' ' : 'n';
    values[count] = 0;
    ++count;
  }
  const char* const* param_list = params.begin();
  MemoryContext caller_context = CurrentMemoryContext;
  char* first = PgCall([&]() -> char* {
    for (int i = 0; i < count; ++i)
      if (param_list[i]) values[i] = CStringGetTextDatum(param_list[i]);
    char* value = nullptr;
    ConnectedAsOwner([&] {
      int rc;
      if (kept != nullptr) {
        if (kept->plan == nullptr) {
          SPIPlanPtr plan = SPI_prepare(kept->sql, count, types);
          if (plan == nullptr) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
          if (SPI_keepplan(plan) != 0) elog(ERROR, "SPI_keepplan failed");
          kept->plan = plan;
        }
        rc = SPI_execute_plan(kept->plan, values, nulls, false, 0);
      } else {
        rc = SPI_execute_with_args(sql, count, types, values, nulls, false, 0);
      }
      if (rc < 0) elog(ERROR, "executing a catalog statement failed: %s", SPI_result_code_string(rc));
      if (SPI_processed > 0 && SPI_tuptable != nullptr) {
        char* text = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        if (text) value = MemoryContextStrdup(caller_context, text);
      }
    });
    return value;
  });
  if (first == nullptr) return std::nullopt;
  std::string result(first);
  pfree(first);
  return result;
}

std::optional<std::string> RunKept(KeptPlan& kept, std::initializer_list<const char*> params) {
  return RunAsOwner(kept.sql, &kept, params);
}

}  // namespace

std::optional<std::string> QueryAsOwner(const char* sql, std::initializer_list<const char*> params) {
  return RunAsOwner(sql, nullptr, params);
}

namespace {

[[noreturn]] void RefuseUnknown(const std::string& name) {
  throw Error(ErrorKind::kUndefinedObject, "experiment " + Quoted(name) + " does not exist", {},
              "List the experiments with SELECT name FROM ab_list_experiments().");
}

}  // namespace

Experiment LoadForUpdate(const std::string& name) {
  std::optional<std::string> doc = QueryAsOwner(kLoadForUpdate, {name.c_str()});
  if (!doc) RefuseUnknown(name);
  return ExperimentFromJson(*doc);
}

std::vector<Experiment> LoadAll() { return ExperimentsFromJson(QueryAsOwner(kLoadAll, {}).value_or("[]")); }

namespace {

// Whether the installed catalog is 1.2 or later (has the targeting columns).
}  // namespace

Oid Owner() { return PgCall([] { return CatalogOwner(); }); }

Oid AbtestRelation(const char* name) {
  Oid schema = get_namespace_oid("abtest", true);
  return OidIsValid(schema) ? get_relname_relid(name, schema) : InvalidOid;
}

bool HasOutcomeCatalog() {
  return PgCall([] { return OidIsValid(AbtestRelation("experiment_metrics")); });
}

bool HasQueryMetricsCatalog() {
  return PgCall([] { return OidIsValid(AbtestRelation("query_metrics")); });
}

namespace {

bool HasTargeting() {
  return PgCall([] {
    Oid relation = AbtestRelation("experiments");
    return OidIsValid(relation) && get_attnum(relation, "condition") != InvalidAttrNumber;
  });
}

bool Targeted(const Experiment& experiment) {
  return experiment.config.condition || experiment.config.namespace_range;
}

void RequireTargetingCatalog(const Experiment& experiment) {
  if (Targeted(experiment) && !HasTargeting())
    throw Error(ErrorKind::kWrongState, "the installed abtest catalog has no targeting",
                "Targeting needs version 1.2 of the extension's SQL.", "Run ALTER EXTENSION abtest UPDATE.");
}

}  // namespace

std::string Insert(const Experiment& experiment) {
  if (QueryAsOwner(kExists, {experiment.name.c_str()}))
    throw Error(ErrorKind::kDuplicateObject, "experiment " + Quoted(experiment.name) + " already exists", {},
                "Choose another name, or delete the old one with ab_delete_experiment('" + experiment.name + "').");
  RequireTargetingCatalog(experiment);
  std::string doc = ExperimentToJson(experiment);
  std::optional<std::string> id = QueryAsOwner(kInsert, {doc.c_str()});
  if (!id) throw Error(ErrorKind::kInternal, "inserting experiment " + Quoted(experiment.name) + " returned no id");
  if (Targeted(experiment)) QueryAsOwner(kSaveTargeting, {doc.c_str(), id->c_str()});
  return *id;
}

void Save(const Experiment& experiment) {
  RequireTargetingCatalog(experiment);
  std::string doc = ExperimentToJson(experiment);
  QueryAsOwner(kSave, {doc.c_str()});
  if (HasTargeting()) QueryAsOwner(kSaveTargeting, {doc.c_str(), experiment.id.c_str()});
}

void Force(const Experiment& experiment, std::string_view user_id, const std::string& branch) {
  std::string user(user_id);
  QueryAsOwner(kForce, {experiment.id.c_str(), user.c_str(), branch.c_str()});
}

void Unforce(const Experiment& experiment, std::string_view user_id) {
  std::string user(user_id);
  QueryAsOwner(kUnforce, {experiment.id.c_str(), user.c_str()});
}

void SetBranchSettings(const Experiment& experiment, const std::string& branch, const BranchSettings& settings) {
  bool has_column = PgCall([] {
    Oid relation = AbtestRelation("branches");
    return OidIsValid(relation) && get_attnum(relation, "settings") != InvalidAttrNumber;
  });
  if (!has_column)
    throw Error(ErrorKind::kWrongState, "the installed abtest catalog has no branch settings",
                "Branch settings need version 1.4 of the extension's SQL.", "Run ALTER EXTENSION abtest UPDATE.");
  std::string json = BranchSettingsJson(settings);
  QueryAsOwner(kSetBranchSettings, {experiment.id.c_str(), branch.c_str(), json.c_str()});
}

void RequireFreeNamespaceRange(const Experiment& experiment) {
  const std::optional<NamespaceRange>& range = experiment.config.namespace_range;
  if (!range || experiment.state != State::kActive) return;
  QueryAsOwner(kLockNamespaces, {});  // two experiments started at once are checked one after the other
  std::string start = FormatFraction(range->start), end = FormatFraction(range->end);
  std::optional<std::string> other =
      QueryAsOwner(kNamespaceOverlap, {range->name.c_str(), experiment.id.c_str(), start.c_str(), end.c_str()});
  if (other)
    throw Error(ErrorKind::kExclusion,
                "experiment " + Quoted(experiment.name) + " overlaps active experiment " + *other + " in namespace " +
                    Quoted(range->name),
                "Its range is {" + start + ", " + end + "}.",
                "Choose a free range (SELECT * FROM abtest.namespace_overview), or pause the other experiment.");
}

std::string Delete(const std::string& name) {
  std::optional<std::string> id = QueryAsOwner(kDelete, {name.c_str()});
  if (!id) RefuseUnknown(name);
  return *id;
}

void SetDefault(const std::optional<std::string>& name) {
  if (name) LoadForUpdate(*name);  // refuses an unknown name
  QueryAsOwner(kClearDefault, {});
  if (name) QueryAsOwner(kSetDefault, {name->c_str()});
}

bool AssignmentsExist(const std::string& experiment_id) {
  return RunKept(kept_assignments_exist, {experiment_id.c_str()}).has_value();
}

// A probe of the primary key through the access method (log_lookup.hpp), ~1 µs; the
// statement, several µs, only when the table is not as the extension created it. The
// probe checks no privilege, as the statement ran as the catalog owner: routing reads
// abtest's own log on behalf of anyone allowed to route.
std::optional<std::string> LoggedBranch(const std::string& experiment_id, std::string_view user_id) {
  pg_uuid_t experiment = UuidFromText(experiment_id);
  char* branch = nullptr;
  log_lookup::Outcome outcome =
      PgCall([&] { return log_lookup::Find(experiment, user_id.data(), user_id.size(), &branch); });
  if (outcome == log_lookup::Outcome::kFound) {
    std::string result(branch);
    pfree(branch);
    return result;
  }
  if (outcome == log_lookup::Outcome::kNotFound) return std::nullopt;
  std::string user(user_id);
  return RunKept(kept_logged_branch, {experiment_id.c_str(), user.c_str()});
}

std::string LogAssignment(const std::string& experiment_id, std::string_view user_id, const std::string& branch,
                          bool reassign) {
  std::string user(user_id);
  return RunKept(reassign ? kept_relog_assignment : kept_log_assignment,
                 {experiment_id.c_str(), user.c_str(), branch.c_str()})
      .value_or(branch);
}

void DeleteAssignments(const std::string& experiment_id) { QueryAsOwner(kDeleteAssignments, {experiment_id.c_str()}); }

bool HasDeletedExperimentsCatalog() {
  return PgCall([] { return OidIsValid(AbtestRelation("deleted_experiments")); });
}

void RecordDeletion(const std::string& experiment_id, const std::string& name) {
  QueryAsOwner(kRecordDeletion, {experiment_id.c_str(), name.c_str()});
}

void LockAssignmentsForWrite() { QueryAsOwner("LOCK TABLE abtest.assignments IN ROW EXCLUSIVE MODE", {}); }

void WriteAssignmentBatch(char* batch, Size bytes) {
  PgCall([&] { ConnectedAsOwner([&] { assignment_batch::WriteRecords(batch, bytes); }); });
}

void LockAssignmentsForClear() { QueryAsOwner("LOCK TABLE abtest.assignments IN SHARE ROW EXCLUSIVE MODE", {}); }

void DeleteUserAssignments(const std::string& user_id) { QueryAsOwner(kDeleteUserAssignments, {user_id.c_str()}); }

std::string TransactionTime() {
  const char* text = PgCall([] { return timestamptz_to_str(GetCurrentTransactionStartTimestamp()); });
  return text;
}

bool DatabaseExists(Oid database) {
  return PgCall([&] { return SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(database)); });
}

Oid ExperimentsRelation() {
  return PgCall([] { return AbtestRelation("experiments"); });
}

}  // namespace abtest::glue::catalog
