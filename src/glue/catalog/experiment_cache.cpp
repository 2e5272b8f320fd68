#include "glue/catalog/experiment_cache.hpp"

#include <map>
#include <memory>
#include <string>

#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"
#include "glue/pg_regex.hpp"

namespace abtest::glue::experiment_cache {
namespace {

struct Cache {
  bool valid = false;
  std::uint64_t generation = 0;
  bool callback_registered = false;
  Oid experiments_relation = InvalidOid;
  std::map<std::string, std::unique_ptr<CompiledExperiment>, std::less<>> by_name;
  const CompiledExperiment* default_experiment = nullptr;
};

Cache cache;
PgRegexEngine regex_engine;  // compiles the conditions' regular expressions

// Called by PostgreSQL while it processes invalidations: it must only set a flag.
void OnRelcacheInvalidation(Datum, Oid relation) {
  if (relation == InvalidOid || relation == cache.experiments_relation) cache.valid = false;
}

void Refresh() {
  if (!cache.callback_registered) {
    PgCall([] { CacheRegisterRelcacheCallback(OnRelcacheInvalidation, 0); });
    cache.callback_registered = true;
  }
  cache.valid = true;  // set first: an invalidation arriving during the load clears it again
  try {
    cache.experiments_relation = catalog::ExperimentsRelation();
    std::map<std::string, std::unique_ptr<CompiledExperiment>, std::less<>> by_name;
    const CompiledExperiment* default_experiment = nullptr;
    for (auto& experiment : catalog::LoadAll()) {
      auto compiled = std::make_unique<CompiledExperiment>(std::move(experiment), &regex_engine);
      if (compiled->model().is_default) default_experiment = compiled.get();
      std::string name = compiled->name();
      by_name.emplace(std::move(name), std::move(compiled));
    }
    cache.by_name.swap(by_name);
    cache.default_experiment = default_experiment;
    ++cache.generation;
  } catch (...) {
    cache.valid = false;
    throw;
  }
}

void EnsureFresh() {
  if (!cache.valid) Refresh();
}

}  // namespace

const CompiledExperiment* Find(std::string_view name) {
  EnsureFresh();
  auto it = cache.by_name.find(name);
  return it == cache.by_name.end() ? nullptr : it->second.get();
}

std::uint64_t CurrentGeneration() {
  EnsureFresh();
  return cache.generation;
}

std::vector<const CompiledExperiment*> All() {
  EnsureFresh();
  std::vector<const CompiledExperiment*> all;
  all.reserve(cache.by_name.size());
  for (const auto& [name, experiment] : cache.by_name) all.push_back(experiment.get());
  return all;
}

const CompiledExperiment* Default() {
  EnsureFresh();
  return cache.default_experiment;
}

}  // namespace abtest::glue::experiment_cache
