// nlohmann first: PostgreSQL's port.h redefines snprintf, which <cstdio> then trips on.
#include <nlohmann/json.hpp>

#include "glue/worker/persistence_columns.hpp"

#include "core/latency_histogram.hpp"

extern "C" {
#include "lib/stringinfo.h"
}

namespace abtest::glue::persistence {
namespace {

// A one-dimensional array of `count` values (NULL where nulls[i]).
Datum ArrayOf(Datum* values, bool* nulls, int count, Oid element_type) {
  int16 length;
  bool by_value;
  char align;
  get_typlenbyvalalign(element_type, &length, &by_value, &align);
  int dims[1] = {count};
  int lower_bounds[1] = {1};
  return PointerGetDatum(
      construct_md_array(values, nulls, 1, dims, lower_bounds, element_type, length, by_value, align));
}

}  // namespace

double FloatFromHex(const nlohmann::json& value) {
  if (value.is_null()) return 0;
  std::uint64_t bits = std::stoull(value.get<std::string>(), nullptr, 16);
  double result;
  static_assert(sizeof result == sizeof bits);
  memcpy(&result, &bits, sizeof result);
  return result;
}

std::int64_t IntegerOr0(const nlohmann::json& value) { return value.is_null() ? 0 : value.get<std::int64_t>(); }

Column NewColumn(int rows) {
  Column column;
  column.values = static_cast<Datum*>(palloc0(sizeof(Datum) * (rows > 0 ? rows : 1)));
  column.nulls = static_cast<bool*>(palloc0(sizeof(bool) * (rows > 0 ? rows : 1)));
  return column;
}

Datum HistogramText(const std::uint64_t* histogram) {
  int last = kLatencyBuckets - 1;
  while (last >= 0 && histogram[last] == 0) --last;
  StringInfoData text;
  initStringInfo(&text);
  appendStringInfoChar(&text, '{');
  for (int i = 0; i <= last; ++i) appendStringInfo(&text, i == 0 ? "%llu" : ",%llu", (unsigned long long)histogram[i]);
  appendStringInfoChar(&text, '}');
  return PointerGetDatum(cstring_to_text_with_len(text.data, text.len));
}

void ExecuteColumns(const char* sql, int expected, const char* what, const Column* columns, const Oid* element_types,
                    int column_count, int rows) {
  Oid types[16];
  Datum values[16];
  Assert(column_count <= 16);
  for (int c = 0; c < column_count; ++c) {
    types[c] = get_array_type(element_types[c]);
    values[c] = ArrayOf(columns[c].values, columns[c].nulls, rows, element_types[c]);
  }
  int rc = SPI_execute_with_args(sql, column_count, types, values, nullptr, false, 0);
  if (rc != expected) elog(ERROR, "abtest flush worker: writing %s failed: %s", what, SPI_result_code_string(rc));
}

}  // namespace abtest::glue::persistence
