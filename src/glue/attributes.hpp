// The attributes argument of a routing call (jsonb), read lazily: a targeting
// condition or a strategy looks up the few paths it uses inside the jsonb, and only
// the values found are converted. A call whose experiment needs no attribute never
// detoasts the argument at all.
#pragma once

#include <array>
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

  const Json* Find(const std::vector<std::string>& path) override;
  // A top-level attribute as text (strings as they are, numbers as written, booleans
  // as true/false); nullopt when absent, null, an array or an object.
  std::optional<std::string> Text(std::string_view name);

 private:
  JsonbContainer* Root();
  const Json* Keep(Json value);

  Datum datum_;
  bool is_null_;
  Jsonb* jsonb_ = nullptr;
  // What Find returned, alive until this object ends: a condition's first few values
  // without a heap allocation, the rest in a list whose elements never move.
  std::array<Json, 4> found_;
  std::size_t found_count_ = 0;
  std::forward_list<Json> more_found_;
};

// A whole jsonb value as JSON (ab_eval_condition's arguments). Refuses nesting deeper
// than kMaxJsonDepth with 54000.
Json JsonFromJsonb(Jsonb* jsonb);

}  // namespace abtest::glue
