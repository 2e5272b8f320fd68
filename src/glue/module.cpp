// The library's entry point: GUCs and shared memory, set up at server start.

#include "glue/sql/analysis.hpp"
#include "glue/shmem/assignment_queue.hpp"
#include "glue/guard.hpp"
#include "glue/hooks/statement_timing.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/shmem/query_metrics.hpp"
#include "glue/shmem/shared_state.hpp"
#include "glue/sticky.hpp"
#include "glue/shmem/sticky_cache.hpp"
#include "glue/worker/queue_launcher.hpp"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
}

namespace {

const struct config_enum_entry kDurabilityOptions[] = {
    {"async", static_cast<int>(abtest::glue::sticky::Durability::kAsync), false},
    {"sync", static_cast<int>(abtest::glue::sticky::Durability::kSync), false},
    {nullptr, 0, false},
};

// -1 (automatic) or a real cache: a handful of entries would make every user a miss.
bool CheckStickyCacheSize(int* value, void**, GucSource) {
  if (*value == -1 || *value >= 1024) return true;
  GUC_check_errdetail("abtest.sticky_cache_size must be -1 (sized from shared_buffers) or at least 1024.");
  return false;
}

}  // namespace

void _PG_init(void) {
  using namespace abtest::glue;
  // Shared memory can only be reserved while the postmaster loads its libraries;
  // loaded later, every function explains how to preload (see RequirePreloaded).
  if (!process_shared_preload_libraries_in_progress) return;

  DefineCustomIntVariable("abtest.max_experiments",
                          "Maximum number of experiments with shared state (sticky cache, round robin), "
                          "over all databases.",
                          nullptr, &max_experiments, 1024, 16, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("abtest.sticky_cache_size",
                          "Number of sticky assignments kept in shared memory (40 bytes each).",
                          "-1 (the default) sizes it from shared_buffers: a quarter of its memory, at least "
                          "2097152 entries (80 MB), at most 67108864 (2.5 GB).",
                          &sticky_cache_size, -1, -1, INT_MAX / 2, PGC_POSTMASTER, 0, CheckStickyCacheSize, nullptr,
                          nullptr);
  DefineCustomIntVariable("abtest.max_databases",
                          "Number of databases that can hold abtest's per-database state (write-behind queue, "
                          "metrics) at once.",
                          "0 (the default) gives one per possible connection (MaxBackends), so that no database is "
                          "ever refused; the state of a database nobody is connected to is reclaimed.",
                          &max_databases, 0, 0, 262143, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("abtest.assignment_queue_size",
                          "Shared memory for sticky assignments not yet written to abtest.assignments, shared by "
                          "all databases.",
                          nullptr, &assignment_queue_size, 65536, 128, INT_MAX / 1024, PGC_POSTMASTER, GUC_UNIT_KB,
                          nullptr, nullptr, nullptr);
  DefineCustomIntVariable("abtest.flush_interval",
                          "Longest time a new sticky assignment waits before it is written to abtest.assignments.",
                          nullptr, &flush_interval_ms, 1000, 10, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
                          nullptr, nullptr);
  DefineCustomEnumVariable("abtest.sticky_durability",
                           "async: new sticky assignments are written by the flush worker; "
                           "sync: in the routing transaction.",
                           nullptr, &sticky::durability, static_cast<int>(sticky::Durability::kAsync),
                           kDurabilityOptions, PGC_USERSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("abtest.max_branches",
                          "Number of branches, over all experiments and databases, that can hold query metrics "
                          "and exposures in shared memory (about 4.3 kB each).",
                          nullptr, &metrics::max_branches, 2048, 16, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr,
                          nullptr);
  DefineCustomIntVariable("abtest.max_events",
                          "Number of (branch, event name) pairs that can hold event metrics in shared memory.",
                          nullptr, &metrics::max_events, 8192, 16, 10000000, PGC_POSTMASTER, 0, nullptr, nullptr,
                          nullptr);
  DefineCustomIntVariable("abtest.max_tracked_queries",
                          "Number of (experiment, branch, query id) entries, over all databases, that can hold "
                          "per-query metrics of database branches in shared memory (2,744 bytes each).",
                          "When it is full, the least-used entries are evicted. 0 turns per-query metrics off.",
                          &query_metrics::max_tracked_queries, 5000, 0, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr,
                          nullptr);
  DefineCustomRealVariable("abtest.sequential_mixing_variance",
                           "Variance tau^2 of the normal mixing distribution of the always-valid p-value.",
                           "The sequential test is most powerful for absolute differences in success rate of "
                           "about sqrt(tau^2); the default 0.0001 aims at one percentage point.",
                           &sequential_mixing_variance, 1e-4, 1e-10, 1.0, PGC_SIGHUP, 0, nullptr, nullptr,
                           nullptr);
  DefineCustomBoolVariable("abtest.track_nested",
                           "Measures the statements that functions run inside a transaction that entered a "
                           "branch (ab_enter), each as a query of the branch.",
                           nullptr, &statement_timing::track_nested, false, PGC_SUSET, 0, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable("abtest.track_utility",
                           "Measures utility statements (other than transaction control) of a transaction that "
                           "entered a branch (ab_enter), each as a query of the branch.",
                           nullptr, &statement_timing::track_utility, false, PGC_SUSET, 0, nullptr, nullptr,
                           nullptr);
  MarkGUCPrefixReserved("abtest");
  InstallSharedMemoryHooks();
  statement_timing::InstallHooks();
  queue_launcher::Register();
}
