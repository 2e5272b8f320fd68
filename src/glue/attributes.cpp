#include "glue/attributes.hpp"

#include <cstdlib>
#include <cstring>

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

Jsonb* JsonbAttributes::Detoasted() {
  if (jsonb_ == nullptr) {
    Datum datum = datum_;
    // Most arguments are neither compressed nor out of line: then the jsonb is the datum
    // itself, and detoasting (which may allocate and raise) is skipped with its setjmp.
    if (!VARATT_IS_EXTENDED(DatumGetPointer(datum))) {
      jsonb_ = reinterpret_cast<Jsonb*>(DatumGetPointer(datum));
    } else {
      jsonb_ = PgCall([&] { return DatumGetJsonbP(datum); });
    }
  }
  return jsonb_;
}

JsonbContainer* JsonbAttributes::Root() {
  if (is_null_) return nullptr;
  Jsonb* jsonb = Detoasted();
  if (!JB_ROOT_IS_OBJECT(jsonb) || JB_ROOT_IS_SCALAR(jsonb))
    throw Error(ErrorKind::kInvalidParameter, "attributes must be a JSON object", {},
                "For example '{\"country\": \"DE\"}'.");
  return &jsonb->root;
}

namespace {

// jsonb's fillJsonbValue (not exported): the value of entry `index`, whose data lies at
// [start, end) after the container's entries.
JsonbValue EntryValue(JsonbContainer* container, int index, std::uint32_t start, std::uint32_t end) {
  char* base = reinterpret_cast<char*>(container->children + JsonContainerSize(container) * 2);
  JEntry entry = container->children[index];
  JsonbValue value;
  if (JBE_ISNULL(entry)) {
    value.type = jbvNull;
  } else if (JBE_ISSTRING(entry)) {
    value.type = jbvString;
    value.val.string.val = base + start;
    value.val.string.len = static_cast<int>(end - start);
  } else if (JBE_ISNUMERIC(entry)) {
    value.type = jbvNumeric;
    value.val.numeric = reinterpret_cast<Numeric>(base + INTALIGN(start));
  } else if (JBE_ISBOOL_TRUE(entry)) {
    value.type = jbvBool;
    value.val.boolean = true;
  } else if (JBE_ISBOOL_FALSE(entry)) {
    value.type = jbvBool;
    value.val.boolean = false;
  } else {  // a container, after its alignment padding
    value.type = jbvBinary;
    value.val.binary.data = reinterpret_cast<JsonbContainer*>(base + INTALIGN(start));
    value.val.binary.len = static_cast<int>(end - INTALIGN(start));
  }
  return value;
}

// Where the data of an entry that starts at `start` ends: an entry stores either its
// length or, every JB_OFFSET_STRIDE entries, its end offset.
inline std::uint32_t EntryEnd(JEntry entry, std::uint32_t start) {
  return JBE_HAS_OFF(entry) ? JBE_OFFLENFLD(entry) : start + JBE_OFFLENFLD(entry);
}

// Bytewise order of two keys of the same length (jsonb's order within a length). Keys are
// short: compared here, not by a call to memcmp.
inline int CompareBytes(const char* a, const char* b, std::uint32_t length) {
  for (std::uint32_t i = 0; i < length; ++i)
    if (a[i] != b[i]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]) ? -1 : 1;
  return 0;
}

template <typename Word>
inline Word Load(const char* p) {
  Word word;
  std::memcpy(&word, p, sizeof word);
  return word;
}

// Whether two keys of the same length are equal: a few loads of 8, 4, 2 or 1 bytes, the
// last overlapping the one before, none past either key, where a loop over the bytes
// takes a branch per byte and mispredicts its exit at every key's end.
inline bool SameBytes(const char* a, const char* b, std::uint32_t length) {
  if (length >= 8) {
    for (std::uint32_t i = 0; i + 8 < length; i += 8)
      if (Load<std::uint64_t>(a + i) != Load<std::uint64_t>(b + i)) return false;
    return Load<std::uint64_t>(a + length - 8) == Load<std::uint64_t>(b + length - 8);
  }
  if (length >= 4)
    return ((Load<std::uint32_t>(a) ^ Load<std::uint32_t>(b)) |
            (Load<std::uint32_t>(a + length - 4) ^ Load<std::uint32_t>(b + length - 4))) == 0;
  if (length >= 2)
    return ((Load<std::uint16_t>(a) ^ Load<std::uint16_t>(b)) |
            (Load<std::uint16_t>(a + length - 2) ^ Load<std::uint16_t>(b + length - 2))) == 0;
  return length == 0 || a[0] == b[0];
}

}  // namespace

void JsonbAttributes::Prepare(const std::vector<std::string>& keys) {
  prepared_ = false;
  if (is_null_ || keys.size() > kMaxPrepared) return;
  Jsonb* jsonb = Detoasted();
  if (!JB_ROOT_IS_OBJECT(jsonb) || JB_ROOT_IS_SCALAR(jsonb)) return;  // Find refuses it when it reads
  JsonbContainer* container = &jsonb->root;
  std::uint32_t count = JsonContainerSize(container);
  // A pass reads every key's entry; a search ~log2(count) of them, adding up to 32
  // lengths at each. Past this size, searching for the keys costs less.
  if (count > 8 + 16 * keys.size()) return;
  const JEntry* children = container->children;
  const char* base = reinterpret_cast<const char*>(children + count * 2);
  // The keys' entries, then the values' in the same order: both sorted alike, so the
  // sought keys are met in order, and so are their values. Lengths decide most of it:
  // the bytes are read only for a sought key of this entry's length.
  // Locals, not keys' members: the build does not assume strict aliasing, so each store
  // into found_ would have the vector's bounds read again.
  const std::string* sought = keys.data();
  const std::size_t n = keys.size();
  for (std::size_t k = 0; k < n; ++k) found_[k].entry = -1;
  std::size_t k = 0;  // the first sought key not passed yet
  std::uint32_t start = 0;
  std::uint32_t index = 0;
  for (; index < count && k < n; ++index) {
    std::uint32_t end = EntryEnd(children[index], start);
    std::uint32_t length = end - start;
    while (k < n && sought[k].size() < length) ++k;  // shorter: absent
    while (k < n && sought[k].size() == length) {
      const char* key = base + start;
      if (SameBytes(sought[k].data(), key, length)) {
        found_[k++].entry = static_cast<int>(index);
        break;
      }
      if (CompareBytes(sought[k].data(), key, length) > 0) break;  // after this key: maybe a later entry
      ++k;                                                          // before it: absent
    }
    start = end;
  }
  for (; index < count; ++index) start = EntryEnd(children[index], start);  // where the values' data starts
  // The values: entry count + i for key i.
  std::size_t slot = 0;
  while (slot < n && found_[slot].entry < 0) ++slot;
  for (index = count; slot < n; ++index) {
    std::uint32_t end = EntryEnd(children[index], start);
    if (found_[slot].entry + count == index) {
      found_[slot].entry = static_cast<int>(index);
      found_[slot].start = start;
      found_[slot].end = end;
      do ++slot;
      while (slot < n && found_[slot].entry < 0);
    }
    start = end;
  }
  prepared_ = true;
}

bool JsonbAttributes::FindPrepared(std::size_t slot, const std::vector<std::string>& path, AttributeValue& value) {
  if (!prepared_) return AttributeSource::FindPrepared(slot, path, value);
  const Prepared& found = found_[slot];
  if (found.entry < 0) return false;
  JEntry entry = jsonb_->root.children[found.entry];
  if (path.size() == 1 && JBE_ISSTRING(entry)) {  // most attributes: read in place
    value.type = AttributeValue::Type::kString;
    value.text = std::string_view(
        reinterpret_cast<const char*>(jsonb_->root.children + JsonContainerSize(&jsonb_->root) * 2) + found.start,
        found.end - found.start);
    return true;
  }
  return Descend(EntryValue(&jsonb_->root, found.entry, found.start, found.end), path, 1, value);
}

// The lookups inside the jsonb are plain searches of memory this call owns: they neither
// allocate nor raise, so they run without PgCall's setjmp, on the hot path of routing.
std::optional<AttributeValue> JsonbAttributes::Find(const std::vector<std::string>& path) {
  JsonbContainer* container = Root();
  if (container == nullptr || path.empty()) return std::nullopt;
  JsonbValue found;
  if (getKeyJsonValueFromContainer(container, path[0].data(), static_cast<uint32>(path[0].size()), &found) == nullptr)
    return std::nullopt;
  AttributeValue value;
  if (!Descend(found, path, 1, value)) return std::nullopt;
  return value;
}

bool JsonbAttributes::Descend(JsonbValue found, const std::vector<std::string>& path, std::size_t from,
                              AttributeValue& value) {
  // Descends as GrowthBook's getPath does (JavaScript's a[b]): objects by key, arrays by
  // index, and "length" of an array is its size.
  for (std::size_t i = from; i < path.size(); ++i) {
    if (found.type != jbvBinary) return false;  // a scalar has no members
    JsonbContainer* container = found.val.binary.data;
    const std::string& key = path[i];
    if (JsonContainerIsArray(container)) {
      if (key == "length") {
        if (i + 1 != path.size()) return false;  // a number has no members
        value = AttributeValue::Number(JsonContainerSize(container));
        return true;
      }
      char* end = nullptr;
      unsigned long index = std::strtoul(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || (key.size() > 1 && key[0] == '0') || index >= JsonContainerSize(container))
        return false;
      JsonbValue* element = PgCall([&] { return getIthJsonbValueFromContainer(container, static_cast<uint32>(index)); });
      found = *element;
    } else if (getKeyJsonValueFromContainer(container, key.data(), static_cast<uint32>(key.size()), &found) ==
               nullptr) {
      return false;
    }
  }
  switch (found.type) {
    case jbvNull:
      value = AttributeValue();
      return true;
    case jbvString:
      value = AttributeValue::String(std::string_view(found.val.string.val, static_cast<std::size_t>(found.val.string.len)));
      return true;
    case jbvNumeric:
      value = AttributeValue::Number(NumericValue(found.val.numeric));
      return true;
    case jbvBool:
      value = AttributeValue::Boolean(found.val.boolean);
      return true;
    default:
      structured_.push_front(ScalarToJson(found, 1));
      value = AttributeValue::Of(structured_.front());
      return true;
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
