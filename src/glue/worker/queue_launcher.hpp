// The launcher: one background worker per cluster, started with the server (like
// autovacuum's launcher or pg_cron's), that starts the flush worker of any database
// whose queue or counters wait and that has none running.
//
// Backends start their database's worker themselves; the launcher covers the cases
// they cannot: no background worker slot was free at that moment (more databases
// busy than max_worker_processes allows), and every backend of the database has
// left since. Workers of other databases then yield their slots in turn
// (WorkerShouldYield), so that every database is written.
#pragma once

namespace abtest::glue::queue_launcher {

// Registers the launcher; from _PG_init, while shared_preload_libraries load.
void Register();

}  // namespace abtest::glue::queue_launcher
