#include "storage/store.h"

#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/table_properties.h"

namespace caselink::storage {
namespace {

namespace fs = std::filesystem;

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

// A fresh directory for one test, removed with everything in it afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (fs::path(::testing::TempDir()) / "store_test.XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr) << "mkdtemp " << pattern;
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }

  std::string Sub(const std::string& name) const {
    return (fs::path(path_) / name).string();
  }

 private:
  std::string path_;
};

std::unique_ptr<Store> OpenOrDie(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(store).value() : nullptr;
}

std::vector<std::string> ListFamilies(const std::string& dir) {
  std::vector<std::string> names;
  rocksdb::Status s =
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::sort(names.begin(), names.end());
  return names;
}

// Opens `dir` with raw RocksDB, all existing families included, read-only
// unless `write` is given. Returns the DB and its handles.
struct RawDb {
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;

  ~RawDb() {
    for (auto* handle : handles) {
      EXPECT_TRUE(db->DestroyColumnFamilyHandle(handle).ok());
    }
    if (db != nullptr) {
      EXPECT_TRUE(db->Close().ok());
    }
    delete db;
  }

  rocksdb::ColumnFamilyHandle* Family(const std::string& name) const {
    for (auto* handle : handles) {
      if (handle->GetName() == name) return handle;
    }
    ADD_FAILURE() << "no column family " << name;
    return nullptr;
  }
};

std::unique_ptr<RawDb> OpenRaw(const std::string& dir, bool writable) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : ListFamilies(dir)) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  auto raw = std::make_unique<RawDb>();
  rocksdb::DBOptions options;
  rocksdb::Status s =
      writable ? rocksdb::DB::Open(options, dir, descriptors, &raw->handles,
                                   &raw->db)
               : rocksdb::DB::OpenForReadOnly(options, dir, descriptors,
                                              &raw->handles, &raw->db);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return raw;
}

std::string RawMetaValue(const std::string& dir) {
  std::unique_ptr<RawDb> raw = OpenRaw(dir, /*writable=*/false);
  std::string value;
  rocksdb::Status s = raw->db->Get(rocksdb::ReadOptions(), raw->Family("meta"),
                                   std::string(kSchemaVersionKey), &value);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return value;
}

// Every file in `dir` with its size and modification time, to tell whether
// anything in it changed.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    struct stat st;
    EXPECT_EQ(::stat(entry.path().c_str(), &st), 0);
    files[entry.path().filename().string()] = absl::StrCat(
        st.st_size, " ", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
  }
  return files;
}

// The names of the blob files in `dir`, oldest first.
std::vector<std::string> BlobFileNames(const std::string& dir) {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".blob") {
      names.push_back(entry.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The number of blob files in `dir`.
int BlobFiles(const std::string& dir) {
  return static_cast<int>(BlobFileNames(dir).size());
}

std::string Key(uint64_t value) {
  std::string key = "q/";
  AppendUint64BE(&key, value);
  return key;
}

// Runs first, before any RocksDB background thread exists in this process,
// because the child it forks opens a store itself.
TEST(StoreTest, OpenLockedByAnotherProcessFails) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  int ready[2];
  int release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);

  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child holds the store open until the parent closes `release`, and
    // leaves without running any destructor of the parent's state.
    ::close(ready[0]);
    ::close(release[1]);
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir);
    char byte = store.ok() ? 'y' : 'n';
    if (::write(ready[1], &byte, 1) != 1) ::_exit(2);
    char ignored;
    while (::read(release[0], &ignored, 1) > 0) {
    }
    ::_exit(store.ok() ? 0 : 1);
  }
  ::close(ready[1]);
  ::close(release[0]);

  struct pollfd wait_ready = {ready[0], POLLIN, 0};
  ASSERT_EQ(::poll(&wait_ready, 1, 30'000), 1) << "child never opened";
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  EXPECT_EQ(byte, 'y');

  absl::StatusOr<std::unique_ptr<Store>> second = Store::Open(dir);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("data directory ", dir,
                                     " is locked by another process")));
  EXPECT_THAT(second.status().message(),
              HasSubstr("is another caselinkd running?"));

  ::close(release[1]);
  ::close(ready[0]);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);

  // Once the other process is gone the directory opens again.
  EXPECT_NE(OpenOrDie(dir), nullptr);
}

TEST(StoreTest, CreatesAllColumnFamiliesAndSchemaVersion) {
  TempDir tmp;
  const std::string dir = tmp.Sub("var/lib/node");
  {
    std::unique_ptr<Store> store = OpenOrDie(dir);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->dir(), dir);
    EXPECT_THAT(store->Get(Family::kMeta, kSchemaVersionKey),
                absl::StatusOr<std::optional<std::string>>("1"));
  }

  struct stat st;
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_THAT(ListFamilies(dir),
              ElementsAre("audit", "cases", "dedup", "default", "inbox",
                          "messages", "meta", "outbox"));
  EXPECT_EQ(RawMetaValue(dir), absl::StrCat(kSchemaVersion));

  EXPECT_EQ(FamilyName(Family::kMessages), "messages");
  EXPECT_EQ(FamilyName(Family::kOutbox), "outbox");
  EXPECT_EQ(FamilyName(Family::kDedup), "dedup");
  EXPECT_EQ(FamilyName(Family::kMeta), "meta");

  // Reopening finds the version and keeps it.
  EXPECT_NE(OpenOrDie(dir), nullptr);
  EXPECT_EQ(RawMetaValue(dir), "1");
}

TEST(StoreTest, BatchIsAtomicAndSurvivesReopen) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  {
    std::unique_ptr<Store> store = OpenOrDie(dir);
    ASSERT_NE(store, nullptr);
    Batch setup = store->NewBatch();
    setup.Put(Family::kMessages, "m1", "old envelope");
    ASSERT_TRUE(store->Commit(setup).ok());

    Batch batch = store->NewBatch();
    batch.Put(Family::kMessages, "m2", "envelope");
    batch.Put(Family::kOutbox, "outbox/350200000000/m2", "m2");
    batch.Put(Family::kCases, "case-7", "referred");
    batch.Delete(Family::kMessages, "m1");
    EXPECT_EQ(batch.size(), 4u);
    EXPECT_GT(batch.ByteSize(), 0u);

    // Nothing shows before the commit.
    EXPECT_THAT(store->Get(Family::kMessages, "m2"),
                absl::StatusOr<std::optional<std::string>>(std::nullopt));
    EXPECT_THAT(store->Get(Family::kMessages, "m1"),
                absl::StatusOr<std::optional<std::string>>("old envelope"));

    ASSERT_TRUE(store->Commit(batch).ok());
    EXPECT_TRUE(batch.empty());
    EXPECT_TRUE(store->Commit(batch).ok());  // An empty batch is fine.
  }

  std::unique_ptr<Store> store = OpenOrDie(dir);
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->Get(Family::kMessages, "m2"),
              absl::StatusOr<std::optional<std::string>>("envelope"));
  EXPECT_THAT(store->Get(Family::kOutbox, "outbox/350200000000/m2"),
              absl::StatusOr<std::optional<std::string>>("m2"));
  EXPECT_THAT(store->Get(Family::kCases, "case-7"),
              absl::StatusOr<std::optional<std::string>>("referred"));
  EXPECT_THAT(store->Get(Family::kMessages, "m1"),
              absl::StatusOr<std::optional<std::string>>(std::nullopt));
  // The same key in another family is another key.
  EXPECT_THAT(store->Get(Family::kInbox, "m2"),
              absl::StatusOr<std::optional<std::string>>(std::nullopt));
}

TEST(StoreTest, GetAllReadsManyKeysInTheirOrder) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  std::unique_ptr<Store> store = OpenOrDie(dir);
  ASSERT_NE(store, nullptr);
  // One value in a table file and its blob file, one overwritten in the
  // memtable, one deleted, one in another family.
  Batch batch = store->NewBatch();
  batch.Put(Family::kMessages, "flushed", std::string(4096, 'f'));
  batch.Put(Family::kMessages, "deleted", "gone soon");
  batch.Put(Family::kMessages, "changed", "first");
  ASSERT_TRUE(store->Commit(batch).ok());
  ASSERT_TRUE(store->Flush().ok());
  batch.Put(Family::kMessages, "changed", "second");
  batch.Delete(Family::kMessages, "deleted");
  batch.Put(Family::kDedup, "elsewhere", "x");
  ASSERT_TRUE(store->Commit(batch).ok());

  using Values = std::vector<std::optional<std::string>>;
  EXPECT_THAT(
      store->GetAll(Family::kMessages, {"changed", "elsewhere", "flushed",
                                        "deleted", "changed", "never"}),
      absl::StatusOr<Values>(Values{"second", std::nullopt,
                                    std::string(4096, 'f'), std::nullopt,
                                    "second", std::nullopt}));
  EXPECT_THAT(store->GetAll(Family::kDedup, {"elsewhere"}),
              absl::StatusOr<Values>(Values{"x"}));
  EXPECT_THAT(store->GetAll(Family::kMessages, {}),
              absl::StatusOr<Values>(Values{}));
}

// A crash while a batch is being written leaves a torn record at the end of
// the log; recovery must then drop the whole batch, not part of it.
TEST(StoreTest, TornBatchIsDroppedWhole) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  {
    std::unique_ptr<Store> store = OpenOrDie(dir);
    ASSERT_NE(store, nullptr);
    Batch first = store->NewBatch();
    first.Put(Family::kMessages, "m1", "envelope one");
    ASSERT_TRUE(store->Commit(first).ok());

    Batch second = store->NewBatch();
    second.Put(Family::kMessages, "m2", std::string(20000, 'e'));
    second.Put(Family::kOutbox, "outbox/p/m2", "m2");
    second.Put(Family::kAudit, "audit/2", "accepted m2");
    ASSERT_TRUE(store->Commit(second).ok());
  }

  // The store closes without flushing, so both batches live only in the
  // write-ahead log; cut the end off the newest log file.
  fs::path newest_log;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".log" &&
        (newest_log.empty() || entry.path() > newest_log)) {
      newest_log = entry.path();
    }
  }
  ASSERT_FALSE(newest_log.empty());
  uintmax_t size = fs::file_size(newest_log);
  ASSERT_GT(size, 20000u);
  fs::resize_file(newest_log, size - 100);

  std::unique_ptr<Store> store = OpenOrDie(dir);
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->Get(Family::kMessages, "m1"),
              absl::StatusOr<std::optional<std::string>>("envelope one"));
  EXPECT_THAT(store->Get(Family::kMessages, "m2"),
              absl::StatusOr<std::optional<std::string>>(std::nullopt));
  EXPECT_THAT(store->Get(Family::kOutbox, "outbox/p/m2"),
              absl::StatusOr<std::optional<std::string>>(std::nullopt));
  EXPECT_THAT(store->Get(Family::kAudit, "audit/2"),
              absl::StatusOr<std::optional<std::string>>(std::nullopt));
}

TEST(StoreTest, RefusesNewerSchemaWithoutModifyingDirectory) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  {
    std::unique_ptr<Store> store = OpenOrDie(dir);
    ASSERT_NE(store, nullptr);
    Batch batch = store->NewBatch();
    batch.Put(Family::kMessages, "m1", "envelope");
    ASSERT_TRUE(store->Commit(batch).ok());
  }
  {
    std::unique_ptr<RawDb> raw = OpenRaw(dir, /*writable=*/true);
    rocksdb::WriteOptions sync;
    sync.sync = true;
    ASSERT_TRUE(raw->db
                    ->Put(sync, raw->Family("meta"),
                          std::string(kSchemaVersionKey), "2")
                    .ok());
  }
  const std::map<std::string, std::string> files_before = Snapshot(dir);
  const std::vector<std::string> families_before = ListFamilies(dir);
  ASSERT_EQ(RawMetaValue(dir), "2");

  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.status().message(),
            absl::StrCat("data directory ", dir,
                         " was written by schema version 2; this caselinkd "
                         "understands up to 1; refusing to open it"));

  EXPECT_EQ(Snapshot(dir), files_before);
  EXPECT_EQ(ListFamilies(dir), families_before);
  EXPECT_EQ(RawMetaValue(dir), "2");
}

// A newer store may have dropped or renamed families; opening it must not
// add ours back before the version is checked.
TEST(StoreTest, RefusesNewerSchemaWithoutAddingColumnFamilies) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {"meta", rocksdb::ColumnFamilyOptions()},
    };
    RawDb raw;
    ASSERT_TRUE(
        rocksdb::DB::Open(options, dir, descriptors, &raw.handles, &raw.db)
            .ok());
    ASSERT_TRUE(raw.db
                    ->Put(rocksdb::WriteOptions(), raw.Family("meta"),
                          std::string(kSchemaVersionKey), "7")
                    .ok());
  }
  const std::map<std::string, std::string> files_before = Snapshot(dir);

  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(),
              HasSubstr(absl::StrCat("data directory ", dir,
                                     " was written by schema version 7")));

  EXPECT_EQ(Snapshot(dir), files_before);
  EXPECT_THAT(ListFamilies(dir), ElementsAre("default", "meta"));
}

TEST(StoreTest, RefusesForeignDatabase) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir, &db).ok());
    std::unique_ptr<rocksdb::DB> owned(db);
    ASSERT_TRUE(owned->Put(rocksdb::WriteOptions(), "user", "data").ok());
    ASSERT_TRUE(owned->Close().ok());
  }
  const std::map<std::string, std::string> files_before = Snapshot(dir);

  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("no schema version"));
  EXPECT_THAT(store.status().message(), HasSubstr(dir));
  EXPECT_EQ(Snapshot(dir), files_before);
}

TEST(StoreTest, SecondOpenOfLockedDirectoryFails) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  std::unique_ptr<Store> first = OpenOrDie(dir);
  ASSERT_NE(first, nullptr);

  absl::StatusOr<std::unique_ptr<Store>> second = Store::Open(dir);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("data directory ", dir,
                                     " is locked by another process")));
  EXPECT_THAT(second.status().message(),
              HasSubstr("is another caselinkd running?"));

  // The failed open left the first store working and the lock releasable.
  Batch batch = first->NewBatch();
  batch.Put(Family::kInbox, "m1", "envelope");
  EXPECT_TRUE(first->Commit(batch).ok());
  first.reset();
  EXPECT_NE(OpenOrDie(dir), nullptr);
}

TEST(StoreTest, UnwritableDirectoryFailsWithPath) {
  TempDir tmp;
  // A path under a regular file cannot be created, even by root.
  const std::string file = tmp.Sub("file");
  std::ofstream(file) << "not a directory\n";
  const std::string under_file = file + "/sub/node";

  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(under_file);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      store.status().message(),
      HasSubstr(absl::StrCat("cannot create data directory ", under_file)));
  EXPECT_THAT(store.status().message(), HasSubstr("Not a directory"));

  store = Store::Open(file);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.status().message(),
            absl::StrCat("data directory ", file, " is not a directory"));

  if (::geteuid() != 0) {
    // Permission bits only bind a non-root user.
    const std::string locked = tmp.Sub("locked");
    ASSERT_EQ(::mkdir(locked.c_str(), 0500), 0);
    store = Store::Open(locked + "/node");
    EXPECT_EQ(store.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(store.status().message(), HasSubstr(locked + "/node"));
    store = Store::Open(locked);
    EXPECT_EQ(store.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(store.status().message(), HasSubstr("is not writable"));
  }
}

std::vector<std::string> ScanKeys(const Store& store, Family family,
                                  std::string_view prefix) {
  std::vector<std::string> keys;
  absl::Status status = store.Scan(
      family, prefix, [&keys](std::string_view key, std::string_view) {
        keys.emplace_back(key);
        return true;
      });
  EXPECT_TRUE(status.ok()) << status;
  return keys;
}

TEST(StoreTest, ScanStopsAtPrefixEnd) {
  TempDir tmp;
  std::unique_ptr<Store> store = OpenOrDie(tmp.Sub("node"));
  ASSERT_NE(store, nullptr);
  Batch batch = store->NewBatch();
  for (const char* key : {"outbox/a/1", "outbox/a/2", "outbox/a0", "outbox/b/1",
                          "outbox/", "p\xff", "p\xff\xff", "q"}) {
    batch.Put(Family::kOutbox, key, absl::StrCat("value of ", key));
  }
  batch.Put(Family::kInbox, "outbox/a/3", "another family");
  ASSERT_TRUE(store->Commit(batch).ok());

  EXPECT_THAT(ScanKeys(*store, Family::kOutbox, "outbox/a/"),
              ElementsAre("outbox/a/1", "outbox/a/2"));
  EXPECT_THAT(ScanKeys(*store, Family::kOutbox, "outbox/a"),
              ElementsAre("outbox/a/1", "outbox/a/2", "outbox/a0"));
  EXPECT_THAT(ScanKeys(*store, Family::kOutbox, "p\xff"),
              ElementsAre("p\xff", "p\xff\xff"));
  EXPECT_THAT(ScanKeys(*store, Family::kOutbox, "outbox/c/"), ElementsAre());
  EXPECT_EQ(ScanKeys(*store, Family::kOutbox, "").size(), 8u);
  EXPECT_THAT(store->CountPrefix(Family::kOutbox, "outbox/"),
              absl::StatusOr<uint64_t>(5));

  // The visitor stops the scan by returning false.
  std::vector<std::string> seen;
  ASSERT_TRUE(store
                  ->Scan(Family::kOutbox, "outbox/",
                         [&seen](std::string_view key, std::string_view value) {
                           seen.emplace_back(key);
                           EXPECT_EQ(value, "value of " + std::string(key));
                           return seen.size() < 2;
                         })
                  .ok());
  EXPECT_THAT(seen, ElementsAre("outbox/", "outbox/a/1"));

  // A cursor seeks within its range only.
  Cursor cursor = store->NewCursor(Family::kOutbox, "outbox/a/");
  ASSERT_TRUE(cursor.Valid());
  EXPECT_EQ(cursor.key(), "outbox/a/1");
  cursor.Seek("outbox/a/2");
  ASSERT_TRUE(cursor.Valid());
  EXPECT_EQ(cursor.key(), "outbox/a/2");
  EXPECT_EQ(cursor.value(), "value of outbox/a/2");
  cursor.Next();
  EXPECT_FALSE(cursor.Valid());
  EXPECT_TRUE(cursor.status().ok());
  cursor.Seek("a");
  ASSERT_TRUE(cursor.Valid());
  EXPECT_EQ(cursor.key(), "outbox/a/1");
  cursor.Seek("outbox/b");
  EXPECT_FALSE(cursor.Valid());
  cursor.SeekToFirst();
  ASSERT_TRUE(cursor.Valid());
  EXPECT_EQ(cursor.key(), "outbox/a/1");

  // Moving a cursor keeps its bounds.
  Cursor moved = std::move(cursor);
  moved.Next();
  moved.Next();
  EXPECT_FALSE(moved.Valid());

  // A cursor can start part way into its range, but never before it.
  Cursor started = store->NewCursor(Family::kOutbox, "outbox/a/", "outbox/a/2");
  ASSERT_TRUE(started.Valid());
  EXPECT_EQ(started.key(), "outbox/a/2");
  Cursor clamped = store->NewCursor(Family::kOutbox, "outbox/a/", "a");
  ASSERT_TRUE(clamped.Valid());
  EXPECT_EQ(clamped.key(), "outbox/a/1");
  EXPECT_FALSE(
      store->NewCursor(Family::kOutbox, "outbox/a/", "outbox/a/3").Valid());
}

TEST(StoreTest, PrefixSuccessorIsTheExclusiveBound) {
  EXPECT_EQ(PrefixSuccessor("ab"), "ac");
  EXPECT_EQ(PrefixSuccessor("a\xff"), "b");
  EXPECT_EQ(PrefixSuccessor(std::string("a\0", 2)), std::string("a\1", 2));
  EXPECT_EQ(PrefixSuccessor("\xff\xff"), std::nullopt);
  EXPECT_EQ(PrefixSuccessor(""), std::nullopt);
}

TEST(StoreTest, BigEndianKeysSortNumerically) {
  const std::vector<uint64_t> values = {
      UINT64_MAX, 256,           0, uint64_t{1} << 32,
      255,        65536,         1, (uint64_t{1} << 56) + 1,
      65535,      UINT64_MAX - 1};
  TempDir tmp;
  std::unique_ptr<Store> store = OpenOrDie(tmp.Sub("node"));
  ASSERT_NE(store, nullptr);
  Batch batch = store->NewBatch();
  for (uint64_t value : values) batch.Put(Family::kOutbox, Key(value), "");
  ASSERT_TRUE(store->Commit(batch).ok());

  std::vector<uint64_t> read;
  for (const std::string& key : ScanKeys(*store, Family::kOutbox, "q/")) {
    std::string_view rest(key);
    rest.remove_prefix(2);
    std::optional<uint64_t> value = ReadUint64BE(&rest);
    ASSERT_TRUE(value.has_value());
    EXPECT_TRUE(rest.empty());
    read.push_back(*value);
  }
  std::vector<uint64_t> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(read, sorted);

  // ~value gives descending order, as for priorities.
  std::string high;
  std::string low;
  AppendUint64BE(&high, ~uint64_t{9});
  AppendUint64BE(&low, ~uint64_t{1});
  EXPECT_LT(high, low);

  std::string encoded;
  AppendUint64BE(&encoded, 0x0102030405060708);
  EXPECT_EQ(encoded, "\x01\x02\x03\x04\x05\x06\x07\x08");
  encoded += "tail";
  std::string_view input(encoded);
  EXPECT_THAT(ReadUint64BE(&input), Optional(uint64_t{0x0102030405060708}));
  EXPECT_EQ(input, "tail");
  EXPECT_EQ(ReadUint64BE(&input), std::nullopt);
  EXPECT_EQ(input, "tail");
}

TEST(StoreTest, LargeValueGoesToBlobFile) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  std::string attachment(size_t{1} << 20, '\0');
  for (size_t i = 0; i < attachment.size(); ++i) {
    attachment[i] = static_cast<char>((i * 7919) % 251);
  }
  {
    std::unique_ptr<Store> store = OpenOrDie(dir);
    ASSERT_NE(store, nullptr);
    Batch batch = store->NewBatch();
    batch.Put(Family::kMessages, "big", attachment);
    batch.Put(Family::kMessages, "small", "short envelope");
    ASSERT_TRUE(store->Commit(batch).ok());
    ASSERT_TRUE(store->Flush().ok());
  }

  EXPECT_GE(BlobFiles(dir), 1);

  std::unique_ptr<Store> store = OpenOrDie(dir);
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->Get(Family::kMessages, "big"),
              absl::StatusOr<std::optional<std::string>>(attachment));
  EXPECT_THAT(store->Get(Family::kMessages, "small"),
              absl::StatusOr<std::optional<std::string>>("short envelope"));
}

TEST(StoreTest, QueueEntryDeletedWrittenOnceLeavesNoTombstone) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  const std::string envelope(2000, 'e');
  {
    std::unique_ptr<Store> store = OpenOrDie(dir);
    ASSERT_NE(store, nullptr);
    Batch queued = store->NewBatch();
    queued.Put(Family::kOutbox, "q/sent", envelope);
    queued.Put(Family::kOutbox, "q/waiting", envelope);
    ASSERT_TRUE(store->Commit(queued).ok());
    // Sent before the flush: its put and delete meet in the memtable.
    Batch sent = store->NewBatch();
    sent.DeleteWrittenOnce(Family::kOutbox, "q/sent");
    ASSERT_TRUE(store->Commit(sent).ok());
    ASSERT_TRUE(store->Flush().ok());
  }

  {
    // Only the waiting entry reached a table file, and its envelope went to
    // a blob file: no tombstone of the sent one is left to compact away.
    std::unique_ptr<RawDb> raw = OpenRaw(dir, /*writable=*/false);
    rocksdb::TablePropertiesCollection tables;
    ASSERT_TRUE(
        raw->db->GetPropertiesOfAllTables(raw->Family("outbox"), &tables).ok());
    uint64_t entries = 0;
    uint64_t deletions = 0;
    for (const auto& [file, properties] : tables) {
      entries += properties->num_entries;
      deletions += properties->num_deletions;
    }
    EXPECT_EQ(entries, 1u);
    EXPECT_EQ(deletions, 0u);
    EXPECT_GE(BlobFiles(dir), 1);
  }

  {
    std::unique_ptr<Store> store = OpenOrDie(dir);
    ASSERT_NE(store, nullptr);
    EXPECT_THAT(store->Get(Family::kOutbox, "q/sent"),
                absl::StatusOr<std::optional<std::string>>(std::nullopt));
    EXPECT_THAT(store->Get(Family::kOutbox, "q/waiting"),
                absl::StatusOr<std::optional<std::string>>(envelope));
    Batch sent = store->NewBatch();
    sent.DeleteWrittenOnce(Family::kOutbox, "q/waiting");
    ASSERT_TRUE(store->Commit(sent).ok());
    ASSERT_TRUE(store->Flush().ok());
  }
  std::unique_ptr<Store> store = OpenOrDie(dir);
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->Get(Family::kOutbox, "q/waiting"),
              absl::StatusOr<std::optional<std::string>>(std::nullopt));
  EXPECT_EQ(ScanKeys(*store, Family::kOutbox, "q/").size(), 0u);
}

TEST(StoreTest, ReclaimingADrainedQueueGivesItsSpaceBack) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  std::unique_ptr<Store> store = OpenOrDie(dir);
  ASSERT_NE(store, nullptr);
  const std::string envelope(1500, 'e');
  Batch queued = store->NewBatch();
  for (uint64_t i = 0; i < 3000; ++i) {
    queued.Put(Family::kOutbox, Key(i), envelope);
  }
  ASSERT_TRUE(store->Commit(queued).ok());
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_GE(BlobFiles(dir), 1);

  // Too few writes since the flush: nothing is flushed.
  Batch sent = store->NewBatch();
  for (uint64_t i = 0; i < 1500; ++i) {
    sent.DeleteWrittenOnce(Family::kOutbox, Key(i));
  }
  ASSERT_TRUE(store->Commit(sent).ok());
  EXPECT_THAT(store->ReclaimSpace(Family::kOutbox, 2000),
              absl::StatusOr<bool>(false));

  sent = store->NewBatch();
  for (uint64_t i = 1500; i < 3000; ++i) {
    sent.DeleteWrittenOnce(Family::kOutbox, Key(i));
  }
  ASSERT_TRUE(store->Commit(sent).ok());
  EXPECT_THAT(store->ReclaimSpace(Family::kOutbox, 2000),
              absl::StatusOr<bool>(true));

  // The deletes were flushed and compacted with the entries they delete,
  // and the blob files that held the envelopes go.
  for (int tries = 0; tries < 200 && BlobFiles(dir) > 0; ++tries) {
    ::usleep(100 * 1000);
  }
  EXPECT_EQ(BlobFiles(dir), 0);
  EXPECT_EQ(ScanKeys(*store, Family::kOutbox, "").size(), 0u);
}

// The number of table files `family` of the store in `dir` has now. The
// store may be open: this reads the directory as a second, read-only
// instance.
uint64_t TableFiles(const std::string& dir, const std::string& family) {
  std::unique_ptr<RawDb> raw = OpenRaw(dir, /*writable=*/false);
  rocksdb::TablePropertiesCollection tables;
  EXPECT_TRUE(
      raw->db->GetPropertiesOfAllTables(raw->Family(family), &tables).ok());
  return tables.size();
}

TEST(StoreTest, CommitFlushesTheLargestMemtableOnceAllHoldTheTrigger) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  StoreOptions options;
  // No family's memtable fills, and RocksDB's own flush trigger is far
  // off: only the store's trigger can start a flush. Memtables count
  // their memory in blocks of an eighth of their size, so the trigger is
  // well above what a family with a few writes holds.
  options.write_buffer_bytes = size_t{16} << 20;
  options.memtable_flush_bytes = size_t{8} << 20;
  options.memtable_budget_bytes = size_t{256} << 20;
  auto opened = Store::Open(dir, options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<Store> store = std::move(opened).value();

  Batch small = store->NewBatch();
  small.Put(Family::kAudit, "l/one", std::string(20000, 'a'));
  ASSERT_TRUE(store->Commit(small).ok());
  // Below the blob size, so that the records stay in table files.
  const std::string record(400, 'r');
  uint64_t written = 0;
  for (int commit = 0; commit < 125; ++commit) {
    Batch batch = store->NewBatch();
    for (int i = 0; i < 200; ++i) {
      batch.Put(Family::kMessages, Key(written++), record);
    }
    ASSERT_TRUE(store->Commit(batch).ok());
  }

  uint64_t messages_tables = 0;
  for (int tries = 0; tries < 100 && messages_tables == 0; ++tries) {
    messages_tables = TableFiles(dir, "messages");
    if (messages_tables == 0) ::usleep(100 * 1000);
  }
  EXPECT_GE(messages_tables, 1u);
  EXPECT_EQ(TableFiles(dir, "audit"), 0u);
  EXPECT_THAT(store->Get(Family::kMessages, Key(0)),
              absl::StatusOr<std::optional<std::string>>(record));
  EXPECT_THAT(store->Get(Family::kMessages, Key(written - 1)),
              absl::StatusOr<std::optional<std::string>>(record));
  EXPECT_THAT(
      store->Get(Family::kAudit, "l/one"),
      absl::StatusOr<std::optional<std::string>>(std::string(20000, 'a')));
}

TEST(StoreTest, BlobFilesAreCleanedOnlyWhileTheirGarbageIsHigh) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  std::unique_ptr<Store> store = OpenOrDie(dir);
  ASSERT_NE(store, nullptr);
  auto value = [](char prefix, int i, int version) {
    return std::string(4000,
                       static_cast<char>('a' + (prefix + i + version) % 26));
  };
  std::map<std::string, std::string> latest;
  auto write = [&](char prefix, int from, int to, int version) {
    Batch batch = store->NewBatch();
    for (int i = from; i < to; ++i) {
      std::string key = absl::StrCat(std::string(1, prefix), "/", 100 + i);
      latest[key] = value(prefix, i, version);
      batch.Put(Family::kMessages, key, latest[key]);
    }
    ASSERT_TRUE(store->Commit(batch).ok());
  };
  // Flushes and compacts the family. A write at each end of the keys
  // makes the compaction take in every table file.
  int round = 0;
  auto compact = [&] {
    ++round;
    write('a', 0, 1, round);
    write('d', 39, 40, round);
    ASSERT_THAT(store->ReclaimSpace(Family::kMessages, 0),
                absl::StatusOr<bool>(true));
  };
  // Four blob files of 40 values each, nothing overwritten.
  for (char prefix : {'a', 'b', 'c', 'd'}) {
    write(prefix, 0, 40, 0);
    ASSERT_TRUE(store->Flush().ok());
  }
  const std::string oldest = BlobFileNames(dir).front();
  absl::StatusOr<BlobCleaning> cleaning = store->UpdateBlobCleaning();
  ASSERT_TRUE(cleaning.ok()) << cleaning.status();
  // Each value with its key and record header.
  EXPECT_GE(cleaning->blob_bytes, 160u * 4000);
  EXPECT_LT(cleaning->blob_bytes, 160u * 4100);
  EXPECT_EQ(cleaning->garbage_bytes, 0u);
  EXPECT_FALSE(cleaning->on);
  EXPECT_FALSE(cleaning->changed);

  // Most of the oldest file overwritten: under a quarter of all the blob
  // bytes, so nothing is cleaned and the oldest file stays.
  write('a', 1, 30, 1);
  compact();
  cleaning = store->UpdateBlobCleaning();
  ASSERT_TRUE(cleaning.ok()) << cleaning.status();
  EXPECT_GT(cleaning->garbage_bytes, 0u);
  EXPECT_LT(cleaning->garbage_bytes * 4, cleaning->blob_bytes);
  EXPECT_FALSE(cleaning->on);
  EXPECT_FALSE(cleaning->changed);
  compact();
  EXPECT_THAT(BlobFileNames(dir), Contains(oldest));

  // Past a quarter: cleaning starts, and the next compaction moves the
  // oldest file's live values out so that it goes.
  write('b', 0, 30, 1);
  compact();
  cleaning = store->UpdateBlobCleaning();
  ASSERT_TRUE(cleaning.ok()) << cleaning.status();
  EXPECT_GE(cleaning->garbage_bytes * 4, cleaning->blob_bytes);
  EXPECT_TRUE(cleaning->on);
  EXPECT_TRUE(cleaning->changed);
  const uint64_t garbage_before = cleaning->garbage_bytes;
  compact();
  EXPECT_THAT(BlobFileNames(dir), Not(Contains(oldest)));
  cleaning = store->UpdateBlobCleaning();
  ASSERT_TRUE(cleaning.ok()) << cleaning.status();
  EXPECT_LT(cleaning->garbage_bytes, garbage_before);

  // Below an eighth: cleaning stops.
  for (int tries = 0; tries < 10 && cleaning->on; ++tries) {
    compact();
    cleaning = store->UpdateBlobCleaning();
    ASSERT_TRUE(cleaning.ok()) << cleaning.status();
  }
  EXPECT_FALSE(cleaning->on);
  EXPECT_TRUE(cleaning->changed);
  EXPECT_LT(cleaning->garbage_bytes * 8, cleaning->blob_bytes);

  for (const auto& [key, expected] : latest) {
    EXPECT_THAT(store->Get(Family::kMessages, key),
                absl::StatusOr<std::optional<std::string>>(expected))
        << key;
  }
}

}  // namespace
}  // namespace caselink::storage
