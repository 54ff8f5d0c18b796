// Who a certificate says its holder is. caselink certificates carry one
// URI subject alternative name of these forms:
//   urn:caselink:node:350212000000
//   urn:caselink:operator:350212000000:alice
//   urn:caselink:auditor:350000000000:audra
#ifndef CASELINK_CORE_IDENTITY_H_
#define CASELINK_CORE_IDENTITY_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace caselink {

enum class Role { kNode, kOperator, kAuditor };

std::string_view RoleName(Role role);

struct Identity {
  Role role = Role::kNode;
  // The node's own code, or the code of the node an operator or auditor
  // belongs to; 12 digits.
  std::string code;
  // The user name of an operator or auditor; empty for a node.
  std::string user;
};

// Parses one URI. InvalidArgument if it is not a caselink identity.
[[nodiscard]] absl::StatusOr<Identity> ParseIdentityUri(std::string_view uri);

// The one caselink identity among a certificate's URI names. It is an
// error for there to be none or more than one.
[[nodiscard]] absl::StatusOr<Identity> IdentityFromUris(
    const std::vector<std::string>& uris);

// The DNS name a node's TLS certificate carries, used as the TLS target
// name when dialing it: "350212000000.node.caselink".
std::string NodeTlsName(std::string_view code12);

}  // namespace caselink

#endif  // CASELINK_CORE_IDENTITY_H_
