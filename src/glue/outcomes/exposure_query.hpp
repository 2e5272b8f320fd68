// Runs the analysis's one statement as the calling user, with PostgreSQL's own view
// machinery for the one table the caller may not read: the assignment log.
//
// The analysis joins the application's table (which must be read as the caller: its
// privileges, its row-level security) to abtest.assignments (readable only by the
// extension's owner). A view lets a query read a table with the view owner's rights
// by setting checkAsUser on that table's range-table entry; here the statement is
// parsed and analysed, the scans of abtest.assignments that this code wrote (aliased
// exposure_log) get checkAsUser = the catalog owner, and everything else, the source
// and any view it goes through included, is checked as the caller. The statement is
// then planned (parallel where PostgreSQL chooses) and executed once. Names are
// resolved as the owner (the caller may have no USAGE on schema abtest); rewriting
// (row-level security), planning and execution happen as the caller.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "glue/pg.hpp"

namespace abtest::glue::outcomes {

// The alias that marks the scans of the assignment log to be checked as the owner.
constexpr const char* kExposureLogAlias = "exposure_log";

struct QueryParam {
  Oid type = InvalidOid;
  std::optional<std::string> text;  // the value in the type's input form; nullopt for NULL
};

using Row = std::vector<std::optional<std::string>>;  // each column in its output form

// One SELECT, run with search_path = pg_catalog, pg_temp (every name in it is
// qualified) and extra_float_digits = 3 (float8 text round-trips exactly).
std::vector<Row> RunAsCaller(const std::string& sql, const std::vector<QueryParam>& params);

}  // namespace abtest::glue::outcomes
