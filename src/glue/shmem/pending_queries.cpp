#include "glue/shmem/pending_queries.hpp"

#include <algorithm>
#include <cstring>

#include "glue/shmem/query_metrics.hpp"

namespace abtest::glue::pending_queries {
namespace {

// A batch is published when it is full: a transaction of many statements locks shared
// memory once per kSamples of them, and no spinlock is held over more than kSamples
// additions.
constexpr int kSamples = 32;
constexpr int kQueries = 8;  // distinct query ids per batch

struct PendingQuery {
  std::uint64_t queryid;
  int text_len;  // 0: no text (yet)
  char text[query_metrics::kQueryTextBytes + 1];  // one byte more: the store cuts at a character
};

metrics::BranchHandle batch_branch{};  // of every statement in the batch
int sample_count = 0;
QuerySample samples[kSamples];
instr_time ends[kSamples];
int query_of[kSamples];  // index into queries, -1: no query id
int query_count = 0;
PendingQuery queries[kQueries];

// Scratch of Publish (not on the stack: an abort callback may publish).
TimestampTz sample_times[kSamples];
QuerySample gathered[kSamples];

// The (branch, query id) keys whose store entry had its text at this backend's last
// publish into it: direct-mapped by query id (already a hash). Emptied whenever the
// store removed entries (an eviction, a clear): its epoch changed.
struct TextedKey {
  pg_uuid_t experiment;
  std::int32_t position;
  bool valid;
  std::uint64_t queryid;
};
constexpr int kTexted = 64;
TextedKey texted[kTexted];
std::uint32_t texted_epoch = 0;

void SyncTexted(std::uint32_t epoch) {
  if (epoch == texted_epoch) return;
  for (TextedKey& key : texted) key.valid = false;
  texted_epoch = epoch;
}

bool Same(const TextedKey& key, const metrics::BranchHandle& branch, std::uint64_t queryid) {
  return key.valid && key.queryid == queryid && key.position == branch.position &&
         memcmp(&key.experiment, &branch.experiment, sizeof key.experiment) == 0;
}

bool SameBranch(const metrics::BranchHandle& a, const metrics::BranchHandle& b) {
  return a.position == b.position && memcmp(&a.experiment, &b.experiment, sizeof a.experiment) == 0;
}

int FindQuery(std::uint64_t queryid) {
  for (int i = 0; i < query_count; ++i)
    if (queries[i].queryid == queryid) return i;
  return -1;
}

}  // namespace

bool HasStoredText(const metrics::BranchHandle& branch, std::uint64_t queryid) noexcept {
  SyncTexted(query_metrics::RemovalEpoch());
  return Same(texted[queryid % kTexted], branch, queryid);
}

void Add(const metrics::BranchHandle& branch, std::uint64_t queryid, const QuerySample& sample, const instr_time& end,
         const char* text, int text_len) noexcept {
  bool new_query = queryid != 0 && FindQuery(queryid) < 0;
  if (sample_count > 0 && (sample_count == kSamples || (new_query && query_count == kQueries) ||
                           !SameBranch(batch_branch, branch)))
    Publish();
  if (sample_count == 0) batch_branch = branch;
  int query = -1;
  if (queryid != 0) {
    query = FindQuery(queryid);
    if (query < 0) {
      query = query_count++;
      queries[query].queryid = queryid;
      queries[query].text_len = 0;
    }
    PendingQuery& pending = queries[query];
    if (pending.text_len == 0 && text != nullptr) {
      constexpr std::size_t kMax = query_metrics::kQueryTextBytes;
      std::size_t length = text_len < 0 ? strnlen(text, kMax) : std::min<std::size_t>(text_len, kMax);
      memcpy(pending.text, text, length);
      pending.text[length] = '\0';
      pending.text_len = static_cast<int>(length);
    }
  }
  samples[sample_count] = sample;
  ends[sample_count] = end;
  query_of[sample_count] = query;
  ++sample_count;
}

void Publish() noexcept {
  if (sample_count == 0) return;
  int count = sample_count;
  // Each statement's wall-clock end, from one reading of either clock: its latency's
  // clock was read when it ended.
  TimestampTz now = GetCurrentTimestamp();
  instr_time clock;
  INSTR_TIME_SET_CURRENT(clock);
  for (int i = 0; i < count; ++i) {
    instr_time since = clock;
    INSTR_TIME_SUBTRACT(since, ends[i]);
    sample_times[i] = now - static_cast<TimestampTz>(INSTR_TIME_GET_MICROSEC(since));
  }
  (void)metrics::RecordQueriesAt(batch_branch, samples, sample_times, count);
  for (int q = 0; q < query_count; ++q) {
    int n = 0;
    for (int i = 0; i < count; ++i)
      if (query_of[i] == q) gathered[n++] = samples[i];
    const PendingQuery& pending = queries[q];
    std::uint32_t epoch = query_metrics::RemovalEpoch();  // before: a removal after it empties the cache
    bool needs_text = query_metrics::RecordBatch(batch_branch.experiment, batch_branch.position, pending.queryid,
                                                 pending.text_len > 0 ? pending.text : nullptr, pending.text_len,
                                                 gathered, n);
    SyncTexted(epoch);
    TextedKey& key = texted[pending.queryid % kTexted];
    if (!needs_text) {
      key.experiment = batch_branch.experiment;
      key.position = batch_branch.position;
      key.queryid = pending.queryid;
      key.valid = true;
    } else if (Same(key, batch_branch, pending.queryid)) {
      key.valid = false;
    }
  }
  sample_count = 0;
  query_count = 0;
}

}  // namespace abtest::glue::pending_queries
