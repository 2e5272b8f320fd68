#include "glue/staged_assignments.hpp"

namespace abtest::glue::staged {
namespace {

// 256 records of user ids of up to 12 bytes: a statement of new users appends every
// ~150 µs, and the batch stays in the core's first-level cache.
constexpr Size kBatchBytes = 8192;
// A session that assigns a new user now and then still appends within this time
// (at its next new user; at the end of its transaction at the latest).
constexpr long kMaxAgeMs = 10;

// Appended whenever it reaches kBatchBytes, so a record always fits behind the rest.
alignas(8) char batch[kBatchBytes + RecordLength(kMaxQueuedUserId)];
Size used = 0;
TimestampTz oldest_at = 0;
// The user clears as read after the last append (none read yet: the first batch is
// checked record by record).
UserClearCounts clears_since_append = kCheckEveryRecord;

}  // namespace

bool Keep(const StickyKey& key, int branch, TimestampTz assigned_at, bool reassigned, std::string_view user_id) {
  if (used == 0) oldest_at = assigned_at;
  FillRecord(reinterpret_cast<QueuedAssignment*>(batch + used), key, branch, assigned_at, reassigned, user_id);
  used += RecordLength(user_id.size());
  return used >= kBatchBytes || assigned_at - oldest_at >= kMaxAgeMs * 1000;
}

bool Empty() { return used == 0; }

int Append(bool quiet, bool (*still_cached)(const QueuedAssignment&), void (*left_over)(const QueuedAssignment&)) {
  if (used == 0) return 0;
  int appended = EnqueueRecords(batch, used, clears_since_append, still_cached, left_over, quiet);
  clears_since_append = ReadUserClearCounts();
  used = 0;
  return appended;
}

}  // namespace abtest::glue::staged
