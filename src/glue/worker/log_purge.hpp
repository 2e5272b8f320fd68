// Deferred purge of a deleted experiment's assignment log (catalog 1.6).
//
// ab_delete_experiment removes the experiment from the catalog and records its id in
// abtest.deleted_experiments, in its own transaction, without touching
// abtest.assignments: one DELETE of millions of rows would hold the log for seconds.
// When it commits, the database's flush worker is woken and deletes the experiment's
// rows in batches of at most kBatchRows, one short transaction each under ROW
// EXCLUSIVE (as a flush), walking the primary key from the last user id deleted, and
// flushes the queue between batches: routing, flushes and clears go on meanwhile.
//
// Rows of the experiment can still arrive after the delete committed: a flush or a
// backend's own batch whose snapshot predates it, a synchronous write of a session whose
// transaction routed the experiment before the delete (its routing cache is refreshed
// only at its next transaction). So the worker notes the transactions of the database
// that were running when it first saw the deletion, and removes the row of
// abtest.deleted_experiments only once all of them have ended and then a scan from the
// start of the experiment's key range finds nothing. Later transactions cannot write
// the experiment's rows: they see it deleted, and the queued records of its released
// slot are dropped at their flush (their epoch is gone, and their branches too).
//
// Nothing reads the leftover rows meanwhile: an experiment's id is a fresh uuid, never
// given to another, and every reader of the log asks for an existing experiment's id.
//
// No query runs while nothing is pending: the worker reads abtest.deleted_experiments
// only when a purge was requested (assignment_queue.hpp), by a committed delete or at
// its own start (a restart, or a dump restored with a purge pending, resumes it).
#pragma once

namespace abtest::glue::log_purge {

// Backend side, in ab_delete_experiment after RecordDeletion: when the transaction
// commits, the database's flush worker is started or woken to purge.
void RequestAtCommit();

// Worker side, once it took a purge request (TakePurgeRequest): reads
// abtest.deleted_experiments (a transaction with a snapshot must be active).
void ReadRequests();
// Whether a purge is in hand.
bool Pending();

enum class Step {
  kMore,     // call again at once
  kWaiting,  // transactions older than the deletion still run: call again later
  kDone,     // nothing left
};
// One batch of the oldest purge in hand: call in a transaction with SPI connected and
// no snapshot taken yet. Errors are PostgreSQL errors.
Step PurgeBatch();

// After an error: forgets the purges in hand and requests them again from the table.
void Abandon(int queue);

}  // namespace abtest::glue::log_purge
