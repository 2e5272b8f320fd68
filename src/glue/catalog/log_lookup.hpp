// The sticky cache's miss path (issue #12): one probe of the primary key of
// abtest.assignments through the btree access method, with the table, its index and
// an index scan kept open for the rest of the transaction, instead of an SQL
// statement per user. catalog::LoggedBranch comes here and falls back to its
// statement when the table is missing or not the one the extension's SQL created.
//
// Both functions raise PostgreSQL errors and hold no C++ objects: call them inside
// PgCall, or from C-like code (a hook).
#pragma once

#include <cstddef>

#include "glue/pg.hpp"

namespace abtest::glue::catalog::log_lookup {

enum class Outcome { kFound, kNotFound, kUnavailable };

// Looks the user up in the log. kFound sets *branch to a copy in the caller's memory
// context; kUnavailable: no usable primary key this transaction, ask the statement.
Outcome Find(const pg_uuid_t& experiment, const char* user, std::size_t user_bytes, char** branch);

// Closes what the lookups keep open. Called before every utility statement: DROP
// EXTENSION, ALTER TABLE, REINDEX, TRUNCATE... refuse a relation that this session
// still holds open ("is being used by active queries in this session").
void Close();

}  // namespace abtest::glue::catalog::log_lookup
