// The identity of whoever is calling an RPC, taken from the verified client
// certificate of the mutual-TLS connection.
#ifndef CASELINK_SERVER_CALLER_H_
#define CASELINK_SERVER_CALLER_H_

#include "absl/status/statusor.h"
#include "core/identity.h"
#include "grpcpp/grpcpp.h"
#include "server/revocations.h"

namespace caselink::server {

// PermissionDenied when the connection carries no caselink identity (it
// cannot carry no certificate at all: the TLS layer refuses those).
[[nodiscard]] absl::StatusOr<Identity> IdentifyCaller(
    const grpc::ServerContextBase& context);

// The caller's identity, required to have `role` and, unless `code` is
// empty, to belong to `code`. PermissionDenied otherwise, saying why.
// With `revocations`, a caller whose certificate is revoked is refused too.
[[nodiscard]] absl::StatusOr<Identity> RequireCaller(
    const grpc::ServerContextBase& context, Role role, std::string_view code,
    const Revocations* revocations = nullptr);

// The PEM certificate the caller presented.
std::string CallerCertificatePem(const grpc::ServerContextBase& context);

}  // namespace caselink::server

#endif  // CASELINK_SERVER_CALLER_H_
