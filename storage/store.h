// The node's durable state: one RocksDB database per caselinkd, split into
// column families by purpose, written only through atomic batches.
//
// Everything a node knows lives in one data directory. A Store owns the
// RocksDB instance in it; the outbox, inbox, case and audit code build their
// own key layouts on top of the few primitives here: point reads, atomic
// multi-family batches and prefix-bounded iteration.
#ifndef CASELINK_STORAGE_STORE_H_
#define CASELINK_STORAGE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class WriteBatch;
class WriteBufferManager;
}  // namespace rocksdb

namespace caselink::storage {

// The layout version of the data directory, kept under kSchemaVersionKey in
// the meta family as a decimal string. Bump it whenever a key layout or value
// format changes incompatibly, and teach Store::Open to migrate from the
// previous version.
inline constexpr int kSchemaVersion = 1;
inline constexpr std::string_view kSchemaVersionKey = "schema_version";

// The column families of a store. Each has its own key space; the on-disk
// name of each is given by FamilyName().
enum class Family {
  kMessages,  // Envelopes by message id; large values go to blob files.
  kOutbox,    // Per next hop queue keys, pointing at messages.
  kInbox,     // Messages received for this node, awaiting processing.
  kCases,     // Case records.
  kAudit,     // The audit log.
  kDedup,     // Message ids already seen, with their expiry.
  kMeta,      // Store-wide settings such as the schema version.
};

// The RocksDB column family name of `family`, e.g. "messages".
[[nodiscard]] std::string_view FamilyName(Family family);

// Tuning of a store. The defaults keep a node's RocksDB memory bounded (block
// cache plus memtables well under 100 MiB) however many messages are queued.
struct StoreOptions {
  // Sync the write-ahead log before Commit() returns. Turning it off risks
  // losing acknowledged messages on power loss; only benchmarks may do so.
  bool sync_writes = true;

  // The block cache shared by all families; index and filter blocks are
  // charged to it too, so it bounds table-reading memory. This and the
  // memtable budget below keep a node that holds a million messages for a
  // peer that is down under 150 MiB resident; larger budgets bought no
  // throughput that the delivery benchmark could tell from noise.
  size_t block_cache_bytes = size_t{16} << 20;

  // Memtable size per family, and how many memtables a family may hold
  // (one being written, the rest waiting for flush).
  size_t write_buffer_bytes = size_t{16} << 20;
  int max_write_buffers = 2;

  // Once the memtables being written, of all families together, hold this
  // much, Commit() starts a flush of the largest of them. Memtables count
  // their memory in blocks of an eighth of write_buffer_bytes, so every
  // family written to holds at least one block.
  size_t memtable_flush_bytes = size_t{16} << 20;

  // All memtables together, those being flushed included: beyond it writes
  // wait until flushes catch up. The room above the flush trigger is how
  // far flushes may fall behind before writers notice. RocksDB's own
  // trigger, at seven eighths of the budget, flushes the oldest memtable
  // rather than the largest; it acts only if the one above does not.
  size_t memtable_budget_bytes = size_t{24} << 20;

  // The write-ahead log kept before the families that still hold its
  // oldest part are made to flush. The busy families mostly flush by size
  // before the log reaches this; what it catches is a family with few
  // writes (node state, a quiet inbox) that would otherwise keep every log
  // file since its last flush. When that flush ends, the log files it
  // frees are deleted at once, and deleting 256 MiB at once held up every
  // writer's syncs on the development machine's disk for 40-70 ms. Replaying
  // the log is also what a restart after a crash reads.
  uint64_t max_wal_bytes = uint64_t{64} << 20;

  // Table files kept open at once.
  int max_open_files = 256;

  // Values in the messages family at least this large are stored in blob
  // files rather than in the LSM tree: inbox records and sent states that
  // hold a receipt. Compactions, which the random message ids spread over
  // the whole family, then rewrite only keys and blob references.
  uint64_t min_blob_bytes = 512;

  // Blob garbage: the bytes of values overwritten or deleted that their
  // blob files still hold. Once it passes the first share of the family's
  // blob bytes, compactions move the live values out of the oldest blob
  // files so that those files go; once it falls below the second, they
  // stop. See Store::UpdateBlobCleaning().
  double blob_cleaning_start = 0.25;
  double blob_cleaning_stop = 0.125;
};

// What Store::UpdateBlobCleaning() found and did.
struct BlobCleaning {
  // In the family's blob files, and of those the garbage.
  uint64_t blob_bytes = 0;
  uint64_t garbage_bytes = 0;
  // Compactions move live values out of the oldest blob files.
  bool on = false;
  // This call switched it on or off.
  bool changed = false;
};

class Store;

// A set of writes to apply atomically across families, obtained from
// Store::NewBatch() and applied with Store::Commit(). Writes apply in the
// order they were added; nothing is visible before the commit. A Batch copies
// the keys and values given to it. It is not thread-safe, and must not
// outlive the Store that made it. A moved-from batch may only be assigned to
// or destroyed.
class Batch {
 public:
  Batch(Batch&& other) noexcept;
  Batch& operator=(Batch&& other) noexcept;
  ~Batch();

  void Put(Family family, std::string_view key, std::string_view value);
  void Delete(Family family, std::string_view key);
  // Deletes a key that was put exactly once since it was last deleted, and
  // never overwritten. When the put and this delete meet in a flush or a
  // compaction both vanish, instead of a tombstone that has to be carried
  // down to the last level. A key put twice must use Delete: here the
  // older value would come back.
  void DeleteWrittenOnce(Family family, std::string_view key);

  // Removes all writes added so far.
  void Clear();

  // The number of writes added.
  [[nodiscard]] size_t size() const;
  [[nodiscard]] bool empty() const { return size() == 0; }

  // The encoded size of the batch in bytes, roughly the sum of keys and
  // values.
  [[nodiscard]] size_t ByteSize() const;

 private:
  friend class Store;
  explicit Batch(const Store* store);

  const Store* store_;
  std::unique_ptr<rocksdb::WriteBatch> rep_;
};

// Iterates, in key order, the keys of one family that start with a prefix.
// The prefix is an upper bound given to RocksDB, so a cursor never reads
// past the end of its range. A cursor sees the store as it was when the
// cursor was made (an implicit snapshot). Not thread-safe; must not outlive
// its Store. A moved-from cursor is not Valid() and may only be assigned to
// or destroyed.
class Cursor {
 public:
  Cursor(Cursor&& other) noexcept;
  Cursor& operator=(Cursor&& other) noexcept;
  ~Cursor();

  // Positions at the first key in the range that is >= `target`. A target
  // before the prefix means the first key of the range.
  void Seek(std::string_view target);

  // Positions at the first key of the range.
  void SeekToFirst();

  // Whether the cursor is on an entry. False at the end of the range and
  // after an error; status() tells the two apart.
  [[nodiscard]] bool Valid() const;

  // The current entry; only while Valid(). The views stay good until the
  // cursor moves or is destroyed.
  [[nodiscard]] std::string_view key() const;
  [[nodiscard]] std::string_view value() const;

  // Moves to the next entry; only while Valid().
  void Next();

  // OK unless reading failed; check it once Valid() turns false.
  [[nodiscard]] absl::Status status() const;

 private:
  friend class Store;
  struct State;
  explicit Cursor(std::unique_ptr<State> state);

  // Behind a pointer so that the bounds RocksDB points at do not move when
  // the cursor does.
  std::unique_ptr<State> state_;
};

// A node's RocksDB database. All methods are thread-safe; RocksDB serializes
// writers internally and readers never block.
//
// Errors from RocksDB keep its text and map to absl codes: Corruption is
// DataLoss, IOError is Unavailable (ResourceExhausted when the disk is full),
// Busy and TryAgain are Unavailable, InvalidArgument stays InvalidArgument,
// anything else is Internal.
class Store {
 public:
  // Opens the store in `dir`, creating the directory (mode 0700, parents as
  // needed) and the database if they are missing, and adding any missing
  // column family.
  //
  // Errors, each naming the directory:
  //   FailedPrecondition: `dir` cannot be created, is not a directory, is
  //     locked by another process (or another Store in this one), was written
  //     by a newer schema version, or holds a database that is not a
  //     caselink store.
  //   PermissionDenied: `dir` cannot be created or written for lack of
  //     permission.
  //   DataLoss: the schema version is unreadable or the database is corrupt.
  // When the directory holds a newer or foreign store, nothing in it is
  // changed: it is inspected read-only before anything is written.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Store>> Open(
      const std::string& dir, const StoreOptions& options = {});

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Closes the database. Commits already returned are durable (when
  // sync_writes is on); memtables are not flushed, the log replays them at
  // the next open.
  ~Store();

  // The value stored under `key`, or nullopt if there is none.
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> Get(
      Family family, std::string_view key) const;

  // The values stored under `keys`, in their order, each nullopt where
  // there is none; one read of many keys costs less than a Get of each.
  // An error if any read fails.
  [[nodiscard]] absl::StatusOr<std::vector<std::optional<std::string>>> GetAll(
      Family family, const std::vector<std::string>& keys) const;

  // A new, empty batch for this store.
  [[nodiscard]] Batch NewBatch() const;

  // Applies every write in `batch` atomically, or none of them. With
  // sync_writes the log is on disk before this returns OK. On success the
  // batch is cleared for reuse; on failure it is left as it was. An empty
  // batch commits trivially. Past StoreOptions::memtable_flush_bytes it
  // starts a flush, which it does not wait for.
  [[nodiscard]] absl::Status Commit(Batch& batch);

  // A cursor over the keys of `family` starting with `prefix` (all keys when
  // empty), positioned at the first of them that is not below `start`.
  // Failures to read show in the cursor's status(). Give `start` rather
  // than seeking after: the first seek walks over every deleted key before
  // where it lands, and a queue deleted from its front holds many.
  [[nodiscard]] Cursor NewCursor(Family family, std::string_view prefix,
                                 std::string_view start = {}) const;

  // Calls `visit` for each entry of `family` whose key starts with `prefix`,
  // in key order, until it returns false. Returns the first read error.
  [[nodiscard]] absl::Status Scan(
      Family family, std::string_view prefix,
      const std::function<bool(std::string_view key, std::string_view value)>&
          visit) const;

  // The number of keys of `family` starting with `prefix`. It reads every
  // entry in the range, values included, so it is meant for tests and
  // operator tools, not for per-message bookkeeping.
  [[nodiscard]] absl::StatusOr<uint64_t> CountPrefix(
      Family family, std::string_view prefix) const;

  // Writes every family's memtable to table (and blob) files and waits for
  // it. Not needed for durability; useful before a backup and in tests.
  [[nodiscard]] absl::Status Flush();

  // When `family`'s memtable holds at least `min_writes` writes (puts and
  // deletes), flushes it and compacts the whole family, waiting for both;
  // returns whether it did. Deleted values that reached table or blob
  // files only give their space back once their deletes are flushed and
  // compacted with them, so a queue that drained and then went quiet would
  // otherwise keep that space until more writes came. The compaction
  // rewrites what the family still holds: call it when that is little.
  [[nodiscard]] absl::StatusOr<bool> ReclaimSpace(Family family,
                                                  uint64_t min_writes);

  // Switches the cleaning of the messages family's blob files on or off by
  // how much garbage they hold (StoreOptions::blob_cleaning_start and
  // blob_cleaning_stop); it starts off. Inbox records and sent states are
  // mostly written once, so cleaning all the time would copy, compaction
  // after compaction, values that nothing changed; left off for good, the
  // space of records rewritten and of attachment pieces deleted would stay
  // for as long as any live value shares their file. It reads only the
  // store's list of files, not the files: call it now and then.
  [[nodiscard]] absl::StatusOr<BlobCleaning> UpdateBlobCleaning();

  // The data directory, as given to Open().
  [[nodiscard]] const std::string& dir() const { return dir_; }

 private:
  friend class Batch;

  Store(std::string dir, const StoreOptions& options,
        std::shared_ptr<rocksdb::WriteBufferManager> write_buffers,
        rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles);

  [[nodiscard]] rocksdb::ColumnFamilyHandle* Handle(Family family) const;
  [[nodiscard]] absl::Status EnsureSchemaVersion();
  // Starts a flush of the family whose memtable being written is largest,
  // without waiting for it.
  void FlushLargestMemtable();

  const std::string dir_;
  const bool sync_writes_;
  const size_t memtable_flush_bytes_;
  const double blob_cleaning_start_;
  const double blob_cleaning_stop_;
  // Whether the messages family's blob files are being cleaned. Only
  // UpdateBlobCleaning() touches it.
  absl::Mutex cleaning_mu_;
  bool cleaning_ ABSL_GUARDED_BY(cleaning_mu_) = false;
  // The accounting of every memtable of this store; see StoreOptions.
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers_;
  std::unique_ptr<rocksdb::DB> db_;
  // One per Family in enum order, then the default family.
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

// Order-preserving integer encoding for keys: big-endian fixed width, so
// that bytewise key order is numeric order. For a descending field append
// ~value.

// Appends `value` to `out` as 8 big-endian bytes.
inline void AppendUint64BE(std::string* out, uint64_t value) {
  char bytes[8];
  for (int i = 7; i >= 0; --i) {
    bytes[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  out->append(bytes, sizeof(bytes));
}

// `value` as 8 big-endian bytes.
inline std::string Uint64BE(uint64_t value) {
  std::string out;
  AppendUint64BE(&out, value);
  return out;
}

// Reads 8 big-endian bytes from the front of `*input` and drops them from
// it. Returns nullopt, leaving `*input` alone, if fewer than 8 bytes remain.
[[nodiscard]] inline std::optional<uint64_t> ReadUint64BE(
    std::string_view* input) {
  if (input->size() < 8) return std::nullopt;
  uint64_t value = 0;
  for (size_t i = 0; i < 8; ++i) {
    value = (value << 8) | static_cast<unsigned char>((*input)[i]);
  }
  input->remove_prefix(8);
  return value;
}

// The smallest key greater than every key starting with `prefix`, for use
// as an exclusive upper bound; nullopt when there is none (an empty prefix,
// or one made only of 0xff bytes).
[[nodiscard]] std::optional<std::string> PrefixSuccessor(
    std::string_view prefix);

}  // namespace caselink::storage

#endif  // CASELINK_STORAGE_STORE_H_
