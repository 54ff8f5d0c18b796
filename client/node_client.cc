#include "client/node_client.h"

#include "core/grpc_status.h"
#include "core/status_macros.h"
#include "core/tls.h"

namespace caselink::client {

NodeClient::NodeClient(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)),
      stub_(v1::OperatorService::NewStub(channel_)) {}

absl::StatusOr<std::unique_ptr<NodeClient>> NodeClient::Connect(
    const ClientConfig& config) {
  CASELINK_ASSIGN_OR_RETURN(
      TlsMaterial tls,
      LoadTlsMaterial(config.cert, config.key, config.ca_bundle));
  return std::unique_ptr<NodeClient>(new NodeClient(
      MutualTlsChannel(config.address, config.node_code, tls)));
}

absl::StatusOr<v1::GetStatusResponse> NodeClient::GetStatus(
    absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::GetStatusResponse response;
  CASELINK_RETURN_IF_ERROR(FromGrpcStatus(
      stub_->GetStatus(&context, v1::GetStatusRequest(), &response)));
  return response;
}

}  // namespace caselink::client
