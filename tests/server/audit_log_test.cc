#include "server/audit_log.h"

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "core/crypto.h"
#include "core/merkle.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "storage/store.h"

// GCC 12 reports designated initializers that leave members to their
// defaults as missing initializers; the filters below rely on exactly that.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace caselink::server {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::TimeUtil;
using storage::Family;

constexpr char kNode[] = "110000000000";
const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

// A fresh directory for one test, removed with everything in it afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (fs::path(::testing::TempDir()) / "audit_log_test.XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

v1::AuditEvent Event(std::string case_id, std::string peer,
                     v1::AuditEventKind kind, std::string state,
                     absl::Time at) {
  v1::AuditEvent event;
  event.set_case_id(std::move(case_id));
  event.set_peer(std::move(peer));
  event.set_kind(kind);
  event.set_state(std::move(state));
  *event.mutable_at() =
      TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(at));
  return event;
}

v1::AuditEvent CaseEvent(std::string case_id, absl::Time at = kStart) {
  return Event(std::move(case_id), "120000000000",
               v1::AUDIT_EVENT_KIND_STATE_CHANGE, "accepted", at);
}

// A log over a real store in a temp dir, which can be closed and reopened.
class AuditLogTest : public ::testing::Test {
 protected:
  explicit AuditLogTest(HashAlgorithm hash = HashAlgorithm::kSha256)
      : hash_(hash) {
    Reopen();
  }

  void Reopen() {
    log_.reset();
    store_.reset();
    absl::StatusOr<std::unique_ptr<storage::Store>> store =
        storage::Store::Open(dir_.path() + "/db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    log_ = std::make_unique<AuditLog>(store_.get(), hash_, kNode);
    ASSERT_TRUE(log_->Load().ok());
  }

  // Appends `events` in one batch, commits it and tells the log.
  std::vector<uint64_t> AppendGroup(std::vector<v1::AuditEvent> events) {
    storage::Batch batch = store_->NewBatch();
    std::vector<uint64_t> indexes;
    for (v1::AuditEvent& event : events) {
      absl::StatusOr<uint64_t> index = log_->Append(batch, std::move(event));
      EXPECT_TRUE(index.ok()) << index.status();
      indexes.push_back(index.value_or(0));
    }
    absl::Status written = store_->Commit(batch);
    EXPECT_TRUE(written.ok()) << written;
    log_->Committed();
    return indexes;
  }

  // Appends `events` with one AppendAll, as the committer does a group.
  void AppendAllOf(std::vector<v1::AuditEvent> events) {
    storage::Batch batch = store_->NewBatch();
    absl::Status appended = log_->AppendAll(batch, std::move(events));
    ASSERT_TRUE(appended.ok()) << appended;
    absl::Status written = store_->Commit(batch);
    ASSERT_TRUE(written.ok()) << written;
    log_->Committed();
  }

  uint64_t AppendOne(v1::AuditEvent event) {
    return AppendGroup({std::move(event)}).at(0);
  }

  v1::AuditEvent Stored(uint64_t index) {
    absl::StatusOr<std::string> bytes = log_->EventBytes(index);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    v1::AuditEvent event;
    EXPECT_TRUE(event.ParseFromString(bytes.value_or("")));
    return event;
  }

  std::vector<std::string> AllLeaves() {
    std::vector<std::string> leaves;
    for (uint64_t i = 0; i < log_->size(); ++i) {
      leaves.push_back(log_->EventBytes(i).value_or("missing"));
    }
    return leaves;
  }

  std::string RootOrDie(uint64_t size) {
    absl::StatusOr<std::string> root = log_->Root(size);
    EXPECT_TRUE(root.ok()) << root.status();
    return root.value_or("");
  }

  // Whether the log proves that its tree of size n extends the one of size
  // m whose root was `old_root`.
  bool ExtendsTree(uint64_t m, uint64_t n, const std::string& old_root) {
    absl::StatusOr<std::vector<std::string>> proof =
        log_->ConsistencyPath(m, n);
    return proof.ok() &&
           VerifyConsistency(hash_, m, n, old_root, RootOrDie(n), *proof).ok();
  }

  void PutRaw(std::string_view key, std::string_view value) {
    storage::Batch batch = store_->NewBatch();
    batch.Put(Family::kAudit, key, value);
    ASSERT_TRUE(store_->Commit(batch).ok());
  }

  void DeleteRaw(std::string_view key) {
    storage::Batch batch = store_->NewBatch();
    batch.Delete(Family::kAudit, key);
    ASSERT_TRUE(store_->Commit(batch).ok());
  }

  const HashAlgorithm hash_;
  TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<AuditLog> log_;
};

std::vector<std::string_view> Prefix(const std::vector<std::string>& leaves,
                                     uint64_t n) {
  return std::vector<std::string_view>(leaves.begin(), leaves.begin() + n);
}

// ---------------------------------------------------------------------------
// The tree against the in-memory RFC 6962 code of core/merkle.h.

class AuditLogTreeTest : public AuditLogTest,
                         public ::testing::WithParamInterface<HashAlgorithm> {
 protected:
  AuditLogTreeTest() : AuditLogTest(GetParam()) {}
};

TEST_P(AuditLogTreeTest, EverySizeMatchesCoreMerkle) {
  // Groups of uneven sizes, so that commits fall on every kind of edge.
  constexpr uint64_t kLeaves = 70;
  const int group_sizes[] = {1, 2, 3, 5, 7, 4};
  uint64_t appended = 0;
  for (int g = 0; appended < kLeaves; ++g) {
    std::vector<v1::AuditEvent> group;
    for (int i = 0; i < group_sizes[g % 6] && appended < kLeaves; ++i) {
      group.push_back(CaseEvent(Cat("case-", appended % 9)));
      ++appended;
    }
    AppendGroup(std::move(group));
    ASSERT_EQ(log_->size(), appended);
  }
  const std::vector<std::string> leaves = AllLeaves();

  EXPECT_EQ(RootOrDie(0), RootOf(hash_, {}).value());
  for (uint64_t n = 1; n <= kLeaves; ++n) {
    SCOPED_TRACE(Cat("tree size ", n));
    const std::vector<std::string_view> tree = Prefix(leaves, n);
    const std::string root = RootOrDie(n);
    ASSERT_EQ(root, RootOf(hash_, tree).value());

    for (uint64_t i = 0; i < n; ++i) {
      absl::StatusOr<std::vector<std::string>> path = log_->InclusionPath(i, n);
      ASSERT_TRUE(path.ok()) << path.status();
      EXPECT_EQ(*path, AuditPath(hash_, tree, i).value()) << "leaf " << i;
      EXPECT_TRUE(VerifyInclusion(hash_, i, n,
                                  LeafHash(hash_, leaves[i]).value(), *path,
                                  root)
                      .ok())
          << "leaf " << i;
    }

    for (uint64_t m = 1; m <= n; ++m) {
      absl::StatusOr<std::vector<std::string>> proof =
          log_->ConsistencyPath(m, n);
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_EQ(*proof, ConsistencyProof(hash_, tree, m).value())
          << "from " << m;
      EXPECT_TRUE(
          VerifyConsistency(hash_, m, n, RootOrDie(m), root, *proof).ok())
          << "from " << m;
    }
  }
}

// Past 2^10 leaves the hashes near the root come from memory the second
// time; they must still be the right ones.
TEST_P(AuditLogTreeTest, LargeTreeMatchesCoreMerkleTwice) {
  constexpr uint64_t kLeaves = 3000;
  for (uint64_t appended = 0; appended < kLeaves; appended += 100) {
    std::vector<v1::AuditEvent> group;
    for (int i = 0; i < 100; ++i) group.push_back(CaseEvent("case-1"));
    AppendGroup(std::move(group));
  }
  const std::vector<std::string> leaves = AllLeaves();
  for (int round = 0; round < 2; ++round) {
    for (uint64_t n : {uint64_t{2048}, uint64_t{2999}, kLeaves}) {
      SCOPED_TRACE(Cat("round ", round, ", tree size ", n));
      const std::vector<std::string_view> tree = Prefix(leaves, n);
      EXPECT_EQ(RootOrDie(n), RootOf(hash_, tree).value());
      for (uint64_t i : {uint64_t{0}, uint64_t{1023}, uint64_t{2047}, n - 1}) {
        EXPECT_EQ(log_->InclusionPath(i, n).value(),
                  AuditPath(hash_, tree, i).value())
            << "leaf " << i;
      }
      EXPECT_EQ(log_->ConsistencyPath(1500, n).value(),
                ConsistencyProof(hash_, tree, 1500).value());
    }
  }
}

TEST_P(AuditLogTreeTest, RefusesSizesItCannotProve) {
  AppendGroup({CaseEvent("a"), CaseEvent("b"), CaseEvent("c")});
  EXPECT_EQ(log_->Root(4).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(log_->InclusionPath(0, 4).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(log_->InclusionPath(3, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->ConsistencyPath(0, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->ConsistencyPath(3, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->ConsistencyPath(2, 4).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(log_->EventBytes(3).status().code(), absl::StatusCode::kNotFound);
}

std::string HashName(const ::testing::TestParamInfo<HashAlgorithm>& hash) {
  return std::string(HashAlgorithmName(hash.param));
}

INSTANTIATE_TEST_SUITE_P(Hashes, AuditLogTreeTest,
                         ::testing::Values(HashAlgorithm::kSha256,
                                           HashAlgorithm::kSm3),
                         HashName);

// ---------------------------------------------------------------------------
// Commit, discard and restart.

TEST_F(AuditLogTest, FillsInIndexNodeAndLeafBytes) {
  v1::AuditEvent event = CaseEvent("case-1");
  event.set_index(99);
  event.set_node("someone else");
  EXPECT_EQ(AppendOne(event), 0u);
  const v1::AuditEvent stored = Stored(0);
  EXPECT_EQ(stored.index(), 0u);
  EXPECT_EQ(stored.node(), kNode);
  EXPECT_EQ(stored.case_id(), "case-1");
  EXPECT_EQ(RootOrDie(1), LeafHash(hash_, log_->EventBytes(0).value()).value());
}

TEST_F(AuditLogTest, AppendsInvisibleUntilCommitted) {
  AppendGroup({CaseEvent("a"), CaseEvent("a")});
  const std::string root = RootOrDie(2);

  storage::Batch batch = store_->NewBatch();
  ASSERT_TRUE(log_->Append(batch, CaseEvent("a")).ok());
  ASSERT_TRUE(store_->Commit(batch).ok());
  // Written, but not yet reported committed: readers still see two.
  EXPECT_EQ(log_->size(), 2u);
  EXPECT_EQ(log_->EventBytes(2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(log_->Find({.case_id = "a"}, std::nullopt, 100, 100).value(),
            (std::vector<uint64_t>{0, 1}));

  log_->Committed();
  EXPECT_EQ(log_->size(), 3u);
  EXPECT_EQ(log_->Find({.case_id = "a"}, std::nullopt, 100, 100).value(),
            (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_TRUE(VerifyConsistency(hash_, 2, 3, root, RootOrDie(3),
                                log_->ConsistencyPath(2, 3).value())
                  .ok());
}

TEST_F(AuditLogTest, DiscardForgetsAppendsAndReusesTheirIndexes) {
  AppendGroup({CaseEvent("a"), CaseEvent("b"), CaseEvent("c")});
  const std::string root = RootOrDie(3);
  const absl::StatusOr<uint64_t> keys = store_->CountPrefix(Family::kAudit, "");

  storage::Batch batch = store_->NewBatch();
  EXPECT_EQ(log_->Append(batch, CaseEvent("a")).value(), 3u);
  EXPECT_EQ(log_->Append(batch, CaseEvent("d")).value(), 4u);
  log_->Discard();
  batch.Clear();

  EXPECT_EQ(log_->size(), 3u);
  EXPECT_EQ(RootOrDie(3), root);
  EXPECT_EQ(log_->EventBytes(3).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->CountPrefix(Family::kAudit, "").value(), keys.value());

  // The next append takes index 3 and chains to case a's committed event,
  // not the discarded one.
  EXPECT_EQ(AppendOne(CaseEvent("a")), 3u);
  EXPECT_EQ(Stored(3).previous_in_case(), 1u);
  const std::vector<std::string> leaves = AllLeaves();
  EXPECT_EQ(RootOrDie(4), RootOf(hash_, Prefix(leaves, 4)).value());
  EXPECT_TRUE(VerifyConsistency(hash_, 3, 4, root, RootOrDie(4),
                                log_->ConsistencyPath(3, 4).value())
                  .ok());
}

TEST_F(AuditLogTest, ReopenContinuesTheSameTree) {
  for (int i = 0; i < 11; ++i) AppendOne(CaseEvent(Cat("case-", i % 3)));
  const std::string root = RootOrDie(11);

  Reopen();
  EXPECT_EQ(log_->size(), 11u);
  EXPECT_EQ(RootOrDie(11), root);

  // Case-1 had events 1, 4, 7 and 10 before the restart.
  EXPECT_EQ(AppendOne(CaseEvent("case-1")), 11u);
  EXPECT_EQ(Stored(11).previous_in_case(), 11u);
  for (int i = 0; i < 6; ++i) AppendOne(CaseEvent("case-9"));

  const std::vector<std::string> leaves = AllLeaves();
  ASSERT_EQ(leaves.size(), 18u);
  EXPECT_EQ(RootOrDie(18), RootOf(hash_, Prefix(leaves, 18)).value());
  EXPECT_TRUE(VerifyConsistency(hash_, 11, 18, root, RootOrDie(18),
                                log_->ConsistencyPath(11, 18).value())
                  .ok());
}

// Every root and every inclusion path of trees up to the log's size agree
// with the hashes computed from the leaves alone.
void ExpectTreesMatchLeaves(AuditLog& log, HashAlgorithm hash,
                            const std::vector<std::string>& leaves) {
  for (uint64_t n = 1; n <= leaves.size(); ++n) {
    SCOPED_TRACE(Cat("tree size ", n));
    const std::vector<std::string_view> tree = Prefix(leaves, n);
    absl::StatusOr<std::string> root = log.Root(n);
    ASSERT_TRUE(root.ok()) << root.status();
    ASSERT_EQ(*root, RootOf(hash, tree).value());
    for (uint64_t i = 0; i < n; i += 7) {
      EXPECT_EQ(log.InclusionPath(i, n).value(),
                AuditPath(hash, tree, i).value())
          << "leaf " << i;
    }
  }
}

TEST_F(AuditLogTest, HashesAreKeptSixteenToAKey) {
  std::vector<v1::AuditEvent> first;
  for (int i = 0; i < 40; ++i) first.push_back(CaseEvent(Cat("case-", i)));
  storage::Batch batch = store_->NewBatch();
  ASSERT_TRUE(log_->AppendAll(batch, std::move(first)).ok());
  ASSERT_TRUE(store_->Commit(batch).ok());
  log_->Committed();

  // 40 leaf hashes in packs of 16, 16 and 8; 20 at level 1 in 16 and 4;
  // then one pack each for the 10, 5, 2 and 1 hashes of levels 2 to 5.
  EXPECT_EQ(store_->CountPrefix(Family::kAudit, "H/").value(), 9u);
  EXPECT_EQ(store_->CountPrefix(Family::kAudit, "h/").value(), 0u);
  absl::StatusOr<std::optional<std::string>> last =
      store_->Get(Family::kAudit, Cat("H/", '\0', storage::Uint64BE(2)));
  ASSERT_TRUE(last.ok() && last->has_value());
  EXPECT_EQ((*last)->size(), 8 * kDigestSize);
  ExpectTreesMatchLeaves(*log_, hash_, AllLeaves());

  // A second group fills the open packs and starts new ones.
  std::vector<v1::AuditEvent> second;
  for (int i = 0; i < 30; ++i) second.push_back(CaseEvent(Cat("case-", i)));
  batch = store_->NewBatch();
  ASSERT_TRUE(log_->AppendAll(batch, std::move(second)).ok());
  ASSERT_TRUE(store_->Commit(batch).ok());
  log_->Committed();
  const std::string root = RootOrDie(70);
  ExpectTreesMatchLeaves(*log_, hash_, AllLeaves());

  // After a restart the open packs are read back and extended.
  Reopen();
  EXPECT_EQ(RootOrDie(70), root);
  for (int i = 0; i < 11; ++i) AppendOne(CaseEvent("case-1"));
  ExpectTreesMatchLeaves(*log_, hash_, AllLeaves());
  EXPECT_TRUE(ExtendsTree(70, 81, root));
}

TEST_F(AuditLogTest, ReadsAndExtendsALogStoredOneHashToAKey) {
  for (int i = 0; i < 37; ++i) AppendOne(CaseEvent(Cat("case-", i % 5)));
  const std::string root = RootOrDie(37);

  // Rewrite the store as logs written before packs keep it: one key per
  // hash.
  std::vector<std::pair<std::string, std::string>> packs;
  ASSERT_TRUE(
      store_
          ->Scan(Family::kAudit, "H/",
                 [&packs](std::string_view key, std::string_view value) {
                   packs.emplace_back(key, value);
                   return true;
                 })
          .ok());
  ASSERT_FALSE(packs.empty());
  for (const auto& [key, value] : packs) {
    const char level = key[2];
    std::string_view rest = std::string_view(key).substr(3);
    const uint64_t pack = storage::ReadUint64BE(&rest).value();
    for (size_t i = 0; i * kDigestSize < value.size(); ++i) {
      PutRaw(Cat("h/", std::string(1, level), storage::Uint64BE(pack * 16 + i)),
             value.substr(i * kDigestSize, kDigestSize));
    }
    DeleteRaw(key);
  }
  ASSERT_EQ(store_->CountPrefix(Family::kAudit, "H/").value(), 0u);

  Reopen();
  EXPECT_EQ(RootOrDie(37), root);
  for (int i = 0; i < 30; ++i) AppendOne(CaseEvent(Cat("case-", i % 5)));
  ExpectTreesMatchLeaves(*log_, hash_, AllLeaves());
  EXPECT_TRUE(ExtendsTree(37, 67, root));
}

TEST_F(AuditLogTest, LoadNamesTheKeyOfADamagedStore) {
  for (int i = 0; i < 6; ++i) AppendOne(CaseEvent("a"));

  // Size 6 = 4 + 2: the frontier is h/2/0 and h/1/2, which is the third
  // hash in the first pack of level 1.
  const std::string frontier_key = Cat("H/", '\x01', storage::Uint64BE(0));
  absl::StatusOr<std::optional<std::string>> kept =
      store_->Get(Family::kAudit, frontier_key);
  ASSERT_TRUE(kept.ok() && kept->has_value());
  DeleteRaw(frontier_key);
  AuditLog damaged(store_.get(), hash_, kNode);
  absl::Status loaded = damaged.Load();
  EXPECT_EQ(loaded.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(loaded.message().find("h/1/2"), std::string::npos) << loaded;
  PutRaw(frontier_key, **kept);

  PutRaw(Cat("l/", storage::Uint64BE(6)), "stray");
  loaded = AuditLog(store_.get(), hash_, kNode).Load();
  EXPECT_EQ(loaded.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(loaded.message().find("l/6"), std::string::npos) << loaded;
  DeleteRaw(Cat("l/", storage::Uint64BE(6)));

  PutRaw(Cat("l/", storage::Uint64BE(5)), "altered");
  loaded = AuditLog(store_.get(), hash_, kNode).Load();
  EXPECT_EQ(loaded.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(loaded.message().find("l/5"), std::string::npos) << loaded;

  PutRaw("m/size", "short");
  loaded = AuditLog(store_.get(), hash_, kNode).Load();
  EXPECT_EQ(loaded.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(loaded.message().find("m/size"), std::string::npos) << loaded;
}

TEST_F(AuditLogTest, AppendBeforeLoadIsRefused) {
  AuditLog fresh(store_.get(), hash_, kNode);
  storage::Batch batch = store_->NewBatch();
  EXPECT_EQ(fresh.Append(batch, CaseEvent("a")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(batch.empty());
}

// ---------------------------------------------------------------------------
// Cases, times and queries.

TEST_F(AuditLogTest, RefusesANulByteInAnIndexedValue) {
  AppendOne(CaseEvent("a"));
  storage::Batch batch = store_->NewBatch();
  EXPECT_EQ(
      log_->Append(batch, CaseEvent(std::string("a\0b", 3))).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(log_->Append(batch, CaseEvent("b")).value(), 1u);
}

TEST_F(AuditLogTest, PreviousInCaseChainsEachCase) {
  AppendGroup({CaseEvent("a"), CaseEvent("b"), CaseEvent("a")});
  AppendGroup({CaseEvent(""), CaseEvent("b"), CaseEvent("a")});
  EXPECT_EQ(Stored(0).previous_in_case(), 0u);
  EXPECT_EQ(Stored(1).previous_in_case(), 0u);
  EXPECT_EQ(Stored(2).previous_in_case(), 1u);  // after event 0
  EXPECT_EQ(Stored(3).previous_in_case(), 0u);  // no case
  EXPECT_EQ(Stored(4).previous_in_case(), 2u);  // after event 1
  EXPECT_EQ(Stored(5).previous_in_case(), 3u);  // after event 2
}

TEST_F(AuditLogTest, GroupChainsCasesLoggedBeforeARestart) {
  AppendAllOf({CaseEvent("a"), CaseEvent("b"), CaseEvent("a")});
  // After a restart nothing of the cases is in memory: the group reads
  // where each one's chain ends.
  Reopen();
  AppendAllOf({CaseEvent("b"), CaseEvent("c"), CaseEvent("a"), CaseEvent(""),
               CaseEvent("b")});
  AppendAllOf({CaseEvent("c"), CaseEvent("a")});
  const uint64_t expected[] = {0, 0, 1, 2, 0, 3, 0, 4, 5, 6};
  for (uint64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(Stored(i).previous_in_case(), expected[i]) << "event " << i;
  }
  EXPECT_EQ(log_->Find({.case_id = "a"}, std::nullopt, 100, 100).value(),
            (std::vector<uint64_t>{0, 2, 5, 9}));
}

TEST_F(AuditLogTest, TimesNeverGoBackwards) {
  AppendOne(CaseEvent("a", kStart + absl::Seconds(10)));
  AppendOne(CaseEvent("a", kStart));  // the clock stepped back
  AppendOne(CaseEvent("a", kStart + absl::Seconds(20)));
  EXPECT_EQ(Stored(1).at().seconds(), absl::ToUnixSeconds(kStart) + 10);
  EXPECT_EQ(Stored(2).at().seconds(), absl::ToUnixSeconds(kStart) + 20);
  EXPECT_TRUE(log_->Find({.from = kStart, .to = kStart + absl::Seconds(10)},
                         std::nullopt, 100, 100)
                  ->empty());
  EXPECT_EQ(log_->Find({.from = kStart + absl::Seconds(10),
                        .to = kStart + absl::Seconds(11)},
                       std::nullopt, 100, 100)
                .value(),
            (std::vector<uint64_t>{0, 1}));
}

TEST_F(AuditLogTest, FindsTimeRangesOfGroupsStampedOnce) {
  const absl::Time later = kStart + absl::Seconds(5);
  AppendGroup(
      {CaseEvent("a", kStart), CaseEvent("b", kStart), CaseEvent("a", kStart)});
  AppendGroup({CaseEvent("a", later), CaseEvent("b", later)});
  EXPECT_EQ(
      log_->Find({.from = kStart + absl::Seconds(1)}, std::nullopt, 100, 100)
          .value(),
      (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(
      log_->Find({.case_id = "a", .to = later}, std::nullopt, 100, 100).value(),
      (std::vector<uint64_t>{0, 2}));
  EXPECT_EQ(log_->Find({.from = kStart, .to = later}, 0, 100, 1).value(),
            (std::vector<uint64_t>{1}));
}

class AuditLogFindTest : public AuditLogTest {
 protected:
  // 60 events, a second apart, whose fields cycle with different periods
  // so that every combination of filters has a few matches. Groups of 8
  // are appended alternately with AppendAll, which lists a group's events
  // of one peer or kind in one index entry, and one Append at a time.
  AuditLogFindTest() {
    const v1::AuditEventKind kinds[] = {v1::AUDIT_EVENT_KIND_SUBMITTED,
                                        v1::AUDIT_EVENT_KIND_ACKNOWLEDGED,
                                        v1::AUDIT_EVENT_KIND_STATE_CHANGE};
    const char* states[] = {"", "accepted", "declined", "accepted", ""};
    std::vector<v1::AuditEvent> group;
    for (int i = 0; i < 60; ++i) {
      group.push_back(Event(Cat("case-", i % 4), Cat("peer-", i % 3),
                            kinds[i % 3 == 0 ? 0 : i % 2 + 1], states[i % 5],
                            kStart + absl::Seconds(i)));
      if (group.size() == 8) {
        if (i % 16 == 7) {
          AppendAllOf(std::exchange(group, {}));
        } else {
          AppendGroup(std::exchange(group, {}));
        }
      }
    }
    AppendAllOf(std::move(group));
    for (uint64_t i = 0; i < log_->size(); ++i) events_.push_back(Stored(i));
  }

  // What Find should return, by brute force.
  std::vector<uint64_t> Expected(const AuditFilter& filter) {
    std::vector<uint64_t> indexes;
    for (const v1::AuditEvent& event : events_) {
      const absl::Time at =
          absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(event.at()));
      if ((!filter.case_id.empty() && event.case_id() != filter.case_id) ||
          (!filter.peer.empty() && event.peer() != filter.peer) ||
          (!filter.state.empty() && event.state() != filter.state) ||
          (filter.kind != v1::AUDIT_EVENT_KIND_UNSPECIFIED &&
           event.kind() != filter.kind) ||
          (filter.from && at < *filter.from) ||
          (filter.to && at >= *filter.to)) {
        continue;
      }
      indexes.push_back(event.index());
    }
    return indexes;
  }

  std::vector<v1::AuditEvent> events_;
};

TEST_F(AuditLogFindTest, EachFilterAndCombinations) {
  const absl::Time t10 = kStart + absl::Seconds(10);
  const absl::Time t45 = kStart + absl::Seconds(45);
  const std::vector<std::pair<std::string, AuditFilter>> cases = {
      {"everything", {}},
      {"case", {.case_id = "case-1"}},
      {"peer", {.peer = "peer-2"}},
      {"state", {.state = "accepted"}},
      {"kind", {.kind = v1::AUDIT_EVENT_KIND_ACKNOWLEDGED}},
      {"from", {.from = t45}},
      {"to", {.to = t10}},
      {"from and to", {.from = t10, .to = t45}},
      {"case and peer", {.case_id = "case-2", .peer = "peer-1"}},
      {"case and state", {.case_id = "case-3", .state = "declined"}},
      {"peer and kind",
       {.peer = "peer-0", .kind = v1::AUDIT_EVENT_KIND_SUBMITTED}},
      {"all equalities",
       {.case_id = "case-0",
        .peer = "peer-1",
        .state = "accepted",
        .kind = v1::AUDIT_EVENT_KIND_ACKNOWLEDGED}},
      {"case in a time range", {.case_id = "case-1", .from = t10, .to = t45}},
      {"kind from a time",
       {.kind = v1::AUDIT_EVENT_KIND_STATE_CHANGE, .from = t45}},
      {"unknown case", {.case_id = "case-"}},
      {"peer and kind that never meet",
       {.peer = "peer-0", .kind = v1::AUDIT_EVENT_KIND_ACKNOWLEDGED}},
      {"empty time range", {.from = t45, .to = t10}},
  };
  for (const auto& [name, filter] : cases) {
    SCOPED_TRACE(name);
    absl::StatusOr<std::vector<uint64_t>> found =
        log_->Find(filter, std::nullopt, log_->size(), 1000);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(*found, Expected(filter));
  }
  // The table is only worth something if most rows find something.
  EXPECT_FALSE(Expected(cases[11].second).empty());
  EXPECT_TRUE(Expected(cases[15].second).empty());
}

TEST_F(AuditLogFindTest, PagesWithAfterAndLimit) {
  const std::vector<AuditFilter> filters = {
      {},
      {.case_id = "case-2"},
      {.peer = "peer-1", .state = "accepted"},
      {.from = kStart + absl::Seconds(7), .to = kStart + absl::Seconds(50)}};
  for (const AuditFilter& filter : filters) {
    std::vector<uint64_t> all;
    std::optional<uint64_t> after;
    for (int page = 0; page < 100; ++page) {
      std::vector<uint64_t> found =
          log_->Find(filter, after, log_->size(), 4).value();
      EXPECT_LE(found.size(), 4u);
      if (found.empty()) break;
      all.insert(all.end(), found.begin(), found.end());
      after = found.back();
    }
    EXPECT_EQ(all, Expected(filter));
  }
}

TEST_F(AuditLogFindTest, BelowBoundsTheAnswer) {
  std::vector<uint64_t> expected;
  for (uint64_t i : Expected({.case_id = "case-3"})) {
    if (i < 30) expected.push_back(i);
  }
  EXPECT_EQ(log_->Find({.case_id = "case-3"}, std::nullopt, 30, 100).value(),
            expected);
  EXPECT_TRUE(log_->Find({}, 59, 1000, 10).value().empty());
  EXPECT_TRUE(log_->Find({}, std::nullopt, 1000, 0).value().empty());
}

TEST_F(AuditLogTest, GroupListsEachPeerAndKindInOneEntry) {
  // Two singles, then a group of 10 with two peers and two kinds, then
  // another single: entries of one value are written both ways.
  AppendOne(Event("", "peer-a", v1::AUDIT_EVENT_KIND_SUBMITTED, "", kStart));
  AppendOne(Event("", "peer-b", v1::AUDIT_EVENT_KIND_RECEIPT, "", kStart));
  std::vector<v1::AuditEvent> group;
  for (int i = 0; i < 10; ++i) {
    group.push_back(Event(Cat("case-", i), i < 7 ? "peer-a" : "peer-b",
                          i % 2 == 0 ? v1::AUDIT_EVENT_KIND_SUBMITTED
                                     : v1::AUDIT_EVENT_KIND_RECEIPT,
                          "", kStart));
  }
  AppendAllOf(std::move(group));
  AppendOne(Event("", "peer-a", v1::AUDIT_EVENT_KIND_RECEIPT, "", kStart));

  // One entry per single and one per value in the group; case entries stay
  // one per event.
  EXPECT_EQ(store_->CountPrefix(Family::kAudit, "x/p/").value(), 5u);
  EXPECT_EQ(store_->CountPrefix(Family::kAudit, "x/k/").value(), 5u);
  EXPECT_EQ(store_->CountPrefix(Family::kAudit, "x/c/").value(), 10u);
  absl::StatusOr<std::optional<std::string>> entry = store_->Get(
      Family::kAudit,
      Cat("x/p/peer-a", std::string(1, '\0'), storage::Uint64BE(8)));
  ASSERT_TRUE(entry.ok() && entry->has_value());
  // Events 2 to 8, one apart.
  EXPECT_EQ(**entry, std::string(6, '\1'));

  EXPECT_EQ(log_->Find({.peer = "peer-a"}, std::nullopt, 100, 100).value(),
            (std::vector<uint64_t>{0, 2, 3, 4, 5, 6, 7, 8, 12}));
  EXPECT_EQ(log_->Find({.peer = "peer-b"}, std::nullopt, 100, 100).value(),
            (std::vector<uint64_t>{1, 9, 10, 11}));
  EXPECT_EQ(
      log_->Find({.kind = v1::AUDIT_EVENT_KIND_RECEIPT}, std::nullopt, 100, 100)
          .value(),
      (std::vector<uint64_t>{1, 3, 5, 7, 9, 11, 12}));
  EXPECT_EQ(log_->Find({.peer = "peer-a", .kind = v1::AUDIT_EVENT_KIND_RECEIPT},
                       std::nullopt, 100, 100)
                .value(),
            (std::vector<uint64_t>{3, 5, 7, 12}));
  // Starting, pausing and stopping inside an entry.
  EXPECT_EQ(log_->Find({.peer = "peer-a"}, 4, 100, 2).value(),
            (std::vector<uint64_t>{5, 6}));
  EXPECT_EQ(log_->Find({.peer = "peer-a"}, 6, 8, 100).value(),
            (std::vector<uint64_t>{7}));
  EXPECT_EQ(
      log_->Find({.kind = v1::AUDIT_EVENT_KIND_SUBMITTED}, 9, 100, 100).value(),
      (std::vector<uint64_t>{10}));
}

TEST_F(AuditLogTest, FindNamesADamagedIndexEntry) {
  std::vector<v1::AuditEvent> group;
  for (int i = 0; i < 4; ++i) {
    group.push_back(
        Event("", "peer-a", v1::AUDIT_EVENT_KIND_SUBMITTED, "", kStart));
  }
  AppendAllOf(std::move(group));
  const std::string key =
      Cat("x/p/peer-a", std::string(1, '\0'), storage::Uint64BE(3));
  ASSERT_TRUE(store_->Get(Family::kAudit, key).value().has_value());

  // Gaps that reach below index 0, a zero gap, a varint cut short and one
  // too long for 64 bits.
  for (const std::string& damaged :
       {std::string("\1\1\2"), std::string("\1\0\1", 3), std::string("\x81"),
        std::string(10, '\xff') + '\1'}) {
    SCOPED_TRACE(absl::CEscape(damaged));
    PutRaw(key, damaged);
    absl::StatusOr<std::vector<uint64_t>> found =
        log_->Find({.peer = "peer-a"}, std::nullopt, 100, 100);
    EXPECT_EQ(found.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(found.status().message().find("index x/p/ at index 3"),
              std::string_view::npos)
        << found.status();
  }
  // The kind entry of the same events is intact.
  EXPECT_EQ(log_->Find({.kind = v1::AUDIT_EVENT_KIND_SUBMITTED}, std::nullopt,
                       100, 100)
                .value(),
            (std::vector<uint64_t>{0, 1, 2, 3}));
}

// ---------------------------------------------------------------------------
// Tampering.

TEST_F(AuditLogTest, AlteredLeafNoLongerVerifies) {
  for (int i = 0; i < 20; ++i) AppendOne(CaseEvent(Cat("case-", i % 5)));
  const std::string root = RootOrDie(20);
  const std::vector<std::string> path = log_->InclusionPath(7, 20).value();

  // Rewrite event 7 behind the log's back, as someone with the database
  // files could.
  v1::AuditEvent altered = Stored(7);
  altered.set_state("declined");
  PutRaw(Cat("l/", storage::Uint64BE(7)), altered.SerializeAsString());

  const std::string bytes = log_->EventBytes(7).value();
  EXPECT_EQ(bytes, altered.SerializeAsString());
  // Proofs come from the stored hashes, so they stay what they were ...
  EXPECT_EQ(log_->InclusionPath(7, 20).value(), path);
  EXPECT_EQ(RootOrDie(20), root);
  // ... and the altered bytes do not lead to the signed root.
  EXPECT_EQ(
      VerifyInclusion(hash_, 7, 20, LeafHash(hash_, bytes).value(), path, root)
          .code(),
      absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace caselink::server
