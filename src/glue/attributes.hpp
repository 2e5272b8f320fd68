// The attributes argument of a routing call (jsonb), read lazily: a targeting
// condition or a strategy looks up the few paths it uses inside the jsonb, and only
// the values found are converted. A call whose experiment needs no attribute never
// detoasts the argument at all.
#pragma once

#include <forward_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/condition.hpp"
#include "glue/pg.hpp"

namespace abtest::glue {

class JsonbAttributes final : public AttributeSource {
 public:
  // `datum` may be 0 with `is_null`: no attributes, as '{}'.
  JsonbAttributes(Datum datum, bool is_null) : datum_(datum), is_null_(is_null) {}

  // Scalars are read in place (a string is a view into the jsonb); only an array or an
  // object is converted to JSON.
  std::optional<AttributeValue> Find(const std::vector<std::string>& path) override;
  // Finds the condition's top-level keys in one pass over the object's entries, adding
  // up their offsets as it goes, where each search of getKeyJsonValueFromContainer adds
  // them up again at every probe. Not for an object so large that the pass would cost
  // more than the searches, nor for more than kMaxPrepared keys: Find serves those.
  void Prepare(const std::vector<std::string>& keys) override;
  bool FindPrepared(std::size_t slot, const std::vector<std::string>& path, AttributeValue& value) override;
  // A top-level attribute as text (strings as they are, numbers as written, booleans
  // as true/false); nullopt when absent, null, an array or an object.
  std::optional<std::string> Text(std::string_view name);

 private:
  JsonbContainer* Root();
  Jsonb* Detoasted();
  // The value `found` holds at path[0..from), followed along the rest of the path, into
  // `value`; false when absent.
  bool Descend(JsonbValue found, const std::vector<std::string>& path, std::size_t from, AttributeValue& value);

  Datum datum_;
  bool is_null_;
  Jsonb* jsonb_ = nullptr;
  // What Prepare found: per key, the value's entry in the root object (-1: absent) and
  // where its data starts and ends. prepared_ is false when Find must do the work.
  static constexpr std::size_t kMaxPrepared = 16;
  struct Prepared {
    int entry;
    std::uint32_t start, end;
  };
  bool prepared_ = false;
  Prepared found_[kMaxPrepared];
  // The arrays and objects Find converted, alive until this object ends; a list, whose
  // elements never move, and empty (no allocation) for a call that finds only scalars.
  std::forward_list<Json> structured_;
};

// A whole jsonb value as JSON (ab_eval_condition's arguments). Refuses nesting deeper
// than kMaxJsonDepth with 54000.
Json JsonFromJsonb(Jsonb* jsonb);

}  // namespace abtest::glue
