// SQL arguments to core values. Each helper raises a NULL refusal naming the
// argument, and runs its PostgreSQL calls through PgCall.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "glue/pg.hpp"

namespace abtest::glue {

// `what` names the argument in messages, e.g. "experiment name".
std::string TextArg(FunctionCallInfo fcinfo, int n, const char* what);
std::optional<std::string> OptionalTextArg(FunctionCallInfo fcinfo, int n);
std::optional<std::vector<std::string>> TextArrayArg(FunctionCallInfo fcinfo, int n, const char* what);
std::optional<std::vector<std::string>> NumericArrayArg(FunctionCallInfo fcinfo, int n, const char* what);
// A regclass[] argument; refuses NULL and NULL elements.
std::vector<Oid> RegclassArrayArg(FunctionCallInfo fcinfo, int n, const char* what);

// A jsonb object's members with scalar values as text (numbers exactly as written).
std::vector<std::pair<std::string, std::string>> JsonbObjectArg(FunctionCallInfo fcinfo, int n, const char* what);
std::string JsonbTextArg(FunctionCallInfo fcinfo, int n, const char* what);

// A text datum's bytes without copying. Only at the top of a body (see guard.hpp):
// it may detoast, and the bytes live as long as the call.
std::string_view TextView(Datum datum);

[[noreturn]] void RefuseNull(const char* what);

// A float8 argument; refuses NULL naming it.
double Float8Arg(FunctionCallInfo fcinfo, int n, const char* what);

// A text datum of `text`, in the current memory context.
Datum TextDatum(const std::string& text);

// The text of a returned value, in the caller's memory context. Calls PostgreSQL
// directly: only from a body's own frame (see guard.hpp, rule 2).
inline Datum TextResult(const std::string& value) {
  return PointerGetDatum(cstring_to_text_with_len(value.data(), static_cast<int>(value.size())));
}

}  // namespace abtest::glue
