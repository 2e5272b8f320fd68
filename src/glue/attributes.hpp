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
  // A top-level attribute as text (strings as they are, numbers as written, booleans
  // as true/false); nullopt when absent, null, an array or an object.
  std::optional<std::string> Text(std::string_view name);

 private:
  JsonbContainer* Root();

  Datum datum_;
  bool is_null_;
  Jsonb* jsonb_ = nullptr;
  // The arrays and objects Find converted, alive until this object ends; a list, whose
  // elements never move, and empty (no allocation) for a call that finds only scalars.
  std::forward_list<Json> structured_;
};

// A whole jsonb value as JSON (ab_eval_condition's arguments). Refuses nesting deeper
// than kMaxJsonDepth with 54000.
Json JsonFromJsonb(Jsonb* jsonb);

}  // namespace abtest::glue
