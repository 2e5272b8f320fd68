// The one way the core refuses something: a typed error the glue maps to a SQLSTATE.
#pragma once

#include <stdexcept>
#include <string>

namespace abtest {

// What kind of refusal; the glue maps each kind to exactly one SQLSTATE.
enum class ErrorKind {
  kInvalidParameter,  // 22023 invalid_parameter_value
  kNullValue,         // 22004 null_value_not_allowed
  kUndefinedObject,   // 42704 undefined_object
  kDuplicateObject,   // 42710 duplicate_object
  kWrongState,        // 55000 object_not_in_prerequisite_state
  kExclusion,         // 23P01 exclusion_violation (overlapping namespace ranges)
  kProgramLimit,      // 54000 program_limit_exceeded
  kStringTooLong,     // 22001 string_data_right_truncation: a text argument above its documented length
  kOutOfRange,        // 22003 numeric_value_out_of_range: a number above its documented magnitude
  kUndefinedTable,    // 42P01 undefined_table: a metric's source no longer exists
  kUndefinedColumn,   // 42703 undefined_column
  kWrongObjectType,   // 42809 wrong_object_type: e.g. a metric's source that holds no rows
  kDatatypeMismatch,  // 42804 datatype_mismatch: a column of a type a metric cannot use
  kDependentObjects,  // 2BP01 dependent_objects_still_exist
  kNotSupported,      // 0A000 feature_not_supported
  kInsufficientPrivilege,  // 42501 insufficient_privilege: e.g. a superuser-only parameter for a branch
  kCantChangeParameter,    // 55P02 cant_change_runtime_param: a parameter no session can SET
  kInternal,          // XX000 internal_error: a bug, never a user's mistake
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message, std::string detail = {}, std::string hint = {})
      : std::runtime_error(message), kind_(kind), detail_(std::move(detail)), hint_(std::move(hint)) {}

  ErrorKind kind() const { return kind_; }
  const std::string& detail() const { return detail_; }
  const std::string& hint() const { return hint_; }

 private:
  ErrorKind kind_;
  std::string detail_;
  std::string hint_;
};

// Quotes a user-supplied name for a message, the way PostgreSQL does: "name".
inline std::string Quoted(const std::string& name) { return "\"" + name + "\""; }

}  // namespace abtest
