#include "glue/sticky.hpp"

#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "glue/shmem/assignment_queue.hpp"
#include "glue/catalog/catalog.hpp"
#include "glue/guard.hpp"
#include "glue/shmem/metrics_store.hpp"
#include "glue/shmem/shared_state.hpp"
#include "glue/shmem/sticky_cache.hpp"
#include "glue/staged_assignments.hpp"
#include "glue/transaction_end.hpp"

extern "C" {
#include "utils/snapmgr.h"
}

namespace abtest::glue::sticky {

int durability = static_cast<int>(Durability::kAsync);

namespace {

// Clears (ab_clear_sticky_cache, ab_clear_user_cache) delete log rows in the caller's
// transaction, and the cache cannot roll back with it. So a clear acts on the cache
// three times: at once (for the caller's own transaction), again at commit (other
// sessions may have cached the old rows meanwhile, still visible to them), and on
// abort it marks the slots incomplete, so that misses consult the restored log.
struct PendingClears {
  std::vector<int> slots;
  std::vector<XXH128_hash_t> users;
  void clear() {
    slots.clear();
    users.clear();
  }
};
PendingClears pending;
bool callbacks_registered = false;

void ForgetCachedUser(const XXH128_hash_t& hash) {
  for (int slot : SlotsOfDatabase()) StickyForget(StickyKey{slot, SlotEpoch(slot), hash.high64, hash.low64});
}

void ApplyClearsAtCommit() {
  for (int slot : pending.slots) ForgetSlotLog(slot);
  for (const auto& hash : pending.users) ForgetCachedUser(hash);
}

void MarkClearedIncomplete() {
  std::vector<int> slots = pending.users.empty() ? pending.slots : SlotsOfDatabase();
  for (int slot : slots) MarkSlotLogIncomplete(slot);
}

// A burst larger than the shared queue (abtest.assignment_queue_size): when the queue
// has no room for a staged batch (staged_assignments.hpp), the backend keeps the rest
// in an overflow batch of its own and writes it itself, many rows per statement, in the
// routing transaction, when the batch is full and at commit; the flush worker meanwhile
// drains the queue, so both write. The batch's cache entries stay pending (never
// evicted) until written. At an abort the batch goes to the queue if it has room again;
// what does not fit stays cached but unlogged, like a synchronous write whose
// transaction rolled back.
struct OverflowBatch {
  std::vector<char> bytes;
  int records = 0;
};
OverflowBatch overflow;
constexpr int kOverflowRecords = 4096;

template <typename Visit>
void ForEachOverflowRecord(Visit&& visit) {
  ForEachRecordIn(overflow.bytes.data(), overflow.bytes.size(), visit);
}

// Whether a staged or overflowing record still matches the cache: a user clear that
// began after it was cached forgot its entry, and the record must not be logged.
bool StillCached(const QueuedAssignment& record) {
  Lookup lookup = StickyLookup(KeyOf(record));
  return lookup.found && lookup.found->branch == record.branch;
}

void WriteOverflow() {
  if (overflow.records == 0) return;
  catalog::LockAssignmentsForWrite();
  // Taken after the lock: a clear in another session that forgot a user (its cache
  // entry is gone) has committed by now, and that user is not written.
  ForEachOverflowRecord([](QueuedAssignment& record) {
    if (!StillCached(record)) record.forgotten = 1;
  });
  catalog::WriteAssignmentBatch(overflow.bytes.data(), overflow.bytes.size());
  ForEachOverflowRecord([](QueuedAssignment& record) {
    if (record.forgotten) return;
    StickyMarkPersisted(KeyOf(record));
    CountSyncWrite();
    CountOverflowWrite();
  });
  overflow.bytes.clear();
  overflow.records = 0;
}

void AddToOverflow(const QueuedAssignment& record) {
  std::size_t at = overflow.bytes.size();
  overflow.bytes.resize(at + record.length());
  memcpy(overflow.bytes.data() + at, &record, record.length());
  ++overflow.records;
}

// Appends this backend's staged batch to the queue; what finds no room joins the
// overflow batch, written when full (`write_overflow`) or at commit.
void AppendStaged(bool write_overflow) {
  CountQueued(staged::Append(false, StillCached, AddToOverflow));
  if (write_overflow && overflow.records >= kOverflowRecords) WriteOverflow();
}

// Called at an abort: cannot raise. The overflow batch, then the staged records, go to
// the queue if it has room again; what does not fit stays cached but unlogged, as after
// a synchronous write whose transaction rolled back. The overflow batch is checked
// against the cache record by record, as WriteOverflow would have.
void SaveAtAbort() noexcept {
  auto unlogged = [](const QueuedAssignment& record) { StickyMarkPersisted(KeyOf(record)); };
  try {
    CountQueued(EnqueueRecords(overflow.bytes.data(), overflow.bytes.size(), kCheckEveryRecord, StillCached,
                               unlogged, true));
  } catch (...) {
  }
  overflow.bytes.clear();
  overflow.records = 0;
  try {
    CountQueued(staged::Append(true, StillCached, unlogged));
  } catch (...) {
  }
}

// Before a commit: the staged records into the queue, the overflow batch into the
// log. At pre-commit no statement runs, so no snapshot is active; an error here aborts
// the commit (and with it the snapshot stack).
Datum FinishAtCommit(FunctionCallInfo) {
  AppendStaged(false);
  if (overflow.records == 0) return 0;
  PgCall([] { PushActiveSnapshot(GetTransactionSnapshot()); });
  WriteOverflow();
  PgCall([] { PopActiveSnapshot(); });
  return 0;
}

Datum AppendBeforePrepare(FunctionCallInfo) {
  AppendStaged(false);
  return 0;
}

// Transaction callbacks cannot raise: a failure here costs extra log lookups at worst.
// Except before a commit, where appending the staged records or writing the overflow
// batch may fail the commit. A transaction being prepared appends its staged records
// but leaves its overflow batch to the backend's next commit: its locks on the log
// would last until COMMIT PREPARED.
void OnTransactionEnd(XactEvent event, void*) {
  bool holds_records = !staged::Empty() || overflow.records > 0;  // staged or overflowing
  if (event == XACT_EVENT_PRE_COMMIT && holds_records) (void)RunGuarded(FinishAtCommit, nullptr);
  if (event == XACT_EVENT_PRE_PREPARE && !staged::Empty()) (void)RunGuarded(AppendBeforePrepare, nullptr);
  if (Aborts(event) && holds_records) SaveAtAbort();
  try {
    if (Commits(event)) ApplyClearsAtCommit();
    if (Aborts(event)) MarkClearedIncomplete();
  } catch (...) {
  }
  if (Ends(event)) PublishCounts();  // atomic adds only: cannot raise
  if (Commits(event) || Aborts(event)) pending.clear();
}

void OnSubtransactionEnd(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
  if (event != SUBXACT_EVENT_ABORT_SUB) return;
  try {
    MarkClearedIncomplete();
  } catch (...) {
  }
}

void RegisterCallbacks() {
  if (callbacks_registered) return;
  PgCall([] {
    RegisterXactCallback(OnTransactionEnd, nullptr);
    RegisterSubXactCallback(OnSubtransactionEnd, nullptr);
  });
  callbacks_registered = true;
}

XXH128_hash_t UserHash128(std::string_view user_id) { return XXH3_128bits(user_id.data(), user_id.size()); }

StickyKey KeyFor(int slot, std::string_view user_id) { return KeyOf(slot, SlotEpoch(slot), user_id); }

// Within one routing call the router asks Remembered, then Remember, about the same
// user (the same bytes): Remembered leaves its key here and Remember takes it, so the
// user id is hashed once. Only within the call: the next row's user id may sit at the
// same address with other contents.
struct KeyOfThisCall {
  const char* user_data = nullptr;
  std::size_t user_size = 0;
  StickyKey key{};
};
KeyOfThisCall key_of_this_call;

StickyKey TakeKeyOfThisCall(int slot, std::string_view user_id) {
  KeyOfThisCall left = key_of_this_call;
  key_of_this_call.user_data = nullptr;
  if (left.user_data == user_id.data() && left.user_size == user_id.size() && left.key.slot == slot &&
      left.key.epoch == SlotEpoch(slot))
    return left.key;
  return KeyFor(slot, user_id);
}

// The slot's log state for `epoch` (the key's), checked against the table when
// unknown. A log that holds assignments is loaded into the cache by the flush worker
// (warm_start), which then marks it complete.
LogState CurrentLogState(int slot, const CompiledExperiment& experiment, std::uint32_t epoch) {
  SlotLog log = ReadSlotLog(slot);
  if (log.epoch != epoch) return LogState::kIncomplete;  // a clear moved on: look the log up
  if (log.state != LogState::kUnknown) return log.state;
  LogState found = catalog::AssignmentsExist(experiment.model().id) ? LogState::kIncomplete : LogState::kComplete;
  if (!SetSlotLogState(slot, epoch, LogState::kUnknown, found)) return LogState::kIncomplete;
  if (found == LogState::kIncomplete && !InRecovery()) {  // a standby has no flush worker
    int queue = ClaimDatabaseQueue();
    if (queue >= 0) {
      RequestWarmStart(slot);
      WakeFlushWorker(queue);
    }
  }
  return found;
}

// Writes in the caller's transaction; returns the branch index the log holds.
int WriteSynchronously(const CompiledExperiment& experiment, std::string_view user_id, int branch, bool reassign) {
  CountSyncWrite();
  std::string logged = catalog::LogAssignment(experiment.model().id, user_id, experiment.branch(branch), reassign);
  int index = experiment.model().BranchIndex(logged);
  return index >= 0 ? index : branch;
}

// Writes a cached assignment synchronously; the cache follows whatever the log holds.
int WriteAndCache(const CompiledExperiment& experiment, std::string_view user_id, const StickyKey& key, int branch,
                  bool reassign) {
  int logged = WriteSynchronously(experiment, user_id, branch, reassign);
  if (logged != branch) {
    StickyForget(key);
    StickyStore(key, logged, experiment.assignment_fingerprint(), EntryState::kPersisted, false);
  }
  StickyMarkPersisted(key);
  return logged;
}

}  // namespace

StickyKey KeyOf(int slot, std::uint32_t epoch, std::string_view user_id) {
  XXH128_hash_t hash = UserHash128(user_id);
  return StickyKey{slot, epoch, hash.high64, hash.low64};
}

StickyKey KeyOf(const QueuedAssignment& record) { return KeyOf(record.slot, record.epoch, record.user()); }

std::optional<int> Remembered(const CompiledExperiment& experiment, std::string_view user_id) {
  // The transaction's end publishes the counts of this call and Remember's, and writes
  // Remember's overflow batch.
  RegisterCallbacks();
  int slot = AcquireSlot(experiment);
  StickyKey key = KeyFor(slot, user_id);
  key_of_this_call = KeyOfThisCall{user_id.data(), user_id.size(), key};
  bool reassign = experiment.model().config.allow_reassignment;
  Lookup lookup = StickyLookup(key);
  if (lookup.found) {
    CountHit();
    if (reassign && lookup.found->fingerprint != experiment.assignment_fingerprint()) return std::nullopt;
    return lookup.found->branch;
  }
  CountMiss();
  if (!lookup.set_incomplete && CurrentLogState(slot, experiment, key.epoch) == LogState::kComplete)
    return std::nullopt;

  CountLogLookup();
  std::optional<std::string> logged = catalog::LoggedBranch(experiment.model().id, user_id);
  int branch = logged ? experiment.model().BranchIndex(*logged) : -1;
  if (branch < 0) return std::nullopt;
  // A logged branch of unknown fingerprint: with reassignment the router re-buckets
  // the user, and Remember keeps the branch if the configuration has not changed.
  std::uint32_t fingerprint = reassign ? 0 : experiment.assignment_fingerprint();
  StoreResult stored = StickyStore(key, branch, fingerprint, EntryState::kPersisted, false);
  if (reassign) return std::nullopt;
  return stored.branch;
}

int Remember(const CompiledExperiment& experiment, std::string_view user_id, int branch) {
  int slot = AcquireSlot(experiment);
  StickyKey key = TakeKeyOfThisCall(slot, user_id);
  bool reassign = experiment.model().config.allow_reassignment;
  std::uint32_t fingerprint = experiment.assignment_fingerprint();

  if (InRecovery()) {  // a standby cannot write: its new assignments live in memory only
    StoreResult stored = StickyStore(key, branch, fingerprint, EntryState::kPersisted, reassign);
    if (stored.outcome != StoreOutcome::kExisting) metrics::CountAssignment(experiment, branch);
    return stored.outcome == StoreOutcome::kNoRoom ? branch : stored.branch;
  }
  bool sync = durability == static_cast<int>(Durability::kSync) || user_id.size() > kMaxQueuedUserId;
  StoreResult stored =
      StickyStore(key, branch, fingerprint, sync ? EntryState::kPersisted : EntryState::kPending, reassign);
  if (stored.outcome != StoreOutcome::kExisting) metrics::CountAssignment(experiment, branch);
  switch (stored.outcome) {
    case StoreOutcome::kExisting:
      return stored.branch;
    case StoreOutcome::kNoRoom:
      // Every entry of the set awaits its flush: write this one now, uncached (the
      // set is flagged, so that this user's next miss finds it in the log).
      CountUncachedWrite();
      return WriteSynchronously(experiment, user_id, branch, reassign);
    case StoreOutcome::kStored:
      break;
  }
  // Synchronous (the setting, or a user id too long to queue), or no queue: written now.
  if (sync || ClaimDatabaseQueue() < 0) return WriteAndCache(experiment, user_id, key, branch, stored.replaced);
  if (staged::Keep(key, branch, GetCurrentTimestamp(), stored.replaced, user_id)) AppendStaged(true);
  return branch;
}

void ForgetExperiment(const std::string& experiment_id) {
  RegisterCallbacks();
  catalog::LockAssignmentsForClear();
  catalog::DeleteAssignments(experiment_id);
  int slot = FindSlot(experiment_id);
  if (slot < 0) return;
  ForgetSlotLog(slot);  // every cached and queued assignment of it is stale now
  pending.slots.push_back(slot);
}

void ForgetUser(const std::string& user_id) {
  RegisterCallbacks();
  AppendStaged(true);  // this backend's own records of the user are then marked in the queue
  catalog::LockAssignmentsForClear();
  catalog::DeleteUserAssignments(user_id);
  XXH128_hash_t hash = UserHash128(user_id);
  {
    UserClearScope counted;  // staged batches of other backends are checked (assignment_queue.hpp)
    ForgetCachedUser(hash);
    ForgetQueuedUser(user_id);
  }
  pending.users.push_back(hash);
}

}  // namespace abtest::glue::sticky
