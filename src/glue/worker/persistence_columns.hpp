// What the metrics tables' writers and readers share (metrics_persistence.cpp,
// query_persistence.cpp): shared-memory snapshots written as one array parameter per
// column, and persisted floats and counts read back exactly from JSON.
//
// The writing side runs in the flush worker: PostgreSQL errors, palloc, no C++ object
// with a destructor.
#pragma once

#include <cstdint>

#include "glue/pg.hpp"

// Floats travel as the hex of float8send (exact whatever extra_float_digits says).
#define ABTEST_FLOAT_HEX(column) "encode(float8send(" column "), 'hex')"

namespace abtest::glue::persistence {

// A float read back from ABTEST_FLOAT_HEX (0 for NULL), and an integer (0 for NULL).
double FloatFromHex(const nlohmann::json& value);
std::int64_t IntegerOr0(const nlohmann::json& value);

// Column arrays, palloc'd: one Datum and one null flag per row.
struct Column {
  Datum* values;
  bool* nulls;
};

Column NewColumn(int rows);

// "{c0,c1,...}" up to the last non-zero bucket, as text: the latency histograms'
// bigint[] (kLatencyBuckets counts).
Datum HistogramText(const std::uint64_t* histogram);

// Runs `sql` with one array parameter per column (at most 16), `rows` long, and
// requires `expected` (SPI_OK_INSERT, SPI_OK_DELETE) of it; `what` names it in the error.
void ExecuteColumns(const char* sql, int expected, const char* what, const Column* columns, const Oid* element_types,
                    int column_count, int rows);

// Every row `take(rows, capacity)` copies (returning how many there are), palloc'd, in
// as many tries as it takes to give it room.
template <typename Row, typename Take>
Row* SnapshotAll(Take take, int* count) {
  for (int capacity = 64;;) {
    Row* rows = static_cast<Row*>(palloc(sizeof(Row) * capacity));
    *count = take(rows, capacity);
    if (*count <= capacity) return rows;
    pfree(rows);
    capacity = *count + 64;
  }
}

}  // namespace abtest::glue::persistence
