// A client of one node's operator service, used by the caselink CLI and by
// programs that submit and follow messages.
#ifndef CASELINK_CLIENT_NODE_CLIENT_H_
#define CASELINK_CLIENT_NODE_CLIENT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "caselink/v1/operator.grpc.pb.h"
#include "client/client_config.h"

namespace caselink::client {

// Thread-safe: calls may be made from many threads at once.
class NodeClient {
 public:
  // Reads the certificate, key and CA bundle the config names (errors name
  // the file) and prepares a channel; no connection is made yet.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<NodeClient>> Connect(
      const ClientConfig& config);

  // The node's status. Errors carry the gRPC status of the call, e.g.
  // Unavailable when the node cannot be reached.
  [[nodiscard]] absl::StatusOr<v1::GetStatusResponse> GetStatus(
      absl::Duration timeout = absl::Seconds(10));

  v1::OperatorService::Stub* stub() { return stub_.get(); }

 private:
  explicit NodeClient(std::shared_ptr<grpc::Channel> channel);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::OperatorService::Stub> stub_;
};

}  // namespace caselink::client

#endif  // CASELINK_CLIENT_NODE_CLIENT_H_
