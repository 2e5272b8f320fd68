#include "core/experiment_json.hpp"

#include <cstdint>

#include <nlohmann/json.hpp>

#include "core/allocation.hpp"
#include "core/error.hpp"

namespace abtest {
namespace {

using Json = nlohmann::json;

[[noreturn]] void Corrupt(const std::string& what) {
  throw Error(ErrorKind::kInternal, "abtest catalog entry is invalid: " + what, {},
              "Change experiments only through the ab_* functions.");
}

const Json& Field(const Json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end()) Corrupt(std::string("missing field ") + key);
  return *it;
}

std::string Text(const Json& doc, const char* key) {
  const Json& value = Field(doc, key);
  if (!value.is_string()) Corrupt(std::string(key) + " is not text");
  return value.get<std::string>();
}

std::optional<std::string> OptionalText(const Json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) Corrupt(std::string(key) + " is not text");
  return it->get<std::string>();
}

std::vector<std::string> TextList(const Json& doc, const char* key) {
  const Json& value = Field(doc, key);
  std::vector<std::string> list;
  if (value.is_null()) return list;
  if (!value.is_array()) Corrupt(std::string(key) + " is not an array");
  for (const auto& item : value) {
    if (!item.is_string()) Corrupt(std::string(key) + " holds a non-text element");
    list.push_back(item.get<std::string>());
  }
  return list;
}

bool Boolean(const Json& doc, const char* key) {
  const Json& value = Field(doc, key);
  if (!value.is_boolean()) Corrupt(std::string(key) + " is not a boolean");
  return value.get<bool>();
}

// Only integers: a float (1e300) would be cast out of range, undefined behaviour.
std::int64_t Integer(const Json& doc, const char* key) {
  const Json& value = Field(doc, key);
  if (value.is_number_unsigned() && value.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
    Corrupt(std::string(key) + " is out of range");
  if (!value.is_number_integer()) Corrupt(std::string(key) + " is not an integer");
  return value.get<std::int64_t>();
}

double Number(const Json& doc, const char* key) {
  const Json& value = Field(doc, key);
  if (!value.is_number()) Corrupt(std::string(key) + " is not a number");
  return value.get<double>();
}

Json OptionalToJson(const std::optional<std::string>& value) { return value ? Json(*value) : Json(nullptr); }

// Targeting came with catalog 1.2: a document of an older catalog has none of these keys.
void ReadTargeting(const Json& doc, Experiment& e) {
  ConfigChange targeting;
  auto condition = doc.find("condition");
  if (condition != doc.end() && !condition->is_null()) {
    if (!condition->is_object()) Corrupt("condition is not an object");
    targeting.condition = condition->dump();
  }
  targeting.namespace_name = OptionalText(doc, "namespace");
  auto range = doc.find("namespace_range");
  if (range != doc.end() && !range->is_null()) {
    if (!range->is_array() || range->size() != 2 || !(*range)[0].is_number() || !(*range)[1].is_number())
      Corrupt("namespace_range is not {start, end}");
    targeting.namespace_range = std::make_pair((*range)[0].get<double>(), (*range)[1].get<double>());
  }
  e.Configure(targeting);
  auto forced = doc.find("forced_users");
  if (forced != doc.end() && !forced->is_null()) {
    if (!forced->is_object()) Corrupt("forced_users is not an object");
    for (const auto& [user, branch] : forced->items()) {
      if (!branch.is_string()) Corrupt("forced_users holds a non-text branch");
      e.RequireBranch(branch.get<std::string>());
      e.forced_users.emplace_back(user, branch.get<std::string>());
    }
  }
}

// Branch settings came with catalog 1.4: {"branch": {"name": "value"}}, only branches
// that have some. They were validated when set; they are read as they are.
void ReadBranchSettings(const Json& doc, Experiment& e) {
  auto all = doc.find("branch_settings");
  if (all == doc.end() || all->is_null()) return;
  if (!all->is_object()) Corrupt("branch_settings is not an object");
  for (const auto& [branch, settings] : all->items()) {
    if (!settings.is_object()) Corrupt("branch_settings holds a non-object");
    Branch& target = e.branches[static_cast<std::size_t>(e.RequireBranch(branch))];
    for (const auto& [name, value] : settings.items()) {
      if (!value.is_string()) Corrupt("branch_settings holds a non-text value");
      target.settings.push_back(BranchSetting{name, value.get<std::string>()});
    }
  }
}

Experiment FromDocument(const Json& doc) {
  if (!doc.is_object()) Corrupt("not an object");
  std::vector<std::string> names = TextList(doc, "branches");
  const Json& shares = Field(doc, "allocation");
  if (!shares.is_array() || shares.size() != names.size()) Corrupt("allocation does not match branches");
  std::vector<std::string> percents;
  for (const auto& share : shares) {
    if (!share.is_number()) Corrupt("allocation holds a non-number");
    percents.push_back(share.dump());
  }

  Experiment e = Experiment::Create(Text(doc, "name"), names, percents, OptionalText(doc, "description"),
                                    OptionalText(doc, "owner"), TextList(doc, "tags"));
  e.id = OptionalText(doc, "id").value_or("");  // a document not yet stored has none
  e.state = ParseState(Text(doc, "state"));
  e.created_at = OptionalText(doc, "created_at");
  e.started_at = OptionalText(doc, "started_at");
  e.completed_at = OptionalText(doc, "completed_at");
  e.winner = OptionalText(doc, "winner");
  if (e.winner) e.RequireBranch(*e.winner);
  // The same validation as ab_configure: a catalog edited by hand is held to it too.
  ConfigChange config;
  config.sticky = Boolean(doc, "sticky");
  config.allow_reassignment = Boolean(doc, "allow_reassignment");
  config.included_groups = TextList(doc, "included_groups");
  config.excluded_groups = TextList(doc, "excluded_groups");
  config.min_sample_size = Integer(doc, "min_sample_size");
  config.confidence_level = Number(doc, "confidence_level");
  config.auto_complete = Boolean(doc, "auto_complete");
  config.salt = Text(doc, "salt");
  e.Configure(config);
  e.config.max_duration = OptionalText(doc, "max_duration");  // the catalog's interval type checked it
  e.SetAssignment(Text(doc, "strategy"), Field(doc, "strategy_params").dump());
  e.is_default = Boolean(doc, "is_default");
  ReadTargeting(doc, e);
  ReadBranchSettings(doc, e);
  return e;
}

}  // namespace

std::string ExperimentToJson(const Experiment& e) {
  Json branches = Json::array(), allocation = Json::array();
  for (const auto& branch : e.branches) {
    branches.push_back(branch.name);
    allocation.push_back(Json::parse(FormatPercent(branch.allocation)));
  }
  Json doc = {
      {"id", e.id.empty() ? Json(nullptr) : Json(e.id)},
      {"name", e.name},
      {"description", OptionalToJson(e.description)},
      {"owner", OptionalToJson(e.owner)},
      {"tags", e.tags},
      {"branches", branches},
      {"allocation", allocation},
      {"state", StateName(e.state)},
      {"created_at", OptionalToJson(e.created_at)},
      {"started_at", OptionalToJson(e.started_at)},
      {"completed_at", OptionalToJson(e.completed_at)},
      {"winner", OptionalToJson(e.winner)},
      {"sticky", e.config.sticky},
      {"allow_reassignment", e.config.allow_reassignment},
      {"included_groups", e.config.included_groups},
      {"excluded_groups", e.config.excluded_groups},
      {"min_sample_size", e.config.min_sample_size},
      {"confidence_level", e.config.confidence_level},
      {"auto_complete", e.config.auto_complete},
      {"max_duration", OptionalToJson(e.config.max_duration)},
      {"salt", e.config.salt},
      {"strategy", StrategyName(e.strategy.kind)},
      {"strategy_params", Json::parse(StrategyParamsJson(e.strategy))},
      {"is_default", e.is_default},
  };
  doc["condition"] = e.config.condition ? Json::parse(*e.config.condition) : Json(nullptr);
  doc["namespace"] = e.config.namespace_range ? Json(e.config.namespace_range->name) : Json(nullptr);
  doc["namespace_range"] = e.config.namespace_range
                               ? Json::array({e.config.namespace_range->start, e.config.namespace_range->end})
                               : Json(nullptr);
  Json forced = Json::object();
  for (const auto& [user, branch] : e.forced_users) forced[user] = branch;
  doc["forced_users"] = forced;
  return doc.dump();
}

Experiment ExperimentFromJson(std::string_view json) {
  Json doc = Json::parse(json.begin(), json.end(), nullptr, false);
  if (doc.is_discarded()) Corrupt("not JSON");
  return FromDocument(doc);
}

std::vector<Experiment> ExperimentsFromJson(std::string_view json) {
  Json docs = Json::parse(json.begin(), json.end(), nullptr, false);
  if (docs.is_discarded() || !docs.is_array()) Corrupt("not a JSON array");
  std::vector<Experiment> experiments;
  for (const auto& doc : docs) experiments.push_back(FromDocument(doc));
  return experiments;
}

}  // namespace abtest
