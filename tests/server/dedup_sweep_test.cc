// The sweep of expired duplicate-detection entries, on a real store.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "core/strings.h"
#include "gtest/gtest.h"
#include "server/committer.h"
#include "storage/store.h"
#include "tests/testing/network.h"

namespace caselink::server {
namespace {

using storage::Family;

constexpr uint64_t kNow = 5'000'000;

class DedupSweepTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    store_.reset();
    auto store = storage::Store::Open(dir_.path() + "/db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // Entries "<prefix><i>" for i < count, each expiring at `expiry`.
  void PutEntries(const std::string& prefix, int count, uint64_t expiry) {
    storage::Batch batch = store_->NewBatch();
    for (int i = 0; i < count; ++i) {
      batch.Put(Family::kDedup, Cat(prefix, i), storage::Uint64BE(expiry));
    }
    ASSERT_TRUE(store_->Commit(batch).ok());
  }

  uint64_t Count(const std::string& prefix) {
    absl::StatusOr<uint64_t> count =
        store_->CountPrefix(Family::kDedup, prefix);
    EXPECT_TRUE(count.ok()) << count.status();
    return count.value_or(0);
  }

  caselink::testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(DedupSweepTest, DeletesOnlyExpiredEntriesInBoundedCommits) {
  PutEntries("expired-", 10, kNow - 1);
  PutEntries("kept-", 5, kNow + 1);
  storage::Batch batch = store_->NewBatch();
  batch.Put(Family::kDedup, "unreadable", "x");
  ASSERT_TRUE(store_->Commit(batch).ok());

  // Ten expired entries with commits of at most three deletions.
  absl::StatusOr<uint64_t> deleted = SweepDuplicateEntries(
      *store_, kNow, [] { return true; }, /*batch_limit=*/3);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 10u);

  // The deletions are durable, and only the expired entries went.
  Reopen();
  EXPECT_EQ(Count("expired-"), 0u);
  EXPECT_EQ(Count("kept-"), 5u);
  auto unreadable = store_->Get(Family::kDedup, "unreadable");
  ASSERT_TRUE(unreadable.ok());
  EXPECT_EQ(unreadable->value_or(""), "x");

  deleted = SweepDuplicateEntries(*store_, kNow, [] { return true; });
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 0u);

  // Later, the rest have expired too.
  deleted = SweepDuplicateEntries(*store_, kNow + 2, [] { return true; });
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 5u);
  EXPECT_EQ(Count("kept-"), 0u);
}

TEST_F(DedupSweepTest, StopsBetweenEntriesWhenTold) {
  PutEntries("expired-", 10, kNow - 1);
  int asked = 0;
  absl::StatusOr<uint64_t> deleted = SweepDuplicateEntries(
      *store_, kNow, [&asked] { return ++asked < 4; }, /*batch_limit=*/3);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  // Four entries visited: three deleted in one full commit, the fourth in
  // the commit that ends the sweep.
  EXPECT_EQ(asked, 4);
  EXPECT_EQ(*deleted, 4u);
  EXPECT_EQ(Count("expired-"), 6u);
}

}  // namespace
}  // namespace caselink::server
