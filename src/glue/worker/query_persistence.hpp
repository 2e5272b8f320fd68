// The table abtest.query_metrics (catalog 1.4): the per-query counters of
// query_metrics.hpp as of the last flush, one row per (experiment, branch, query id).
// With an older catalog every function here does nothing: the counters then live in
// shared memory only, until ALTER EXTENSION abtest UPDATE creates the table and the next
// flush writes them all.
#pragma once

#include <string>
#include <vector>

#include "glue/pg.hpp"
#include "glue/shmem/query_metrics.hpp"

namespace abtest::glue::query_metrics {

// Backend side (throws): every persisted row of this database.
void ReadPersisted(std::vector<PersistedQuery>& rows);
// After metrics::LockPersistedForClear's tables: waits out a flush in flight, then keeps
// the worker out until commit.
void LockPersistedForClear();
// Deletes the persisted rows of one experiment, or of all when `experiment_id` is empty.
void DeletePersisted(const std::string& experiment_id);

// Flush worker side (PostgreSQL errors, no C++ objects), in the worker's transaction, SPI
// connected: deletes the rows of entries evicted since the last write and writes the
// entries changed since. Hand the window to EndWrite once the transaction committed.
WriteWindow WritePersisted(Oid database);

}  // namespace abtest::glue::query_metrics
