// The node's audit log: an append-only Merkle tree (RFC 6962 hashing) over
// every AuditEvent the node records, kept in the audit column family.
//
// The tree is stored as the hashes of its perfect subtrees: each leaf's
// hash, and the hash of every aligned block of 2^k leaves once the block is
// complete. A tree head of any size, an inclusion path and a consistency
// proof are each combined from O(log n) of those stored hashes, never by
// re-reading leaves. So a leaf whose bytes are changed in the database no
// longer matches its path, and an auditor holding a signed head catches it.
//
// Appends go into the caller's batch, next to the state change they record,
// so an event is durable exactly when what it describes is. The caller says
// whether that batch was written (Committed) or not (Discard); readers see
// only what was committed.
//
// Secondary indexes by case, peer, kind, state and time answer auditors'
// queries. The log stores what it is given: callers must put no personal
// data in events, and this class never logs their contents.
//
// Key layout in Family::kAudit (BE8 is 8 big-endian bytes):
//   "l/" BE8(index)                  the serialized AuditEvent (leaf bytes)
//   "H/" level-byte BE8(pack)        the hashes at one level of positions
//                                    [16 pack, 16 pack + 16), concatenated
//                                    in order; the last pack of a level
//                                    holds fewer. The hash at `position`
//                                    covers leaves [position << level,
//                                    (position + 1) << level); level 0 is
//                                    the leaf hash
//   "h/" level-byte BE8(position)    one such hash on its own, as logs
//                                    written before packs keep them; read
//                                    where no pack holds the position
//   "x/c/" case 0x00 BE8(index)      by case
//   "x/p/" peer 0x00 BE8(index)      by peer
//   "x/k/" BE4(kind) BE8(index)      by kind
//   "x/s/" state 0x00 BE8(index)     by state
//                                    An index entry lists ascending event
//                                    indexes: the one in its key and, in
//                                    its value, the gaps (unsigned LEB128
//                                    varints) from each earlier one it
//                                    lists to the next. An empty value
//                                    lists the key's index alone. Entries
//                                    never share an index and sort in the
//                                    order of the events they list. Events
//                                    appended together in a group share
//                                    one peer and one kind entry per value
//                                    (peer and kind are on every event);
//                                    case and state entries are one per
//                                    event
//   "x/t/" BE8(micros) BE8(index)    the first event at each time; micros
//                                    with its sign bit flipped so that byte
//                                    order is time order
//   "m/size"                         BE8 number of leaves
//   "m/last/" case                   BE8 index of the case's latest event
// Empty case ids, peers and states are not indexed.
#ifndef CASELINK_SERVER_AUDIT_LOG_H_
#define CASELINK_SERVER_AUDIT_LOG_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "caselink/v1/audit.pb.h"
#include "core/crypto.h"
#include "storage/store.h"

namespace caselink::server {

// What an auditor asks for. Every field that is set must match; an empty
// filter matches every event.
struct AuditFilter {
  std::string case_id;
  std::string peer;
  std::string state;
  v1::AuditEventKind kind = v1::AUDIT_EVENT_KIND_UNSPECIFIED;
  // On AuditEvent.at: from is inclusive, to exclusive.
  std::optional<absl::Time> from;
  std::optional<absl::Time> to;
};

// One node's audit log over a Store it does not own, which must outlive it.
//
// Threads: Load, Append, Committed and Discard belong to one writer thread
// (the node's committer). The reader calls (size, Root, InclusionPath,
// ConsistencyPath, EventBytes, Find) may run on any number of threads at
// once, also while the writer appends; they see the log as of the latest
// Committed. Load must finish before any reader starts.
//
// Errors common to the readers: OutOfRange for a tree size beyond size(),
// which may become valid later; InvalidArgument for a request that can
// never make sense; DataLoss, naming the key, when a stored hash, leaf or
// index entry that the committed tree needs is missing or malformed; and
// the Store's own codes when reading fails.
class AuditLog {
 public:
  // `node_code` is written into every event's `node`. Hashes with `hash`:
  // SHA-256, or SM3 on nodes that sign with SM2. Call Load before use.
  AuditLog(storage::Store* store, HashAlgorithm hash, std::string node_code);

  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  HashAlgorithm hash() const { return hash_; }

  // Reads the tree size, the hashes of the right edge of the tree and the
  // latest event from the store; an empty store is an empty log. DataLoss,
  // naming the key, if they are missing, malformed or disagree (such as a
  // leaf stored beyond the recorded size). The latest index of each case is
  // read when the case is next appended to, so memory does not grow with
  // the number of cases.
  [[nodiscard]] absl::Status Load();

  // ---- Writer side: one thread only.

  // Adds `event` as the next leaf and returns its index. Sets its index,
  // node and previous_in_case, and raises its `at` to that of the previous
  // event if it is earlier, so that the log's times never go backwards and
  // a time range is a range of indexes (a clock stepped back yields equal
  // times until it catches up). Serializes the event once; those exact
  // bytes are the leaf. Puts into `batch` the leaf, the packs that hold its
  // hash and the hash of every perfect subtree it completes, its index
  // entries and the new size: O(log n) hashes, and a read only for a case
  // not appended to recently. AppendAll puts each pack once per group.
  //
  // Appends accumulate until Committed or Discard; each continues the tree
  // of the one before. On error nothing was put into `batch` and the log is
  // as before. InvalidArgument if the case id, peer or state holds a NUL
  // byte; FailedPrecondition before a successful Load; the Store's
  // codes if reading the case's latest index fails; Internal if hashing
  // fails.
  [[nodiscard]] absl::StatusOr<uint64_t> Append(storage::Batch& batch,
                                                v1::AuditEvent event);

  // Appends `events` in order, as Append does each, but puts the new size,
  // each case's latest index, and one peer and one kind index entry per
  // value once for all of them: what a commit group of many events needs.
  // On error the caller must drop `batch` and call Discard.
  [[nodiscard]] absl::Status AppendAll(storage::Batch& batch,
                                       std::vector<v1::AuditEvent> events);

  // The batch holding every append since the last Committed or Discard has
  // been written durably: readers now see those events.
  void Committed();

  // That batch was not written and never will be (the caller drops it):
  // the log forgets those appends and the next one reuses their indexes.
  void Discard();

  // ---- Reader side: any thread, committed data only.

  // The number of committed leaves.
  uint64_t size() const { return size_.load(std::memory_order_acquire); }

  // The RFC 6962 Merkle Tree Hash of the first `tree_size` leaves; the hash
  // of the empty string for 0. O(log n) reads.
  [[nodiscard]] absl::StatusOr<std::string> Root(uint64_t tree_size) const;

  // PATH(index, D[tree_size]) of RFC 6962: sibling hashes from the leaf up,
  // for core VerifyInclusion. InvalidArgument unless index < tree_size.
  // O(log n) reads.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> InclusionPath(
      uint64_t index, uint64_t tree_size) const;

  // PROOF(first, D[second]) of RFC 6962, for core VerifyConsistency; empty
  // when the sizes are equal. InvalidArgument unless 1 <= first <= second.
  // O(log n) reads.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> ConsistencyPath(
      uint64_t first, uint64_t second) const;

  // The exact stored bytes of leaf `index`: a serialized AuditEvent.
  // NotFound if index >= size(); DataLoss if a committed leaf is missing.
  [[nodiscard]] absl::StatusOr<std::string> EventBytes(uint64_t index) const;

  // The indexes of events matching `filter` that are above `after` (from
  // the first event if nullopt) and below `below` (bounded by size()), in
  // ascending order, at most `limit` of them. Pass the last index of one
  // page as `after` of the next.
  //
  // The equality filters are answered together from their indexes, each
  // cursor leaping to the next index the others hold, so the cost follows
  // the most selective of them; the time range becomes a range of indexes
  // in two seeks. No event is read.
  [[nodiscard]] absl::StatusOr<std::vector<uint64_t>> Find(
      const AuditFilter& filter, std::optional<uint64_t> after, uint64_t below,
      size_t limit) const;

 private:
  // Append's work; with `totals` it also puts the size, the case's latest
  // index and the event's peer and kind index entries, which AppendAll
  // puts once for the group (gathering them in group_runs_ until then).
  absl::StatusOr<uint64_t> AppendOne(storage::Batch& batch,
                                     v1::AuditEvent event, bool totals);
  // Puts one index entry per prefix gathered in group_runs_, and forgets
  // them.
  void PutGroupRuns(storage::Batch& batch);
  // What the writer needs to continue the tree. frontier[k] is the hash of
  // the perfect subtree of 2^k leaves on the right edge, held when bit k of
  // size is set.
  struct Edge {
    uint64_t size = 0;
    std::array<std::string, 64> frontier;
    // Per level, the hashes of its last pack while it is not full, and
    // which of those packs changed since they were last put.
    std::array<std::string, 64> open_packs;
    uint64_t changed_packs = 0;
    // The time of the latest event, in Unix microseconds.
    int64_t last_micros = std::numeric_limits<int64_t>::min();
  };

  [[nodiscard]] absl::StatusOr<uint64_t> LatestOfCase(
      const std::string& case_id);
  // Reads the latest event of each case of `events` that LatestOfCase
  // would otherwise read alone, in one read, into recent_last_.
  [[nodiscard]] absl::Status FetchCaseHeads(
      const std::vector<v1::AuditEvent>& events);
  [[nodiscard]] absl::StatusOr<std::string> StoredHash(int level,
                                                       uint64_t position) const;
  // Adds the hash at `position` of `level` to its pack; puts a pack that
  // it fills.
  void AddToPack(storage::Batch& batch, int level, uint64_t position,
                 const std::string& hash);
  // Puts the packs that changed and are not full.
  void PutOpenPacks(storage::Batch& batch);
  [[nodiscard]] absl::StatusOr<std::string> RangeHash(uint64_t start,
                                                      uint64_t count) const;
  [[nodiscard]] absl::StatusOr<uint64_t> FirstAtOrAfter(
      absl::Time time, uint64_t tree_size) const;
  [[nodiscard]] absl::Status CheckTreeSize(uint64_t tree_size) const;

  storage::Store* const store_;
  const HashAlgorithm hash_;
  const std::string node_code_;

  // Published by Committed; what readers may look at.
  std::atomic<uint64_t> size_{0};

  // The hashes of perfect subtrees of at least 2^kCachedLevel committed
  // leaves, which never change and lie on many proofs: a path in a tree of
  // a million leaves then reads ten stored hashes instead of twenty. At
  // most kMaxCachedHashes of them (some 30 MiB) are kept, which a log
  // reaches at about 130 million events; beyond that the rest are read.
  static constexpr int kCachedLevel = 10;
  static constexpr size_t kMaxCachedHashes = size_t{1} << 18;
  mutable absl::Mutex cache_mu_;
  mutable std::unordered_map<uint64_t, std::string> cache_
      ABSL_GUARDED_BY(cache_mu_);

  // Writer thread only.
  bool loaded_ = false;
  Edge committed_;
  Edge pending_;
  // The index + 1 of the latest event of a case (0 is "none", as in
  // previous_in_case): for cases appended to since the last Committed or
  // Discard, and for at most kRecentCases cases committed before, so that
  // a busy case costs no read per append.
  static constexpr size_t kRecentCases = size_t{1} << 16;
  absl::flat_hash_map<std::string, uint64_t> pending_last_;
  absl::flat_hash_map<std::string, uint64_t> recent_last_;
  // Within AppendAll: by index key prefix, the indexes of the group's
  // events that its one entry will list, ascending.
  absl::flat_hash_map<std::string, std::vector<uint64_t>> group_runs_;
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_AUDIT_LOG_H_
