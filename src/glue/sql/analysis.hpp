// What the analysis functions (analysis.cpp) share with the flush worker's
// auto-completion (auto_complete.cpp).
#pragma once

#include <optional>

#include "core/comparison.hpp"
#include "core/router.hpp"

namespace abtest::glue {

// The experiment's confidence level and minimum sample, and the mixing variance GUC.
AnalysisSettings SettingsOf(const CompiledExperiment& experiment);

// For an active experiment with auto_complete: one look at every branch against the
// control (lowering their running always-valid p-values), and what to do about it.
// nullopt for any other experiment.
std::optional<AutoCompleteDecision> AutoCompleteDecisionFor(const CompiledExperiment& experiment);

extern double sequential_mixing_variance;  // GUC abtest.sequential_mixing_variance

}  // namespace abtest::glue
