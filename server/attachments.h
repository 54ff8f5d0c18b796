// The attachments a node holds: files an operator uploads here to put in a
// referral, a supplement or an evidence result, and files that arrive from
// another node with one of those.
//
// An attachment is named by the digest of its content: SHA-256, or SM3 on a
// node that signs with SM2. Its record (store::v1::AttachmentRecord) is kept
// under "a/" + digest in the cases family and its bytes under "b/" + digest
// + offset in the messages family, whose large values RocksDB keeps in blob
// files.
//
// The bytes are kept in pieces of kAttachmentPieceBytes at offsets that are
// multiples of it (the last piece may be shorter), however the client cut
// its upload. Every node therefore keys the same content the same way, so a
// piece that arrives twice, whether from two transfers or from a transfer
// and an upload, lands on the same key and is counted once.
//
// Between nodes, each piece travels as its own sealed workflow message
// (WorkflowPayload.attachment_chunk). Messages are stored and forwarded
// with dedup by id, so a transfer cut by a broken link or a restarted relay
// resumes where it stopped, and pieces may arrive in any order.
#ifndef CASELINK_SERVER_ATTACHMENTS_H_
#define CASELINK_SERVER_ATTACHMENTS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "caselink/store/v1/records.pb.h"
#include "caselink/v1/cases.pb.h"
#include "caselink/v1/envelope.pb.h"
#include "core/crypto.h"
#include "core/log.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "server/committer.h"
#include "server/counters.h"
#include "server/workflow_config.h"
#include "storage/store.h"

namespace caselink::server {

// The size of a stored piece, and of each chunk a transfer or a download
// sends.
inline constexpr size_t kAttachmentPieceBytes = 256 * 1024;

// The most one upload message may carry.
inline constexpr size_t kMaxUploadChunkBytes = 1024 * 1024;

// The digest algorithm of a node that signs with `scheme`.
v1::DigestAlgorithm AttachmentDigestFor(SignatureScheme scheme);

struct AttachmentStoreDeps {
  // How this node signs, which decides how it addresses attachments.
  SignatureScheme signing_scheme = SignatureScheme::kEcdsaP256Sha256;
  const WorkflowConfig* config = nullptr;
  storage::Store* store = nullptr;
  // For recording, in a group of its own, content that arrived whole but
  // did not have its digest (the refused arrival cannot record it).
  Committer* committer = nullptr;
  Logger* log = nullptr;
  Counters* counters = nullptr;
};

// Thread-safe. Uploads write to the store directly, one synced batch per
// upload message; transfers and arrivals run on the committer's thread and
// stage their writes in its group. The two never write the same attachment
// at once: an arrival is asked to retry (Unavailable) while an upload of
// the same content is open here, and an upload is refused while the
// content is arriving from another node.
//
// Error messages name the request field at fault (start.size,
// chunk.offset, referral.attachments[1] ...) and never the content.
class AttachmentStore {
 public:
  // Everything the deps point to must outlive the store.
  explicit AttachmentStore(AttachmentStoreDeps deps);

  AttachmentStore(const AttachmentStore&) = delete;
  AttachmentStore& operator=(const AttachmentStore&) = delete;

  // SHA-256, or SM3 when this node signs with SM2.
  v1::DigestAlgorithm algorithm() const { return algorithm_; }

  // ---------------------------------------------------------------------
  // Uploads, from this node's operators.

  // One upload stream. Destroying it (when the stream ends, however it
  // ends) lets arrivals of the same content in again.
  class Upload {
   public:
    ~Upload();
    Upload(const Upload&) = delete;
    Upload& operator=(const Upload&) = delete;

    // The attachment as this node knows it.
    const v1::AttachmentRef& ref() const { return ref_; }
    // Bytes stored so far, contiguous from the start.
    uint64_t received() const { return received_; }
    bool complete() const { return complete_; }

   private:
    friend class AttachmentStore;
    Upload(AttachmentStore* owner, std::string digest)
        : owner_(owner), digest_(std::move(digest)) {}

    AttachmentStore* owner_;
    std::string digest_;
    v1::AttachmentRef ref_;
    uint64_t received_ = 0;
    bool complete_ = false;
  };

  // Opens an upload described by `start`, creating its record if this node
  // holds none; one that is already complete comes back complete, to be
  // answered at once. InvalidArgument naming start.digest (not kDigestSize
  // bytes), start.digest_algorithm (not this node's) or start.size (zero,
  // or over the node's limit, which the message gives); FailedPrecondition
  // when this node holds the digest with another size, or the content is
  // arriving from another node; Unavailable when the store fails.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Upload>> StartUpload(
      const v1::UploadAttachmentRequest::Start& start);

  // Stores `chunk` and the updated record in one synced batch. When the
  // last byte is in, the digest is computed over the stored bytes: if it
  // matches, the attachment is complete; if not, the upload is deleted and
  // InvalidArgument names start.digest. Otherwise FailedPrecondition naming
  // chunk.offset and where the upload stands, when it is not where the
  // upload stands (or the upload is already complete); InvalidArgument
  // naming chunk.digest (not the upload's), chunk.data (empty, over
  // kMaxUploadChunkBytes, or past the declared size).
  [[nodiscard]] absl::Status TakeUploadChunk(Upload& upload,
                                             const v1::AttachmentChunk& chunk);

  // How much of an attachment is here. For one arriving from another
  // node, `received` counts the distinct bytes in, not a contiguous run.
  // NotFound if this node holds none of it; InvalidArgument for a digest
  // that is not kDigestSize bytes.
  [[nodiscard]] absl::StatusOr<v1::GetUploadResponse> GetUpload(
      std::string_view digest) const;

  // ---------------------------------------------------------------------
  // Downloads, by this node's operators.

  // The record of a complete attachment, for a download to follow.
  // NotFound if unknown, FailedPrecondition if not all of it is here (with
  // how much is, and why it was refused if it was).
  [[nodiscard]] absl::StatusOr<store::v1::AttachmentRecord> OpenDownload(
      std::string_view digest) const;

  // The piece at `offset` (a multiple of kAttachmentPieceBytes below the
  // size) as a chunk of at most kAttachmentPieceBytes. DataLoss if the
  // store lacks it.
  [[nodiscard]] absl::StatusOr<v1::AttachmentChunk> ReadPiece(
      const v1::AttachmentRef& ref, uint64_t offset) const;

  // ---------------------------------------------------------------------
  // Transfers to and from other nodes, on the committer's thread.

  // Seals and stages one chunk message; the ledger supplies it, with the
  // recipient, kind, case id and priority of the message carrying the
  // references.
  using SendChunk =
      std::function<absl::Status(const v1::WorkflowPayload& payload)>;

  // Stages, through `send`, one message per piece of every attachment in
  // `refs`. FailedPrecondition naming `field`[i] (1-based, as the other
  // attachment checks) when one is not complete here, or its size or
  // algorithm differs from what the reference says; NotFound naming it
  // when this node holds none of it. The same attachment listed twice is
  // sent once.
  [[nodiscard]] absl::Status StageTransfer(
      GroupWriter& writer,
      const google::protobuf::RepeatedPtrField<v1::AttachmentRef>& refs,
      std::string_view field, const SendChunk& send);

  // Takes in one piece that arrived from `body.sender()`, staging it and
  // the record in the group. A piece already here is not counted again;
  // an attachment already complete ignores it. When the last byte is in,
  // the digest is checked: a match completes the attachment; a mismatch is
  // recorded (in a later group) and refused with DataLoss. Also refused:
  // InvalidArgument for a chunk that does not fit the layout or is over
  // this node's limit, FailedPrecondition when the sizes or algorithms of
  // two transfers disagree or the content was refused before, Unavailable
  // (so the sender retries) while an upload of the same content is open.
  [[nodiscard]] absl::Status TakeChunk(GroupWriter& writer,
                                       const v1::Body& body,
                                       const v1::AttachmentChunk& chunk);

 private:
  // The record under "a/" + digest, as the store holds it.
  absl::StatusOr<std::optional<store::v1::AttachmentRecord>> LoadRecord(
      std::string_view digest) const;
  // Stores `data` at `offset`, the end of what is stored, into `batch`,
  // completing a partial last piece first. `tail` is that partial piece.
  void AppendPieces(storage::Batch& batch, std::string_view digest,
                    uint64_t offset, std::string_view data,
                    const std::string& tail) const;
  // The digest of the stored bytes of `ref`.
  absl::StatusOr<std::string> DigestOfStored(const v1::AttachmentRef& ref,
                                             GroupWriter* writer) const;
  // Finishes an upload whose bytes are all in: complete, or deleted.
  absl::Status FinishUpload(Upload& upload, store::v1::AttachmentRecord record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(upload_mu_);
  // Queues a change that stores `refused` (its failure set), unless the
  // attachment has become complete meanwhile.
  void RecordRefusal(store::v1::AttachmentRecord refused);
  void EndUpload(const std::string& digest);

  const AttachmentStoreDeps deps_;
  const v1::DigestAlgorithm algorithm_;

  // Serializes upload writes, so that each reads the record it updates.
  mutable absl::Mutex upload_mu_;

  absl::Mutex mu_;
  // Open upload streams per digest.
  absl::flat_hash_map<std::string, int> uploading_ ABSL_GUARDED_BY(mu_);
  // Digests whose pieces are arriving, staged perhaps but not yet
  // complete; kept until complete.
  absl::flat_hash_set<std::string> arriving_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_ATTACHMENTS_H_
