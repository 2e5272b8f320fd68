// Warm start: after a restart the sticky cache is empty while abtest.assignments holds
// every assignment, so the cache cannot vouch for anyone and every miss, a new user's
// too, would cost a log lookup for the rest of the server's life. The first routing
// call that finds an experiment's log non-empty asks the database's flush worker to
// load the log into the cache; when all of it is in, the experiment's log state
// becomes complete again and misses are new users.
//
// The worker loads in chunks of the primary key, one transaction each, holding ROW
// EXCLUSIVE on abtest.assignments like a flush: a clear (SHARE ROW EXCLUSIVE) runs
// between chunks, never during one. Rows written after a chunk's snapshot come from
// the cache (queued or synchronous writes of cached entries) or were marked in their
// set when they could not be cached, so a loaded log is complete. A clear moves the
// experiment's epoch on, which ends its load; the log state is only set complete for
// the epoch the load started in. A load stops, leaving the log incomplete, when the
// cache is three quarters full: it would only evict what it loaded.
#pragma once

namespace abtest::glue::warm_start {

// Takes this database's requests (a transaction with a snapshot must be active).
// Returns whether there is anything to load.
bool TakeRequests();

// Loads the next chunk: call in a transaction, with an active snapshot and
// SPI_connect, while TakeRequests or the last call returned true. Returns whether
// more is left. Errors are PostgreSQL errors.
bool LoadChunk();

// After an error: gives the unfinished loads back as requests, for the next round.
void Abandon();

}  // namespace abtest::glue::warm_start
