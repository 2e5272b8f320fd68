#include "glue/worker/queue_launcher.hpp"

#include "glue/shmem/assignment_queue.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/syscache.h"

PGDLLEXPORT void abtest_queue_launcher_main(Datum main_arg);
}

namespace abtest::glue::queue_launcher {

void Register() {
  BackgroundWorker worker;
  memset(&worker, 0, sizeof worker);
  // Connected to no database: it reads only pg_database, a shared catalog.
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_RecoveryFinished;  // a standby writes nothing
  worker.bgw_restart_time = 10;
  snprintf(worker.bgw_library_name, BGW_MAXLEN, "abtest");
  snprintf(worker.bgw_function_name, BGW_MAXLEN, "abtest_queue_launcher_main");
  snprintf(worker.bgw_name, BGW_MAXLEN, "abtest launcher");
  snprintf(worker.bgw_type, BGW_MAXLEN, "abtest launcher");
  RegisterBackgroundWorker(&worker);
}

}  // namespace abtest::glue::queue_launcher

using namespace abtest::glue;

void abtest_queue_launcher_main(Datum) {
  pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);

  while (!ShutdownRequestPending) {
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, flush_interval_ms, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
    std::vector<Oid> waiting = DatabasesWaitingForWorker();
    if (waiting.empty()) continue;
    // A dropped database's queue waits for nobody: its slot is reclaimed later.
    StartTransactionCommand();
    std::vector<Oid> existing;
    for (Oid database : waiting)
      if (SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(database))) existing.push_back(database);
    CommitTransactionCommand();
    for (Oid database : existing) StartWorkerFor(database);
  }
  proc_exit(0);
}
