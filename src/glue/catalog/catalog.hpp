// The experiment catalog (tables abtest.experiments and abtest.branches), read and
// written through SPI as JSON documents of abtest.experiment_overview rows. Only
// administration and cache refreshes come here, never a routing call.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/experiment.hpp"
#include "glue/pg.hpp"

namespace abtest::glue::catalog {

// Runs `sql` with text parameters (nullptr for NULL) and returns the first column of
// the first row as text, or nullopt when there is no row or it is NULL. It runs as the
// owner of schema abtest with search_path pinned, like a SECURITY DEFINER function.
std::optional<std::string> QueryAsOwner(const char* sql, std::initializer_list<const char*> params);

// The experiment, row-locked until the end of the transaction; throws kUndefinedObject.
Experiment LoadForUpdate(const std::string& name);
// Every experiment of this database, as the routing cache compiles them.
std::vector<Experiment> LoadAll();

// Inserts a new experiment and returns its id; throws kDuplicateObject for a taken name.
std::string Insert(const Experiment& experiment);
void Save(const Experiment& experiment);
// Forced users (abtest.forced_users): force or unforce one user.
void Force(const Experiment& experiment, std::string_view user_id, const std::string& branch);
void Unforce(const Experiment& experiment, std::string_view user_id);
// Stores a branch's settings (validated by the caller); '{}' clears them. Refuses on a
// catalog older than 1.4.
void SetBranchSettings(const Experiment& experiment, const std::string& branch, const BranchSettings& settings);
// Refuses (23P01) an active experiment whose namespace range overlaps that of another
// active experiment of its namespace; serialised by a lock on the catalog.
void RequireFreeNamespaceRange(const Experiment& experiment);
// Deletes it and returns its id; throws kUndefinedObject.
std::string Delete(const std::string& name);
// Makes `name` the default experiment, or clears the default when nullopt.
void SetDefault(const std::optional<std::string>& name);

// The assignment log, abtest.assignments.
bool AssignmentsExist(const std::string& experiment_id);
std::optional<std::string> LoggedBranch(const std::string& experiment_id, std::string_view user_id);
// Writes the assignment in the caller's transaction and returns the branch the log
// holds afterwards (an earlier one, unless `reassign`).
// A backend's own batch of assignments (when the write-behind queue is full), in the
// caller's transaction as the catalog owner: the lock first (the order clears rely
// on, see flush_worker.cpp), then the write of the records still live.
void LockAssignmentsForWrite();
void WriteAssignmentBatch(char* batch, Size bytes);
std::string LogAssignment(const std::string& experiment_id, std::string_view user_id, const std::string& branch,
                          bool reassign);
void DeleteAssignments(const std::string& experiment_id);
// Whether the installed SQL has abtest.deleted_experiments (1.6): a deleted experiment's
// log is then purged by the flush worker (log_purge.hpp) rather than deleted at once.
bool HasDeletedExperimentsCatalog();
// Records a deleted experiment whose log rows the flush worker is to purge (1.6).
void RecordDeletion(const std::string& experiment_id, const std::string& name);
// Taken before a clear forgets anything: waits out a flush in flight (see flush_worker.cpp).
void LockAssignmentsForClear();
void DeleteUserAssignments(const std::string& user_id);

// The transaction's start time as text, for lifecycle timestamps.
std::string TransactionTime();

// The owner of schema abtest: who the catalog's statements run as.
Oid Owner();

// Whether the installed SQL has the outcome-analysis tables (version 1.3 and later).
bool HasOutcomeCatalog();
// Whether it has abtest.query_metrics, the per-query metrics of database branches (1.4).
bool HasQueryMetricsCatalog();
// The table abtest.`name`, or InvalidOid. Raises PostgreSQL errors (no PgCall): for the
// flush worker, which runs no C++ exceptions.
Oid AbtestRelation(const char* name);

// The oid of abtest.experiments, or InvalidOid when the extension is not installed.
Oid ExperimentsRelation();

// Whether the database exists (shared memory outlives DROP DATABASE).
bool DatabaseExists(Oid database);

}  // namespace abtest::glue::catalog
