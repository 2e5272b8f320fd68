#include "glue/args.hpp"

#include "core/error.hpp"
#include "glue/guard.hpp"

namespace abtest::glue {

void RefuseNull(const char* what) {
  throw Error(ErrorKind::kNullValue, std::string(what) + " must not be NULL");
}

std::string_view TextView(Datum datum) {
  text* value = reinterpret_cast<text*>(PG_DETOAST_DATUM_PACKED(datum));
  return std::string_view(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

std::string TextArg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n)) RefuseNull(what);
  Datum datum = PG_GETARG_DATUM(n);
  text* value = PgCall([&] { return reinterpret_cast<text*>(PG_DETOAST_DATUM_PACKED(datum)); });
  return std::string(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

std::optional<std::string> OptionalTextArg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  return TextArg(fcinfo, n, "");
}

namespace {

struct ArrayElements {
  Datum* values = nullptr;
  bool* nulls = nullptr;
  int count = 0;
};

ArrayElements Deconstruct(Datum datum, Oid element_type) {
  ArrayElements elements;
  PgCall([&] {
    ArrayType* array = DatumGetArrayTypeP(datum);
    if (ARR_NDIM(array) > 1)
      ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR), errmsg("array must be one-dimensional")));
    int16 length;
    bool by_value;
    char align;
    get_typlenbyvalalign(element_type, &length, &by_value, &align);
    deconstruct_array(array, element_type, length, by_value, align, &elements.values, &elements.nulls,
                      &elements.count);
  });
  return elements;
}

std::optional<std::vector<std::string>> ArrayAsText(FunctionCallInfo fcinfo, int n, const char* what,
                                                    Oid element_type) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  ArrayElements elements = Deconstruct(PG_GETARG_DATUM(n), element_type);
  std::vector<std::string> result;
  result.reserve(elements.count);
  for (int i = 0; i < elements.count; ++i) {
    if (elements.nulls[i]) throw Error(ErrorKind::kNullValue, std::string(what) + " must not contain NULL");
    Datum element = elements.values[i];
    if (element_type == TEXTOID) {
      text* value = PgCall([&] { return reinterpret_cast<text*>(PG_DETOAST_DATUM_PACKED(element)); });
      result.emplace_back(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
    } else {
      char* value = PgCall([&] { return DatumGetCString(DirectFunctionCall1(numeric_out, element)); });
      result.emplace_back(value);
    }
  }
  return result;
}

}  // namespace

std::vector<Oid> RegclassArrayArg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n)) RefuseNull(what);
  ArrayElements elements = Deconstruct(PG_GETARG_DATUM(n), REGCLASSOID);
  std::vector<Oid> result;
  result.reserve(static_cast<std::size_t>(elements.count));
  for (int i = 0; i < elements.count; ++i) {
    if (elements.nulls[i]) throw Error(ErrorKind::kNullValue, std::string(what) + " must not contain NULL");
    result.push_back(DatumGetObjectId(elements.values[i]));
  }
  return result;
}

std::optional<std::vector<std::string>> TextArrayArg(FunctionCallInfo fcinfo, int n, const char* what) {
  return ArrayAsText(fcinfo, n, what, TEXTOID);
}

std::optional<std::vector<std::string>> NumericArrayArg(FunctionCallInfo fcinfo, int n, const char* what) {
  return ArrayAsText(fcinfo, n, what, NUMERICOID);
}

std::vector<std::pair<std::string, std::string>> JsonbObjectArg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n)) RefuseNull(what);
  Datum datum = PG_GETARG_DATUM(n);
  Jsonb* jsonb = PgCall([&] { return DatumGetJsonbP(datum); });
  if (!JB_ROOT_IS_OBJECT(jsonb) || JB_ROOT_IS_SCALAR(jsonb))
    throw Error(ErrorKind::kInvalidParameter, std::string(what) + " must be a JSON object");

  std::vector<std::pair<std::string, std::string>> members;
  JsonbIterator* iterator = PgCall([&] { return JsonbIteratorInit(&jsonb->root); });
  JsonbValue value;
  std::string key;
  for (;;) {
    JsonbIteratorToken token = PgCall([&] { return JsonbIteratorNext(&iterator, &value, true); });
    if (token == WJB_DONE) break;
    if (token == WJB_KEY) {
      key.assign(value.val.string.val, value.val.string.len);
    } else if (token == WJB_VALUE) {
      if (value.type == jbvNumeric) {
        char* number = PgCall([&] {
          return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value.val.numeric)));
        });
        members.emplace_back(key, number);
      } else if (value.type == jbvString) {
        members.emplace_back(key, "\"" + std::string(value.val.string.val, value.val.string.len) + "\"");
      } else {
        members.emplace_back(key, value.type == jbvNull ? "null" : "a non-number");
      }
    }
  }
  return members;
}

std::string JsonbTextArg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n)) RefuseNull(what);
  Datum datum = PG_GETARG_DATUM(n);
  char* json = PgCall([&] {
    Jsonb* jsonb = DatumGetJsonbP(datum);
    return JsonbToCString(nullptr, &jsonb->root, VARSIZE(jsonb));
  });
  return std::string(json);
}

double Float8Arg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n)) RefuseNull(what);
  return PG_GETARG_FLOAT8(n);
}

Datum TextDatum(const std::string& text) {
  return PgCall([&] { return PointerGetDatum(cstring_to_text_with_len(text.data(), static_cast<int>(text.size()))); });
}

}  // namespace abtest::glue
