// The experiment catalog (tables abtest.experiments and abtest.branches), read and
// written through SPI as JSON documents of abtest.experiment_overview rows. Only
// administration and cache refreshes come here, never a routing call.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/experiment.hpp"
#include "glue/pg.hpp"

namespace abtest::glue::catalog {

// The experiment, row-locked until the end of the transaction; throws kUndefinedObject.
Experiment LoadForUpdate(const std::string& name);
// Every experiment of this database, as the routing cache compiles them.
std::vector<Experiment> LoadAll();

// Inserts a new experiment and returns its id; throws kDuplicateObject for a taken name.
std::string Insert(const Experiment& experiment);
void Save(const Experiment& experiment);
// Deletes it and returns its id; throws kUndefinedObject.
std::string Delete(const std::string& name);
// Makes `name` the default experiment, or clears the default when nullopt.
void SetDefault(const std::optional<std::string>& name);

// The transaction's start time as text, for lifecycle timestamps.
std::string TransactionTime();

// The oid of abtest.experiments, or InvalidOid when the extension is not installed.
Oid ExperimentsRelation();

}  // namespace abtest::glue::catalog
