#include "core/identity.h"

#include "absl/status/status.h"
#include "core/division_code.h"
#include "core/strings.h"

namespace caselink {
namespace {

constexpr std::string_view kPrefix = "urn:caselink:";

bool ValidUser(std::string_view user) {
  if (user.empty() || user.size() > 64) return false;
  for (char c : user) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kNode:
      return "node";
    case Role::kOperator:
      return "operator";
    case Role::kAuditor:
      return "auditor";
  }
  return "unknown";
}

absl::StatusOr<Identity> ParseIdentityUri(std::string_view uri) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(Cat("identity \"", uri, "\": ", why));
  };
  if (!uri.starts_with(kPrefix)) return invalid("not a caselink URI");
  std::vector<std::string_view> parts;
  std::string_view rest = uri.substr(kPrefix.size());
  while (true) {
    size_t colon = rest.find(':');
    parts.push_back(rest.substr(0, colon));
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  Identity identity;
  if (parts[0] == "node") {
    identity.role = Role::kNode;
    if (parts.size() != 2) return invalid("expected urn:caselink:node:CODE");
  } else if (parts[0] == "operator" || parts[0] == "auditor") {
    identity.role = parts[0] == "operator" ? Role::kOperator : Role::kAuditor;
    if (parts.size() != 3 || !ValidUser(parts[2])) {
      return invalid("expected urn:caselink:ROLE:CODE:USER");
    }
    identity.user = std::string(parts[2]);
  } else {
    return invalid("unknown role");
  }
  if (parts[1].size() != 12) return invalid("code must have 12 digits");
  auto code = NormalizeDivisionCode(parts[1]);
  if (!code.ok()) return invalid(View(code.status().message()));
  identity.code = *code;
  return identity;
}

absl::StatusOr<Identity> IdentityFromUris(
    const std::vector<std::string>& uris) {
  std::vector<Identity> found;
  for (const std::string& uri : uris) {
    if (!std::string_view(uri).starts_with(kPrefix)) continue;
    auto identity = ParseIdentityUri(uri);
    if (!identity.ok()) return identity.status();
    found.push_back(*identity);
  }
  if (found.size() != 1) {
    return absl::PermissionDeniedError(Cat(
        "certificate carries ", found.size(),
        " caselink identities (urn:caselink:...); exactly one is required"));
  }
  return found[0];
}

std::string NodeTlsName(std::string_view code12) {
  return Cat(code12, ".node.caselink");
}

}  // namespace caselink
