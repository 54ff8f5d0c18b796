// A running node rolls to new TLS, signing and sealing keys, on SIGHUP or
// when its files change, with no restart: messages from and to it go on,
// what its old keys signed stays verifiable, what was sealed to its old
// sealing key still opens, and a bad set of files is refused while the node
// keeps serving with the identity it had.
#include <signal.h>

#include <fstream>

#include "caselink/v1/envelope.pb.h"
#include "caselink/v1/peer.grpc.pb.h"
#include "core/crypto.h"
#include "core/envelope.h"
#include "core/seal.h"
#include "core/strings.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/network.h"
#include "tests/testing/operator.h"

namespace caselink::testing {
namespace {

constexpr char kFujian[] = "350000000000";
constexpr char kXiamen[] = "350200000000";
constexpr char kSiming[] = "350203000000";
constexpr char kTongan[] = "350212000000";

NodeSpec Spec(const char* code, const char* name, const char* parent) {
  std::vector<std::string> peers;
  if (parent[0] != '\0') peers.push_back(parent);
  NodeSpec spec(code, name, peers, kFastRetry);
  spec.parent = parent;
  return spec;
}

size_t CountOf(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

class RotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NetworkOptions options;
    options.directories = true;
    auto network = TestNetwork::Create(
        {Spec(kFujian, "Fujian Provincial Department of Justice", ""),
         Spec(kXiamen, "Xiamen City Justice Bureau", kFujian),
         Spec(kSiming, "Siming District Justice Bureau", kXiamen),
         Spec(kTongan, "Tong'an County Justice Bureau", kXiamen)},
        options);
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = std::move(*network);
    ASSERT_TRUE(network_->StartAll().ok());
    ASSERT_TRUE(WaitForDirectory(1));
    tongan_pid_ = network_->Process(kTongan).pid();
  }

  std::unique_ptr<client::NodeClient> Client(const std::string& code) {
    auto client = network_->OperatorClient(code);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  // Waits until every node holds Fujian's directory at `version` or later
  // and has all its links up.
  bool WaitForDirectory(uint64_t version) {
    return WaitFor(
        [&] {
          for (const std::string& code : network_->Codes()) {
            auto client = network_->OperatorClient(code);
            if (!client.ok()) return false;
            auto status = (*client)->GetStatus(absl::Seconds(2));
            if (!status.ok()) return false;
            auto it = status->directory_versions().find(kFujian);
            if (it == status->directory_versions().end() ||
                it->second < version) {
              return false;
            }
            for (const auto& peer : status->peers()) {
              if (peer.state() != v1::LINK_STATE_CONNECTED) return false;
            }
          }
          return true;
        },
        absl::Seconds(60));
  }

  std::string Submit(client::NodeClient& client, const char* to,
                     const std::string& case_id, const std::string& payload) {
    v1::SubmitMessageRequest request;
    request.set_recipient(to);
    request.set_kind(v1::MESSAGE_KIND_REFERRAL);
    request.set_case_id(case_id);
    request.set_payload(payload);
    auto response = client.Submit(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->message_id() : "";
  }

  // Waits until message `id` sent from `client` is delivered (its receipt
  // verified) and returns it.
  v1::SentMessage WaitDelivered(client::NodeClient& client,
                                const std::string& id) {
    v1::SentMessage sent;
    bool delivered = WaitFor(
        [&] {
          auto response = client.GetSent(id);
          if (!response.ok()) return false;
          sent = response->message();
          return sent.state() == v1::DELIVERY_STATE_DELIVERED;
        },
        absl::Seconds(60));
    EXPECT_TRUE(delivered) << MessageIdText(id) << " is "
                           << v1::DeliveryState_Name(sent.state()) << ": "
                           << sent.reason();
    return sent;
  }

  bool WaitForLog(const std::string& code, const std::string& needle,
                  size_t count = 1) {
    return WaitFor(
        [&] { return CountOf(network_->Process(code).Log(), needle) >= count; },
        absl::Seconds(30));
  }

  std::string NodeFile(const std::string& code, const std::string& name) {
    return Cat(network_->PkiDir(), "/nodes/", code, "/", name);
  }

  // The key id of a signing certificate file.
  std::string SigningKeyId(const std::string& path) {
    auto cert = Certificate::LoadPemFile(path);
    EXPECT_TRUE(cert.ok()) << cert.status();
    if (!cert.ok()) return "";
    auto key = cert->public_key();
    return key.ok() ? key->KeyId() : "";
  }

  std::string SealingKeyId(const std::string& path) {
    auto key = SealingPublicKey::FromCertificatePem(ReadFile(path));
    EXPECT_TRUE(key.ok()) << key.status();
    return key.ok() ? key->KeyId() : "";
  }

  // The fingerprint of the TLS certificate `code` presents on a new
  // connection.
  std::string PresentedTlsFingerprint(const std::string& code) {
    auto stub =
        v1::PeerService::NewStub(network_->ChannelAsNode(kXiamen, code));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    v1::GetNodeInfoResponse info;
    grpc::Status status =
        stub->GetNodeInfo(&context, v1::GetNodeInfoRequest(), &info);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::string pem;
    for (const auto& value :
         context.auth_context()->FindPropertyValues("x509_pem_cert")) {
      pem.assign(value.data(), value.size());
    }
    auto cert = Certificate::FromPem(pem);
    return cert.ok() ? cert->fingerprint() : "";
  }

  std::string FileFingerprint(const std::string& path) {
    auto cert = Certificate::LoadPemFile(path);
    EXPECT_TRUE(cert.ok()) << cert.status();
    return cert.ok() ? cert->fingerprint() : "";
  }

  // The recipient key id of the sealed payload of message `id` in the
  // inbox of `client`, and its payload in clear.
  std::pair<std::string, std::string> ReadSealed(client::NodeClient& client,
                                                 const std::string& id) {
    auto read = client.GetInboxMessage(id);
    EXPECT_TRUE(read.ok()) << read.status();
    if (!read.ok()) return {};
    v1::Body body;
    EXPECT_TRUE(body.ParseFromString(read->message().envelope().body()));
    EXPECT_TRUE(body.has_sealed_payload());
    return {body.sealed_payload().recipient_key_id(), read->payload()};
  }

  // Tong'an is still the process it was, and was never started again.
  void ExpectNotRestarted() {
    ChildProcess& process = network_->Process(kTongan);
    EXPECT_TRUE(process.Running());
    EXPECT_EQ(process.pid(), tongan_pid_);
    EXPECT_EQ(CountOf(process.Log(), "event=node_started"), 1u);
  }

  std::unique_ptr<TestNetwork> network_;
  pid_t tongan_pid_ = -1;
};

TEST_F(RotationTest, SighupRollsToNewKeysAndOldOnesStayUsable) {
  auto tongan = Client(kTongan);
  auto siming = Client(kSiming);
  auto xiamen = Client(kXiamen);
  const std::string old_signing = SigningKeyId(NodeFile(kTongan, "sign.crt"));
  const std::string old_sealing = SealingKeyId(NodeFile(kTongan, "seal.crt"));
  const std::string old_tls = FileFingerprint(NodeFile(kTongan, "tls.crt"));
  auto old_signing_cert =
      Certificate::LoadPemFile(NodeFile(kTongan, "sign.crt"));
  ASSERT_TRUE(old_signing_cert.ok());
  EXPECT_EQ(PresentedTlsFingerprint(kTongan), old_tls);

  // Before: one message each way; the one to Tong'an stays unread.
  std::string unread = Submit(*siming, kTongan, "CASE-ROT-1", "sealed before");
  std::string earlier = Submit(*tongan, kSiming, "CASE-ROT-2", "earlier");
  v1::SentMessage old_receipt = WaitDelivered(*siming, unread);
  WaitDelivered(*tongan, earlier);
  ASSERT_EQ(old_receipt.receipt().signature().key_id(), old_signing);

  // Tong'an rolls to new keys while it runs. The directory is left as it
  // was, so Siming knows neither the new signing nor the new sealing key.
  ASSERT_TRUE(network_->Rotate(kTongan, /*directory=*/false).ok());
  network_->Process(kTongan).Notify(SIGHUP);
  ASSERT_TRUE(WaitForLog(kTongan, "event=identity_reloaded trigger=SIGHUP"))
      << network_->Process(kTongan).Log();
  ExpectNotRestarted();
  const std::string new_signing = SigningKeyId(NodeFile(kTongan, "sign.crt"));
  const std::string new_sealing = SealingKeyId(NodeFile(kTongan, "seal.crt"));
  ASSERT_NE(new_signing, old_signing);
  ASSERT_NE(new_sealing, old_sealing);

  // New TLS connections meet the new certificate.
  const std::string new_tls = FileFingerprint(NodeFile(kTongan, "tls.crt"));
  ASSERT_NE(new_tls, old_tls);
  EXPECT_EQ(PresentedTlsFingerprint(kTongan), new_tls);

  // From the rotated node: signed with the new key, which Siming learns
  // from Xiamen, the relay that checked it.
  std::string from = Submit(*tongan, kSiming, "CASE-ROT-3", "signed anew");
  WaitDelivered(*tongan, from);
  auto arrived = siming->GetInboxMessage(from);
  ASSERT_TRUE(arrived.ok()) << arrived.status();
  EXPECT_EQ(arrived->message().envelope().signature().key_id(), new_signing);
  EXPECT_EQ(arrived->payload(), "signed anew");
  EXPECT_NE(network_->Process(kSiming).Log().find(
                "event=signing_key_learned node=350212000000"),
            std::string::npos);

  // To the rotated node: Siming still seals to the old sealing key, which
  // opens; the receipt is signed with the new key and verifies.
  std::string to = Submit(*siming, kTongan, "CASE-ROT-4", "sealed to old");
  v1::SentMessage to_sent = WaitDelivered(*siming, to);
  EXPECT_EQ(to_sent.receipt().signature().key_id(), new_signing);
  auto [to_key, to_payload] = ReadSealed(*tongan, to);
  EXPECT_EQ(to_key, old_sealing);
  EXPECT_EQ(to_payload, "sealed to old");

  // Sealed to the old key before the rotation, read after it.
  auto [unread_key, unread_payload] = ReadSealed(*tongan, unread);
  EXPECT_EQ(unread_key, old_sealing);
  EXPECT_EQ(unread_payload, "sealed before");

  // Xiamen, a peer, heard the new sealing key in the new hello.
  std::string from_peer = Submit(*xiamen, kTongan, "CASE-ROT-5", "sealed anew");
  WaitDelivered(*xiamen, from_peer);
  auto [peer_key, peer_payload] = ReadSealed(*tongan, from_peer);
  EXPECT_EQ(peer_key, new_sealing);
  EXPECT_EQ(peer_payload, "sealed anew");

  // The receipt the old key signed still checks out, and is still held as
  // delivered.
  auto old_key = old_signing_cert->public_key();
  ASSERT_TRUE(old_key.ok());
  SignatureChecker checker;
  EXPECT_TRUE(checker.Verify(old_receipt.receipt(), *old_key).ok());
  auto again = siming->GetSent(unread);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->message().state(), v1::DELIVERY_STATE_DELIVERED);
  EXPECT_EQ(again->message().receipt().signature().key_id(), old_signing);

  // Once the province lists the new certificates, everyone seals to the new
  // key.
  ASSERT_TRUE(network_->WriteDirectories().ok());
  ASSERT_TRUE(WaitForDirectory(2));
  std::string listed = Submit(*siming, kTongan, "CASE-ROT-6", "listed");
  WaitDelivered(*siming, listed);
  EXPECT_EQ(ReadSealed(*tongan, listed).first, new_sealing);

  std::string log = network_->Process(kTongan).Log();
  EXPECT_EQ(log.find("event=identity_not_reloaded"), std::string::npos) << log;
  EXPECT_EQ(log.find("level=error"), std::string::npos) << log;
  ExpectNotRestarted();
}

TEST_F(RotationTest, ChangedFilesAreTakenWithoutASignal) {
  auto siming = Client(kSiming);
  const std::string old_signing = SigningKeyId(NodeFile(kTongan, "sign.crt"));

  ASSERT_TRUE(network_->Rotate(kTongan).ok());
  ASSERT_TRUE(
      WaitForLog(kTongan, "event=identity_reloaded trigger=file_change"))
      << network_->Process(kTongan).Log();
  ExpectNotRestarted();
  const std::string new_signing = SigningKeyId(NodeFile(kTongan, "sign.crt"));
  ASSERT_NE(new_signing, old_signing);
  EXPECT_EQ(PresentedTlsFingerprint(kTongan),
            FileFingerprint(NodeFile(kTongan, "tls.crt")));

  std::string to = Submit(*siming, kTongan, "CASE-ROT-7", "after the change");
  v1::SentMessage sent = WaitDelivered(*siming, to);
  EXPECT_EQ(sent.receipt().signature().key_id(), new_signing);
  auto tongan = Client(kTongan);
  auto read = tongan->GetInboxMessage(to);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->payload(), "after the change");
}

TEST_F(RotationTest, BadFilesAreRefusedAndTheNodeKeepsItsIdentity) {
  auto siming = Client(kSiming);
  const std::string signing = SigningKeyId(NodeFile(kTongan, "sign.crt"));
  const std::string tls = FileFingerprint(NodeFile(kTongan, "tls.crt"));
  const std::string config_path = network_->ConfigPath(kTongan);
  const std::string good = ReadFile(config_path);

  // The good config with each (from, to) path replaced.
  auto replaced =
      [&](const std::vector<std::pair<std::string, std::string>>& changes) {
        std::string text = good;
        for (const auto& [from, to] : changes) {
          size_t at = text.find(from);
          EXPECT_NE(at, std::string::npos) << from;
          if (at != std::string::npos) text.replace(at, from.size(), to);
        }
        return text;
      };
  struct Case {
    std::string config;
    // What the log line must name, and why.
    std::string file;
    std::string reason;
  };
  const std::string other_tls = NodeFile(kXiamen, "tls-chain.pem");
  const std::string missing = network_->root() + "/nowhere.key";
  const std::vector<Case> cases = {
      // A key that is not the certificate's.
      {replaced(
           {{NodeFile(kTongan, "sign.key"), NodeFile(kTongan, "tls.key")}}),
       NodeFile(kTongan, "tls.key"), "does not match certificate"},
      // A certificate, with its key, of another node.
      {replaced({{NodeFile(kTongan, "tls-chain.pem"), other_tls},
                 {NodeFile(kTongan, "tls.key"), NodeFile(kXiamen, "tls.key")}}),
       other_tls, "does not name node 350212000000"},
      // A sealing key that is not there.
      {replaced({{NodeFile(kTongan, "seal.key"), missing}}), missing, ""},
  };

  size_t refusals = 0;
  for (const Case& bad : cases) {
    std::ofstream(config_path) << bad.config;
    network_->Process(kTongan).Notify(SIGHUP);
    ++refusals;
    ASSERT_TRUE(WaitForLog(
        kTongan, "event=identity_not_reloaded trigger=SIGHUP", refusals))
        << network_->Process(kTongan).Log();
    std::string log = network_->Process(kTongan).Log();
    size_t line = log.rfind("event=identity_not_reloaded trigger=SIGHUP");
    std::string refusal = log.substr(line, log.find('\n', line) - line);
    EXPECT_NE(refusal.find(bad.file), std::string::npos) << refusal;
    EXPECT_NE(refusal.find(bad.reason), std::string::npos) << refusal;
    EXPECT_NE(refusal.find("next=\"keeping the identity in force\""),
              std::string::npos)
        << refusal;

    // The node goes on serving as it was: same process, same TLS
    // certificate, receipts signed with the same key.
    ExpectNotRestarted();
    EXPECT_EQ(PresentedTlsFingerprint(kTongan), tls);
    std::string id = Submit(*siming, kTongan, "CASE-BAD", "still served");
    v1::SentMessage sent = WaitDelivered(*siming, id);
    EXPECT_EQ(sent.receipt().signature().key_id(), signing);
  }
  EXPECT_EQ(network_->Process(kTongan).Log().find("event=identity_reloaded"),
            std::string::npos);

  // Put right, the same files are taken as unchanged.
  std::ofstream(config_path) << good;
  network_->Process(kTongan).Notify(SIGHUP);
  EXPECT_TRUE(WaitForLog(kTongan, "event=identity_unchanged"));
}

}  // namespace
}  // namespace caselink::testing
