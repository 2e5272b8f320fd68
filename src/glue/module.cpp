// The library's entry point: GUCs and shared memory, set up at server start.

#include "glue/guard.hpp"
#include "glue/shared_state.hpp"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
}

void _PG_init(void) {
  // Shared memory can only be reserved while the postmaster loads its libraries;
  // loaded later, every function explains how to preload (see RequirePreloaded).
  if (!process_shared_preload_libraries_in_progress) return;

  DefineCustomIntVariable("abtest.max_experiments",
                          "Maximum number of experiments tracked in shared memory, for all databases.",
                          "Each experiment that uses cluster-wide state (the round_robin turn) takes a slot.",
                          &abtest::glue::max_experiments, 1024, 16, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr,
                          nullptr);
  MarkGUCPrefixReserved("abtest");
  abtest::glue::InstallSharedMemoryHooks();
}
