// Arguments of the outcome-analysis functions that the other SQL functions do not take.
#pragma once

#include <string>

#include "glue/pg.hpp"

namespace abtest::glue {

// A `name` argument; refuses NULL naming it.
std::string NameArg(FunctionCallInfo fcinfo, int n, const char* what);

// An interval that moves time forward (no negative part, not zero), as PostgreSQL
// prints it and its length in seconds; refuses NULL and other intervals naming `what`.
struct ForwardInterval {
  std::string text;
  double seconds = 0;
};
ForwardInterval ForwardIntervalArg(FunctionCallInfo fcinfo, int n, const char* what);

// A timestamptz datum from its text in the session's DateStyle and TimeZone.
Datum TimestampTzDatum(const std::string& text);

}  // namespace abtest::glue
