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
  Datum* branch_texts;  // BranchText's, one per branch; null until asked for
  int text_sets;        // how many times this site has made them
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
    site->text_sets = 0;
    fcinfo->flinfo->fn_extra = site;
  }
  site->generation = generation;
  site->experiment = experiment;
  // A previous experiment's texts stay allocated: a result returned before may still be
  // in use. They go with the call site's memory context, at the end of the query.
  site->branch_texts = nullptr;
  site->name_length = name.size();  // at most kMaxNameBytes: it is an experiment's name
  memcpy(site->name, name.data(), name.size());
  return *experiment;
}

Datum BranchText(FunctionCallInfo fcinfo, const CompiledExperiment& experiment, int branch) {
  auto* site = static_cast<CallSiteCache*>(fcinfo->flinfo->fn_extra);
  // A site whose experiment keeps changing (a name taken from a column) would keep
  // making texts that live until the end of the query: after a few, it makes none.
  constexpr int kMaxTextSets = 4;
  if (site == nullptr || site->experiment != &experiment ||
      (site->branch_texts == nullptr && site->text_sets == kMaxTextSets))
    return TextDatum(experiment.branch(branch));
  if (site->branch_texts == nullptr) {
    ++site->text_sets;
    MemoryContext context = fcinfo->flinfo->fn_mcxt;
    const auto& branches = experiment.model().branches;
    site->branch_texts = PgCall([&] {
      auto* texts = static_cast<Datum*>(MemoryContextAlloc(context, sizeof(Datum) * branches.size()));
      for (std::size_t i = 0; i < branches.size(); ++i) {
        const std::string& name = branches[i].name;
        auto* value = static_cast<text*>(MemoryContextAlloc(context, VARHDRSZ + name.size()));
        SET_VARSIZE(value, VARHDRSZ + name.size());
        memcpy(VARDATA(value), name.data(), name.size());
        texts[i] = PointerGetDatum(value);
      }
      return texts;
    });
  }
  return site->branch_texts[branch];
}

int RequireBranch(FunctionCallInfo fcinfo, const CompiledExperiment& experiment, int n) {
  if (PG_ARGISNULL(n)) RefuseNull("branch");
  std::string_view branch = TextView(PG_GETARG_DATUM(n));
  int position = experiment.model().BranchIndex(branch);
  if (position < 0) experiment.model().RequireBranch(std::string(branch));  // throws, naming both
  return position;
}

}  // namespace abtest::glue
