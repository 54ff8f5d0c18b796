// A client of one node's operator and case services, used by the caselink
// CLI and by programs that submit and follow messages and work cases.
#ifndef CASELINK_CLIENT_NODE_CLIENT_H_
#define CASELINK_CLIENT_NODE_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "caselink/v1/cases.grpc.pb.h"
#include "caselink/v1/operator.grpc.pb.h"
#include "client/client_config.h"

namespace caselink::client {

// Every call is one RPC with its own deadline, `timeout` from the moment it
// is made. Errors carry the gRPC status of the call unchanged: Unavailable
// when the node cannot be reached, DeadlineExceeded when it did not answer
// in time, PermissionDenied when the certificate is not an operator's of
// this node, and whatever the node reports (InvalidArgument, NotFound, ...)
// with the node's own message.
//
// Message ids are the 16 raw bytes of envelope.proto, not their hex form;
// the node answers InvalidArgument for any other length. Attachment digests
// are likewise raw (32 bytes); case and evidence ids are text.
//
// Thread-safe: calls may be made from many threads at once.
class NodeClient {
 public:
  // Reads the certificate, key and CA bundle the config names (errors name
  // the file) and prepares a channel; no connection is made yet.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<NodeClient>> Connect(
      const ClientConfig& config);

  // A client over a channel the caller made, such as an in-process one to a
  // fake node in a test. No certificate is checked here.
  static std::unique_ptr<NodeClient> ForChannel(
      std::shared_ptr<grpc::Channel> channel);

  // The channel, for stubs of other services on the same connection.
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // The node's identity, its peer links and its counters.
  [[nodiscard]] absl::StatusOr<v1::GetStatusResponse> GetStatus(
      absl::Duration timeout = absl::Seconds(10));

  // Hands a message to the node. An answer means the node stored the signed
  // envelope durably; delivery follows later (see GetSent). The node checks
  // the request: InvalidArgument for a bad recipient, kind or case id,
  // ResourceExhausted for a payload over its limit.
  [[nodiscard]] absl::StatusOr<v1::SubmitMessageResponse> Submit(
      const v1::SubmitMessageRequest& request,
      absl::Duration timeout = absl::Seconds(10));

  // Hands over up to 1,000 messages in one call. Each is checked and stored
  // as Submit does it, and its result says whether it was accepted (with its
  // id) or refused and why; an error of the call itself (InvalidArgument for
  // too many messages, say) means none was taken.
  [[nodiscard]] absl::StatusOr<v1::SubmitMessagesResponse> SubmitBatch(
      const v1::SubmitMessagesRequest& request,
      absl::Duration timeout = absl::Seconds(30));

  // One page of the messages sent from this node, oldest first. A page_size
  // of 0 lets the node choose; an empty token asks for the first page. The
  // response's next_page_token is empty on the last page.
  [[nodiscard]] absl::StatusOr<v1::ListSentResponse> ListSent(
      uint32_t page_size = 0, std::string_view page_token = {},
      absl::Duration timeout = absl::Seconds(10));

  // Where one sent message stands. NotFound if it was not sent from this
  // node.
  [[nodiscard]] absl::StatusOr<v1::GetSentResponse> GetSent(
      std::string_view message_id, absl::Duration timeout = absl::Seconds(10));

  // One page of the messages that arrived here, in order of arrival; pages
  // as for ListSent. With `unhandled_only`, those marked handled are left
  // out (a page may then hold fewer than page_size messages, or none, and
  // still have a next page).
  [[nodiscard]] absl::StatusOr<v1::ListInboxResponse> ListInbox(
      uint32_t page_size = 0, std::string_view page_token = {},
      bool unhandled_only = false, absl::Duration timeout = absl::Seconds(10));

  // One arrived message with its envelope and its payload in clear.
  // NotFound if no such message arrived at this node.
  [[nodiscard]] absl::StatusOr<v1::GetInboxMessageResponse> GetInboxMessage(
      std::string_view message_id, absl::Duration timeout = absl::Seconds(10));

  // Marks an arrived message handled. Marking it again is OK. NotFound if
  // no such message arrived at this node.
  [[nodiscard]] absl::Status MarkHandled(
      std::string_view message_id, absl::Duration timeout = absl::Seconds(10));

  // -------------------------------------------------------------------------
  // Cases (caselink/v1/cases.proto). A referral's steps and an evidence
  // request's steps are checked by the node against the state it holds:
  // FailedPrecondition when the step does not fit that state (accepting a
  // closed case, say) or belongs to the other side, InvalidArgument for a
  // step with a missing or malformed field, NotFound for an id the node
  // does not know.

  // Opens a case at this node and sends the referral to `handler`. An
  // answer means the case and the sealed referral are stored durably; the
  // view is the case as it stands here (submitted).
  [[nodiscard]] absl::StatusOr<v1::CaseResponse> CreateReferral(
      const v1::CreateReferralRequest& request,
      absl::Duration timeout = absl::Seconds(10));

  // Applies one step to a case and returns the view after it. A step of the
  // handler is applied at once; a step of the origin (supplement, withdraw)
  // is checked here and sent to the handler, so the view returned may not
  // show it yet.
  [[nodiscard]] absl::StatusOr<v1::CaseResponse> StepReferral(
      std::string_view case_id, const v1::ReferralStep& step,
      absl::Duration timeout = absl::Seconds(10));

  // The view of one case, and the referral itself where this node may read
  // it (at the origin and the handler).
  [[nodiscard]] absl::StatusOr<v1::GetCaseResponse> GetCase(
      std::string_view case_id, absl::Duration timeout = absl::Seconds(10));

  // One page of the cases this node holds; pages as for ListSent.
  [[nodiscard]] absl::StatusOr<v1::ListCasesResponse> ListCases(
      uint32_t page_size = 0, std::string_view page_token = {},
      absl::Duration timeout = absl::Seconds(10));

  // Asks the collector the request names to gather evidence for a case
  // held here; returns the new evidence request as it stands here.
  [[nodiscard]] absl::StatusOr<v1::EvidenceResponse> RequestEvidence(
      const v1::RequestEvidenceRequest& request,
      absl::Duration timeout = absl::Seconds(10));

  // Applies one step to an evidence request, as StepReferral does for a
  // case: the collector's steps here, the requester's (confirm) at the
  // collector.
  [[nodiscard]] absl::StatusOr<v1::EvidenceResponse> StepEvidence(
      std::string_view evidence_id, const v1::EvidenceStep& step,
      absl::Duration timeout = absl::Seconds(10));

  // The view of one evidence request.
  [[nodiscard]] absl::StatusOr<v1::EvidenceResponse> GetEvidence(
      std::string_view evidence_id, absl::Duration timeout = absl::Seconds(10));

  // One page of the evidence requests this node holds; pages as for
  // ListSent.
  [[nodiscard]] absl::StatusOr<v1::ListEvidenceResponse> ListEvidence(
      uint32_t page_size = 0, std::string_view page_token = {},
      absl::Duration timeout = absl::Seconds(10));

  // Time limits that have passed or fall within `within` from now, for this
  // node or, with `subtree`, for every node below it as well (those that
  // did not answer are listed in the response). A zero `within` lets the
  // node use its default of one day; it is sent in whole seconds, rounded
  // up. InvalidArgument, without a call, for a negative `within`.
  [[nodiscard]] absl::StatusOr<v1::ListDueResponse> ListDue(
      absl::Duration within = absl::ZeroDuration(), bool subtree = false,
      absl::Duration timeout = absl::Seconds(10));

  // -------------------------------------------------------------------------
  // Attachments. Uploads and downloads are one RPC each, whose deadline
  // `timeout` covers the whole transfer.

  // How much of the attachment with `digest` this node holds. NotFound if
  // it holds none of it.
  [[nodiscard]] absl::StatusOr<v1::GetUploadResponse> GetUpload(
      std::string_view digest, absl::Duration timeout = absl::Seconds(10));

  // Stores the file at `path` at this node and returns its reference, to be
  // put in a referral, supplement or evidence result. GetStatus first asks
  // the node how it addresses attachments (SHA-256, or SM3 at a node that
  // signs with SM2); the file is then described (base name, media type
  // guessed from the extension, size, digest by that algorithm: see
  // DescribeFile in client/attachment_file.h), then GetUpload
  // asks how much the node already has: a complete upload is not repeated,
  // a broken one resumes where the node's copy ends, and the rest is sent
  // in kAttachmentChunkSize pieces after a Start message. Errors about the
  // file name it; FailedPrecondition when the node reports more bytes than
  // the file holds; DataLoss when the node's answer names another digest;
  // the node's status otherwise (it refuses content that does not have the
  // digest, as when the file changed while being sent). The file must not
  // change while it is being uploaded.
  [[nodiscard]] absl::StatusOr<v1::AttachmentRef> UploadAttachment(
      const std::string& path, absl::Duration timeout = absl::Minutes(10));

  // Fetches the attachment with `digest` (kDigestSize raw bytes) into
  // `out_path` and returns its size. The content goes to a temporary file
  // beside `out_path` (mode 0600) that is renamed into place, replacing any
  // file there, only once every byte has arrived and has the digest; on any
  // error nothing is left behind. InvalidArgument for a digest of another
  // length; DataLoss when the node sends pieces out of order, more than it
  // announced, or content without the digest; errors about the file name
  // it; the node's status otherwise (NotFound for an unknown digest).
  [[nodiscard]] absl::StatusOr<uint64_t> DownloadAttachment(
      std::string_view digest, const std::string& out_path,
      absl::Duration timeout = absl::Minutes(10));

  v1::OperatorService::Stub* stub() { return stub_.get(); }
  v1::CaseService::Stub* case_stub() { return case_stub_.get(); }

 private:
  explicit NodeClient(std::shared_ptr<grpc::Channel> channel);

  // The two halves of UploadAttachment once the file is described: the
  // offset to resume from (setting `complete` when the node has it all),
  // and the stream that sends the rest.
  [[nodiscard]] absl::StatusOr<uint64_t> ResumePoint(
      const v1::AttachmentRef& file, bool* complete, absl::Duration timeout);
  [[nodiscard]] absl::StatusOr<v1::AttachmentRef> SendAttachment(
      const std::string& path, const v1::AttachmentRef& file, uint64_t offset,
      absl::Duration timeout);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::OperatorService::Stub> stub_;
  std::unique_ptr<v1::CaseService::Stub> case_stub_;
};

}  // namespace caselink::client

#endif  // CASELINK_CLIENT_NODE_CLIENT_H_
