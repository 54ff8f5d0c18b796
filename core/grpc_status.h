// Conversions between absl::Status and grpc::Status, for the RPC edge only.
#ifndef CASELINK_CORE_GRPC_STATUS_H_
#define CASELINK_CORE_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace caselink {

// The codes of both libraries share numbering (google.rpc.Code).
inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

}  // namespace caselink

#endif  // CASELINK_CORE_GRPC_STATUS_H_
