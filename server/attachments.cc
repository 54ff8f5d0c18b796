#include "server/attachments.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::server {
namespace {

using storage::Family;
using store::v1::AttachmentRecord;

std::string RecordKey(std::string_view digest) { return Cat("a/", digest); }

std::string PieceKey(std::string_view digest, uint64_t offset) {
  std::string key = Cat("b/", digest);
  storage::AppendUint64BE(&key, offset);
  return key;
}

// Unspecified is what clients sent before the algorithm was named.
v1::DigestAlgorithm Effective(v1::DigestAlgorithm algorithm) {
  return algorithm == v1::DIGEST_ALGORITHM_UNSPECIFIED
             ? v1::DIGEST_ALGORITHM_SHA256
             : algorithm;
}

HashAlgorithm HashOf(v1::DigestAlgorithm algorithm) {
  return Effective(algorithm) == v1::DIGEST_ALGORITHM_SM3
             ? HashAlgorithm::kSm3
             : HashAlgorithm::kSha256;
}

std::string_view NameOf(v1::DigestAlgorithm algorithm) {
  return HashAlgorithmName(HashOf(algorithm));
}

bool Known(v1::DigestAlgorithm algorithm) {
  return algorithm == v1::DIGEST_ALGORITHM_SHA256 ||
         algorithm == v1::DIGEST_ALGORITHM_SM3;
}

// The length the piece at `offset` has in an attachment of `size` bytes.
uint64_t PieceLength(uint64_t size, uint64_t offset) {
  return std::min<uint64_t>(kAttachmentPieceBytes, size - offset);
}

absl::Status Unreadable(const absl::Status& status) {
  return absl::UnavailableError(
      Cat("cannot read an attachment: ", View(status.message())));
}

absl::StatusOr<std::optional<AttachmentRecord>> ParseRecord(
    const std::optional<std::string>& value) {
  if (!value.has_value()) return std::optional<AttachmentRecord>();
  AttachmentRecord record;
  if (!record.ParseFromString(*value)) {
    return absl::DataLossError("a stored attachment record is corrupt");
  }
  return std::optional<AttachmentRecord>(std::move(record));
}

absl::Status CheckDigestSize(std::string_view field, std::string_view digest) {
  if (digest.size() != kDigestSize) {
    return absl::InvalidArgumentError(
        Cat(field, ": ", kDigestSize, " bytes expected, not ", digest.size()));
  }
  return absl::OkStatus();
}

}  // namespace

v1::DigestAlgorithm AttachmentDigestFor(SignatureScheme scheme) {
  return HashAlgorithmOf(scheme) == HashAlgorithm::kSm3
             ? v1::DIGEST_ALGORITHM_SM3
             : v1::DIGEST_ALGORITHM_SHA256;
}

AttachmentStore::AttachmentStore(AttachmentStoreDeps deps)
    : deps_(deps), algorithm_(AttachmentDigestFor(deps.signing_scheme)) {}

AttachmentStore::Upload::~Upload() { owner_->EndUpload(digest_); }

void AttachmentStore::EndUpload(const std::string& digest) {
  absl::MutexLock lock(&mu_);
  auto it = uploading_.find(digest);
  if (it != uploading_.end() && --it->second == 0) uploading_.erase(it);
}

absl::StatusOr<std::optional<AttachmentRecord>> AttachmentStore::LoadRecord(
    std::string_view digest) const {
  auto value = deps_.store->Get(Family::kCases, RecordKey(digest));
  if (!value.ok()) return Unreadable(value.status());
  return ParseRecord(*value);
}

// ---------------------------------------------------------------------------
// Uploads

absl::StatusOr<std::unique_ptr<AttachmentStore::Upload>>
AttachmentStore::StartUpload(const v1::UploadAttachmentRequest::Start& start) {
  CASELINK_RETURN_IF_ERROR(CheckDigestSize("start.digest", start.digest()));
  const v1::DigestAlgorithm declared = Effective(start.digest_algorithm());
  if (declared != algorithm_) {
    return absl::InvalidArgumentError(
        Cat("start.digest_algorithm: this node addresses attachments by ",
            NameOf(algorithm_), ", not ", NameOf(declared)));
  }
  const uint64_t limit = deps_.config->max_attachment_bytes;
  if (start.size() == 0) {
    return absl::InvalidArgumentError(
        "start.size: an attachment holds at least one byte");
  }
  if (start.size() > limit) {
    return absl::InvalidArgumentError(Cat(
        "start.size: ", start.size(),
        " bytes is over this node's attachment limit of ", limit, " bytes"));
  }

  // Counted as open before anything is read, so that no arrival of the
  // same content slips in between the read and the write.
  std::unique_ptr<Upload> upload(new Upload(this, start.digest()));
  bool arriving;
  {
    absl::MutexLock lock(&mu_);
    ++uploading_[start.digest()];
    arriving = arriving_.contains(start.digest());
  }
  absl::MutexLock lock(&upload_mu_);
  CASELINK_ASSIGN_OR_RETURN(std::optional<AttachmentRecord> record,
                            LoadRecord(start.digest()));
  if (record.has_value() && record->complete()) {
    upload->ref_ = record->ref();
    upload->received_ = record->received();
    upload->complete_ = true;
    return upload;
  }
  if (arriving || (record.has_value() && !record->source().empty())) {
    return absl::FailedPreconditionError(
        "start.digest: this attachment is arriving from another node; it "
        "can be downloaded here once it is complete");
  }
  if (record.has_value()) {
    if (record->ref().size() != start.size()) {
      return absl::FailedPreconditionError(
          Cat("start.size: this node holds an upload of ", record->ref().size(),
              " bytes under start.digest, not ", start.size()));
    }
    upload->ref_ = record->ref();
    upload->received_ = record->received();
    return upload;
  }

  // A new upload: its record first, so that GetUpload knows the size.
  AttachmentRecord fresh;
  v1::AttachmentRef& ref = *fresh.mutable_ref();
  ref.set_name(start.name());
  ref.set_media_type(start.media_type());
  ref.set_size(start.size());
  ref.set_digest(start.digest());
  ref.set_digest_algorithm(algorithm_);
  storage::Batch batch = deps_.store->NewBatch();
  batch.Put(Family::kCases, RecordKey(start.digest()),
            fresh.SerializeAsString());
  CASELINK_RETURN_IF_ERROR(deps_.store->Commit(batch));
  upload->ref_ = ref;
  return upload;
}

void AttachmentStore::AppendPieces(storage::Batch& batch,
                                   std::string_view digest, uint64_t offset,
                                   std::string_view data,
                                   const std::string& tail) const {
  // A partial last piece is completed first, then whole pieces follow.
  std::string piece = tail;
  uint64_t piece_start = offset - tail.size();
  while (!data.empty()) {
    size_t take = std::min(kAttachmentPieceBytes - piece.size(), data.size());
    piece.append(data.data(), take);
    data.remove_prefix(take);
    batch.Put(Family::kMessages, PieceKey(digest, piece_start), piece);
    piece_start += piece.size();
    piece.clear();
  }
}

absl::Status AttachmentStore::TakeUploadChunk(
    Upload& upload, const v1::AttachmentChunk& chunk) {
  if (upload.complete_) {
    return absl::FailedPreconditionError(
        Cat("chunk.offset: the attachment is complete here (",
            upload.ref_.size(), " bytes); nothing more is taken"));
  }
  if (!chunk.digest().empty() && chunk.digest() != upload.digest_) {
    return absl::InvalidArgumentError(
        "chunk.digest: not the digest the upload started with");
  }
  const std::string& data = chunk.data();
  if (data.empty() || data.size() > kMaxUploadChunkBytes) {
    return absl::InvalidArgumentError(Cat("chunk.data: ", data.size(),
                                          " bytes; a chunk carries 1 to ",
                                          kMaxUploadChunkBytes));
  }

  absl::MutexLock lock(&upload_mu_);
  CASELINK_ASSIGN_OR_RETURN(std::optional<AttachmentRecord> record,
                            LoadRecord(upload.digest_));
  if (!record.has_value() || record->complete() || !record->source().empty()) {
    // Another stream of the same content finished it, or it failed and
    // was deleted.
    return absl::FailedPreconditionError(
        "chunk.offset: the upload is no longer open; ask GetUpload where it "
        "stands and start again");
  }
  const uint64_t received = record->received();
  const uint64_t size = record->ref().size();
  if (chunk.offset() != received) {
    return absl::FailedPreconditionError(Cat(
        "chunk.offset: ", chunk.offset(), " is not where the upload stands: ",
        received, " of ", size, " bytes are stored"));
  }
  if (data.size() > size - received) {
    return absl::InvalidArgumentError(
        Cat("chunk.data: ends at ", received + data.size(),
            ", past the declared size of ", size, " bytes"));
  }

  // The chunk and the record that counts it, in one synced batch.
  std::string tail;
  const uint64_t tail_bytes = received % kAttachmentPieceBytes;
  if (tail_bytes != 0) {
    auto value = deps_.store->Get(
        Family::kMessages, PieceKey(upload.digest_, received - tail_bytes));
    if (!value.ok()) return Unreadable(value.status());
    if (!value->has_value() || (*value)->size() != tail_bytes) {
      return absl::DataLossError("a stored piece of the upload is missing");
    }
    tail = std::move(**value);
  }
  storage::Batch batch = deps_.store->NewBatch();
  AppendPieces(batch, upload.digest_, received, data, tail);
  record->set_received(received + data.size());
  batch.Put(Family::kCases, RecordKey(upload.digest_),
            record->SerializeAsString());
  CASELINK_RETURN_IF_ERROR(deps_.store->Commit(batch));
  upload.received_ = record->received();

  if (record->received() < size) return absl::OkStatus();
  return FinishUpload(upload, *std::move(record));
}

absl::Status AttachmentStore::FinishUpload(Upload& upload,
                                           AttachmentRecord record) {
  const v1::AttachmentRef& ref = record.ref();
  CASELINK_ASSIGN_OR_RETURN(std::string digest, DigestOfStored(ref, nullptr));
  storage::Batch batch = deps_.store->NewBatch();
  if (digest == upload.digest_) {
    record.set_complete(true);
    batch.Put(Family::kCases, RecordKey(upload.digest_),
              record.SerializeAsString());
    CASELINK_RETURN_IF_ERROR(deps_.store->Commit(batch));
    upload.complete_ = true;
    upload.ref_ = ref;
    deps_.counters->Add("attachments_uploaded");
    deps_.log->Info(
        "attachment_uploaded",
        {{"digest", HexEncode(upload.digest_)}, {"bytes", Cat(ref.size())}});
    return absl::OkStatus();
  }

  // Content that is not what it claims to be is not kept: the upload
  // starts over from nothing.
  for (uint64_t offset = 0; offset < ref.size();
       offset += kAttachmentPieceBytes) {
    batch.Delete(Family::kMessages, PieceKey(upload.digest_, offset));
  }
  batch.Delete(Family::kCases, RecordKey(upload.digest_));
  CASELINK_RETURN_IF_ERROR(deps_.store->Commit(batch));
  upload.received_ = 0;
  deps_.counters->Add("attachments_refused_digest");
  deps_.log->Warning("attachment_upload_discarded",
                     {{"digest", HexEncode(upload.digest_)},
                      {"reason", "content does not have the digest"},
                      {"next", "the client must upload it again"}});
  return absl::InvalidArgumentError(
      Cat("start.digest: the ", ref.size(), " bytes sent do not have ",
          NameOf(ref.digest_algorithm()), " digest ", HexEncode(upload.digest_),
          "; the upload is discarded"));
}

absl::StatusOr<std::string> AttachmentStore::DigestOfStored(
    const v1::AttachmentRef& ref, GroupWriter* writer) const {
  CASELINK_ASSIGN_OR_RETURN(Hasher hasher,
                            Hasher::Create(HashOf(ref.digest_algorithm())));
  for (uint64_t offset = 0; offset < ref.size();
       offset += kAttachmentPieceBytes) {
    const std::string key = PieceKey(ref.digest(), offset);
    absl::StatusOr<std::optional<std::string>> value =
        writer != nullptr ? writer->Get(Family::kMessages, key)
                          : deps_.store->Get(Family::kMessages, key);
    if (!value.ok()) return Unreadable(value.status());
    if (!value->has_value() ||
        (*value)->size() != PieceLength(ref.size(), offset)) {
      return absl::DataLossError(Cat("attachment ", HexEncode(ref.digest()),
                                     " lacks its piece at ", offset));
    }
    hasher.Update(**value);
  }
  return hasher.Finish();
}

absl::StatusOr<v1::GetUploadResponse> AttachmentStore::GetUpload(
    std::string_view digest) const {
  CASELINK_RETURN_IF_ERROR(CheckDigestSize("digest", digest));
  CASELINK_ASSIGN_OR_RETURN(std::optional<AttachmentRecord> record,
                            LoadRecord(digest));
  if (!record.has_value()) {
    return absl::NotFoundError("digest: no attachment with it is here");
  }
  v1::GetUploadResponse response;
  response.set_received(record->received());
  response.set_size(record->ref().size());
  response.set_complete(record->complete());
  return response;
}

// ---------------------------------------------------------------------------
// Downloads

absl::StatusOr<AttachmentRecord> AttachmentStore::OpenDownload(
    std::string_view digest) const {
  CASELINK_RETURN_IF_ERROR(CheckDigestSize("digest", digest));
  CASELINK_ASSIGN_OR_RETURN(std::optional<AttachmentRecord> record,
                            LoadRecord(digest));
  if (!record.has_value()) {
    return absl::NotFoundError("digest: no attachment with it is here");
  }
  if (!record->complete()) {
    std::string why =
        record->failure().empty() ? "" : Cat(" (", record->failure(), ")");
    return absl::FailedPreconditionError(
        Cat("digest: only ", record->received(), " of ", record->ref().size(),
            " bytes of this attachment are here", why));
  }
  return *std::move(record);
}

absl::StatusOr<v1::AttachmentChunk> AttachmentStore::ReadPiece(
    const v1::AttachmentRef& ref, uint64_t offset) const {
  auto value =
      deps_.store->Get(Family::kMessages, PieceKey(ref.digest(), offset));
  if (!value.ok()) return Unreadable(value.status());
  if (!value->has_value()) {
    return absl::DataLossError(Cat("attachment ", HexEncode(ref.digest()),
                                   " lacks its piece at ", offset));
  }
  v1::AttachmentChunk chunk;
  chunk.set_digest(ref.digest());
  chunk.set_offset(offset);
  chunk.set_total_size(ref.size());
  chunk.set_digest_algorithm(Effective(ref.digest_algorithm()));
  *chunk.mutable_data() = std::move(**value);
  return chunk;
}

// ---------------------------------------------------------------------------
// Transfers

absl::Status AttachmentStore::StageTransfer(
    GroupWriter& writer,
    const google::protobuf::RepeatedPtrField<v1::AttachmentRef>& refs,
    std::string_view field, const SendChunk& send) {
  absl::flat_hash_set<std::string> staged;
  for (int i = 0; i < refs.size(); ++i) {
    const v1::AttachmentRef& ref = refs[i];
    const std::string name = Cat(field, "[", i + 1, "]");
    CASELINK_RETURN_IF_ERROR(
        CheckDigestSize(Cat(name, ".digest"), ref.digest()));
    if (!staged.insert(ref.digest()).second) continue;

    auto value = writer.Get(Family::kCases, RecordKey(ref.digest()));
    if (!value.ok()) return Unreadable(value.status());
    CASELINK_ASSIGN_OR_RETURN(std::optional<AttachmentRecord> record,
                              ParseRecord(*value));
    if (!record.has_value()) {
      return absl::NotFoundError(
          Cat(name,
              ": no attachment with this digest is here; upload it "
              "first"));
    }
    const v1::AttachmentRef& mine = record->ref();
    if (!record->complete()) {
      return absl::FailedPreconditionError(
          Cat(name, ": only ", record->received(), " of ", mine.size(),
              " bytes of it are here; finish the upload first"));
    }
    if (ref.size() != 0 && ref.size() != mine.size()) {
      return absl::FailedPreconditionError(
          Cat(name, ".size: ", ref.size(),
              " bytes, but the attachment here "
              "has ",
              mine.size()));
    }
    if (ref.digest_algorithm() != v1::DIGEST_ALGORITHM_UNSPECIFIED &&
        ref.digest_algorithm() != Effective(mine.digest_algorithm())) {
      return absl::FailedPreconditionError(
          Cat(name, ".digest_algorithm: the attachment here is addressed by ",
              NameOf(mine.digest_algorithm())));
    }

    // One sealed message per piece, read back from the store.
    for (uint64_t offset = 0; offset < mine.size();
         offset += kAttachmentPieceBytes) {
      auto piece =
          writer.Get(Family::kMessages, PieceKey(mine.digest(), offset));
      if (!piece.ok()) return Unreadable(piece.status());
      if (!piece->has_value()) {
        return absl::DataLossError(Cat(name, ": the piece at ", offset,
                                       " is missing from this node's store"));
      }
      v1::WorkflowPayload payload;
      v1::AttachmentChunk& chunk = *payload.mutable_attachment_chunk();
      chunk.set_digest(mine.digest());
      chunk.set_offset(offset);
      chunk.set_total_size(mine.size());
      chunk.set_digest_algorithm(Effective(mine.digest_algorithm()));
      *chunk.mutable_data() = std::move(**piece);
      CASELINK_RETURN_IF_ERROR(send(payload));
    }
    deps_.counters->Add("attachments_sent");
  }
  return absl::OkStatus();
}

absl::Status AttachmentStore::TakeChunk(GroupWriter& writer,
                                        const v1::Body& body,
                                        const v1::AttachmentChunk& chunk) {
  // The layout is the same on every node, so a chunk that does not fit it
  // is refused rather than stored under a key no transfer would use.
  const std::string& digest = chunk.digest();
  CASELINK_RETURN_IF_ERROR(CheckDigestSize("attachment chunk digest", digest));
  if (!Known(chunk.digest_algorithm())) {
    return absl::InvalidArgumentError(
        "attachment chunk: no known digest algorithm");
  }
  const uint64_t total = chunk.total_size();
  const uint64_t limit = deps_.config->max_attachment_bytes;
  if (total == 0 || total > limit) {
    return absl::InvalidArgumentError(
        Cat("attachment chunk: an attachment of ", total,
            " bytes; this node takes 1 to ", limit));
  }
  if (chunk.offset() % kAttachmentPieceBytes != 0 || chunk.offset() >= total ||
      chunk.data().size() != PieceLength(total, chunk.offset())) {
    return absl::InvalidArgumentError(
        Cat("attachment chunk: ", chunk.data().size(), " bytes at ",
            chunk.offset(), " do not fit an attachment of ", total, " bytes"));
  }
  const std::string hex = HexEncode(digest);
  {
    absl::MutexLock lock(&mu_);
    if (uploading_.contains(digest)) {
      return absl::UnavailableError(
          Cat("attachment ", hex,
              " is being uploaded at this node; retry "
              "later"));
    }
    arriving_.insert(digest);
  }

  auto value = writer.Get(Family::kCases, RecordKey(digest));
  if (!value.ok()) return Unreadable(value.status());
  CASELINK_ASSIGN_OR_RETURN(std::optional<AttachmentRecord> record,
                            ParseRecord(*value));
  if (!record.has_value()) {
    record.emplace();
    record->mutable_ref()->set_size(total);
    record->mutable_ref()->set_digest(digest);
    record->mutable_ref()->set_digest_algorithm(chunk.digest_algorithm());
  }
  if (record->complete()) {
    // The same attachment sent again, with another case or a supplement.
    absl::MutexLock lock(&mu_);
    arriving_.erase(digest);
    return absl::OkStatus();
  }
  if (!record->failure().empty()) {
    return absl::FailedPreconditionError(
        Cat("attachment ", hex, " was refused here: ", record->failure()));
  }
  if (record->ref().size() != total ||
      Effective(record->ref().digest_algorithm()) != chunk.digest_algorithm()) {
    return absl::FailedPreconditionError(
        Cat("attachment chunk: attachment ", hex, " is held here as ",
            record->ref().size(), " bytes by ",
            NameOf(record->ref().digest_algorithm()), ", not ", total,
            " bytes by ", NameOf(chunk.digest_algorithm())));
  }
  // An upload left unfinished here becomes this transfer: its pieces are
  // the same bytes at the same keys.
  if (record->source().empty()) record->set_source(body.sender());

  // A piece is counted once. A shorter one under the same key is the
  // partial end of an unfinished upload, which this piece completes.
  const std::string key = PieceKey(digest, chunk.offset());
  auto existing = writer.Get(Family::kMessages, key);
  if (!existing.ok()) return Unreadable(existing.status());
  const uint64_t held = existing->has_value() ? (*existing)->size() : 0;
  const uint64_t before = record->received();
  if (held < chunk.data().size()) {
    writer.Put(Family::kMessages, key, chunk.data());
    record->set_received(before + chunk.data().size() - held);
  }
  if (record->received() < total) {
    writer.Put(Family::kCases, RecordKey(digest), record->SerializeAsString());
    return absl::OkStatus();
  }

  // Every byte is in: the content must have its digest.
  CASELINK_ASSIGN_OR_RETURN(std::string actual,
                            DigestOfStored(record->ref(), &writer));
  if (actual != digest) {
    std::string failure =
        Cat("the ", total, " bytes from ", body.sender(), " do not have ",
            NameOf(chunk.digest_algorithm()), " digest ", hex);
    deps_.counters->Add("attachments_refused_digest");
    deps_.log->Warning("attachment_refused",
                       {{"digest", hex},
                        {"from", body.sender()},
                        {"reason", "content does not have its digest"},
                        {"next", "the attachment stays incomplete here"}});
    // As it stood before this piece, which is refused with the message.
    AttachmentRecord refused = *record;
    refused.set_received(before);
    refused.set_failure(failure);
    RecordRefusal(std::move(refused));
    return absl::DataLossError(Cat("attachment ", hex, ": ", failure));
  }
  record->set_complete(true);
  writer.Put(Family::kCases, RecordKey(digest), record->SerializeAsString());
  {
    absl::MutexLock lock(&mu_);
    arriving_.erase(digest);
  }
  deps_.counters->Add("attachments_received");
  deps_.log->Info(
      "attachment_received",
      {{"digest", hex}, {"from", body.sender()}, {"bytes", Cat(total)}});
  return absl::OkStatus();
}

void AttachmentStore::RecordRefusal(AttachmentRecord refused) {
  // The refused arrival's own writes are dropped with it, so the mark goes
  // in a group of its own. It keeps the count of what was stored before;
  // those pieces stay for an operator to look at.
  deps_.committer->Apply(
      [refused](GroupWriter& writer) -> absl::Status {
        const std::string key = RecordKey(refused.ref().digest());
        auto value = writer.Get(Family::kCases, key);
        if (!value.ok()) return Unreadable(value.status());
        CASELINK_ASSIGN_OR_RETURN(std::optional<AttachmentRecord> record,
                                  ParseRecord(*value));
        if (record.has_value() && record->complete()) return absl::OkStatus();
        AttachmentRecord marked = record.value_or(refused);
        marked.set_failure(refused.failure());
        if (marked.source().empty()) marked.set_source(refused.source());
        writer.Put(Family::kCases, key, marked.SerializeAsString());
        return absl::OkStatus();
      },
      [this, digest = refused.ref().digest()](const absl::Status& status) {
        if (!status.ok()) {
          deps_.log->Error("attachment_refusal_not_recorded",
                           {{"digest", HexEncode(digest)},
                            {"error", status.ToString()},
                            {"next", "the next copy is refused again"}});
        }
      });
}

}  // namespace caselink::server
