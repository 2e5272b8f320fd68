#include "glue/experiment_arg.hpp"

#include "core/error.hpp"
#include "core/names.hpp"
#include "glue/args.hpp"
#include "glue/catalog/experiment_cache.hpp"
#include "glue/guard.hpp"

namespace abtest::glue {
namespace {

[[noreturn]] void RefuseUnknown(std::string_view name) {
  throw Error(ErrorKind::kUndefinedObject, "experiment " + Quoted(std::string(name)) + " does not exist", {},
              "List the experiments with SELECT name FROM ab_list_experiments().");
}

// The experiment a call site asked for last, kept in fn_extra: a query routing a
// million rows to one experiment looks it up once, not a million times.
struct CallSiteCache {
  std::uint64_t generation;
  const CompiledExperiment* experiment;
  std::size_t name_length;
  char name[kMaxNameBytes];
};

}  // namespace

const CompiledExperiment& RequireExperiment(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) RefuseNull("experiment name");
  std::string_view name = TextView(PG_GETARG_DATUM(n));
  std::uint64_t generation = experiment_cache::CurrentGeneration();
  auto* site = static_cast<CallSiteCache*>(fcinfo->flinfo->fn_extra);
  if (site != nullptr && site->generation == generation && std::string_view(site->name, site->name_length) == name)
    return *site->experiment;

  const CompiledExperiment* experiment = experiment_cache::Find(name);
  if (experiment == nullptr) RefuseUnknown(name);
  if (site == nullptr) {
    MemoryContext context = fcinfo->flinfo->fn_mcxt;
    site = PgCall([&] { return static_cast<CallSiteCache*>(MemoryContextAlloc(context, sizeof(CallSiteCache))); });
    fcinfo->flinfo->fn_extra = site;
  }
  site->generation = generation;
  site->experiment = experiment;
  site->name_length = name.size();  // at most kMaxNameBytes: it is an experiment's name
  memcpy(site->name, name.data(), name.size());
  return *experiment;
}

int RequireBranch(FunctionCallInfo fcinfo, const CompiledExperiment& experiment, int n) {
  if (PG_ARGISNULL(n)) RefuseNull("branch");
  std::string_view branch = TextView(PG_GETARG_DATUM(n));
  int position = experiment.model().BranchIndex(branch);
  if (position < 0) experiment.model().RequireBranch(std::string(branch));  // throws, naming both
  return position;
}

}  // namespace abtest::glue
