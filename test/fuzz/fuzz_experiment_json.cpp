// libFuzzer target: abtest::ExperimentFromJson / ExperimentsFromJson / ExperimentToJson.
//
// The whole input is the JSON text, tried both as one document and as an array. For
// every experiment that parses, ExperimentToJson must give a document that parses back
// (no abtest::Error) to an equal experiment, whose document is the same text again.
//
// Random bytes rarely stay a complete, valid 24-field document, so when the input is a
// JSON object its fields are also laid over a valid base document ({"id": ""} reaches
// the round trip at once). This is the target's own use of nlohmann::json, not the core's.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "core/allocation.hpp"
#include "core/experiment_json.hpp"
#include "fuzz_common.hpp"

using abtest_fuzz::Finding;

namespace {

bool SameBranches(const std::vector<abtest::Branch>& a, const std::vector<abtest::Branch>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name || a[i].allocation != b[i].allocation) return false;
  return true;
}

bool SameStrategy(const abtest::Strategy& a, const abtest::Strategy& b) {
  return a.kind == b.kind && a.divisor == b.divisor && a.attribute == b.attribute && a.mapping == b.mapping &&
         a.coverage == b.coverage && a.branch == b.branch;
}

bool SameConfig(const abtest::Config& a, const abtest::Config& b) {
  return a.sticky == b.sticky && a.allow_reassignment == b.allow_reassignment &&
         a.included_groups == b.included_groups && a.excluded_groups == b.excluded_groups &&
         a.min_sample_size == b.min_sample_size && a.confidence_level == b.confidence_level &&
         a.auto_complete == b.auto_complete && a.max_duration == b.max_duration && a.salt == b.salt;
}

// Names the first field that differs, or returns "".
std::string Difference(const abtest::Experiment& a, const abtest::Experiment& b) {
  if (a.id != b.id) return "id";
  if (a.name != b.name) return "name";
  if (a.description != b.description) return "description";
  if (a.owner != b.owner) return "owner";
  if (a.tags != b.tags) return "tags";
  if (!SameBranches(a.branches, b.branches)) return "branches";
  if (a.state != b.state) return "state";
  if (a.created_at != b.created_at || a.started_at != b.started_at || a.completed_at != b.completed_at)
    return "timestamps";
  if (a.winner != b.winner) return "winner";
  if (!SameConfig(a.config, b.config)) return "config";
  if (!SameStrategy(a.strategy, b.strategy)) return "strategy";
  if (a.is_default != b.is_default) return "is_default";
  return "";
}

void CheckInvariants(const abtest::Experiment& e) {
  long total = 0;
  for (const auto& branch : e.branches) {
    if (branch.allocation < 0 || branch.allocation > abtest::kBuckets) Finding("branch allocation out of range");
    total += branch.allocation;
  }
  if (total != abtest::kBuckets) Finding("allocations do not sum to 10000: " + std::to_string(total));
  if (e.branches.size() < 2 || e.branches.size() > abtest::kMaxBranches) Finding("branch count out of range");
  if (e.winner && e.BranchIndex(*e.winner) < 0) Finding("winner is not a branch");
}

// ExperimentToJson of `e` must parse back to an equal experiment with the same document.
std::string RoundTrip(const abtest::Experiment& e) {
  std::string first = abtest::ExperimentToJson(e);
  abtest::Experiment back;
  try {
    back = abtest::ExperimentFromJson(first);
  } catch (const abtest::Error& error) {
    Finding("ExperimentToJson output is refused by ExperimentFromJson: " + std::string(error.what()) +
            "\n  document: " + first);
  }
  std::string differs = Difference(e, back);
  if (!differs.empty()) Finding("round trip changed " + differs + "\n  document: " + first);
  std::string second = abtest::ExperimentToJson(back);
  if (second != first) Finding("round trip changed the document\n  first:  " + first + "\n  second: " + second);
  return first;
}

const char kBase[] = R"({"id":"0b6f1b6e-6d3b-4b47-9f55-2a1d6f5a7c11","name":"checkout_v2",
  "description":"One-page checkout","owner":"payments","tags":["web"],"branches":["control","treatment","beta"],
  "allocation":[33.34,33.33,33.33],"state":"active","created_at":"2024-01-01 00:00:00+00",
  "started_at":"2024-01-02 00:00:00+00","completed_at":null,"winner":null,"sticky":true,"allow_reassignment":false,
  "included_groups":[],"excluded_groups":["staff"],"min_sample_size":100,"confidence_level":0.95,
  "auto_complete":false,"max_duration":"7 days","salt":"checkout_v2","strategy":"attribute",
  "strategy_params":{"name":"country","mapping":{"DE":"treatment","FR":"beta"}},"is_default":false})";

void CheckDocument(std::string_view json) {
  abtest_fuzz::Guarded("ExperimentFromJson", [&] {
    abtest::Experiment e = abtest::ExperimentFromJson(json);
    CheckInvariants(e);
    RoundTrip(e);
  });
}

// The input's fields laid over kBase, or "" when the input is not a JSON object.
std::string Overlay(std::string_view json) {
  using Json = nlohmann::json;
  Json patch = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (patch.is_discarded() || !patch.is_object()) return {};
  Json doc = Json::parse(kBase);
  for (auto& [key, value] : patch.items()) doc[key] = value;
  return doc.dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view json = abtest_fuzz::AsText(data, size);

  CheckDocument(json);
  if (std::string overlaid = Overlay(json); !overlaid.empty()) CheckDocument(overlaid);

  abtest_fuzz::Guarded("ExperimentsFromJson", [&] {
    std::vector<abtest::Experiment> all = abtest::ExperimentsFromJson(json);
    std::string array = "[";
    for (std::size_t i = 0; i < all.size(); ++i) {
      CheckInvariants(all[i]);
      if (i > 0) array += ",";
      array += RoundTrip(all[i]);
    }
    array += "]";
    std::vector<abtest::Experiment> back;
    try {
      back = abtest::ExperimentsFromJson(array);
    } catch (const abtest::Error& error) {
      Finding("array of ExperimentToJson outputs is refused: " + std::string(error.what()));
    }
    if (back.size() != all.size()) Finding("array round trip changed the number of experiments");
    for (std::size_t i = 0; i < all.size(); ++i)
      if (std::string d = Difference(all[i], back[i]); !d.empty()) Finding("array round trip changed " + d);
  });
  return 0;
}
