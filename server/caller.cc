#include "server/caller.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::server {

absl::StatusOr<Identity> IdentifyCaller(
    const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return absl::PermissionDeniedError("caller presented no certificate");
  }
  std::vector<std::string> uris;
  for (const auto& value : auth->FindPropertyValues("peer_uri")) {
    uris.emplace_back(value.data(), value.size());
  }
  auto identity = IdentityFromUris(uris);
  if (!identity.ok()) {
    return absl::PermissionDeniedError(identity.status().message());
  }
  return identity;
}

std::string CallerCertificatePem(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return "";
  for (const auto& value : auth->FindPropertyValues("x509_pem_cert")) {
    return std::string(value.data(), value.size());
  }
  return "";
}

absl::StatusOr<Identity> RequireCaller(const grpc::ServerContextBase& context,
                                       Role role, std::string_view code,
                                       const Revocations* revocations) {
  CASELINK_ASSIGN_OR_RETURN(Identity caller, IdentifyCaller(context));
  if (caller.role != role) {
    return absl::PermissionDeniedError(Cat(
        "this call needs a ", RoleName(role), " certificate; the caller is a ",
        RoleName(caller.role), " of ", caller.code));
  }
  if (!code.empty() && caller.code != code) {
    return absl::PermissionDeniedError(Cat("the caller's ", RoleName(role),
                                           " certificate belongs to ",
                                           caller.code, ", not to ", code));
  }
  if (revocations != nullptr &&
      revocations->IsRevokedPem(CallerCertificatePem(context))) {
    return absl::PermissionDeniedError(Cat("the certificate of ",
                                           RoleName(caller.role), " ",
                                           caller.code, " is revoked"));
  }
  return caller;
}

}  // namespace caselink::server
