// A client of one node's operator service, used by the caselink CLI and by
// programs that submit and follow messages.
#ifndef CASELINK_CLIENT_NODE_CLIENT_H_
#define CASELINK_CLIENT_NODE_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
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
// the node answers InvalidArgument for any other length.
//
// Thread-safe: calls may be made from many threads at once.
class NodeClient {
 public:
  // Reads the certificate, key and CA bundle the config names (errors name
  // the file) and prepares a channel; no connection is made yet.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<NodeClient>> Connect(
      const ClientConfig& config);

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

  v1::OperatorService::Stub* stub() { return stub_.get(); }

 private:
  explicit NodeClient(std::shared_ptr<grpc::Channel> channel);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::OperatorService::Stub> stub_;
};

}  // namespace caselink::client

#endif  // CASELINK_CLIENT_NODE_CLIENT_H_
