// The experiment as a JSON document: the form the catalog hands to the core
// (to_jsonb of a row of abtest.experiment_overview) and takes back to store.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/experiment.hpp"

namespace abtest {

std::string ExperimentToJson(const Experiment& experiment);

// Parses one document, or an array of them (the whole catalog). Validates what it
// reads: a catalog edited by hand into something invalid is reported, not routed.
Experiment ExperimentFromJson(std::string_view json);
std::vector<Experiment> ExperimentsFromJson(std::string_view json);

}  // namespace abtest
