#include "glue/sql/outcome_args.hpp"

#include "core/outcome_metric.hpp"
#include "glue/args.hpp"
#include "glue/guard.hpp"

namespace abtest::glue {

std::string NameArg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n)) RefuseNull(what);
  return NameStr(*PG_GETARG_NAME(n));
}

ForwardInterval ForwardIntervalArg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n)) RefuseNull(what);
  Datum datum = PG_GETARG_DATUM(n);
  const Interval* interval = DatumGetIntervalP(datum);
  ValidateForwardInterval(what, interval->month, interval->day, static_cast<long long>(interval->time));
  ForwardInterval result;
  result.text = PgCall([&] { return DatumGetCString(DirectFunctionCall1(interval_out, datum)); });
  result.seconds = PgCall([&] {
    return DatumGetFloat8(DirectFunctionCall2(interval_part, CStringGetTextDatum("epoch"), datum));
  });
  return result;
}

Datum TimestampTzDatum(const std::string& text) {
  const char* input = text.c_str();
  return PgCall([&] {
    return DirectFunctionCall3(timestamptz_in, CStringGetDatum(input), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
  });
}

}  // namespace abtest::glue
