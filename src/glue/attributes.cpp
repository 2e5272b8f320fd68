#include "glue/attributes.hpp"

#include <cstdlib>

#include "core/error.hpp"
#include "glue/guard.hpp"

namespace abtest::glue {
namespace {

// Deeper values are refused rather than converted: the conversion recurses.
constexpr int kMaxJsonDepth = 64;

char* NumericCString(Numeric numeric) {
  return PgCall([&] { return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(numeric))); });
}

std::string NumericText(Numeric numeric) {
  char* text = NumericCString(numeric);
  std::string result(text);
  pfree(text);
  return result;
}

// Through text, not numeric_float8: a number beyond double's range becomes ±inf (and
// compares as such) instead of raising an error in the middle of routing.
double NumericValue(Numeric numeric) {
  char* text = NumericCString(numeric);
  double value = std::strtod(text, nullptr);
  pfree(text);
  return value;
}

Json ContainerToJson(JsonbContainer* container, int depth);

Json ScalarToJson(const JsonbValue& value, int depth) {
  switch (value.type) {
    case jbvNull:
      return Json(nullptr);
    case jbvString:
      return Json(std::string(value.val.string.val, static_cast<std::size_t>(value.val.string.len)));
    case jbvNumeric:
      return Json(NumericValue(value.val.numeric));
    case jbvBool:
      return Json(static_cast<bool>(value.val.boolean));
    case jbvBinary:
      return ContainerToJson(value.val.binary.data, depth + 1);
    default:
      throw Error(ErrorKind::kInternal, "unexpected jsonb value type " + std::to_string(value.type));
  }
}

Json ContainerToJson(JsonbContainer* container, int depth) {
  if (depth > kMaxJsonDepth)
    throw Error(ErrorKind::kProgramLimit, "attributes are nested too deeply",
                "The limit is " + std::to_string(kMaxJsonDepth) + " levels.");
  JsonbIterator* iterator = PgCall([&] { return JsonbIteratorInit(container); });
  JsonbValue value;
  JsonbIteratorToken token = PgCall([&] { return JsonbIteratorNext(&iterator, &value, true); });
  Json result;
  bool object = token == WJB_BEGIN_OBJECT;
  bool scalar_array = token == WJB_BEGIN_ARRAY && value.val.array.rawScalar;
  result = object ? Json::object() : Json::array();
  std::string key;
  while ((token = PgCall([&] { return JsonbIteratorNext(&iterator, &value, true); })) != WJB_DONE) {
    if (token == WJB_KEY) {
      key.assign(value.val.string.val, static_cast<std::size_t>(value.val.string.len));
    } else if (token == WJB_VALUE) {
      result[key] = ScalarToJson(value, depth);
    } else if (token == WJB_ELEM) {
      if (scalar_array) return ScalarToJson(value, depth);
      result.push_back(ScalarToJson(value, depth));
    }
  }
  return result;
}

}  // namespace

JsonbContainer* JsonbAttributes::Root() {
  if (is_null_) return nullptr;
  if (jsonb_ == nullptr) {
    Datum datum = datum_;
    // Most arguments are neither compressed nor out of line: then the jsonb is the datum
    // itself, and detoasting (which may allocate and raise) is skipped with its setjmp.
    if (!VARATT_IS_EXTENDED(DatumGetPointer(datum))) {
      jsonb_ = reinterpret_cast<Jsonb*>(DatumGetPointer(datum));
    } else {
      jsonb_ = PgCall([&] { return DatumGetJsonbP(datum); });
    }
    if (!JB_ROOT_IS_OBJECT(jsonb_) || JB_ROOT_IS_SCALAR(jsonb_))
      throw Error(ErrorKind::kInvalidParameter, "attributes must be a JSON object", {},
                  "For example '{\"country\": \"DE\"}'.");
  }
  return &jsonb_->root;
}

// The lookups inside the jsonb are plain searches of memory this call owns: they neither
// allocate nor raise, so they run without PgCall's setjmp, on the hot path of routing.
std::optional<AttributeValue> JsonbAttributes::Find(const std::vector<std::string>& path) {
  JsonbContainer* container = Root();
  if (container == nullptr || path.empty()) return std::nullopt;
  // Descends as GrowthBook's getPath does (JavaScript's a[b]): objects by key, arrays by
  // index, and "length" of an array is its size.
  JsonbValue found;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const std::string& key = path[i];
    if (JsonContainerIsArray(container)) {
      if (key == "length") {
        if (i + 1 != path.size()) return std::nullopt;  // a number has no members
        return AttributeValue::Number(JsonContainerSize(container));
      }
      char* end = nullptr;
      unsigned long index = std::strtoul(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || (key.size() > 1 && key[0] == '0') || index >= JsonContainerSize(container))
        return std::nullopt;
      JsonbValue* element = PgCall([&] { return getIthJsonbValueFromContainer(container, static_cast<uint32>(index)); });
      found = *element;
    } else if (getKeyJsonValueFromContainer(container, key.data(), static_cast<uint32>(key.size()), &found) ==
               nullptr) {
      return std::nullopt;
    }
    if (i + 1 == path.size()) break;
    if (found.type != jbvBinary) return std::nullopt;  // a scalar has no members
    container = found.val.binary.data;
  }
  switch (found.type) {
    case jbvNull:
      return AttributeValue();
    case jbvString:
      return AttributeValue::String(std::string_view(found.val.string.val, static_cast<std::size_t>(found.val.string.len)));
    case jbvNumeric:
      return AttributeValue::Number(NumericValue(found.val.numeric));
    case jbvBool:
      return AttributeValue::Boolean(found.val.boolean);
    default:
      structured_.push_front(ScalarToJson(found, 1));
      return AttributeValue::Of(structured_.front());
  }
}

std::optional<std::string> JsonbAttributes::Text(std::string_view name) {
  JsonbContainer* container = Root();
  if (container == nullptr) return std::nullopt;
  JsonbValue found;
  bool present = PgCall([&] {
    return getKeyJsonValueFromContainer(container, name.data(), static_cast<uint32>(name.size()), &found) != nullptr;
  });
  if (!present) return std::nullopt;
  switch (found.type) {
    case jbvString:
      return std::string(found.val.string.val, static_cast<std::size_t>(found.val.string.len));
    case jbvNumeric:
      return NumericText(found.val.numeric);
    case jbvBool:
      return std::string(found.val.boolean ? "true" : "false");
    default:
      return std::nullopt;  // null, arrays and objects map to nothing
  }
}

Json JsonFromJsonb(Jsonb* jsonb) { return ContainerToJson(&jsonb->root, 1); }

}  // namespace abtest::glue
