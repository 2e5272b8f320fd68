// Each backend's compiled copy of the experiment catalog.
//
// Routing never queries the catalog: it looks experiments up here. The whole catalog
// is loaded (one SPI query) on first use and again after it changes. A change is
// noticed through PostgreSQL's invalidation messages: a statement trigger on the
// catalog tables registers a relcache invalidation of abtest.experiments, which is
// delivered at commit to every backend (and dropped on rollback), so a committed
// change is seen by each session at its next transaction.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/router.hpp"

namespace abtest::glue::experiment_cache {

// The compiled experiment, or nullptr when it does not exist. Valid until the next
// call into this module.
const CompiledExperiment* Find(std::string_view name);
// Every experiment of this database, by name. Valid until the next call into this module.
std::vector<const CompiledExperiment*> All();
// The default experiment (ab_set_default_experiment), or nullptr.
const CompiledExperiment* Default();

// Refreshes the cache if the catalog changed, and returns its generation: a pointer
// obtained under the same generation is still valid.
std::uint64_t CurrentGeneration();

}  // namespace abtest::glue::experiment_cache
