#include "client/node_client.h"

#include <string>

#include "core/grpc_status.h"
#include "core/status_macros.h"
#include "core/tls.h"

namespace caselink::client {
namespace {

using Stub = v1::OperatorService::Stub;

// Makes one blocking call of `method` with a deadline `timeout` from now.
template <typename Request, typename Response>
absl::StatusOr<Response> Call(Stub& stub,
                              grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                           const Request&,
                                                           Response*),
                              const Request& request, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  Response response;
  CASELINK_RETURN_IF_ERROR(
      FromGrpcStatus((stub.*method)(&context, request, &response)));
  return response;
}

}  // namespace

NodeClient::NodeClient(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)),
      stub_(v1::OperatorService::NewStub(channel_)) {}

absl::StatusOr<std::unique_ptr<NodeClient>> NodeClient::Connect(
    const ClientConfig& config) {
  CASELINK_ASSIGN_OR_RETURN(
      TlsMaterial tls,
      LoadTlsMaterial(config.cert, config.key, config.ca_bundle));
  return std::unique_ptr<NodeClient>(
      new NodeClient(MutualTlsChannel(config.address, config.node_code, tls)));
}

absl::StatusOr<v1::GetStatusResponse> NodeClient::GetStatus(
    absl::Duration timeout) {
  return Call(*stub_, &Stub::GetStatus, v1::GetStatusRequest(), timeout);
}

absl::StatusOr<v1::SubmitMessageResponse> NodeClient::Submit(
    const v1::SubmitMessageRequest& request, absl::Duration timeout) {
  return Call(*stub_, &Stub::SubmitMessage, request, timeout);
}

absl::StatusOr<v1::ListSentResponse> NodeClient::ListSent(
    uint32_t page_size, std::string_view page_token, absl::Duration timeout) {
  v1::ListSentRequest request;
  request.set_page_size(page_size);
  request.set_page_token(std::string(page_token));
  return Call(*stub_, &Stub::ListSent, request, timeout);
}

absl::StatusOr<v1::GetSentResponse> NodeClient::GetSent(
    std::string_view message_id, absl::Duration timeout) {
  v1::GetSentRequest request;
  request.set_message_id(std::string(message_id));
  return Call(*stub_, &Stub::GetSent, request, timeout);
}

absl::StatusOr<v1::ListInboxResponse> NodeClient::ListInbox(
    uint32_t page_size, std::string_view page_token, bool unhandled_only,
    absl::Duration timeout) {
  v1::ListInboxRequest request;
  request.set_page_size(page_size);
  request.set_page_token(std::string(page_token));
  request.set_unhandled_only(unhandled_only);
  return Call(*stub_, &Stub::ListInbox, request, timeout);
}

absl::StatusOr<v1::GetInboxMessageResponse> NodeClient::GetInboxMessage(
    std::string_view message_id, absl::Duration timeout) {
  v1::GetInboxMessageRequest request;
  request.set_message_id(std::string(message_id));
  return Call(*stub_, &Stub::GetInboxMessage, request, timeout);
}

absl::Status NodeClient::MarkHandled(std::string_view message_id,
                                     absl::Duration timeout) {
  v1::MarkHandledRequest request;
  request.set_message_id(std::string(message_id));
  return Call(*stub_, &Stub::MarkHandled, request, timeout).status();
}

}  // namespace caselink::client
