#include "storage/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdarg>
#include <system_error>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/iterator.h"
#include "rocksdb/metadata.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/table_properties_collectors.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"

namespace caselink::storage {
namespace {

constexpr size_t kFamilyCount = 7;

// Indexed by Family. These names are on disk; never rename one.
constexpr std::array<std::string_view, kFamilyCount> kFamilyNames = {
    "messages", "outbox", "inbox", "cases", "audit", "dedup", "meta",
};

// Families whose keys are mostly deleted soon after they are written
// (queues and expiring indexes). Tombstones would otherwise pile up at the
// head of a queue and slow every scan of it.
constexpr std::array<Family, 4> kQueueFamilies = {
    Family::kMessages, Family::kOutbox, Family::kInbox, Family::kDedup};

// Debian's abseil is built with its own string_view, distinct from
// std::string_view; this converts at the boundary.
absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

rocksdb::Slice ToSlice(std::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

std::string_view ToView(const rocksdb::Slice& s) {
  return std::string_view(s.data(), s.size());
}

absl::Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(ToAbsl(context), ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(message);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(message);
  if (s.IsIOError() || s.IsBusy() || s.IsTryAgain()) {
    return absl::UnavailableError(message);
  }
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  return absl::InternalError(message);
}

absl::Status FromErrno(int err, std::string_view context) {
  std::string message =
      absl::StrCat(ToAbsl(context), ": ", std::system_category().message(err));
  if (err == EACCES || err == EPERM || err == EROFS) {
    return absl::PermissionDeniedError(message);
  }
  return absl::FailedPreconditionError(message);
}

// RocksDB reports a held LOCK file only as an IOError; its text is the only
// way to tell it from other I/O failures. The first form is another handle
// in this process, the second another process (fcntl said EAGAIN/EACCES).
bool IsLockConflict(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  std::string text = s.ToString();
  return absl::StrContains(text, "lock hold by current process") ||
         absl::StrContains(text, "While lock file");
}

absl::Status LockedError(const std::string& dir, const rocksdb::Status& s) {
  return absl::FailedPreconditionError(
      absl::StrCat("data directory ", dir,
                   " is locked by another process (is another caselinkd "
                   "running?): ",
                   s.ToString()));
}

// Discards RocksDB's info log while an existing directory is inspected,
// where a LOG file created or rotated would be a change. RocksDB 7.8 writes
// none for a read-only open, but it does not promise that.
class DiscardingLogger : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
};

// Creates `path` and any missing parents with mode 0700. On failure returns
// the errno and sets `*failed` to the directory that could not be made.
int MakeDirectories(const std::string& path, std::string* failed) {
  *failed = path;
  if (::mkdir(path.c_str(), 0700) == 0) return 0;
  int err = errno;
  if (err == EEXIST) {
    struct stat st;
    bool is_dir = ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    return is_dir ? 0 : ENOTDIR;
  }
  size_t slash = path.find_last_of('/');
  if (err != ENOENT || slash == std::string::npos || slash == 0) return err;
  err = MakeDirectories(path.substr(0, slash), failed);
  if (err != 0) return err;
  *failed = path;
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return errno;
  return 0;
}

// Makes the new directory's own entry durable. RocksDB syncs what it writes
// inside the directory, but not the entry naming it in the parent.
absl::Status SyncParentDirectory(const std::string& dir) {
  size_t slash = dir.find_last_of('/');
  std::string parent = slash == std::string::npos ? "."
                       : slash == 0               ? "/"
                                                  : dir.substr(0, slash);
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return FromErrno(errno, absl::StrCat("cannot open directory ", parent));
  }
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    return FromErrno(err, absl::StrCat("cannot sync directory ", parent));
  }
  return absl::OkStatus();
}

// Ensures `dir` exists, is a directory and can be written.
absl::Status PrepareDirectory(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("data directory ", dir, " is not a directory"));
    }
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
      return FromErrno(
          errno, absl::StrCat("data directory ", dir, " is not writable"));
    }
    return absl::OkStatus();
  }
  if (errno != ENOENT && errno != ENOTDIR) {
    return FromErrno(errno, absl::StrCat("cannot access data directory ", dir));
  }

  std::string failed;
  if (int err = MakeDirectories(dir, &failed); err != 0) {
    std::string context = absl::StrCat("cannot create data directory ", dir);
    if (failed != dir) absl::StrAppend(&context, ": cannot create ", failed);
    return FromErrno(err, context);
  }
  return SyncParentDirectory(dir);
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Holds RocksDB's LOCK file of a directory while it is inspected, so that
// the read-only look never races a writer in another process.
class DirectoryLock {
 public:
  static absl::StatusOr<DirectoryLock> Acquire(const std::string& dir) {
    rocksdb::FileLock* lock = nullptr;
    rocksdb::Status s = rocksdb::Env::Default()->LockFile(dir + "/LOCK", &lock);
    if (IsLockConflict(s)) return LockedError(dir, s);
    if (!s.ok()) {
      return FromRocks(s, absl::StrCat("cannot lock data directory ", dir));
    }
    return DirectoryLock(lock);
  }

  DirectoryLock(DirectoryLock&& other) noexcept
      : lock_(std::exchange(other.lock_, nullptr)) {}
  DirectoryLock& operator=(DirectoryLock&&) = delete;

  ~DirectoryLock() {
    if (lock_ == nullptr) return;
    // An unlock failure leaves the lock to be released when the process
    // exits; the open that follows would then report the directory locked.
    rocksdb::Env::Default()->UnlockFile(lock_).PermitUncheckedError();
  }

 private:
  explicit DirectoryLock(rocksdb::FileLock* lock) : lock_(lock) {}

  rocksdb::FileLock* lock_;
};

void CloseDb(rocksdb::DB* db,
             const std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  }
  // A close error cannot be acted on here: committed writes are already in
  // the synced log, and the next open recovers from it.
  db->Close().PermitUncheckedError();
  delete db;
}

absl::Status NewerSchemaError(const std::string& dir, int64_t version) {
  return absl::FailedPreconditionError(
      absl::StrCat("data directory ", dir, " was written by schema version ",
                   version, "; this caselinkd understands up to ",
                   kSchemaVersion, "; refusing to open it"));
}

// Accepts a stored schema version this build can use. Version 1 is the
// first; there is nothing older to migrate from yet.
absl::Status CheckSchemaVersion(const std::string& dir,
                                std::string_view stored) {
  int64_t version = 0;
  if (!absl::SimpleAtoi(ToAbsl(stored), &version) || version < 1) {
    return absl::DataLossError(absl::StrCat("data directory ", dir,
                                            " has an unreadable schema "
                                            "version \"",
                                            absl::CHexEscape(ToAbsl(stored)),
                                            "\""));
  }
  if (version > kSchemaVersion) return NewerSchemaError(dir, version);
  return absl::OkStatus();
}

bool IsKnownFamilyName(const std::string& name) {
  if (name == rocksdb::kDefaultColumnFamilyName) return true;
  for (std::string_view known : kFamilyNames) {
    if (name == known) return true;
  }
  return false;
}

// Checks an unversioned database: only an empty one with our families is
// taken for a store whose creation was interrupted before the version was
// written.
absl::Status CheckUnversioned(
    const std::string& dir, rocksdb::DB* db,
    const std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    if (!IsKnownFamilyName(handle->GetName())) {
      return absl::FailedPreconditionError(
          absl::StrCat("data directory ", dir,
                       " holds a database that is not a caselink "
                       "store (unknown column family \"",
                       handle->GetName(), "\")"));
    }
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions(), handle));
    it->SeekToFirst();
    CASELINK_RETURN_IF_ERROR(FromRocks(
        it->status(), absl::StrCat("inspecting data directory ", dir)));
    if (it->Valid()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data directory ", dir,
          " holds data but no schema version; it is "
          "not a caselink store or it is damaged; refusing to open it"));
    }
  }
  return absl::OkStatus();
}

// Looks at an existing database read-only and decides whether this build
// may open it for writing. Nothing in the directory changes.
absl::Status InspectExisting(const std::string& dir) {
  rocksdb::DBOptions options;
  options.info_log = std::make_shared<DiscardingLogger>();
  options.max_open_files = 16;
  std::string context = absl::StrCat("inspecting data directory ", dir);

  std::vector<std::string> names;
  CASELINK_RETURN_IF_ERROR(FromRocks(
      rocksdb::DB::ListColumnFamilies(options, dir, &names), context));
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  CASELINK_RETURN_IF_ERROR(FromRocks(
      rocksdb::DB::OpenForReadOnly(options, dir, descriptors, &handles, &db),
      context));

  absl::Status result = absl::OkStatus();
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    if (handle->GetName() == FamilyName(Family::kMeta)) meta = handle;
  }
  std::string version;
  rocksdb::Status s = rocksdb::Status::NotFound();
  if (meta != nullptr) {
    s = db->Get(rocksdb::ReadOptions(), meta, ToSlice(kSchemaVersionKey),
                &version);
  }
  if (s.ok()) {
    result = CheckSchemaVersion(dir, version);
  } else if (s.IsNotFound()) {
    result = CheckUnversioned(dir, db, handles);
  } else {
    result = FromRocks(s, context);
  }
  CloseDb(db, handles);
  return result;
}

rocksdb::DBOptions MakeDbOptions(
    const StoreOptions& options,
    std::shared_ptr<rocksdb::WriteBufferManager> write_buffers) {
  rocksdb::DBOptions db;
  db.create_if_missing = true;
  db.create_missing_column_families = true;
  db.max_open_files = options.max_open_files;
  // All memtables together stay within the budget: once flushes fall that
  // far behind, writes stall until they catch up instead of letting memory
  // grow. Store::Commit starts the flushes, well before the budget is
  // reached.
  db.write_buffer_manager = std::move(write_buffers);
  // With several families the log can only be dropped once every family
  // has flushed past it; bounding it makes idle families flush too.
  db.max_total_wal_size = options.max_wal_bytes;
  db.max_background_jobs = 2;
  // Flushes and compactions yield the CPU to the threads that answer peers
  // and operators: they can wait for an idle moment, a message cannot.
  // Should compactions fall far behind, RocksDB slows writes down until
  // they catch up; should flushes, the memtable budget above stalls them.
  // Both pools are the process's, shared by every store in it.
  rocksdb::Env::Default()->LowerThreadPoolCPUPriority(
      rocksdb::Env::Priority::LOW, rocksdb::CpuPriority::kLow);
  rocksdb::Env::Default()->LowerThreadPoolCPUPriority(
      rocksdb::Env::Priority::HIGH, rocksdb::CpuPriority::kLow);
  // Flushes and compactions write files of up to 64 MiB through the page
  // cache. Left alone, the kernel writes such a file out in one burst when
  // it is synced at the end, and a commit's sync of the log, queued behind
  // it at the disk, waits tens of milliseconds. Handing the file to the
  // disk a megabyte at a time, never more than that outstanding, keeps the
  // queue short.
  db.bytes_per_sync = uint64_t{1} << 20;
  db.strict_bytes_per_sync = true;
  db.keep_log_file_num = 4;
  db.max_log_file_size = size_t{4} << 20;
  return db;
}

std::shared_ptr<rocksdb::TableFactory> MakeTableFactory(
    const StoreOptions& options) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  // Charging index and filter blocks to the cache keeps their memory within
  // block_cache_bytes however many table files there are.
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Partitioned indexes and filters: a lookup in a large table file reads
  // one small partition instead of the file's whole filter (megabytes once
  // a million messages are queued), which a bounded cache cannot hold.
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = 4096;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_top_level_index_and_filter = true;
  // XXH3 is computed in software as fast as CRC32C with the instruction
  // this build of RocksDB does not use.
  table.checksum = rocksdb::kXXH3;
  return std::shared_ptr<rocksdb::TableFactory>(
      rocksdb::NewBlockBasedTableFactory(table));
}

rocksdb::ColumnFamilyOptions MakeFamilyOptions(
    std::string_view name, const StoreOptions& options,
    const std::shared_ptr<rocksdb::TableFactory>& table_factory) {
  rocksdb::ColumnFamilyOptions cf;
  cf.table_factory = table_factory;
  cf.write_buffer_size = options.write_buffer_bytes;
  cf.max_write_buffer_number = options.max_write_buffers;
  cf.level_compaction_dynamic_level_bytes = true;
  // Most keys of a group go in ascending runs that share a short prefix:
  // outbox sequence numbers per peer, audit leaves, subtree hashes and
  // index entries. The memtable keeps an insert position per prefix and
  // starts the next insert there instead of searching from the top.
  cf.memtable_insert_with_hint_prefix_extractor.reset(
      rocksdb::NewFixedPrefixTransform(4));

  if (name == FamilyName(Family::kDedup) ||
      name == FamilyName(Family::kAudit) ||
      name == FamilyName(Family::kMessages)) {
    // Most lookups in these families are for keys the memtable does not
    // hold: a message id not seen before, the latest event of a case not
    // logged for a while, a sent state already flushed. A Bloom filter
    // over the memtable's keys answers those without searching it. 3% of
    // a memtable's size is 10 bits or more for each of its keys.
    cf.memtable_whole_key_filtering = true;
    cf.memtable_prefix_bloom_size_ratio = 0.03;
  }
  for (Family family : kQueueFamilies) {
    if (name != FamilyName(family)) continue;
    cf.table_properties_collector_factories.push_back(
        rocksdb::NewCompactOnDeletionCollectorFactory(4096, 2048));
  }
  if (name == FamilyName(Family::kMessages) ||
      name == FamilyName(Family::kOutbox)) {
    // Their values are mostly sealed payloads and signatures, which do not
    // compress: trying costs CPU at every flush and compaction.
    cf.compression = rocksdb::kNoCompression;
  }
  if (name == FamilyName(Family::kOutbox)) {
    // Queued envelopes go to blob files when a flush finds them still
    // queued. Compactions, which a queue's deletes keep busy, then move
    // only keys and blob references; a blob file goes once all of it is
    // sent.
    cf.enable_blob_files = true;
    cf.min_blob_size = 256;
    cf.blob_file_size = uint64_t{64} << 20;
    cf.blob_compression_type = rocksdb::kNoCompression;
  }
  if (name == FamilyName(Family::kMessages)) {
    // Sealed envelopes do not compress, so compressing them is wasted
    // work.
    cf.enable_blob_files = true;
    cf.min_blob_size = options.min_blob_bytes;
    cf.blob_file_size = uint64_t{64} << 20;
    cf.blob_compression_type = rocksdb::kNoCompression;
    // Off until its blob files hold enough garbage: see
    // Store::UpdateBlobCleaning().
    cf.enable_blob_garbage_collection = false;
  }
  return cf;
}

}  // namespace

std::string_view FamilyName(Family family) {
  return kFamilyNames[static_cast<size_t>(family)];
}

std::optional<std::string> PrefixSuccessor(std::string_view prefix) {
  std::string bound(prefix);
  while (!bound.empty()) {
    unsigned char last = static_cast<unsigned char>(bound.back());
    if (last != 0xff) {
      bound.back() = static_cast<char>(last + 1);
      return bound;
    }
    bound.pop_back();
  }
  return std::nullopt;
}

// --- Batch ---

Batch::Batch(const Store* store)
    : store_(store), rep_(std::make_unique<rocksdb::WriteBatch>()) {}

Batch::Batch(Batch&& other) noexcept = default;
Batch& Batch::operator=(Batch&& other) noexcept = default;
Batch::~Batch() = default;

void Batch::Put(Family family, std::string_view key, std::string_view value) {
  // A WriteBatch only fails on a key or value over 4 GiB, which no caller
  // of ours builds; the commit would then fail on the corrupt batch.
  rep_->Put(store_->Handle(family), ToSlice(key), ToSlice(value))
      .PermitUncheckedError();
}

void Batch::Delete(Family family, std::string_view key) {
  rep_->Delete(store_->Handle(family), ToSlice(key)).PermitUncheckedError();
}

void Batch::DeleteWrittenOnce(Family family, std::string_view key) {
  rep_->SingleDelete(store_->Handle(family), ToSlice(key))
      .PermitUncheckedError();
}

void Batch::Clear() { rep_->Clear(); }

size_t Batch::size() const { return static_cast<size_t>(rep_->Count()); }

size_t Batch::ByteSize() const { return rep_->GetDataSize(); }

// --- Cursor ---

struct Cursor::State {
  std::string context;
  std::string lower;
  std::optional<std::string> upper;
  rocksdb::Slice lower_slice;
  rocksdb::Slice upper_slice;
  // Declared last so it is destroyed before the bounds it points at.
  std::unique_ptr<rocksdb::Iterator> iter;
};

Cursor::Cursor(std::unique_ptr<State> state) : state_(std::move(state)) {}
Cursor::Cursor(Cursor&& other) noexcept = default;
Cursor& Cursor::operator=(Cursor&& other) noexcept = default;
Cursor::~Cursor() = default;

void Cursor::Seek(std::string_view target) {
  if (target < state_->lower) target = state_->lower;
  state_->iter->Seek(ToSlice(target));
}

void Cursor::SeekToFirst() { state_->iter->Seek(state_->lower_slice); }

bool Cursor::Valid() const {
  return state_ != nullptr && state_->iter->Valid();
}

std::string_view Cursor::key() const { return ToView(state_->iter->key()); }

std::string_view Cursor::value() const { return ToView(state_->iter->value()); }

void Cursor::Next() { state_->iter->Next(); }

absl::Status Cursor::status() const {
  if (state_ == nullptr) return absl::OkStatus();
  return FromRocks(state_->iter->status(), state_->context);
}

// --- Store ---

absl::StatusOr<std::unique_ptr<Store>> Store::Open(
    const std::string& dir, const StoreOptions& options) {
  // Phase 1: a directory we can write.
  CASELINK_RETURN_IF_ERROR(PrepareDirectory(dir));

  // Phase 2: judge an existing database before writing anything, since a
  // read-write open already adds families and rewrites the manifest.
  if (FileExists(dir + "/CURRENT")) {
    CASELINK_ASSIGN_OR_RETURN(DirectoryLock lock, DirectoryLock::Acquire(dir));
    CASELINK_RETURN_IF_ERROR(InspectExisting(dir));
  }

  // Phase 3: open read-write with every family.
  std::shared_ptr<rocksdb::TableFactory> table_factory =
      MakeTableFactory(options);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (std::string_view name : kFamilyNames) {
    descriptors.emplace_back(std::string(name),
                             MakeFamilyOptions(name, options, table_factory));
  }
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName,
                           MakeFamilyOptions(rocksdb::kDefaultColumnFamilyName,
                                             options, table_factory));
  auto write_buffers = std::make_shared<rocksdb::WriteBufferManager>(
      options.memtable_budget_bytes, /*cache=*/nullptr, /*allow_stall=*/true);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(MakeDbOptions(options, write_buffers),
                                        dir, descriptors, &handles, &db);
  if (IsLockConflict(s)) return LockedError(dir, s);
  CASELINK_RETURN_IF_ERROR(
      FromRocks(s, absl::StrCat("opening data directory ", dir)));

  // Phase 4: record or re-check the schema version.
  std::unique_ptr<Store> store(new Store(dir, options, std::move(write_buffers),
                                         db, std::move(handles)));
  CASELINK_RETURN_IF_ERROR(store->EnsureSchemaVersion());
  return store;
}

Store::Store(std::string dir, const StoreOptions& options,
             std::shared_ptr<rocksdb::WriteBufferManager> write_buffers,
             rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : dir_(std::move(dir)),
      sync_writes_(options.sync_writes),
      memtable_flush_bytes_(options.memtable_flush_bytes),
      blob_cleaning_start_(options.blob_cleaning_start),
      blob_cleaning_stop_(options.blob_cleaning_stop),
      write_buffers_(std::move(write_buffers)),
      db_(db),
      handles_(std::move(handles)) {}

Store::~Store() {
  rocksdb::DB* db = db_.release();
  CloseDb(db, handles_);
}

absl::Status Store::EnsureSchemaVersion() {
  CASELINK_ASSIGN_OR_RETURN(std::optional<std::string> stored,
                            Get(Family::kMeta, kSchemaVersionKey));
  // Checked again under the read-write lock, in case another process wrote
  // the directory between the inspection and the open.
  if (stored.has_value()) return CheckSchemaVersion(dir_, *stored);

  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  std::string version = absl::StrCat(kSchemaVersion);
  return FromRocks(db_->Put(write_options, Handle(Family::kMeta),
                            ToSlice(kSchemaVersionKey), version),
                   absl::StrCat("writing schema version in ", dir_));
}

rocksdb::ColumnFamilyHandle* Store::Handle(Family family) const {
  return handles_[static_cast<size_t>(family)];
}

absl::StatusOr<std::optional<std::string>> Store::Get(
    Family family, std::string_view key) const {
  rocksdb::PinnableSlice value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), Handle(family), ToSlice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  CASELINK_RETURN_IF_ERROR(FromRocks(
      s, absl::StrCat("reading ", ToAbsl(FamilyName(family)), " in ", dir_)));
  return std::optional<std::string>(value.ToString());
}

absl::StatusOr<std::vector<std::optional<std::string>>> Store::GetAll(
    Family family, const std::vector<std::string>& keys) const {
  std::vector<rocksdb::Slice> slices;
  slices.reserve(keys.size());
  for (const std::string& key : keys) slices.emplace_back(key);
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), Handle(family), keys.size(),
                slices.data(), values.data(), statuses.data());
  std::vector<std::optional<std::string>> found(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    CASELINK_RETURN_IF_ERROR(FromRocks(
        statuses[i], absl::StrCat("reading ", keys.size(), " keys of ",
                                  ToAbsl(FamilyName(family)), " in ", dir_)));
    found[i] = values[i].ToString();
  }
  return found;
}

Batch Store::NewBatch() const { return Batch(this); }

absl::Status Store::Commit(Batch& batch) {
  if (batch.empty()) return absl::OkStatus();
  rocksdb::WriteOptions write_options;
  write_options.sync = sync_writes_;
  CASELINK_RETURN_IF_ERROR(FromRocks(
      db_->Write(write_options, batch.rep_.get()),
      absl::StrCat("committing ", batch.size(), " writes in ", dir_)));
  batch.Clear();
  if (write_buffers_->mutable_memtable_memory_usage() >=
      memtable_flush_bytes_) {
    FlushLargestMemtable();
  }
  return absl::OkStatus();
}

void Store::FlushLargestMemtable() {
  rocksdb::ColumnFamilyHandle* largest = nullptr;
  uint64_t largest_bytes = 0;
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    uint64_t bytes = 0;
    if (db_->GetIntProperty(
            handle, rocksdb::DB::Properties::kCurSizeActiveMemTable, &bytes) &&
        bytes > largest_bytes) {
      largest = handle;
      largest_bytes = bytes;
    }
  }
  if (largest == nullptr) return;
  rocksdb::FlushOptions flush_options;
  flush_options.wait = false;
  flush_options.allow_write_stall = true;
  // The commit before this is durable whatever becomes of the flush. A
  // flush that cannot start now is asked for again at the next commit,
  // and one that fails in the background fails the writes after it.
  db_->Flush(flush_options, largest).PermitUncheckedError();
}

absl::StatusOr<BlobCleaning> Store::UpdateBlobCleaning() {
  rocksdb::ColumnFamilyHandle* handle = Handle(Family::kMessages);
  rocksdb::ColumnFamilyMetaData meta;
  db_->GetColumnFamilyMetaData(handle, &meta);
  BlobCleaning cleaning;
  for (const rocksdb::BlobMetaData& file : meta.blob_files) {
    cleaning.blob_bytes += file.total_blob_bytes;
    cleaning.garbage_bytes += file.garbage_blob_bytes;
  }
  const double garbage = static_cast<double>(cleaning.garbage_bytes);
  const double bytes = static_cast<double>(cleaning.blob_bytes);
  absl::MutexLock lock(&cleaning_mu_);
  const double share = cleaning_ ? blob_cleaning_stop_ : blob_cleaning_start_;
  const bool on = cleaning.garbage_bytes > 0 && garbage >= share * bytes;
  if (on != cleaning_) {
    CASELINK_RETURN_IF_ERROR(FromRocks(
        db_->SetOptions(handle, {{"enable_blob_garbage_collection",
                                  on ? "true" : "false"}}),
        absl::StrCat("switching the cleaning of blob files in ", dir_)));
    cleaning_ = on;
    cleaning.changed = true;
  }
  cleaning.on = cleaning_;
  return cleaning;
}

Cursor Store::NewCursor(Family family, std::string_view prefix,
                        std::string_view start) const {
  auto state = std::make_unique<Cursor::State>();
  state->context =
      absl::StrCat("scanning ", ToAbsl(FamilyName(family)), " in ", dir_);
  state->lower = std::string(prefix);
  state->upper = PrefixSuccessor(prefix);
  state->lower_slice = ToSlice(state->lower);

  rocksdb::ReadOptions read_options;
  read_options.iterate_lower_bound = &state->lower_slice;
  if (state->upper.has_value()) {
    state->upper_slice = ToSlice(*state->upper);
    read_options.iterate_upper_bound = &state->upper_slice;
  }
  state->iter.reset(db_->NewIterator(read_options, Handle(family)));
  Cursor cursor(std::move(state));
  cursor.Seek(start);
  return cursor;
}

absl::Status Store::Scan(
    Family family, std::string_view prefix,
    const std::function<bool(std::string_view key, std::string_view value)>&
        visit) const {
  Cursor cursor = NewCursor(family, prefix);
  for (; cursor.Valid(); cursor.Next()) {
    if (!visit(cursor.key(), cursor.value())) break;
  }
  return cursor.status();
}

absl::StatusOr<uint64_t> Store::CountPrefix(Family family,
                                            std::string_view prefix) const {
  uint64_t count = 0;
  Cursor cursor = NewCursor(family, prefix);
  for (; cursor.Valid(); cursor.Next()) ++count;
  CASELINK_RETURN_IF_ERROR(cursor.status());
  return count;
}

absl::Status Store::Flush() {
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  return FromRocks(db_->Flush(flush_options, handles_),
                   absl::StrCat("flushing ", dir_));
}

absl::StatusOr<bool> Store::ReclaimSpace(Family family, uint64_t min_writes) {
  const std::string context =
      absl::StrCat("reclaiming space of family ",
                   std::string(FamilyName(family)), " in ", dir_);
  uint64_t writes = 0;
  if (!db_->GetIntProperty(Handle(family),
                           rocksdb::DB::Properties::kNumEntriesActiveMemTable,
                           &writes)) {
    return absl::InternalError(
        absl::StrCat(context, ": no count of memtable entries"));
  }
  if (writes < min_writes) return false;
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  flush_options.allow_write_stall = true;
  CASELINK_RETURN_IF_ERROR(
      FromRocks(db_->Flush(flush_options, Handle(family)), context));
  CASELINK_RETURN_IF_ERROR(
      FromRocks(db_->CompactRange(rocksdb::CompactRangeOptions(),
                                  Handle(family), nullptr, nullptr),
                context));
  return true;
}

}  // namespace caselink::storage
