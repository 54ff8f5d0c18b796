// What every client of a node's services shares: the mutual-TLS channel a
// client config names, and one blocking call with its own deadline whose
// gRPC status passes through unchanged.
#ifndef CASELINK_CLIENT_UNARY_CALL_H_
#define CASELINK_CLIENT_UNARY_CALL_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client_config.h"
#include "core/grpc_status.h"
#include "core/status_macros.h"
#include "core/tls.h"
#include "grpcpp/grpcpp.h"

namespace caselink::client {

// Reads the certificate, key and CA bundle `config` names (errors name the
// file) and makes a channel to its node; nothing is dialled yet.
[[nodiscard]] inline absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelFor(
    const ClientConfig& config) {
  CASELINK_ASSIGN_OR_RETURN(
      TlsMaterial tls,
      LoadTlsMaterial(config.cert, config.key, config.ca_bundle));
  return MutualTlsChannel(config.address, config.node_code, tls);
}

// Makes one blocking call of `method` with a deadline `timeout` from now.
template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> UnaryCall(
    Stub& stub,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                 Response*),
    const Request& request, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  Response response;
  CASELINK_RETURN_IF_ERROR(
      FromGrpcStatus((stub.*method)(&context, request, &response)));
  return response;
}

}  // namespace caselink::client

#endif  // CASELINK_CLIENT_UNARY_CALL_H_
