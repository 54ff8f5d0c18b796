// Federation across two provinces: a referral from a Fujian township
// reaches a Sichuan county through every level and back with its receipt,
// through relays that can neither read nor alter it.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "caselink/v1/envelope.pb.h"
#include "caselink/v1/peer.grpc.pb.h"
#include "core/crypto.h"
#include "core/envelope.h"
#include "core/grpc_status.h"
#include "core/identity.h"
#include "core/strings.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/network.h"
#include "tests/testing/operator.h"

namespace caselink::testing {
namespace {

constexpr char kFujian[] = "350000000000";
constexpr char kXiamen[] = "350200000000";
constexpr char kTongan[] = "350212000000";
constexpr char kTownship[] = "350212101000";
constexpr char kSichuan[] = "510000000000";
constexpr char kChengdu[] = "510100000000";
constexpr char kJinjiang[] = "510104000000";
constexpr char kJinjiangTownship[] = "510104001000";

// Personal data of an applicant, which no relay may hold in clear.
constexpr char kApplicantName[] = "Zhang Wei \xe5\xbc\xa0\xe4\xbc\x9f";
constexpr char kApplicantId[] = "350212199001011234";

NodeSpec Spec(const char* code, const char* name, const char* parent,
              std::vector<std::string> links = {}) {
  std::vector<std::string> peers;
  if (parent[0] != '\0') peers.push_back(parent);
  for (const std::string& link : links) peers.push_back(link);
  NodeSpec spec(code, name, peers, kFastRetry);
  spec.parent = parent;
  spec.links = std::move(links);
  return spec;
}

// True if any file under `dir` contains `needle`.
bool AnyFileContains(const std::string& dir, const std::string& needle) {
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    if (bytes.str().find(needle) != std::string::npos) return true;
  }
  return false;
}

class FederationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NetworkOptions options;
    options.directories = true;
    auto network = TestNetwork::Create(
        {Spec(kFujian, "Fujian Provincial Department of Justice", "",
              {kSichuan}),
         Spec(kXiamen, "Xiamen City Justice Bureau", kFujian),
         Spec(kTongan, "Tong'an County Justice Bureau", kXiamen),
         Spec(kTownship, "Tong'an Township Legal Aid Station", kTongan),
         Spec(kSichuan, "Sichuan Provincial Department of Justice", "",
              {kFujian}),
         Spec(kChengdu, "Chengdu City Justice Bureau", kSichuan),
         Spec(kJinjiang, "Jinjiang District Justice Bureau", kChengdu),
         Spec(kJinjiangTownship, "Jinjiang Township Legal Aid Station",
              kJinjiang)},
        options);
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = std::move(*network);
    ASSERT_TRUE(network_->StartAll().ok());
    ASSERT_TRUE(WaitForDirectories({{kFujian, 1}, {kSichuan, 1}}));
  }

  std::unique_ptr<client::NodeClient> Client(const std::string& code) {
    auto client = network_->OperatorClient(code);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  // Waits until every running node holds at least these directory
  // versions and has all its links up.
  bool WaitForDirectories(const std::map<std::string, uint64_t>& versions,
                          absl::Duration timeout = absl::Seconds(60)) {
    return WaitFor(
        [&] {
          for (const std::string& code : network_->Codes()) {
            if (!network_->Process(code).Running()) continue;
            auto client = network_->OperatorClient(code);
            if (!client.ok()) return false;
            auto status = (*client)->GetStatus(absl::Seconds(2));
            if (!status.ok()) return false;
            for (const auto& [province, version] : versions) {
              auto it = status->directory_versions().find(province);
              if (it == status->directory_versions().end() ||
                  it->second < version) {
                return false;
              }
            }
            for (const auto& peer : status->peers()) {
              if (peer.state() != v1::LINK_STATE_CONNECTED) return false;
            }
          }
          return true;
        },
        timeout);
  }

  // Submits a referral with the applicant's personal data.
  std::string SubmitReferral(client::NodeClient& client, const char* to,
                             const std::string& case_id) {
    v1::SubmitMessageRequest request;
    request.set_recipient(to);
    request.set_kind(v1::MESSAGE_KIND_REFERRAL);
    request.set_case_id(case_id);
    request.set_priority(v1::PRIORITY_GREEN_CHANNEL);
    request.set_payload(Cat("{\"applicants\":[{\"name\":\"", kApplicantName,
                            "\",\"id_number\":\"", kApplicantId,
                            "\",\"phone\":\"13800000000\"}]}"));
    auto response = client.Submit(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->message_id() : "";
  }

  bool WaitDelivered(client::NodeClient& client, size_t count,
                     absl::Duration timeout = absl::Seconds(60)) {
    return WaitFor(
        [&] {
          auto n = CountSentIn(client, v1::DELIVERY_STATE_DELIVERED);
          return n.ok() && *n == count;
        },
        timeout);
  }

  std::unique_ptr<TestNetwork> network_;
};

TEST_F(FederationTest, TownshipReferralReachesSichuanCountyAndReceiptReturns) {
  auto township = Client(kTownship);
  std::string id = SubmitReferral(*township, kJinjiang, "CASE-FJ-0001");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitDelivered(*township, 1));

  auto sent = township->GetSent(id);
  ASSERT_TRUE(sent.ok()) << sent.status();
  const v1::SentMessage& message = sent->message();
  EXPECT_EQ(message.state(), v1::DELIVERY_STATE_DELIVERED);
  std::vector<std::string> route(message.route().begin(),
                                 message.route().end());
  EXPECT_EQ(route,
            (std::vector<std::string>{kTownship, kTongan, kXiamen, kFujian,
                                      kSichuan, kChengdu, kJinjiang}));
  v1::Body receipt;
  ASSERT_TRUE(receipt.ParseFromString(message.receipt().body()));
  EXPECT_EQ(receipt.sender(), kJinjiang);
  EXPECT_EQ(receipt.receipt().message_id(), id);

  // The recipient reads the payload in clear; nobody on the way could.
  auto jinjiang = Client(kJinjiang);
  auto read = jinjiang->GetInboxMessage(id);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_NE(read->payload().find(kApplicantId), std::string::npos);
  EXPECT_EQ(read->message().sender(), kTownship);
}

TEST_F(FederationTest, RelaysHoldNoPersonalDataInClear) {
  auto township = Client(kTownship);
  const std::string marker = "CASE-MARKER-7f3a9c";
  std::string id = SubmitReferral(*township, kJinjiang, marker);
  ASSERT_TRUE(WaitDelivered(*township, 1));

  for (const char* relay : {kTongan, kXiamen, kFujian, kSichuan, kChengdu}) {
    std::string dir = network_->DataDir(relay);
    // The readable header did reach the relay's files, so the search sees
    // what the relay stored...
    EXPECT_TRUE(AnyFileContains(dir, marker)) << relay;
    // ...and the applicant's name and ID number are not among it.
    EXPECT_FALSE(AnyFileContains(dir, kApplicantId)) << relay;
    EXPECT_FALSE(AnyFileContains(dir, "Zhang Wei")) << relay;
    EXPECT_FALSE(AnyFileContains(dir, "\xe5\xbc\xa0\xe4\xbc\x9f")) << relay;
  }
}

TEST_F(FederationTest, RelayKilledMidFlowLosesAndDuplicatesNothing) {
  auto township = Client(kTownship);
  // Freeze the Xiamen relay so that what passes it is in flight, then kill
  // it and bring it back.
  network_->Process(kXiamen).Notify(SIGSTOP);
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    ids.push_back(SubmitReferral(*township, kJinjiang, Cat("CASE-", i)));
  }
  absl::SleepFor(absl::Milliseconds(500));
  network_->Kill(kXiamen);
  ASSERT_TRUE(network_->Start(kXiamen).ok());
  ASSERT_TRUE(WaitDelivered(*township, 200, absl::Seconds(90)))
      << network_->Process(kTongan).Log();

  auto jinjiang = Client(kJinjiang);
  auto inbox = AllInbox(*jinjiang);
  ASSERT_TRUE(inbox.ok());
  std::multiset<std::string> arrived;
  for (const auto& message : *inbox) arrived.insert(message.message_id());
  EXPECT_EQ(arrived.size(), 200u);
  for (const std::string& id : ids) EXPECT_EQ(arrived.count(id), 1u);
}

TEST_F(FederationTest, CutLinkQueuesThenDrains) {
  auto township = Client(kTownship);
  // The partner link between the provinces goes down with Sichuan's node.
  ASSERT_EQ(network_->Stop(kSichuan), 0);
  for (int i = 0; i < 50; ++i) {
    SubmitReferral(*township, kJinjiang, Cat("CASE-CUT-", i));
  }
  auto fujian = Client(kFujian);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto status = fujian->GetStatus();
        if (!status.ok()) return false;
        for (const auto& peer : status->peers()) {
          if (peer.code() == kSichuan) return peer.queued() == 50;
        }
        return false;
      },
      absl::Seconds(30)));
  ASSERT_TRUE(network_->Start(kSichuan).ok());
  ASSERT_TRUE(WaitDelivered(*township, 50, absl::Seconds(90)));
}

TEST_F(FederationTest, NodeAddedByNewDirectoryVersionIsReachedWithoutRestarts) {
  NodeSpec siming =
      Spec("350203000000", "Siming District Justice Bureau", kXiamen);
  ASSERT_TRUE(network_->AddNode(siming).ok());
  ASSERT_TRUE(network_->Start("350203000000").ok());
  // Fujian publishes version 2; it spreads to every node, Sichuan's too.
  ASSERT_TRUE(WaitForDirectories({{kFujian, 2}, {kSichuan, 1}}));

  auto jinjiang = Client(kJinjiang);
  std::string id = SubmitReferral(*jinjiang, "350203000000", "CASE-SC-0001");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitDelivered(*jinjiang, 1));
  auto siming_client = Client("350203000000");
  auto inbox = AllInbox(*siming_client);
  ASSERT_TRUE(inbox.ok());
  ASSERT_EQ(inbox->size(), 1u);
  EXPECT_EQ((*inbox)[0].message_id(), id);
  // Nobody else was restarted.
  for (const std::string& code : network_->Codes()) {
    std::string log = network_->Process(code).Log();
    size_t first = log.find("event=node_started");
    EXPECT_EQ(log.find("event=node_started", first + 1), std::string::npos)
        << code;
  }
}

TEST_F(FederationTest, RevokedNodeIsRefusedAndItsLinksCut) {
  auto jinjiang = Client(kJinjiang);
  std::string before = SubmitReferral(*jinjiang, kTownship, "CASE-R-1");
  ASSERT_TRUE(WaitDelivered(*jinjiang, 1));

  ASSERT_TRUE(network_->Revoke(kTownship).ok());
  // Tong'an, the township's parent, reloads the CRLs and cuts the link.
  auto tongan = Client(kTongan);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto status = tongan->GetStatus();
        if (!status.ok()) return false;
        for (const auto& peer : status->peers()) {
          if (peer.code() == kTownship) {
            return peer.state() != v1::LINK_STATE_CONNECTED &&
                   peer.last_error().find("revoked") != std::string::npos;
          }
        }
        return false;
      },
      absl::Seconds(20)));

  // The township's own certificate is refused on any call.
  auto stub =
      v1::PeerService::NewStub(network_->ChannelAsNode(kTownship, kTongan));
  grpc::ClientContext context;
  v1::GetNodeInfoResponse info;
  grpc::Status refused =
      stub->GetNodeInfo(&context, v1::GetNodeInfoRequest(), &info);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(refused.error_message().find("revoked"), std::string::npos)
      << refused.error_message();

  // What is sent to it now waits at Tong'an instead of reaching it.
  std::string after = SubmitReferral(*jinjiang, kTownship, "CASE-R-2");
  ASSERT_FALSE(after.empty());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto status = tongan->GetStatus();
        if (!status.ok()) return false;
        for (const auto& peer : status->peers()) {
          if (peer.code() == kTownship) return peer.queued() == 1;
        }
        return false;
      },
      absl::Seconds(20)));
  auto township = Client(kTownship);
  auto inbox = AllInbox(*township);
  ASSERT_TRUE(inbox.ok());
  ASSERT_EQ(inbox->size(), 1u);
  EXPECT_EQ((*inbox)[0].message_id(), before);
}

TEST_F(FederationTest, RotatedKeyKeepsOldReceiptsValid) {
  auto township = Client(kTownship);
  std::string first = SubmitReferral(*township, kJinjiang, "CASE-K-1");
  ASSERT_TRUE(WaitDelivered(*township, 1));
  auto old_receipt = township->GetSent(first);
  ASSERT_TRUE(old_receipt.ok());
  const std::string old_key_id =
      old_receipt->message().receipt().signature().key_id();

  // Jinjiang rolls to new keys; its old signing certificate stays listed.
  ASSERT_TRUE(network_->Rotate(kJinjiang).ok());
  ASSERT_EQ(network_->Stop(kJinjiang), 0);
  ASSERT_TRUE(network_->Start(kJinjiang).ok());
  ASSERT_TRUE(WaitForDirectories({{kFujian, 1}, {kSichuan, 2}}));

  std::string second = SubmitReferral(*township, kJinjiang, "CASE-K-2");
  ASSERT_TRUE(WaitDelivered(*township, 2));
  auto new_receipt = township->GetSent(second);
  ASSERT_TRUE(new_receipt.ok());
  EXPECT_NE(new_receipt->message().receipt().signature().key_id(), old_key_id);

  // The receipt the old key signed still checks out against the old
  // certificate, and the sender still holds it as delivered.
  std::string previous;
  for (const auto& entry : std::filesystem::directory_iterator(
           Cat(network_->PkiDir(), "/nodes/", kJinjiang))) {
    std::string name = entry.path().filename().string();
    if (name.starts_with("sign.prev-") && name.ends_with(".crt")) {
      previous = entry.path().string();
    }
  }
  ASSERT_FALSE(previous.empty());
  auto certificate = Certificate::LoadPemFile(previous);
  ASSERT_TRUE(certificate.ok());
  auto key = certificate->public_key();
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->KeyId(), old_key_id);
  SignatureChecker checker;
  EXPECT_TRUE(checker.Verify(old_receipt->message().receipt(), *key).ok());
  auto again = township->GetSent(first);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->message().state(), v1::DELIVERY_STATE_DELIVERED);

  // The new key cannot pass for the old one.
  auto new_certificate = Certificate::LoadPemFile(
      Cat(network_->PkiDir(), "/nodes/", kJinjiang, "/sign.crt"));
  ASSERT_TRUE(new_certificate.ok());
  auto new_key = new_certificate->public_key();
  ASSERT_TRUE(new_key.ok());
  EXPECT_FALSE(checker.Verify(old_receipt->message().receipt(), *new_key).ok());
}

}  // namespace
}  // namespace caselink::testing
