// How an operator's or auditor's client reaches its node, in YAML:
//
//   node:
//     code: "350212"
//     address: "127.0.0.1:7443"
//   tls:
//     cert: "client.crt"
//     key: "client.key"
//     ca_bundle: "ca-bundle.pem"
//
// Relative paths are taken relative to the directory of the file.
#ifndef CASELINK_CLIENT_CLIENT_CONFIG_H_
#define CASELINK_CLIENT_CLIENT_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"

namespace caselink::client {

struct ClientConfig {
  std::string node_code;  // 12-digit form.
  std::string address;
  std::string cert;
  std::string key;
  std::string ca_bundle;
};

// Errors name the file, line and setting, as for node configs.
[[nodiscard]] absl::StatusOr<ClientConfig> LoadClientConfig(
    const std::string& path);

}  // namespace caselink::client

#endif  // CASELINK_CLIENT_CLIENT_CONFIG_H_
