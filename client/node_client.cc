#include "client/node_client.h"

#include <optional>
#include <string>
#include <utility>

#include "client/attachment_file.h"
#include "client/unary_call.h"
#include "core/crypto.h"
#include "core/grpc_status.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "core/tls.h"

namespace caselink::client {
namespace {

using CaseStub = v1::CaseService::Stub;

void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

}  // namespace

NodeClient::NodeClient(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)),
      stub_(v1::OperatorService::NewStub(channel_)),
      case_stub_(v1::CaseService::NewStub(channel_)) {}

absl::StatusOr<std::unique_ptr<NodeClient>> NodeClient::Connect(
    const ClientConfig& config) {
  CASELINK_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                            ChannelFor(config));
  return std::unique_ptr<NodeClient>(new NodeClient(std::move(channel)));
}

std::unique_ptr<NodeClient> NodeClient::ForChannel(
    std::shared_ptr<grpc::Channel> channel) {
  return std::unique_ptr<NodeClient>(new NodeClient(std::move(channel)));
}

absl::StatusOr<v1::GetStatusResponse> NodeClient::GetStatus(
    absl::Duration timeout) {
  return UnaryCall(*stub_, &v1::OperatorService::Stub::GetStatus,
                   v1::GetStatusRequest(), timeout);
}

absl::StatusOr<v1::SubmitMessageResponse> NodeClient::Submit(
    const v1::SubmitMessageRequest& request, absl::Duration timeout) {
  return UnaryCall(*stub_, &v1::OperatorService::Stub::SubmitMessage, request,
                   timeout);
}

absl::StatusOr<v1::SubmitMessagesResponse> NodeClient::SubmitBatch(
    const v1::SubmitMessagesRequest& request, absl::Duration timeout) {
  return UnaryCall(*stub_, &v1::OperatorService::Stub::SubmitMessages, request,
                   timeout);
}

absl::StatusOr<v1::ListSentResponse> NodeClient::ListSent(
    uint32_t page_size, std::string_view page_token, absl::Duration timeout) {
  v1::ListSentRequest request;
  request.set_page_size(page_size);
  request.set_page_token(std::string(page_token));
  return UnaryCall(*stub_, &v1::OperatorService::Stub::ListSent, request,
                   timeout);
}

absl::StatusOr<v1::GetSentResponse> NodeClient::GetSent(
    std::string_view message_id, absl::Duration timeout) {
  v1::GetSentRequest request;
  request.set_message_id(std::string(message_id));
  return UnaryCall(*stub_, &v1::OperatorService::Stub::GetSent, request,
                   timeout);
}

absl::StatusOr<v1::ListInboxResponse> NodeClient::ListInbox(
    uint32_t page_size, std::string_view page_token, bool unhandled_only,
    absl::Duration timeout) {
  v1::ListInboxRequest request;
  request.set_page_size(page_size);
  request.set_page_token(std::string(page_token));
  request.set_unhandled_only(unhandled_only);
  return UnaryCall(*stub_, &v1::OperatorService::Stub::ListInbox, request,
                   timeout);
}

absl::StatusOr<v1::GetInboxMessageResponse> NodeClient::GetInboxMessage(
    std::string_view message_id, absl::Duration timeout) {
  v1::GetInboxMessageRequest request;
  request.set_message_id(std::string(message_id));
  return UnaryCall(*stub_, &v1::OperatorService::Stub::GetInboxMessage, request,
                   timeout);
}

absl::Status NodeClient::MarkHandled(std::string_view message_id,
                                     absl::Duration timeout) {
  v1::MarkHandledRequest request;
  request.set_message_id(std::string(message_id));
  return UnaryCall(*stub_, &v1::OperatorService::Stub::MarkHandled, request,
                   timeout)
      .status();
}

// ---------------------------------------------------------------------------
// Cases

absl::StatusOr<v1::CaseResponse> NodeClient::CreateReferral(
    const v1::CreateReferralRequest& request, absl::Duration timeout) {
  return UnaryCall(*case_stub_, &CaseStub::CreateReferral, request, timeout);
}

absl::StatusOr<v1::CaseResponse> NodeClient::StepReferral(
    std::string_view case_id, const v1::ReferralStep& step,
    absl::Duration timeout) {
  v1::StepReferralRequest request;
  request.set_case_id(std::string(case_id));
  *request.mutable_step() = step;
  return UnaryCall(*case_stub_, &CaseStub::StepReferral, request, timeout);
}

absl::StatusOr<v1::GetCaseResponse> NodeClient::GetCase(
    std::string_view case_id, absl::Duration timeout) {
  v1::GetCaseRequest request;
  request.set_case_id(std::string(case_id));
  return UnaryCall(*case_stub_, &CaseStub::GetCase, request, timeout);
}

absl::StatusOr<v1::ListCasesResponse> NodeClient::ListCases(
    uint32_t page_size, std::string_view page_token, absl::Duration timeout) {
  v1::ListCasesRequest request;
  request.set_page_size(page_size);
  request.set_page_token(std::string(page_token));
  return UnaryCall(*case_stub_, &CaseStub::ListCases, request, timeout);
}

absl::StatusOr<v1::EvidenceResponse> NodeClient::RequestEvidence(
    const v1::RequestEvidenceRequest& request, absl::Duration timeout) {
  return UnaryCall(*case_stub_, &CaseStub::RequestEvidence, request, timeout);
}

absl::StatusOr<v1::EvidenceResponse> NodeClient::StepEvidence(
    std::string_view evidence_id, const v1::EvidenceStep& step,
    absl::Duration timeout) {
  v1::StepEvidenceRequest request;
  request.set_evidence_id(std::string(evidence_id));
  *request.mutable_step() = step;
  return UnaryCall(*case_stub_, &CaseStub::StepEvidence, request, timeout);
}

absl::StatusOr<v1::EvidenceResponse> NodeClient::GetEvidence(
    std::string_view evidence_id, absl::Duration timeout) {
  v1::GetEvidenceRequest request;
  request.set_evidence_id(std::string(evidence_id));
  return UnaryCall(*case_stub_, &CaseStub::GetEvidence, request, timeout);
}

absl::StatusOr<v1::ListEvidenceResponse> NodeClient::ListEvidence(
    uint32_t page_size, std::string_view page_token, absl::Duration timeout) {
  v1::ListEvidenceRequest request;
  request.set_page_size(page_size);
  request.set_page_token(std::string(page_token));
  return UnaryCall(*case_stub_, &CaseStub::ListEvidence, request, timeout);
}

absl::StatusOr<v1::ListDueResponse> NodeClient::ListDue(
    absl::Duration within, bool subtree, absl::Duration timeout) {
  if (within < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        Cat("cannot look back: within is ", absl::FormatDuration(within)));
  }
  v1::ListDueRequest request;
  request.set_within_seconds(static_cast<uint64_t>(
      absl::ToInt64Seconds(absl::Ceil(within, absl::Seconds(1)))));
  request.set_subtree(subtree);
  return UnaryCall(*case_stub_, &CaseStub::ListDue, request, timeout);
}

// ---------------------------------------------------------------------------
// Attachments

absl::StatusOr<v1::GetUploadResponse> NodeClient::GetUpload(
    std::string_view digest, absl::Duration timeout) {
  v1::GetUploadRequest request;
  request.set_digest(std::string(digest));
  return UnaryCall(*case_stub_, &CaseStub::GetUpload, request, timeout);
}

absl::StatusOr<v1::AttachmentRef> NodeClient::UploadAttachment(
    const std::string& path, absl::Duration timeout) {
  // The node says how it addresses attachments; hashing the file any other
  // way would only be refused.
  CASELINK_ASSIGN_OR_RETURN(v1::GetStatusResponse status, GetStatus(timeout));
  const HashAlgorithm algorithm =
      status.attachment_digest() == v1::DIGEST_ALGORITHM_SM3
          ? HashAlgorithm::kSm3
          : HashAlgorithm::kSha256;
  CASELINK_ASSIGN_OR_RETURN(v1::AttachmentRef file,
                            DescribeFile(path, algorithm));
  bool complete = false;
  CASELINK_ASSIGN_OR_RETURN(uint64_t offset,
                            ResumePoint(file, &complete, timeout));
  if (complete) return file;
  return SendAttachment(path, file, offset, timeout);
}

absl::StatusOr<uint64_t> NodeClient::ResumePoint(const v1::AttachmentRef& file,
                                                 bool* complete,
                                                 absl::Duration timeout) {
  absl::StatusOr<v1::GetUploadResponse> upload =
      GetUpload(file.digest(), timeout);
  if (absl::IsNotFound(upload.status())) return 0;
  if (!upload.ok()) return upload.status();

  // The digest names the content, so a node that holds more of it than the
  // file has, or another size for it, is not talking about this file.
  if (upload->received() > file.size() ||
      (upload->size() != 0 && upload->size() != file.size())) {
    return absl::FailedPreconditionError(
        Cat("the node holds ", upload->received(), " of ", upload->size(),
            " bytes under the digest of \"", file.name(), "\", which has ",
            file.size(), "; it cannot be resumed"));
  }
  *complete = upload->complete();
  return upload->received();
}

absl::StatusOr<v1::AttachmentRef> NodeClient::SendAttachment(
    const std::string& path, const v1::AttachmentRef& file, uint64_t offset,
    absl::Duration timeout) {
  CASELINK_ASSIGN_OR_RETURN(FileReader reader, FileReader::Open(path));
  CASELINK_RETURN_IF_ERROR(reader.Seek(offset));

  grpc::ClientContext context;
  SetDeadline(context, timeout);
  v1::UploadAttachmentResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::UploadAttachmentRequest>> writer =
      case_stub_->UploadAttachment(&context, &response);

  // The Start message, then the pieces from where the node stands. A
  // failed Write means the stream is broken; Finish says why.
  v1::UploadAttachmentRequest message;
  v1::UploadAttachmentRequest::Start& start = *message.mutable_start();
  start.set_name(file.name());
  start.set_media_type(file.media_type());
  start.set_size(file.size());
  start.set_digest(file.digest());
  start.set_digest_algorithm(file.digest_algorithm());
  bool open = writer->Write(message);
  absl::Status read_status;
  while (open) {
    v1::AttachmentChunk& chunk = *message.mutable_chunk();
    read_status = reader.Read(kAttachmentChunkSize, chunk.mutable_data());
    if (!read_status.ok() || chunk.data().empty()) break;
    chunk.set_digest(file.digest());
    chunk.set_offset(offset);
    chunk.set_total_size(file.size());
    offset += chunk.data().size();
    open = writer->Write(message);
  }
  if (!read_status.ok()) {
    context.TryCancel();
    // The read error is the one to report, not the cancellation.
    static_cast<void>(writer->Finish());
    return read_status;
  }
  if (open) writer->WritesDone();
  CASELINK_RETURN_IF_ERROR(FromGrpcStatus(writer->Finish()));

  if (response.attachment().digest() != file.digest()) {
    return absl::DataLossError(Cat("the node stored \"", file.name(),
                                   "\" under digest ",
                                   HexEncode(response.attachment().digest()),
                                   ", not ", HexEncode(file.digest())));
  }
  return response.attachment();
}

absl::StatusOr<uint64_t> NodeClient::DownloadAttachment(
    std::string_view digest, const std::string& out_path,
    absl::Duration timeout) {
  CASELINK_ASSIGN_OR_RETURN(std::unique_ptr<DownloadFile> out,
                            DownloadFile::Create(out_path, digest));
  grpc::ClientContext context;
  SetDeadline(context, timeout);
  v1::DownloadAttachmentRequest request;
  request.set_digest(std::string(digest));
  std::unique_ptr<grpc::ClientReader<v1::DownloadAttachmentResponse>> reader =
      case_stub_->DownloadAttachment(&context, request);

  // Pieces must arrive in order, each where the last one ended, and add up
  // to no more than the size the node announced.
  v1::DownloadAttachmentResponse piece;
  absl::Status written;
  std::optional<uint64_t> total_size;
  while (written.ok() && reader->Read(&piece)) {
    const v1::AttachmentChunk& chunk = piece.chunk();
    if (!total_size.has_value()) total_size = chunk.total_size();
    if (chunk.offset() != out->size()) {
      written =
          absl::DataLossError(Cat("the node sent bytes at ", chunk.offset(),
                                  " where ", out->size(), " were expected"));
    } else if (chunk.total_size() != *total_size ||
               out->size() + chunk.data().size() > *total_size) {
      written = absl::DataLossError(Cat("the node sent more than the ",
                                        *total_size, " bytes it announced"));
    } else if (!chunk.digest().empty() && chunk.digest() != digest) {
      written = absl::DataLossError("the node sent another attachment");
    } else {
      written = out->Append(chunk.data());
    }
  }
  if (!written.ok()) {
    context.TryCancel();
    // The local error is the one to report, not the cancellation.
    static_cast<void>(reader->Finish());
    return written;
  }
  CASELINK_RETURN_IF_ERROR(FromGrpcStatus(reader->Finish()));
  if (total_size.has_value() && out->size() != *total_size) {
    return absl::DataLossError(
        Cat("the node sent ", out->size(), " of ", *total_size, " bytes"));
  }
  CASELINK_RETURN_IF_ERROR(out->Commit());
  return out->size();
}

}  // namespace caselink::client
