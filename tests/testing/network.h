// A network of real caselinkd processes on loopback for tests: a freshly
// made development PKI, one config and data directory per node, ephemeral
// ports, all under one temporary directory that is removed afterwards
// (kept if CASELINK_KEEP_TEST_DIRS is set).
#ifndef CASELINK_TESTS_TESTING_NETWORK_H_
#define CASELINK_TESTS_TESTING_NETWORK_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "caselink/v1/operator.pb.h"
#include "client/node_client.h"
#include "grpcpp/grpcpp.h"
#include "tests/testing/process.h"

namespace caselink::testing {

// A temporary directory, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Config lines that make a node retry a peer within tens of milliseconds,
// so that tests which cut and restore links need not wait out the backoff.
inline constexpr char kFastRetry[] =
    "delivery:\n  retry_initial_ms: 50\n  retry_max_ms: 500\n";

struct NodeSpec {
  NodeSpec(std::string code_in, std::string name_in,
           std::vector<std::string> peers_in = {},
           std::string extra_config_in = "")
      : code(std::move(code_in)),
        name(std::move(name_in)),
        peers(std::move(peers_in)),
        extra_config(std::move(extra_config_in)) {}

  std::string code;  // Any accepted form; stored padded.
  std::string name;
  std::vector<std::string> peers;
  // Extra top-level YAML appended to the node's config file.
  std::string extra_config;
  // For the directory: the node above this one, and other direct links.
  std::string parent;
  std::vector<std::string> links;
};

struct NetworkOptions {
  std::string sign_alg = "ecdsa-p256";
  // Each province node of the network publishes a directory listing the
  // network's nodes of its province, and every node refreshes it each
  // second.
  bool directories = false;
};

// Runs certs/make-dev-pki.sh; returns its output on failure.
absl::Status MakeDevPki(const std::string& out_dir,
                        const std::vector<std::string>& args);

class TestNetwork {
 public:
  // Makes the PKI (a node certificate per node, an operator "op" and an
  // auditor "audit" per node) and writes every config. Starts nothing.
  static absl::StatusOr<std::unique_ptr<TestNetwork>> Create(
      std::vector<NodeSpec> nodes, NetworkOptions options = {});

  absl::Status StartAll();

  // Adds a node to the network while it runs: certificates, config, and
  // (with directories) its entry in its province's directory file, which
  // the province node publishes at its next refresh. Starts nothing.
  absl::Status AddNode(NodeSpec spec);
  // Revokes the node's certificates at its province CA and rewrites the
  // CRL bundle every node reloads.
  absl::Status Revoke(const std::string& code);

  // Gives the node new keys and certificates, keeping its previous signing
  // certificates and sealing keys, and rewrites its config and (unless
  // `directory` is false) its directory entry to match. A running node
  // takes them on SIGHUP, or once it sees its files change.
  absl::Status Rotate(const std::string& code, bool directory = true);
  // Rewrites every province's directory file, and the copies of the
  // certificates it lists, from the certificates as they are now.
  absl::Status WriteDirectories();

  // Starts the node and waits until it accepts connections.
  absl::Status Start(const std::string& code);
  // kill -9.
  void Kill(const std::string& code);
  // SIGTERM; returns the exit code.
  int Stop(const std::string& code);

  std::string Code(const std::string& short_code) const;
  // Every node's code.
  std::vector<std::string> Codes() const;
  std::string ConfigPath(const std::string& code) const;
  std::string ClientConfigPath(const std::string& code) const;
  std::string DataDir(const std::string& code) const;
  std::string PkiDir() const { return root_.path() + "/pki"; }
  std::string NodeLog(const std::string& code) const;
  int Port(const std::string& code) const;
  const std::string& root() const { return root_.path(); }
  ChildProcess& Process(const std::string& code);

  // A raw channel to node `to` presenting the TLS identity of node
  // `as_node`, for speaking the node-to-node protocol by hand.
  std::shared_ptr<grpc::Channel> ChannelAsNode(const std::string& as_node,
                                               const std::string& to) const;

  // A client with the node's operator certificate.
  absl::StatusOr<std::unique_ptr<client::NodeClient>> OperatorClient(
      const std::string& code) const;
  // The client config, and a client, with the node's auditor certificate.
  std::string AuditorConfigPath(const std::string& code) const;
  absl::StatusOr<std::unique_ptr<client::NodeClient>> AuditorClient(
      const std::string& code) const;

  // Polls until every peer of `code` reports connected.
  bool WaitForPeersConnected(const std::string& code,
                             absl::Duration timeout = absl::Seconds(20));

 private:
  TestNetwork() = default;
  absl::Status WriteConfigs();
  absl::Status WriteNodeConfig(const std::string& code);

  struct Member {
    NodeSpec spec{"", ""};
    int port = 0;
    std::unique_ptr<ChildProcess> process;
    // Signing certificates and sealing keys the node used before a
    // rotation.
    std::vector<std::string> previous_signing;
    std::vector<std::string> previous_sealing;
  };

  TempDir root_;
  NetworkOptions options_;
  std::map<std::string, Member> members_;
};

// Polls `condition` every 50 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout);

// Paths of the built programs and the source tree. CASELINK_CASELINKD in
// the environment names another caselinkd to run, as benchmarks comparing
// two builds do.
std::string CaselinkdPath();
std::string CaselinkCliPath();
std::string SourceDir();

// The whole content of the file at `path`, byte for byte; empty if it
// cannot be read.
std::string ReadFile(const std::string& path);

}  // namespace caselink::testing

#endif  // CASELINK_TESTS_TESTING_NETWORK_H_
