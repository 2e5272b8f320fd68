// The metrics tables, abtest.branch_metrics and abtest.event_metrics: the totals of
// the shared-memory counters (metrics_store.hpp) as of the last flush.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "core/latency_histogram.hpp"
#include "core/metrics.hpp"
#include "glue/pg.hpp"

namespace abtest::glue::metrics {

struct PersistedBranch {
  pg_uuid_t experiment;
  int position;
  QueryCounters queries;
  std::array<std::uint64_t, kLatencyBuckets> histogram{};
  std::uint64_t exposures = 0;
  std::uint64_t assigned_users = 0;
  double sequential_p = 1;
};

struct PersistedEvent {
  pg_uuid_t experiment;
  int position;
  std::string name;
  RunningMoments moments;
};

// Backend side (throws): every persisted row of this database.
void ReadPersisted(std::vector<PersistedBranch>& branches, std::vector<PersistedEvent>& events);
// Waits out a flush in flight, then keeps the worker out until commit. The per-query
// table too (query_persistence.hpp): it is cleared with the branch metrics.
void LockPersistedForClear();
// Deletes the persisted rows of one experiment, or of all when `experiment_id` is empty,
// abtest.query_metrics' too.
void DeletePersisted(const std::string& experiment_id);

// Flush worker side (PostgreSQL errors, no C++ objects): writes the totals of every
// entry of `database`. Runs inside the worker's transaction, SPI connected.
void WritePersisted(Oid database);

}  // namespace abtest::glue::metrics
