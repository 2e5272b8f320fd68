#include "glue/worker/warm_start.hpp"

#include <algorithm>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "core/experiment.hpp"
#include "core/router.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"
#include "glue/shmem/shared_state.hpp"
#include "glue/sticky.hpp"
#include "glue/shmem/sticky_cache.hpp"

namespace abtest::glue::warm_start {
namespace {

constexpr int kChunkRows = 10000;

// Two statements: `user_id > $2` cannot start the first chunk, whose first user id
// may be the empty string.
constexpr const char* kFirstChunk =
    "SELECT user_id, branch FROM abtest.assignments WHERE experiment_id = $1::uuid "
    "ORDER BY user_id LIMIT 10000";
constexpr const char* kNextChunk =
    "SELECT user_id, branch FROM abtest.assignments WHERE experiment_id = $1::uuid AND user_id > $2 "
    "ORDER BY user_id LIMIT 10000";

// One experiment's load in progress.
struct Load {
  int slot;
  std::uint32_t epoch;
  std::string experiment_id;
  std::string name;
  std::vector<std::string> branches;
  std::uint32_t fingerprint;  // 0 with allow_reassignment, as for a log lookup: re-bucketed on use
  bool started;
  std::string after;  // the last user id loaded
  std::uint64_t loaded;
};

// Outlives the transactions of a load; static, so an error's longjmp leaves no frame owning it.
std::deque<Load> loads;

// A chunk's rows, pointing into SPI's tuples (valid until SPI_finish).
struct LoggedRow {
  const char* user;
  int user_length;
  const char* branch;
  int branch_length;
};

void Log(const std::string& message) {
  PgCall([&] { ereport(LOG, (errmsg("%s", message.c_str()))); });
}

Datum TakeRequestsBody(FunctionCallInfo) {
  std::vector<int> requested;
  for (int slot : SlotsOfDatabase())
    if (TakeWarmStart(slot)) requested.push_back(slot);
  if (requested.empty()) return BoolGetDatum(!loads.empty());
  for (Experiment& experiment : catalog::LoadAll()) {
    int slot = FindSlot(experiment.id);
    if (slot < 0 || std::find(requested.begin(), requested.end(), slot) == requested.end()) continue;
    bool loading = std::any_of(loads.begin(), loads.end(), [&](const Load& l) { return l.slot == slot; });
    SlotLog log = ReadSlotLog(slot);
    if (!experiment.config.sticky || loading || log.state != LogState::kIncomplete) continue;
    CompiledExperiment compiled(std::move(experiment));
    const Experiment& model = compiled.model();
    std::vector<std::string> branches;
    for (const Branch& branch : model.branches) branches.push_back(branch.name);
    std::uint32_t fingerprint = model.config.allow_reassignment ? 0 : compiled.assignment_fingerprint();
    loads.push_back(Load{slot, log.epoch, model.id, model.name, std::move(branches), fingerprint, false, {}, 0});
  }
  return BoolGetDatum(!loads.empty());
}

// Locks out clears until the end of the transaction, then reads the next chunk.
// Returns the number of rows; *rows is palloc'd in SPI's memory.
int ReadChunk(const Load& load, LoggedRow** rows) {
  const char* id = load.experiment_id.c_str();
  const char* after = load.after.c_str();
  bool started = load.started;
  std::uint32_t epoch = load.epoch;
  int slot = load.slot;
  return PgCall([=]() -> int {
    if (SPI_execute("LOCK TABLE abtest.assignments IN ROW EXCLUSIVE MODE", false, 0) != SPI_OK_UTILITY)
      elog(ERROR, "abtest: could not lock abtest.assignments");
    if (SlotEpoch(slot) != epoch) return 0;  // cleared meanwhile: nothing of this epoch to load
    Oid types[2] = {TEXTOID, TEXTOID};
    Datum values[2] = {CStringGetTextDatum(id), CStringGetTextDatum(after)};
    // Not read-only: the statement takes a snapshot after the lock, which sees every
    // clear that committed before it.
    int rc = SPI_execute_with_args(started ? kNextChunk : kFirstChunk, started ? 2 : 1, types, values, nullptr,
                                   false, kChunkRows);
    if (rc != SPI_OK_SELECT) elog(ERROR, "abtest: reading abtest.assignments failed: %s", SPI_result_code_string(rc));
    int count = static_cast<int>(SPI_processed);
    auto* result = static_cast<LoggedRow*>(palloc(sizeof(LoggedRow) * (count > 0 ? count : 1)));
    for (int i = 0; i < count; ++i) {
      bool null_user = false, null_branch = false;
      Datum user = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &null_user);
      Datum branch = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &null_branch);
      text* user_text = DatumGetTextPP(user);
      text* branch_text = DatumGetTextPP(branch);
      result[i] = LoggedRow{VARDATA_ANY(user_text), static_cast<int>(VARSIZE_ANY_EXHDR(user_text)),
                            VARDATA_ANY(branch_text), static_cast<int>(VARSIZE_ANY_EXHDR(branch_text))};
    }
    *rows = result;
    return count;
  });
}

void LogStopped(const Load& load) {
  Log("abtest: stopped loading the sticky assignments of experiment \"" + load.name + "\" after " +
      std::to_string(load.loaded) + ": the cache is three quarters full (abtest.sticky_cache_size); "
      "its cache misses keep looking up the log");
}

Datum LoadChunkBody(FunctionCallInfo) {
  Load& load = loads.front();
  SlotLog log = ReadSlotLog(load.slot);
  StickyStats stats = ReadStickyStats();
  std::uint64_t limit = stats.capacity / 4 * 3;
  std::uint64_t room = stats.entries < limit ? limit - stats.entries : 0;
  bool finished = log.epoch != load.epoch || log.state != LogState::kIncomplete;
  if (!finished && room == 0) {
    LogStopped(load);
    finished = true;
  }
  if (!finished) {
    LoggedRow* rows = nullptr;
    int count = ReadChunk(load, &rows);
    for (int i = 0; i < count && room > 0; ++i) {
      std::string_view branch_name(rows[i].branch, static_cast<std::size_t>(rows[i].branch_length));
      auto found = std::find(load.branches.begin(), load.branches.end(), branch_name);
      if (found == load.branches.end()) continue;  // a branch of another configuration: looked up, not cached
      StickyKey key = sticky::KeyOf(load.slot, load.epoch,
                                    std::string_view(rows[i].user, static_cast<std::size_t>(rows[i].user_length)));
      StickyStore(key, static_cast<int>(found - load.branches.begin()), load.fingerprint, EntryState::kPersisted,
                  false);
      ++load.loaded;
      --room;
    }
    if (room == 0) {
      LogStopped(load);
      finished = true;
    } else {
      if (count > 0) {
        load.after.assign(rows[count - 1].user, static_cast<std::size_t>(rows[count - 1].user_length));
        load.started = true;
      }
      if (count < kChunkRows) {  // the end of the log (or a clear)
        finished = true;
        if (SetSlotLogState(load.slot, load.epoch, LogState::kIncomplete, LogState::kComplete))
          Log("abtest: loaded " + std::to_string(load.loaded) + " sticky assignments of experiment \"" +
              load.name + "\" into the cache");
      }
    }
  }
  if (finished) loads.pop_front();
  return BoolGetDatum(!loads.empty());
}

}  // namespace

bool TakeRequests() { return DatumGetBool(RunGuarded(TakeRequestsBody, nullptr)); }

bool LoadChunk() { return !loads.empty() && DatumGetBool(RunGuarded(LoadChunkBody, nullptr)); }

void Abandon() {
  for (const Load& load : loads) RequestWarmStart(load.slot);
  loads.clear();
}

}  // namespace abtest::glue::warm_start
