// The configuration file of a caselinkd node, in YAML.
//
//   node:
//     code: "350212"                 # division code; short forms are padded
//     name: "Tong'an County Justice Bureau"
//   listen: "127.0.0.1:7443"
//   data_dir: "/var/lib/caselink"
//   tls:                             # the link identity (ECDSA P-256)
//     cert: "tls-chain.pem"
//     key: "tls.key"
//     ca_bundle: "ca-bundle.pem"     # every province CA this node trusts
//     crl_bundle: "crl-bundle.pem"   # optional; their revocation lists
//   signing:                         # optional; the TLS key if left out
//     cert: "sign.crt"
//     key: "sign.key"
//     previous: ["sign.prev-1A2B.crt"]   # after a key rotation
//   sealing:                         # optional; without it this node
//     cert: "seal.crt"               # cannot take sealed payloads
//     key: "seal.key"
//     previous: ["seal.prev-3C4D.key"]   # after a key rotation
//   directory:                       # optional
//     publish: "province.yaml"       # province nodes: the nodes to list
//     refresh_seconds: 30
//   peers:
//     - code: "350200"
//       address: "127.0.0.1:7444"
//   delivery:                        # optional tuning, defaults shown
//     max_envelope_bytes: 4194304
//     max_clock_skew_seconds: 300
//     dedup_retention_hours: 720
//     window: 1024
//     retry_initial_ms: 200
//     retry_max_ms: 30000
//   workflow: ...                    # optional; see workflow_config.h
//   audit:                           # optional
//     head_interval_seconds: 60
//   log_level: info
//
// Relative paths are taken relative to the directory of the file. The
// tls, signing and sealing entries (apart from tls.ca_bundle) are read again
// while the node runs, on SIGHUP or when a file changes; see Node.
#ifndef CASELINK_SERVER_CONFIG_H_
#define CASELINK_SERVER_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/log.h"
#include "server/workflow_config.h"

namespace caselink::server {

struct PeerConfig {
  std::string code;  // 12-digit form.
  std::string address;
};

struct DeliveryConfig {
  uint64_t max_envelope_bytes = 4 << 20;
  absl::Duration max_clock_skew = absl::Minutes(5);
  absl::Duration dedup_retention = absl::Hours(24 * 30);
  // Envelopes in flight, unacknowledged, on one peer stream.
  uint32_t window = 1024;
  absl::Duration retry_initial = absl::Milliseconds(200);
  absl::Duration retry_max = absl::Seconds(30);
};

struct NodeConfig {
  // The file this config was read from; empty for one made in code.
  std::string path;
  std::string code;  // 12-digit form.
  std::string name;
  std::string listen;
  std::string data_dir;
  std::string tls_cert;
  std::string tls_key;
  std::string ca_bundle;
  // PEM CRLs of the CAs; empty if none. Reloaded when it changes.
  std::string crl_bundle;
  std::string signing_cert;
  std::string signing_key;
  // Signing certificates this node used before, so that peers can still
  // check what their keys signed.
  std::vector<std::string> previous_signing_certs;
  std::string sealing_cert;  // Empty if none.
  std::string sealing_key;
  // Sealing private keys this node used before, so that payloads sealed to
  // them still open.
  std::vector<std::string> previous_sealing_keys;
  // A province node's list of its nodes, which it signs and publishes as
  // the directory; empty elsewhere.
  std::string directory_publish;
  absl::Duration directory_refresh = absl::Seconds(30);
  std::vector<PeerConfig> peers;
  DeliveryConfig delivery;
  WorkflowConfig workflow;
  // How often the node signs a head of its audit log and checks its
  // peers' heads.
  absl::Duration audit_head_interval = absl::Seconds(60);
  LogLevel log_level = LogLevel::kInfo;
};

// Reads and checks the file at `path`. Errors are InvalidArgument (or
// NotFound for a missing file) and read like
//   config /etc/caselink/node.yaml: line 7: peers[1].code: division code
//   "3502x" is not 2, 4, 6, 9 or 12 decimal digits
// Unknown keys are errors, so that a misspelt setting is never ignored.
// Files the config names are not opened here.
[[nodiscard]] absl::StatusOr<NodeConfig> LoadNodeConfig(
    const std::string& path);

}  // namespace caselink::server

#endif  // CASELINK_SERVER_CONFIG_H_
