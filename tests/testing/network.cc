#include "tests/testing/network.h"

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/time/clock.h"
#include "client/client_config.h"
#include "core/division_code.h"
#include "core/identity.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      Cat(base != nullptr ? base : "/tmp", "/caselink-test-XXXXXX");
  char* made = mkdtemp(pattern.data());
  path_ = made != nullptr ? made : "";
}

TempDir::~TempDir() {
  if (path_.empty() || std::getenv("CASELINK_KEEP_TEST_DIRS") != nullptr) {
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string CaselinkdPath() {
  const char* other = std::getenv("CASELINK_CASELINKD");
  return other != nullptr && *other != '\0' ? other : CASELINK_CASELINKD_PATH;
}
std::string CaselinkCliPath() { return CASELINK_CLI_PATH; }
std::string SourceDir() { return CASELINK_SOURCE_DIR; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return condition();
}

absl::Status MakeDevPki(const std::string& out_dir,
                        const std::vector<std::string>& args) {
  std::vector<std::string> argv = {
      "/bin/bash", SourceDir() + "/certs/make-dev-pki.sh", "--out", out_dir};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult result = RunCommand(argv, absl::Seconds(120));
  if (result.exit_code != 0) {
    return absl::InternalError(Cat("make-dev-pki.sh failed: ", result.output));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TestNetwork>> TestNetwork::Create(
    std::vector<NodeSpec> nodes, NetworkOptions options) {
  std::unique_ptr<TestNetwork> network(new TestNetwork());
  network->options_ = options;
  std::vector<std::string> pki_args = {"--sign-alg", options.sign_alg};
  for (NodeSpec& spec : nodes) {
    CASELINK_ASSIGN_OR_RETURN(spec.code, NormalizeDivisionCode(spec.code));
    for (std::string& peer : spec.peers) {
      CASELINK_ASSIGN_OR_RETURN(peer, NormalizeDivisionCode(peer));
    }
    for (std::string& link : spec.links) {
      CASELINK_ASSIGN_OR_RETURN(link, NormalizeDivisionCode(link));
    }
    if (!spec.parent.empty()) {
      CASELINK_ASSIGN_OR_RETURN(spec.parent,
                                NormalizeDivisionCode(spec.parent));
    }
    pki_args.insert(pki_args.end(), {"--node", Cat(spec.code, ":", spec.name),
                                     "--operator", Cat(spec.code, ":op"),
                                     "--auditor", Cat(spec.code, ":audit")});
    Member member;
    member.port = PickFreePort();
    member.spec = std::move(spec);
    network->members_.emplace(member.spec.code, std::move(member));
  }
  CASELINK_RETURN_IF_ERROR(MakeDevPki(network->PkiDir(), pki_args));
  CASELINK_RETURN_IF_ERROR(network->WriteConfigs());
  return network;
}

absl::Status TestNetwork::AddNode(NodeSpec spec) {
  CASELINK_ASSIGN_OR_RETURN(spec.code, NormalizeDivisionCode(spec.code));
  for (std::string& peer : spec.peers) {
    CASELINK_ASSIGN_OR_RETURN(peer, NormalizeDivisionCode(peer));
  }
  if (!spec.parent.empty()) {
    CASELINK_ASSIGN_OR_RETURN(spec.parent, NormalizeDivisionCode(spec.parent));
  }
  CASELINK_RETURN_IF_ERROR(MakeDevPki(
      PkiDir(),
      {"--sign-alg", options_.sign_alg, "--node",
       Cat(spec.code, ":", spec.name), "--operator", Cat(spec.code, ":op"),
       "--auditor", Cat(spec.code, ":audit")}));
  Member member;
  member.port = PickFreePort();
  member.spec = spec;
  members_.emplace(spec.code, std::move(member));
  CASELINK_RETURN_IF_ERROR(WriteNodeConfig(spec.code));
  return WriteDirectories();
}

absl::Status TestNetwork::Revoke(const std::string& code) {
  return MakeDevPki(PkiDir(),
                    {"--sign-alg", options_.sign_alg, "--revoke", Code(code)});
}

absl::Status TestNetwork::Rotate(const std::string& code, bool directory) {
  CASELINK_RETURN_IF_ERROR(MakeDevPki(
      PkiDir(), {"--sign-alg", options_.sign_alg, "--rotate", Code(code)}));
  Member& member = members_.at(Code(code));
  member.previous_signing.clear();
  member.previous_sealing.clear();
  for (const auto& entry : std::filesystem::directory_iterator(
           Cat(PkiDir(), "/nodes/", Code(code)))) {
    std::string name = entry.path().filename().string();
    if (name.starts_with("sign.prev-") && name.ends_with(".crt")) {
      member.previous_signing.push_back(entry.path().string());
    }
    if (name.starts_with("seal.prev-") && name.ends_with(".key")) {
      member.previous_sealing.push_back(entry.path().string());
    }
  }
  CASELINK_RETURN_IF_ERROR(WriteNodeConfig(Code(code)));
  return directory ? WriteDirectories() : absl::OkStatus();
}

absl::Status TestNetwork::WriteDirectories() {
  if (!options_.directories) return absl::OkStatus();
  std::map<std::string, std::ofstream> files;
  for (const auto& [code, member] : members_) {
    std::string province = ProvinceOf(code);
    if (members_.count(province) == 0) continue;
    // The directory lists copies, as a province holds the certificates its
    // nodes handed in: a node's new keys reach it only from here.
    std::string dir = Cat(root(), "/configs/directory-certs/", code);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    for (const char* name : {"sign.crt", "seal.crt"}) {
      std::string held = Cat(dir, "/", name);
      std::filesystem::copy_file(
          Cat(PkiDir(), "/nodes/", code, "/", name), held + ".new",
          std::filesystem::copy_options::overwrite_existing, ec);
      if (!ec) std::filesystem::rename(held + ".new", held, ec);
      if (ec)
        return absl::InternalError(
            Cat("cannot copy ", name, ": ", ec.message()));
    }
    // Written aside and renamed, so the province node never reads half.
    auto [it, added] = files.try_emplace(
        province, Cat(root(), "/configs/", province, "-directory.yaml.new"));
    std::ofstream& out = it->second;
    if (added) out << "nodes:\n";
    out << "  - code: \"" << code << "\"\n    name: \"" << member.spec.name
        << "\"\n    address: \"127.0.0.1:" << member.port << "\"\n";
    if (!member.spec.parent.empty()) {
      out << "    parent: \"" << member.spec.parent << "\"\n";
    }
    if (!member.spec.links.empty()) {
      out << "    links:\n";
      for (const std::string& link : member.spec.links) {
        out << "      - \"" << link << "\"\n";
      }
    }
    out << "    signing_certificates:\n      - \"" << dir << "/sign.crt\"\n";
    for (const std::string& previous : member.previous_signing) {
      out << "      - \"" << previous << "\"\n";
    }
    out << "    sealing_certificate: \"" << dir << "/seal.crt\"\n";
  }
  for (auto& [province, out] : files) {
    out.close();
    if (!out) return absl::InternalError("cannot write a directory file");
    std::string path = Cat(root(), "/configs/", province, "-directory.yaml");
    std::filesystem::rename(path + ".new", path);
  }
  return absl::OkStatus();
}

absl::Status TestNetwork::WriteConfigs() {
  for (const auto& [code, member] : members_) {
    CASELINK_RETURN_IF_ERROR(WriteNodeConfig(code));
  }
  return WriteDirectories();
}

absl::Status TestNetwork::WriteNodeConfig(const std::string& code) {
  {
    const Member& member = members_.at(code);
    std::string pki = PkiDir();
    std::string node_dir = Cat(pki, "/nodes/", code);
    std::filesystem::create_directories(root() + "/configs");
    std::ofstream config(ConfigPath(code));
    config << "node:\n  code: \"" << code << "\"\n  name: \""
           << member.spec.name << "\"\n"
           << "listen: \"127.0.0.1:" << member.port << "\"\n"
           << "data_dir: \"" << DataDir(code) << "\"\n"
           << "tls:\n  cert: \"" << node_dir << "/tls-chain.pem\"\n"
           << "  key: \"" << node_dir << "/tls.key\"\n"
           << "  ca_bundle: \"" << pki << "/ca-bundle.pem\"\n"
           << "  crl_bundle: \"" << pki << "/crl-bundle.pem\"\n"
           << "signing:\n  cert: \"" << node_dir << "/sign.crt\"\n"
           << "  key: \"" << node_dir << "/sign.key\"\n";
    if (!member.previous_signing.empty()) {
      config << "  previous:\n";
      for (const std::string& previous : member.previous_signing) {
        config << "    - \"" << previous << "\"\n";
      }
    }
    config << "sealing:\n  cert: \"" << node_dir << "/seal.crt\"\n"
           << "  key: \"" << node_dir << "/seal.key\"\n";
    if (!member.previous_sealing.empty()) {
      config << "  previous:\n";
      for (const std::string& previous : member.previous_sealing) {
        config << "    - \"" << previous << "\"\n";
      }
    }
    if (options_.directories) {
      config << "directory:\n  refresh_seconds: 1\n";
      if (LevelOf(code) == DivisionLevel::kProvince) {
        config << "  publish: \"" << root() << "/configs/" << code
               << "-directory.yaml\"\n";
      }
    }
    if (!member.spec.peers.empty()) config << "peers:\n";
    for (const std::string& peer : member.spec.peers) {
      auto it = members_.find(peer);
      int port = it != members_.end() ? it->second.port : PickFreePort();
      config << "  - code: \"" << peer
             << "\"\n    address: \"127.0.0.1:" << port << "\"\n";
    }
    config << member.spec.extra_config;
    std::string client_dir = Cat(pki, "/clients/operator-", code, "-op");
    std::ofstream client(ClientConfigPath(code));
    client << "node:\n  code: \"" << code
           << "\"\n  address: \"127.0.0.1:" << member.port << "\"\n"
           << "tls:\n  cert: \"" << client_dir << "/client.crt\"\n"
           << "  key: \"" << client_dir << "/client.key\"\n"
           << "  ca_bundle: \"" << pki << "/ca-bundle.pem\"\n";
    std::string auditor_dir = Cat(pki, "/clients/auditor-", code, "-audit");
    std::ofstream auditor(AuditorConfigPath(code));
    auditor << "node:\n  code: \"" << code
            << "\"\n  address: \"127.0.0.1:" << member.port << "\"\n"
            << "tls:\n  cert: \"" << auditor_dir << "/client.crt\"\n"
            << "  key: \"" << auditor_dir << "/client.key\"\n"
            << "  ca_bundle: \"" << pki << "/ca-bundle.pem\"\n";
    if (!config || !client || !auditor) {
      return absl::InternalError("cannot write test configs");
    }
  }
  return absl::OkStatus();
}

std::string TestNetwork::Code(const std::string& short_code) const {
  auto code = NormalizeDivisionCode(short_code);
  return code.ok() ? *code : short_code;
}

std::vector<std::string> TestNetwork::Codes() const {
  std::vector<std::string> codes;
  for (const auto& [code, member] : members_) codes.push_back(code);
  return codes;
}

std::string TestNetwork::ConfigPath(const std::string& code) const {
  return Cat(root(), "/configs/", Code(code), ".yaml");
}

std::string TestNetwork::ClientConfigPath(const std::string& code) const {
  return Cat(root(), "/configs/", Code(code), "-operator.yaml");
}

std::string TestNetwork::DataDir(const std::string& code) const {
  return Cat(root(), "/data/", Code(code));
}

std::string TestNetwork::NodeLog(const std::string& code) const {
  return Cat(root(), "/", Code(code), ".log");
}

int TestNetwork::Port(const std::string& code) const {
  return members_.at(Code(code)).port;
}

ChildProcess& TestNetwork::Process(const std::string& code) {
  Member& member = members_.at(Code(code));
  if (member.process == nullptr) {
    member.process = std::make_unique<ChildProcess>(
        std::vector<std::string>{CaselinkdPath(), "--config", ConfigPath(code)},
        NodeLog(code));
  }
  return *member.process;
}

absl::Status TestNetwork::Start(const std::string& code) {
  ChildProcess& process = Process(code);
  CASELINK_RETURN_IF_ERROR(process.Spawn());
  int port = Port(code);
  bool up = WaitFor(
      [&] { return !process.Running() || PortAcceptsConnections(port); },
      absl::Seconds(20));
  if (!up || !process.Running()) {
    return absl::InternalError(
        Cat("caselinkd ", Code(code), " did not start:\n", process.Log()));
  }
  return absl::OkStatus();
}

absl::Status TestNetwork::StartAll() {
  for (auto& [code, member] : members_) {
    CASELINK_RETURN_IF_ERROR(Start(code));
  }
  return absl::OkStatus();
}

void TestNetwork::Kill(const std::string& code) {
  Process(code).Signal(SIGKILL);
}

int TestNetwork::Stop(const std::string& code) {
  return Process(code).Signal(SIGTERM);
}

std::shared_ptr<grpc::Channel> TestNetwork::ChannelAsNode(
    const std::string& as_node, const std::string& to) const {
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  std::string dir = Cat(PkiDir(), "/nodes/", Code(as_node), "/");
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = read(PkiDir() + "/ca-bundle.pem");
  options.pem_cert_chain = read(dir + "tls-chain.pem");
  options.pem_private_key = read(dir + "tls.key");
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(NodeTlsName(Code(to)));
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel(Cat("127.0.0.1:", Port(to)),
                                   grpc::SslCredentials(options), args);
}

absl::StatusOr<std::unique_ptr<client::NodeClient>> TestNetwork::OperatorClient(
    const std::string& code) const {
  CASELINK_ASSIGN_OR_RETURN(client::ClientConfig config,
                            client::LoadClientConfig(ClientConfigPath(code)));
  return client::NodeClient::Connect(config);
}

std::string TestNetwork::AuditorConfigPath(const std::string& code) const {
  return Cat(root(), "/configs/", Code(code), "-auditor.yaml");
}

absl::StatusOr<std::unique_ptr<client::NodeClient>> TestNetwork::AuditorClient(
    const std::string& code) const {
  CASELINK_ASSIGN_OR_RETURN(client::ClientConfig config,
                            client::LoadClientConfig(AuditorConfigPath(code)));
  return client::NodeClient::Connect(config);
}

bool TestNetwork::WaitForPeersConnected(const std::string& code,
                                        absl::Duration timeout) {
  auto client = OperatorClient(code);
  if (!client.ok()) return false;
  return WaitFor(
      [&] {
        auto status = (*client)->GetStatus(absl::Seconds(2));
        if (!status.ok()) return false;
        for (const auto& peer : status->peers()) {
          if (peer.state() != v1::LINK_STATE_CONNECTED) return false;
        }
        return true;
      },
      timeout);
}

}  // namespace caselink::testing
