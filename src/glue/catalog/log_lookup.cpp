#include "glue/catalog/log_lookup.hpp"

#include "glue/catalog/catalog.hpp"

extern "C" {
#include "access/genam.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "executor/tuptable.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
}

namespace abtest::glue::catalog::log_lookup {
namespace {

// What one transaction keeps open between lookups. Ownership: the relation
// references (of the table, of the index, and the scan's own of the index) and the
// AccessShareLocks belong to the transaction's resource owner, never a
// subtransaction's: a subtransaction that commits while they are open would report
// them as leaked. Nothing else outlives a lookup: its snapshot and buffer pins are
// given back before it returns, under whatever resource owner is current then.
struct Kept {
  MemoryContext context;  // under TopTransactionContext: the scan, the slot, the keys
  Relation heap;
  Relation index;
  IndexScanDesc scan;
  TupleTableSlot* slot;
  AttrNumber branch_column;
  ScanKeyData keys[2];  // experiment_id = $1 AND user_id = $2; a lookup sets the arguments
  text* user_key;       // $2, grown as needed
  std::size_t user_key_room;
  SubTransactionId opened_in;  // closed when this subtransaction aborts
  // A lookup is under way. An error out of it leaves the scan and the slot thinking
  // they hold buffer pins (and LWLocks) that the abort gives back: neither is used
  // again (Release(true)).
  bool busy;
  bool unavailable;  // no usable primary key in this transaction: the statement answers
};
Kept kept;
bool callbacks_registered = false;

// Gives back what Open took and forgets it. `after_error`: the scan and the slot are
// not touched (see Kept::busy), only their memory is freed and the scan's reference
// to the index is dropped by hand, as index_endscan would.
void Release(bool after_error) {
  if (kept.context == nullptr && kept.heap == nullptr) {
    kept = Kept{};
    return;
  }
  ResourceOwner saved_owner = CurrentResourceOwner;
  CurrentResourceOwner = TopTransactionResourceOwner;  // the owner of the references
  if (kept.scan != nullptr) {
    if (after_error)
      RelationDecrementReferenceCount(kept.index);
    else
      index_endscan(kept.scan);
  }
  if (kept.slot != nullptr && !after_error) ExecDropSingleTupleTableSlot(kept.slot);
  // The locks stay until the transaction ends, as they would after a statement.
  if (kept.index != nullptr) index_close(kept.index, NoLock);
  if (kept.heap != nullptr) table_close(kept.heap, NoLock);
  CurrentResourceOwner = saved_owner;
  if (kept.context != nullptr) MemoryContextDelete(kept.context);
  kept = Kept{};
}

// Closed before commit, so that the resource owner finds nothing leaked; after an
// abort, only forgotten: the abort gives back the references and locks (silently)
// and frees TopTransactionContext. These callbacks raise no errors in practice:
// closing only drops reference counts and frees memory.
void OnTransactionEnd(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_PRE_COMMIT:
    case XACT_EVENT_PARALLEL_PRE_COMMIT:
    case XACT_EVENT_PRE_PREPARE:
    case XACT_EVENT_COMMIT:  // normally closed already; opened by a later pre-commit callback
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_PREPARE:
      Release(kept.busy);
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
      kept = Kept{};
      break;
  }
}

// A subtransaction's abort closes what was opened in it (the table may have been
// created in it: a relation it rolls back must not stay referenced) and whatever a
// failed lookup left (its pins belonged to the aborting subtransaction, the
// innermost, whose callback comes first). A commit hands what it opened to its parent.
void OnSubtransactionEnd(SubXactEvent event, SubTransactionId subtransaction, SubTransactionId parent, void*) {
  if (event == SUBXACT_EVENT_COMMIT_SUB && kept.opened_in == subtransaction) kept.opened_in = parent;
  if (event == SUBXACT_EVENT_ABORT_SUB && (kept.busy || kept.opened_in == subtransaction)) Release(kept.busy);
}

// The column `name` of type `type`, or InvalidAttrNumber.
AttrNumber ColumnOf(TupleDesc columns, const char* name, Oid type) {
  for (int i = 0; i < columns->natts; ++i) {
    Form_pg_attribute column = TupleDescAttr(columns, i);
    if (!column->attisdropped && column->atttypid == type && strcmp(NameStr(column->attname), name) == 0)
      return column->attnum;
  }
  return InvalidAttrNumber;
}

// Whether the table and its primary key are as the extension's SQL creates them:
// a btree on (experiment_id uuid, user_id text) with the built-in operator classes,
// and a text column branch. The scan then runs PostgreSQL's own comparison
// functions only, so no code of anyone else runs on the caller's behalf (the
// statement it replaces ran as the catalog owner).
bool Usable() {
  TupleDesc columns = RelationGetDescr(kept.heap);
  AttrNumber experiment_column = ColumnOf(columns, "experiment_id", UUIDOID);
  AttrNumber user_column = ColumnOf(columns, "user_id", TEXTOID);
  kept.branch_column = ColumnOf(columns, "branch", TEXTOID);
  Relation index = kept.index;
  return experiment_column != InvalidAttrNumber && user_column != InvalidAttrNumber &&
         kept.branch_column != InvalidAttrNumber && index->rd_rel->relam == BTREE_AM_OID &&
         index->rd_index->indisvalid && IndexRelationGetNumberOfKeyAttributes(index) == 2 &&
         index->rd_index->indkey.values[0] == experiment_column && index->rd_index->indkey.values[1] == user_column &&
         index_getprocid(index, 1, BTORDER_PROC) == F_UUID_CMP && index_getprocid(index, 2, BTORDER_PROC) == F_BTTEXTCMP;
}

// Opens the table, its primary key and a scan of it. The OIDs are resolved again in
// every transaction (two syscache probes): a DROP EXTENSION, a re-created table, a
// REINDEX CONCURRENTLY that swapped the index are all seen at the next transaction,
// while the locks held keep them from changing under this one. Returns false when
// the table is missing or unusable; what was opened is then left for Release.
bool Open(Snapshot snapshot) {
  Oid heap_oid = AbtestRelation("assignments");
  if (!OidIsValid(heap_oid)) return false;
  ResourceOwner saved_owner = CurrentResourceOwner;
  MemoryContext saved_context = CurrentMemoryContext;
  volatile bool usable = false;
  PG_TRY();
  {
    CurrentResourceOwner = TopTransactionResourceOwner;
    kept.context = AllocSetContextCreate(TopTransactionContext, "abtest log lookup", ALLOCSET_SMALL_SIZES);
    kept.heap = table_open(heap_oid, AccessShareLock);
    Oid index_oid = RelationGetPrimaryKeyIndex(kept.heap);
    if (OidIsValid(index_oid)) {
      kept.index = index_open(index_oid, AccessShareLock);
      usable = Usable();
    }
    if (usable) {
      MemoryContextSwitchTo(kept.context);
      // A copy of the row type, not reference-counted: the slot then pins nothing.
      // It is only read up to branch, an original column (no "missing" defaults).
      kept.slot = MakeSingleTupleTableSlot(CreateTupleDescCopy(RelationGetDescr(kept.heap)),
                                           table_slot_callbacks(kept.heap));
      kept.scan = index_beginscan(kept.heap, kept.index, snapshot, 2, 0);
      // The index's own collations: the btree descends with its comparison function
      // under sk_collation (ScanKeyInit would say C, wrong for a database collation).
      ScanKeyEntryInitialize(&kept.keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
                             kept.index->rd_indcollation[0], F_UUID_EQ, (Datum)0);
      ScanKeyEntryInitialize(&kept.keys[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
                             kept.index->rd_indcollation[1], F_TEXTEQ, (Datum)0);
    }
  }
  PG_FINALLY();
  {
    CurrentResourceOwner = saved_owner;
    MemoryContextSwitchTo(saved_context);
  }
  PG_END_TRY();
  return usable;
}

void RegisterCallbacks() {
  if (callbacks_registered) return;
  RegisterXactCallback(OnTransactionEnd, nullptr);
  RegisterSubXactCallback(OnSubtransactionEnd, nullptr);
  callbacks_registered = true;
}

// The user id as a text datum, in a buffer kept for the transaction.
Datum UserKey(const char* user, std::size_t bytes) {
  if (kept.user_key_room < VARHDRSZ + bytes) {
    std::size_t room = Max(VARHDRSZ + bytes, static_cast<std::size_t>(256));
    kept.user_key = static_cast<text*>(kept.user_key ? repalloc(kept.user_key, room)
                                                     : MemoryContextAlloc(kept.context, room));
    kept.user_key_room = room;
  }
  SET_VARSIZE(kept.user_key, VARHDRSZ + bytes);
  memcpy(VARDATA(kept.user_key), user, bytes);
  return PointerGetDatum(kept.user_key);
}

}  // namespace

Outcome Find(const pg_uuid_t& experiment, const char* user, std::size_t user_bytes, char** branch) {
  RegisterCallbacks();
  if (kept.busy) Release(true);  // an earlier lookup failed and its error was caught without an abort
  if (kept.unavailable) return Outcome::kUnavailable;

  // The latest snapshot, per lookup, not the statement's: the cache this log backs is
  // shared memory, which shows every assignment at once whatever the caller's
  // isolation, and evicts an entry only after the flush worker committed its row,
  // maybe after this statement (or, in REPEATABLE READ, this transaction) took its
  // snapshot. The SPI statement this replaces saw such rows with its fresh snapshot in
  // READ COMMITTED; this sees them at every isolation level. Rows this transaction
  // wrote (sticky_durability = sync) are seen too: SPI advanced the command counter
  // after writing them. In parallel mode (the leader of a parallel query) no snapshot
  // may be taken: the statement's serves. Registered for the lookup's length, so that
  // its xmin stays advertised while the scan reads with it.
  Snapshot snapshot = RegisterSnapshot(IsInParallelMode() ? GetActiveSnapshot() : GetLatestSnapshot());
  kept.busy = true;
  if (kept.scan == nullptr) {
    kept.opened_in = GetCurrentSubTransactionId();
    if (!Open(snapshot)) {
      Release(false);
      kept.unavailable = true;
      kept.opened_in = GetCurrentSubTransactionId();
      UnregisterSnapshot(snapshot);
      return Outcome::kUnavailable;
    }
  }

  // The scan allocates lazily (btree's list of dead items) into the current context:
  // it must be one that lives as long as the scan.
  MemoryContext caller_context = MemoryContextSwitchTo(kept.context);
  kept.keys[0].sk_argument = UUIDPGetDatum(const_cast<pg_uuid_t*>(&experiment));
  kept.keys[1].sk_argument = UserKey(user, user_bytes);
  // Nothing of the scan depends on its snapshot between rescans: the btree and the
  // heap fetch read xs_snapshot at each call.
  kept.scan->xs_snapshot = snapshot;
  index_rescan(kept.scan, kept.keys, 2, nullptr, 0);
  Outcome outcome = Outcome::kNotFound;
  // The key is unique: at most one row version is visible.
  if (index_getnext_slot(kept.scan, ForwardScanDirection, kept.slot)) {
    bool is_null;
    Datum value = slot_getattr(kept.slot, kept.branch_column, &is_null);
    if (!is_null) {
      MemoryContextSwitchTo(caller_context);
      *branch = TextDatumGetCString(value);
      MemoryContextSwitchTo(kept.context);
      outcome = Outcome::kFound;
    }
  }
  // Every buffer pin goes back now (the slot's, the heap fetch's, the btree's): they
  // belong to the current resource owner, maybe a subtransaction's, which may end
  // before the next lookup. A rescan releases the scan's.
  ExecClearTuple(kept.slot);
  index_rescan(kept.scan, kept.keys, 2, nullptr, 0);
  kept.scan->xs_snapshot = InvalidSnapshot;
  MemoryContextSwitchTo(caller_context);
  UnregisterSnapshot(snapshot);
  kept.busy = false;
  return outcome;
}

void Close() {
  if (kept.context != nullptr || kept.heap != nullptr || kept.unavailable) Release(kept.busy);
}

}  // namespace abtest::glue::catalog::log_lookup
