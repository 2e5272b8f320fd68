// The rows of a set-returning function, materialized in a tuplestore (the
// InitMaterializedSRF protocol). Trivially destructible: PostgreSQL owns the memory.
#pragma once

#include <optional>

#include "glue/guard.hpp"
#include "glue/pg.hpp"

namespace abtest::glue {

// A nullable float8 column of a row being built: NULL when the value is absent.
inline void SetNullableFloat8(Datum* values, bool* nulls, int column, const std::optional<double>& value) {
  values[column] = Float8GetDatum(value.value_or(0));
  nulls[column] = !value.has_value();
}

class ResultSet {
 public:
  explicit ResultSet(FunctionCallInfo fcinfo) : info_(reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo)) {
    PgCall([&] { InitMaterializedSRF(fcinfo, 0); });
  }

  // For a function returning SETOF a scalar type, which InitMaterializedSRF does not
  // describe: one column of `type`.
  ResultSet(FunctionCallInfo fcinfo, Oid type) : info_(reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo)) {
    PgCall([&] {
      if (info_ == nullptr || !IsA(info_, ReturnSetInfo) || !(info_->allowedModes & SFRM_Materialize))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("set-valued function called in context that cannot accept a set")));
      MemoryContext caller = MemoryContextSwitchTo(info_->econtext->ecxt_per_query_memory);
      TupleDesc descriptor = CreateTemplateTupleDesc(1);
      TupleDescInitEntry(descriptor, 1, "value", type, -1, 0);
      info_->setResult = tuplestore_begin_heap((info_->allowedModes & SFRM_Materialize_Random) != 0, false, work_mem);
      info_->setDesc = descriptor;
      info_->returnMode = SFRM_Materialize;
      MemoryContextSwitchTo(caller);
    });
  }

  int columns() const { return info_->setDesc->natts; }

  // `values` and `nulls` hold columns() entries.
  void Add(const Datum* values, const bool* nulls) {
    PgCall([&] {
      tuplestore_putvalues(info_->setResult, info_->setDesc, const_cast<Datum*>(values), const_cast<bool*>(nulls));
    });
  }

 private:
  ReturnSetInfo* info_;
};

}  // namespace abtest::glue
