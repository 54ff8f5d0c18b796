#include "client/client_config.h"

#include "core/config_file.h"
#include "core/division_code.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::client {

absl::StatusOr<ClientConfig> LoadClientConfig(const std::string& path) {
  CASELINK_ASSIGN_OR_RETURN(ConfigSection top, ConfigSection::ParseFile(path));
  CASELINK_RETURN_IF_ERROR(top.AllowOnly({"node", "tls"}));
  ClientConfig config;

  CASELINK_ASSIGN_OR_RETURN(auto node, top.Section("node"));
  if (!node) return top.Error("node", "missing");
  CASELINK_RETURN_IF_ERROR(node->AllowOnly({"code", "address"}));
  CASELINK_ASSIGN_OR_RETURN(std::string code, node->RequiredString("code"));
  auto normalized = NormalizeDivisionCode(code);
  if (!normalized.ok()) {
    return node->Error("code", View(normalized.status().message()));
  }
  config.node_code = *normalized;
  CASELINK_ASSIGN_OR_RETURN(config.address, node->RequiredString("address"));

  CASELINK_ASSIGN_OR_RETURN(auto tls, top.Section("tls"));
  if (!tls) return top.Error("tls", "missing");
  CASELINK_RETURN_IF_ERROR(tls->AllowOnly({"cert", "key", "ca_bundle"}));
  CASELINK_ASSIGN_OR_RETURN(config.cert, tls->RequiredPath("cert"));
  CASELINK_ASSIGN_OR_RETURN(config.key, tls->RequiredPath("key"));
  CASELINK_ASSIGN_OR_RETURN(config.ca_bundle, tls->RequiredPath("ca_bundle"));
  return config;
}

}  // namespace caselink::client
