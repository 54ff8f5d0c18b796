#include "server/audit_log.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "core/merkle.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"

namespace caselink::server {
namespace {

using google::protobuf::util::TimeUtil;
using storage::AppendUint64BE;
using storage::Family;
using storage::ReadUint64BE;
using storage::Uint64BE;

constexpr std::string_view kLeafPrefix = "l/";
constexpr std::string_view kHashPrefix = "h/";
constexpr std::string_view kPackPrefix = "H/";
// Hashes per pack: one key for sixteen hashes spares the store fifteen
// entries to insert, flush and compact.
constexpr uint64_t kPackHashes = 16;
constexpr std::string_view kCasePrefix = "x/c/";
constexpr std::string_view kPeerPrefix = "x/p/";
constexpr std::string_view kKindPrefix = "x/k/";
constexpr std::string_view kStatePrefix = "x/s/";
constexpr std::string_view kTimePrefix = "x/t/";
constexpr std::string_view kSizeKey = "m/size";
constexpr std::string_view kLastPrefix = "m/last/";

std::string LeafKey(uint64_t index) {
  return Cat(kLeafPrefix, Uint64BE(index));
}

std::string HashKey(int level, uint64_t position) {
  return Cat(kHashPrefix, static_cast<char>(level), Uint64BE(position));
}

std::string PackKey(int level, uint64_t position) {
  return Cat(kPackPrefix, static_cast<char>(level),
             Uint64BE(position / kPackHashes));
}

// The keys hold raw integers; messages name them in a readable form.
std::string LeafKeyName(uint64_t index) { return Cat("l/", index); }
std::string HashKeyName(int level, uint64_t position) {
  return Cat("h/", level, "/", position);
}

// Flipping the sign bit makes byte order of the encoding numeric order for
// negative times too.
uint64_t OrderedMicros(int64_t micros) {
  return static_cast<uint64_t>(micros) ^ (uint64_t{1} << 63);
}

// The prefix of one value's entries in a string-keyed index. The 0x00
// separator keeps "a" from matching entries of "ab".
std::string TextIndexPrefix(std::string_view family, std::string_view value) {
  return Cat(family, value, '\0');
}

std::string KindIndexPrefix(v1::AuditEventKind kind) {
  const auto value = static_cast<uint32_t>(kind);
  std::string out(kKindPrefix);
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
  return out;
}

std::string TimeIndexKey(int64_t micros, uint64_t index) {
  std::string out(kTimePrefix);
  AppendUint64BE(&out, OrderedMicros(micros));
  AppendUint64BE(&out, index);
  return out;
}

absl::StatusOr<uint64_t> DecodeUint64BE(std::string_view value,
                                        std::string_view key_name) {
  std::optional<uint64_t> decoded = ReadUint64BE(&value);
  if (!decoded.has_value() || !value.empty()) {
    return absl::DataLossError(
        Cat("audit log: ", key_name, " does not hold an 8-byte integer"));
  }
  return *decoded;
}

// The index at the end of an index key, which the caller knows starts with
// `prefix`.
absl::StatusOr<uint64_t> TrailingIndex(std::string_view key,
                                       std::string_view prefix) {
  std::string_view rest = key.substr(prefix.size());
  if (rest.size() != 8) {
    // Name the index, not the value: the key holds a case id or a peer.
    return absl::DataLossError(Cat("audit log: malformed key of ", key.size(),
                                   " bytes in index ", prefix.substr(0, 4)));
  }
  return *ReadUint64BE(&rest);
}

void AppendVarint(std::string* out, uint64_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Reads one unsigned LEB128 varint off the front of `in`; nullopt if it is
// cut short or does not fit 64 bits.
std::optional<uint64_t> ReadVarint(std::string_view* in) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    const uint64_t bits = byte & 0x7f;
    if (shift == 63 && bits > 1) return std::nullopt;
    value |= bits << shift;
    if ((byte & 0x80) == 0) return value;
  }
  return std::nullopt;
}

// The ascending indexes that one index entry lists (see the key layout in
// the header) into `run`; the caller knows `key` starts with `prefix`.
absl::Status DecodeIndexEntry(std::string_view key, std::string_view value,
                              std::string_view prefix,
                              std::vector<uint64_t>* run) {
  CASELINK_ASSIGN_OR_RETURN(const uint64_t last, TrailingIndex(key, prefix));
  run->clear();
  // The gaps first; their sum is how far the first index lies below the
  // key's.
  uint64_t total = 0;
  while (!value.empty()) {
    std::optional<uint64_t> gap = ReadVarint(&value);
    if (!gap.has_value() || *gap == 0 || *gap > last - total) {
      return absl::DataLossError(
          Cat("audit log: malformed list of indexes in an entry of index ",
              prefix.substr(0, 4), " at index ", last));
    }
    total += *gap;
    run->push_back(*gap);
  }
  uint64_t index = last - total;
  for (uint64_t& slot : *run) {
    const uint64_t gap = slot;
    slot = index;
    index += gap;
  }
  run->push_back(last);
  return absl::OkStatus();
}

// One equality filter's index: the ascending indexes of the events holding
// one value, walked by a cursor that only moves forward.
class IndexWalk {
 public:
  IndexWalk(const storage::Store& store, std::string prefix)
      : prefix_(std::move(prefix)),
        cursor_(store.NewCursor(Family::kAudit, prefix_)) {}

  // The smallest index >= target in this index, or nullopt if none. Targets
  // must not decrease from one call to the next.
  absl::StatusOr<std::optional<uint64_t>> NextAtLeast(uint64_t target) {
    if (!started_ || (cursor_.Valid() && run_.back() < target)) {
      // Entries sort by the last index they list, so the first entry whose
      // key holds target or more lists the answer. Once an entry is used
      // up the next target is often one on, where Next is cheaper than a
      // seek.
      if (started_ && run_.back() + 1 == target) {
        cursor_.Next();
      } else {
        cursor_.Seek(Cat(prefix_, Uint64BE(target)));
      }
      started_ = true;
      CASELINK_RETURN_IF_ERROR(Settle());
    }
    if (!cursor_.Valid()) return std::nullopt;
    at_ = static_cast<size_t>(
        std::lower_bound(run_.begin() + static_cast<std::ptrdiff_t>(at_),
                         run_.end(), target) -
        run_.begin());
    return run_[at_];
  }

 private:
  absl::Status Settle() {
    at_ = 0;
    if (!cursor_.Valid()) return cursor_.status();
    return DecodeIndexEntry(cursor_.key(), cursor_.value(), prefix_, &run_);
  }

  std::string prefix_;
  storage::Cursor cursor_;
  bool started_ = false;
  // The current entry's indexes, and the position of the latest answer.
  std::vector<uint64_t> run_;
  size_t at_ = 0;
};

}  // namespace

AuditLog::AuditLog(storage::Store* store, HashAlgorithm hash,
                   std::string node_code)
    : store_(store), hash_(hash), node_code_(std::move(node_code)) {}

absl::Status AuditLog::Load() {
  Edge edge;

  // The size; an absent one is an empty log, which must then hold no leaf.
  CASELINK_ASSIGN_OR_RETURN(std::optional<std::string> size_value,
                            store_->Get(Family::kAudit, kSizeKey));
  if (size_value.has_value()) {
    CASELINK_ASSIGN_OR_RETURN(edge.size, DecodeUint64BE(*size_value, kSizeKey));
  }
  CASELINK_ASSIGN_OR_RETURN(std::optional<std::string> beyond,
                            store_->Get(Family::kAudit, LeafKey(edge.size)));
  if (beyond.has_value()) {
    return absl::DataLossError(Cat("audit log: ", LeafKeyName(edge.size),
                                   " is stored but m/size is ", edge.size));
  }

  // The right edge: one perfect subtree per bit of the size.
  for (int level = 0; level < 64; ++level) {
    if (((edge.size >> level) & 1) == 0) continue;
    const uint64_t position = (edge.size >> level) - 1;
    absl::StatusOr<std::string> hash = StoredHash(level, position);
    if (!hash.ok()) return hash.status();
    edge.frontier[level] = *std::move(hash);
  }
  // The hashes of each level's last pack, which later appends extend.
  for (int level = 0; level < 64; ++level) {
    const uint64_t count = edge.size >> level;
    for (uint64_t position = count - count % kPackHashes; position < count;
         ++position) {
      absl::StatusOr<std::string> hash = StoredHash(level, position);
      if (!hash.ok()) return hash.status();
      edge.open_packs[level] += *hash;
    }
  }

  // The latest event: its time bounds the next, and its hash must be the
  // stored one, or the tree was damaged where appends continue it.
  if (edge.size > 0) {
    const uint64_t last = edge.size - 1;
    CASELINK_ASSIGN_OR_RETURN(std::optional<std::string> bytes,
                              store_->Get(Family::kAudit, LeafKey(last)));
    v1::AuditEvent event;
    if (!bytes.has_value() || !event.ParseFromString(*bytes)) {
      return absl::DataLossError(Cat("audit log: ", LeafKeyName(last),
                                     bytes ? " does not parse" : " is missing",
                                     " but m/size is ", edge.size));
    }
    CASELINK_ASSIGN_OR_RETURN(std::string leaf_hash, LeafHash(hash_, *bytes));
    CASELINK_ASSIGN_OR_RETURN(std::string stored, StoredHash(0, last));
    if (leaf_hash != stored) {
      return absl::DataLossError(Cat("audit log: ", LeafKeyName(last),
                                     " does not match ", HashKeyName(0, last)));
    }
    edge.last_micros = TimeUtil::TimestampToMicroseconds(event.at());
  }

  committed_ = edge;
  pending_ = std::move(edge);
  pending_last_.clear();
  recent_last_.clear();
  loaded_ = true;
  size_.store(committed_.size, std::memory_order_release);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> AuditLog::LatestOfCase(const std::string& case_id) {
  if (auto found = pending_last_.find(case_id); found != pending_last_.end()) {
    return found->second;
  }
  if (auto found = recent_last_.find(case_id); found != recent_last_.end()) {
    return found->second;
  }
  const std::string key = Cat(kLastPrefix, case_id);
  CASELINK_ASSIGN_OR_RETURN(std::optional<std::string> value,
                            store_->Get(Family::kAudit, key));
  if (!value.has_value()) return 0;
  CASELINK_ASSIGN_OR_RETURN(uint64_t index,
                            DecodeUint64BE(*value, "m/last/ of a case"));
  return index + 1;
}

absl::Status AuditLog::FetchCaseHeads(
    const std::vector<v1::AuditEvent>& events) {
  std::vector<std::string> cases;
  std::vector<std::string> keys;
  absl::flat_hash_set<std::string_view> asked;
  for (const v1::AuditEvent& event : events) {
    const std::string& case_id = event.case_id();
    if (case_id.empty() || pending_last_.contains(case_id) ||
        recent_last_.contains(case_id) || !asked.insert(case_id).second) {
      continue;
    }
    cases.push_back(case_id);
    keys.push_back(Cat(kLastPrefix, case_id));
  }
  if (keys.empty()) return absl::OkStatus();
  CASELINK_ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> values,
                            store_->GetAll(Family::kAudit, keys));
  for (size_t i = 0; i < cases.size(); ++i) {
    uint64_t next = 0;
    if (values[i].has_value()) {
      CASELINK_ASSIGN_OR_RETURN(
          uint64_t index, DecodeUint64BE(*values[i], "m/last/ of a case"));
      next = index + 1;
    }
    recent_last_[cases[i]] = next;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> AuditLog::Append(storage::Batch& batch,
                                          v1::AuditEvent event) {
  return AppendOne(batch, std::move(event), /*totals=*/true);
}

absl::Status AuditLog::AppendAll(storage::Batch& batch,
                                 std::vector<v1::AuditEvent> events) {
  if (events.empty()) return absl::OkStatus();
  group_runs_.clear();
  CASELINK_RETURN_IF_ERROR(FetchCaseHeads(events));
  std::vector<std::string> cases;
  for (v1::AuditEvent& event : events) {
    if (!event.case_id().empty()) cases.push_back(event.case_id());
    CASELINK_RETURN_IF_ERROR(
        AppendOne(batch, std::move(event), /*totals=*/false).status());
  }
  PutOpenPacks(batch);
  PutGroupRuns(batch);
  std::sort(cases.begin(), cases.end());
  cases.erase(std::unique(cases.begin(), cases.end()), cases.end());
  for (const std::string& case_id : cases) {
    batch.Put(Family::kAudit, Cat(kLastPrefix, case_id),
              Uint64BE(pending_last_.at(case_id) - 1));
  }
  batch.Put(Family::kAudit, kSizeKey, Uint64BE(pending_.size));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> AuditLog::AppendOne(storage::Batch& batch,
                                             v1::AuditEvent event,
                                             bool totals) {
  if (!loaded_) {
    return absl::FailedPreconditionError("audit log: Append before Load");
  }
  const uint64_t index = pending_.size;

  // Complete the event. Everything fallible happens before the first Put,
  // so that an error leaves the batch alone.
  for (const std::string* value :
       {&event.case_id(), &event.peer(), &event.state()}) {
    // The byte ends a value in the index keys; inside one it would make
    // that value's entries look like another's.
    if (value->find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          "audit log: a case id, peer or state holds a NUL byte");
    }
  }
  uint64_t previous_in_case = 0;
  if (!event.case_id().empty()) {
    CASELINK_ASSIGN_OR_RETURN(previous_in_case, LatestOfCase(event.case_id()));
  }
  int64_t micros = TimeUtil::TimestampToMicroseconds(event.at());
  if (micros < pending_.last_micros) {
    micros = pending_.last_micros;
    *event.mutable_at() = TimeUtil::MicrosecondsToTimestamp(micros);
  }
  event.set_index(index);
  event.set_node(node_code_);
  event.set_previous_in_case(previous_in_case);
  std::string bytes;
  if (!event.SerializeToString(&bytes)) {
    return absl::InternalError("audit log: cannot serialize an event");
  }

  // Hash the leaf and every subtree it completes: while bit `level` of the
  // old size is set, the new subtree closes a pair with the frontier's.
  CASELINK_ASSIGN_OR_RETURN(std::string hash, LeafHash(hash_, bytes));
  std::vector<std::string> completed = {hash};
  int level = 0;
  for (; ((index >> level) & 1) == 1; ++level) {
    CASELINK_ASSIGN_OR_RETURN(hash,
                              NodeHash(hash_, pending_.frontier[level], hash));
    completed.push_back(hash);
  }

  // Stage the leaf and its hashes.
  batch.Put(Family::kAudit, LeafKey(index), bytes);
  for (size_t k = 0; k < completed.size(); ++k) {
    AddToPack(batch, static_cast<int>(k), index >> k, completed[k]);
  }

  // Stage the index entries and the new size.
  const std::string suffix = Uint64BE(index);
  if (!event.case_id().empty()) {
    batch.Put(Family::kAudit,
              Cat(TextIndexPrefix(kCasePrefix, event.case_id()), suffix), "");
    if (totals) {
      batch.Put(Family::kAudit, Cat(kLastPrefix, event.case_id()), suffix);
    }
  }
  if (!event.state().empty()) {
    batch.Put(Family::kAudit,
              Cat(TextIndexPrefix(kStatePrefix, event.state()), suffix), "");
  }
  // Peer and kind, which every event has, get one entry per group.
  auto add_to_group_entry = [&](std::string prefix) {
    if (totals) {
      batch.Put(Family::kAudit, Cat(prefix, suffix), "");
    } else {
      group_runs_[std::move(prefix)].push_back(index);
    }
  };
  if (!event.peer().empty()) {
    add_to_group_entry(TextIndexPrefix(kPeerPrefix, event.peer()));
  }
  add_to_group_entry(KindIndexPrefix(event.kind()));
  // Times never go backwards, so the first event at each time is enough
  // to find where a time range starts; a group stamped with one time
  // costs one entry.
  if (micros > pending_.last_micros) {
    batch.Put(Family::kAudit, TimeIndexKey(micros, index), "");
  }
  // Move the writer's edge on: the completed subtree replaces the levels
  // it absorbed.
  for (int k = 0; k < level; ++k) pending_.frontier[k].clear();
  pending_.frontier[level] = std::move(hash);
  pending_.size = index + 1;
  pending_.last_micros = micros;
  if (!event.case_id().empty()) pending_last_[event.case_id()] = index + 1;
  if (totals) {
    PutOpenPacks(batch);
    batch.Put(Family::kAudit, kSizeKey, Uint64BE(index + 1));
  }
  return index;
}

void AuditLog::AddToPack(storage::Batch& batch, int level, uint64_t position,
                         const std::string& hash) {
  std::string& pack = pending_.open_packs[level];
  pack += hash;
  const uint64_t bit = uint64_t{1} << level;
  if (position % kPackHashes == kPackHashes - 1) {
    batch.Put(Family::kAudit, PackKey(level, position), pack);
    pack.clear();
    pending_.changed_packs &= ~bit;
  } else {
    pending_.changed_packs |= bit;
  }
}

void AuditLog::PutOpenPacks(storage::Batch& batch) {
  for (int level = 0; pending_.changed_packs != 0; ++level) {
    const uint64_t bit = uint64_t{1} << level;
    if ((pending_.changed_packs & bit) == 0) continue;
    const uint64_t count = pending_.size >> level;
    batch.Put(Family::kAudit, PackKey(level, count - 1),
              pending_.open_packs[level]);
    pending_.changed_packs &= ~bit;
  }
}

void AuditLog::PutGroupRuns(storage::Batch& batch) {
  for (auto& [prefix, indexes] : group_runs_) {
    std::string gaps;
    for (size_t i = 1; i < indexes.size(); ++i) {
      AppendVarint(&gaps, indexes[i] - indexes[i - 1]);
    }
    batch.Put(Family::kAudit, Cat(prefix, Uint64BE(indexes.back())), gaps);
  }
  group_runs_.clear();
}

void AuditLog::Committed() {
  committed_ = pending_;
  // Forgetting every case at once keeps the memory bounded at the cost of
  // one read per case when it is next appended to.
  if (recent_last_.size() + pending_last_.size() > kRecentCases) {
    recent_last_.clear();
  }
  for (auto& [case_id, next] : pending_last_) recent_last_[case_id] = next;
  pending_last_.clear();
  size_.store(committed_.size, std::memory_order_release);
}

void AuditLog::Discard() {
  pending_ = committed_;
  pending_last_.clear();
  group_runs_.clear();
}

absl::StatusOr<std::string> AuditLog::StoredHash(int level,
                                                 uint64_t position) const {
  // Below kCachedLevel a subtree is too small to be on many paths.
  const bool cacheable = level >= kCachedLevel;
  const uint64_t cache_key = (uint64_t{static_cast<uint8_t>(level)} << 56) |
                             (position & ((uint64_t{1} << 56) - 1));
  if (cacheable) {
    absl::ReaderMutexLock lock(&cache_mu_);
    if (auto found = cache_.find(cache_key); found != cache_.end()) {
      return found->second;
    }
  }

  CASELINK_ASSIGN_OR_RETURN(
      std::optional<std::string> pack,
      store_->Get(Family::kAudit, PackKey(level, position)));
  std::optional<std::string> value;
  const size_t offset = (position % kPackHashes) * kDigestSize;
  if (pack.has_value() && pack->size() % kDigestSize != 0) {
    return absl::DataLossError(Cat("audit log: the pack holding ",
                                   HashKeyName(level, position),
                                   " is not a list of hashes"));
  }
  if (pack.has_value() && pack->size() >= offset + kDigestSize) {
    value = pack->substr(offset, kDigestSize);
  } else {
    CASELINK_ASSIGN_OR_RETURN(
        value, store_->Get(Family::kAudit, HashKey(level, position)));
  }
  if (!value.has_value() || value->size() != kDigestSize) {
    return absl::DataLossError(Cat("audit log: ", HashKeyName(level, position),
                                   value ? " is not a hash" : " is missing"));
  }

  if (cacheable) {
    absl::MutexLock lock(&cache_mu_);
    if (cache_.size() < kMaxCachedHashes) cache_.emplace(cache_key, *value);
  }
  return *std::move(value);
}

// The hash of leaves [start, start + count), for a range the RFC 6962
// recursion reaches: start is a multiple of the smallest power of two
// >= count, so the range splits into aligned perfect subtrees, one per bit
// of count, whose hashes fold from the right.
absl::StatusOr<std::string> AuditLog::RangeHash(uint64_t start,
                                                uint64_t count) const {
  std::vector<std::string> parts;
  for (int level = 63; level >= 0; --level) {
    if (((count >> level) & 1) == 0) continue;
    CASELINK_ASSIGN_OR_RETURN(std::string part,
                              StoredHash(level, start >> level));
    parts.push_back(std::move(part));
    start += uint64_t{1} << level;
  }
  std::string hash = std::move(parts.back());
  for (size_t i = parts.size() - 1; i-- > 0;) {
    CASELINK_ASSIGN_OR_RETURN(hash, NodeHash(hash_, parts[i], hash));
  }
  return hash;
}

absl::Status AuditLog::CheckTreeSize(uint64_t tree_size) const {
  const uint64_t committed = size();
  if (tree_size > committed) {
    return absl::OutOfRangeError(Cat("audit log: tree size ", tree_size,
                                     " is beyond the log's ", committed));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> AuditLog::Root(uint64_t tree_size) const {
  CASELINK_RETURN_IF_ERROR(CheckTreeSize(tree_size));
  if (tree_size == 0) return Digest(hash_, "");
  return RangeHash(0, tree_size);
}

absl::StatusOr<std::vector<std::string>> AuditLog::InclusionPath(
    uint64_t index, uint64_t tree_size) const {
  CASELINK_RETURN_IF_ERROR(CheckTreeSize(tree_size));
  if (index >= tree_size) {
    return absl::InvalidArgumentError(
        Cat("audit log: leaf ", index, " is not in a tree of ", tree_size));
  }

  // Walk down from the root, taking at each split the sibling of the half
  // that holds the leaf; the path lists them from the leaf up.
  std::vector<std::string> path;
  uint64_t start = 0;
  uint64_t count = tree_size;
  while (count > 1) {
    const uint64_t half = std::bit_floor(count - 1);
    if (index - start < half) {
      CASELINK_ASSIGN_OR_RETURN(std::string sibling,
                                RangeHash(start + half, count - half));
      path.push_back(std::move(sibling));
      count = half;
    } else {
      CASELINK_ASSIGN_OR_RETURN(std::string sibling, RangeHash(start, half));
      path.push_back(std::move(sibling));
      start += half;
      count -= half;
    }
  }
  std::reverse(path.begin(), path.end());
  return path;
}

absl::StatusOr<std::vector<std::string>> AuditLog::ConsistencyPath(
    uint64_t first, uint64_t second) const {
  CASELINK_RETURN_IF_ERROR(CheckTreeSize(second));
  if (first == 0 || first > second) {
    return absl::InvalidArgumentError(Cat(
        "audit log: no consistency proof from size ", first, " to ", second));
  }

  // SUBPROOF of RFC 6962 section 2.1.2, unrolled: `whole` stays true while
  // the old tree is exactly the left edge of the current subtree, in which
  // case the verifier already holds its hash.
  std::vector<std::string> proof;
  uint64_t start = 0;
  uint64_t count = second;
  uint64_t old = first;
  bool whole = true;
  while (old != count) {
    const uint64_t half = std::bit_floor(count - 1);
    if (old <= half) {
      CASELINK_ASSIGN_OR_RETURN(std::string right,
                                RangeHash(start + half, count - half));
      proof.push_back(std::move(right));
      count = half;
    } else {
      CASELINK_ASSIGN_OR_RETURN(std::string left, RangeHash(start, half));
      proof.push_back(std::move(left));
      start += half;
      count -= half;
      old -= half;
      whole = false;
    }
  }
  if (!whole) {
    CASELINK_ASSIGN_OR_RETURN(std::string rest, RangeHash(start, count));
    proof.push_back(std::move(rest));
  }
  std::reverse(proof.begin(), proof.end());
  return proof;
}

absl::StatusOr<std::string> AuditLog::EventBytes(uint64_t index) const {
  const uint64_t committed = size();
  if (index >= committed) {
    return absl::NotFoundError(
        Cat("audit log: no event ", index, " in a log of ", committed));
  }
  CASELINK_ASSIGN_OR_RETURN(std::optional<std::string> bytes,
                            store_->Get(Family::kAudit, LeafKey(index)));
  if (!bytes.has_value()) {
    return absl::DataLossError(
        Cat("audit log: ", LeafKeyName(index), " is missing"));
  }
  return *std::move(bytes);
}

// The first index below `tree_size` whose event is at or after `time`, or
// tree_size if none. Times never decrease along the log, so this is where
// the time index's first key at or after `time` points.
absl::StatusOr<uint64_t> AuditLog::FirstAtOrAfter(absl::Time time,
                                                  uint64_t tree_size) const {
  storage::Cursor cursor = store_->NewCursor(Family::kAudit, kTimePrefix);
  std::string target(kTimePrefix);
  AppendUint64BE(&target, OrderedMicros(absl::ToUnixMicros(time)));
  cursor.Seek(target);
  if (!cursor.Valid()) {
    CASELINK_RETURN_IF_ERROR(cursor.status());
    return tree_size;
  }
  // Skip the time to reach the index at the end of the key.
  std::string_view key = cursor.key();
  if (key.size() != kTimePrefix.size() + 16) {
    return absl::DataLossError(
        Cat("audit log: malformed time index key of ", key.size(), " bytes"));
  }
  key.remove_prefix(kTimePrefix.size() + 8);
  const uint64_t index = *ReadUint64BE(&key);
  return std::min(index, tree_size);
}

absl::StatusOr<std::vector<uint64_t>> AuditLog::Find(
    const AuditFilter& filter, std::optional<uint64_t> after, uint64_t below,
    size_t limit) const {
  std::vector<uint64_t> found;
  const uint64_t tree_size = size();

  // The range of indexes to look in: the caller's bounds, narrowed by the
  // time range.
  if (after.has_value() && *after == std::numeric_limits<uint64_t>::max()) {
    return found;
  }
  uint64_t begin = after.has_value() ? *after + 1 : 0;
  uint64_t end = std::min(below, tree_size);
  if (filter.from.has_value()) {
    CASELINK_ASSIGN_OR_RETURN(uint64_t first,
                              FirstAtOrAfter(*filter.from, tree_size));
    begin = std::max(begin, first);
  }
  if (filter.to.has_value()) {
    CASELINK_ASSIGN_OR_RETURN(uint64_t first,
                              FirstAtOrAfter(*filter.to, tree_size));
    end = std::min(end, first);
  }

  // One forward walk per equality filter.
  std::vector<IndexWalk> walks;
  walks.reserve(4);
  if (!filter.case_id.empty()) {
    walks.emplace_back(*store_, TextIndexPrefix(kCasePrefix, filter.case_id));
  }
  if (!filter.peer.empty()) {
    walks.emplace_back(*store_, TextIndexPrefix(kPeerPrefix, filter.peer));
  }
  if (!filter.state.empty()) {
    walks.emplace_back(*store_, TextIndexPrefix(kStatePrefix, filter.state));
  }
  if (filter.kind != v1::AUDIT_EVENT_KIND_UNSPECIFIED) {
    walks.emplace_back(*store_, KindIndexPrefix(filter.kind));
  }

  // Without one, every index in the range matches.
  if (walks.empty()) {
    for (uint64_t i = begin; i < end && found.size() < limit; ++i) {
      found.push_back(i);
    }
    return found;
  }

  // Leapfrog: a candidate every walk holds is a match; a walk that holds
  // only a later index makes that the next candidate.
  uint64_t candidate = begin;
  while (candidate < end && found.size() < limit) {
    bool everywhere = true;
    for (IndexWalk& walk : walks) {
      CASELINK_ASSIGN_OR_RETURN(std::optional<uint64_t> next,
                                walk.NextAtLeast(candidate));
      if (!next.has_value()) return found;
      if (*next > candidate) {
        candidate = *next;
        everywhere = false;
        break;
      }
    }
    if (everywhere) found.push_back(candidate++);
  }
  return found;
}

}  // namespace caselink::server
