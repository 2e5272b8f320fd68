// The boundary between C++ and PostgreSQL error handling, in both directions.
//
// PostgreSQL raises errors with longjmp, which skips C++ destructors; C++ raises
// exceptions, which PostgreSQL cannot catch. Two rules keep them apart:
//
// 1. C++ -> PostgreSQL. Every SQL-callable function is declared with
//    ABTEST_SQL_FUNCTION(name) { body }. The body runs inside RunGuarded(), which
//    catches every exception, lets the C++ stack unwind completely, and only then
//    raises the PostgreSQL error (outside any catch block). No exception escapes.
//
// 2. PostgreSQL -> C++. A PostgreSQL call that may raise an error runs inside
//    PgCall([&] { ... }). Its error is copied, the error state is reset, and it is
//    re-thrown as a PgError exception, so C++ frames unwind normally; RunGuarded()
//    re-raises the original error with its SQLSTATE. The lambda itself must only
//    call C and hold no object with a destructor. The one exception to rule 2: a
//    body's own frame may call PostgreSQL directly while it holds no object with a
//    destructor (argument access and detoasting at its top, building its result
//    at its end); a longjmp from there skips nothing. The hot path relies on it.
#pragma once

#include <type_traits>

#include "glue/pg.hpp"

namespace abtest::glue {

// A PostgreSQL error caught by PgCall, travelling through C++ frames as an exception.
class PgError {
 public:
  explicit PgError(ErrorData* data) : data_(data) {}
  ErrorData* data() const { return data_; }

 private:
  ErrorData* data_;
};

template <typename Fn>
auto PgCall(Fn&& fn) -> decltype(fn()) {
  using Result = decltype(fn());
  if constexpr (std::is_void_v<Result>) {
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData* volatile error = nullptr;
    PG_TRY();
    { fn(); }
    PG_CATCH();
    {
      MemoryContextSwitchTo(caller_context);
      error = CopyErrorData();
      FlushErrorState();
    }
    PG_END_TRY();
    if (error != nullptr) throw PgError(error);
  } else {
    static_assert(std::is_trivially_destructible_v<Result>, "PgCall returns plain values only");
    Result result{};  // lives in this frame's memory, out of longjmp's reach
    PgCall([&] { result = fn(); });
    return result;
  }
}

// Runs `body` and turns any exception into a PostgreSQL error (rule 1).
Datum RunGuarded(Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo) noexcept;

// Refuses to run unless abtest was loaded by shared_preload_libraries.
void RequirePreloaded();

}  // namespace abtest::glue

#define ABTEST_SQL_FUNCTION(name)                                           \
  static Datum name##_body(FunctionCallInfo fcinfo);                        \
  extern "C" {                                                              \
  PG_FUNCTION_INFO_V1(name);                                                \
  Datum name(PG_FUNCTION_ARGS) { return abtest::glue::RunGuarded(name##_body, fcinfo); } \
  }                                                                         \
  static Datum name##_body(FunctionCallInfo fcinfo)
