#include "glue/guard.hpp"

#include <cstring>
#include <new>
#include <stdexcept>

#include "core/error.hpp"
#include "glue/shmem/shared_state.hpp"

namespace abtest::glue {
namespace {

int SqlState(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidParameter: return ERRCODE_INVALID_PARAMETER_VALUE;
    case ErrorKind::kNullValue: return ERRCODE_NULL_VALUE_NOT_ALLOWED;
    case ErrorKind::kUndefinedObject: return ERRCODE_UNDEFINED_OBJECT;
    case ErrorKind::kDuplicateObject: return ERRCODE_DUPLICATE_OBJECT;
    case ErrorKind::kWrongState: return ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
    case ErrorKind::kExclusion: return ERRCODE_EXCLUSION_VIOLATION;
    case ErrorKind::kProgramLimit: return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
    case ErrorKind::kStringTooLong: return ERRCODE_STRING_DATA_RIGHT_TRUNCATION;
    case ErrorKind::kOutOfRange: return ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
    case ErrorKind::kUndefinedTable: return ERRCODE_UNDEFINED_TABLE;
    case ErrorKind::kUndefinedColumn: return ERRCODE_UNDEFINED_COLUMN;
    case ErrorKind::kWrongObjectType: return ERRCODE_WRONG_OBJECT_TYPE;
    case ErrorKind::kDatatypeMismatch: return ERRCODE_DATATYPE_MISMATCH;
    case ErrorKind::kDependentObjects: return ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST;
    case ErrorKind::kNotSupported: return ERRCODE_FEATURE_NOT_SUPPORTED;
    case ErrorKind::kInsufficientPrivilege: return ERRCODE_INSUFFICIENT_PRIVILEGE;
    case ErrorKind::kCantChangeParameter: return ERRCODE_CANT_CHANGE_RUNTIME_PARAM;
    case ErrorKind::kInternal: return ERRCODE_INTERNAL_ERROR;
  }
  return ERRCODE_INTERNAL_ERROR;
}

// An error copied out of a C++ exception into plain buffers: copying must not
// allocate, so that nothing can go wrong inside the catch block. Deliberately
// left uninitialised: it is only filled, and read, on the error path, and clearing
// 4 kB on every call would cost the routing hot path more than the routing.
struct PendingError {
  int sqlstate;
  char message[2048];
  char detail[1024];
  char hint[1024];

  void Set(int code, const char* msg, const char* det = "", const char* hnt = "") {
    sqlstate = code;
    Copy(message, sizeof message, msg);
    Copy(detail, sizeof detail, det);
    Copy(hint, sizeof hint, hnt);
  }

  // Truncates on a UTF-8 character boundary, so a long message stays valid text.
  static void Copy(char* target, std::size_t size, const char* source) {
    std::size_t length = strnlen(source, size - 1);
    if (length == size - 1)
      while (length > 0 && (static_cast<unsigned char>(source[length]) & 0xC0) == 0x80) --length;
    std::memcpy(target, source, length);
    target[length] = '\0';
  }
};

}  // namespace

Datum RunGuarded(Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo) noexcept {
  ErrorData* pg_error = nullptr;
  PendingError pending;
  try {
    return body(fcinfo);
  } catch (const PgError& e) {
    pg_error = e.data();
  } catch (const Error& e) {
    pending.Set(SqlState(e.kind()), e.what(), e.detail().c_str(), e.hint().c_str());
  } catch (const std::bad_alloc&) {
    pending.Set(ERRCODE_OUT_OF_MEMORY, "out of memory");
  } catch (const std::overflow_error& e) {
    // Boost.Math reports a result it cannot represent this way: the input was extreme.
    pending.Set(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, e.what(), "", "An argument is too close to the edge of its range.");
  } catch (const std::domain_error& e) {
    pending.Set(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, e.what(), "", "An argument is outside the range it can take.");
  } catch (const std::exception& e) {
    pending.Set(ERRCODE_INTERNAL_ERROR, e.what());
  } catch (...) {
    pending.Set(ERRCODE_INTERNAL_ERROR, "unknown C++ exception in abtest");
  }
  // Every C++ frame below is gone now; raising is safe.
  if (pg_error != nullptr) ReThrowError(pg_error);
  ereport(ERROR, (errcode(pending.sqlstate), errmsg("%s", pending.message),
                  pending.detail[0] ? errdetail("%s", pending.detail) : 0,
                  pending.hint[0] ? errhint("%s", pending.hint) : 0));
  pg_unreachable();
}

void RequirePreloaded() {
  if (!SharedStateAttached())
    throw Error(ErrorKind::kWrongState, "abtest must be loaded via shared_preload_libraries",
                "abtest keeps its counters in shared memory, which is set up when the server starts.",
                "Add abtest to shared_preload_libraries in postgresql.conf and restart the server.");
}

}  // namespace abtest::glue
