// Receipts that come back on acks. A real Tong'an node sends to a
// stand-in for Xiamen: a gRPC server of this test with Xiamen's TLS and
// signing identity, which acknowledges every envelope with a receipt that
// the test chooses to be valid or bad. A bad receipt is refused, logged and
// counted; the message stays acknowledged, and the next valid receipt on
// the same stream is taken.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "caselink/v1/audit.grpc.pb.h"
#include "caselink/v1/peer.grpc.pb.h"
#include "core/crypto.h"
#include "core/envelope.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/network.h"

namespace caselink::testing {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kTongan[] = "350212000000";
constexpr char kXiamen[] = "350200000000";

// What the stand-in puts on its next ack.
enum class ReceiptKind {
  kValid,
  kBadSignature,
  kOtherMessage,
};

class StandInXiamen final : public v1::PeerService::Service {
 public:
  StandInXiamen(std::string node_dir, PrivateKey key)
      : node_dir_(std::move(node_dir)), key_(std::move(key)) {}

  void SetNext(ReceiptKind kind) { next_ = kind; }

  grpc::Status GetNodeInfo(grpc::ServerContext*, const v1::GetNodeInfoRequest*,
                           v1::GetNodeInfoResponse* response) override {
    response->set_code(kXiamen);
    response->set_name("Xiamen stand-in");
    response->add_signing_certificates(ReadFile(node_dir_ + "sign.crt"));
    response->set_sealing_certificate(ReadFile(node_dir_ + "seal.crt"));
    return grpc::Status::OK;
  }

  grpc::Status Exchange(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::ExchangeResponse, v1::ExchangeRequest>*
          stream) override {
    v1::ExchangeRequest request;
    if (!stream->Read(&request) || !request.has_hello()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no hello");
    }
    asked_receipts_on_acks_ = request.hello().receipts_on_acks();
    while (stream->Read(&request)) {
      std::vector<v1::Envelope> envelopes;
      if (request.has_envelope()) envelopes.push_back(request.envelope());
      for (const v1::Envelope& envelope : request.batch().envelopes()) {
        envelopes.push_back(envelope);
      }
      v1::ExchangeResponse response;
      for (const v1::Envelope& envelope : envelopes) {
        v1::Body body;
        if (!body.ParseFromString(envelope.body())) continue;
        v1::Ack* ack = response.add_acks();
        ack->set_message_id(body.message_id());
        *ack->mutable_receipt() = Receipt(envelope, body, next_.load());
      }
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }

  bool asked_receipts_on_acks() const { return asked_receipts_on_acks_; }

 private:
  v1::Envelope Receipt(const v1::Envelope& envelope, const v1::Body& body,
                       ReceiptKind kind) {
    v1::Body receipt;
    receipt.set_message_id(NewMessageId());
    receipt.set_sender(kXiamen);
    receipt.set_recipient(body.sender());
    *receipt.mutable_created_at() = TimeUtil::GetCurrentTime();
    receipt.set_kind(v1::MESSAGE_KIND_RECEIPT);
    receipt.set_in_reply_to(body.message_id());
    v1::Receipt* content = receipt.mutable_receipt();
    content->set_message_id(kind == ReceiptKind::kOtherMessage
                                ? NewMessageId()
                                : body.message_id());
    auto digest = BodyDigest(key_.scheme(), envelope.body());
    if (digest.ok()) content->set_body_digest(*digest);
    *content->mutable_received_at() = receipt.created_at();
    std::vector<std::string> bodies = {receipt.SerializeAsString()};
    auto signed_envelopes = SignBodies(key_, bodies);
    if (!signed_envelopes.ok()) return v1::Envelope();
    v1::Envelope out = (*signed_envelopes)[0];
    out.mutable_routing()->add_hops(kXiamen);
    out.mutable_routing()->set_hop_limit(8);
    if (kind == ReceiptKind::kBadSignature) {
      std::string* value = out.mutable_signature()->mutable_value();
      (*value)[value->size() - 1] ^= 0x01;
    }
    return out;
  }

  const std::string node_dir_;
  const PrivateKey key_;
  std::atomic<ReceiptKind> next_{ReceiptKind::kValid};
  std::atomic<bool> asked_receipts_on_acks_{false};
};

class AckedReceiptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto network = TestNetwork::Create(
        {{kTongan, "Tong'an", {kXiamen}}, {kXiamen, "Xiamen", {kTongan}}});
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = std::move(*network);

    std::string dir = Cat(network_->PkiDir(), "/nodes/", kXiamen, "/");
    auto key = PrivateKey::LoadPemFile(dir + "sign.key");
    ASSERT_TRUE(key.ok()) << key.status();
    stand_in_ = std::make_unique<StandInXiamen>(dir, std::move(*key));

    grpc::SslServerCredentialsOptions tls(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    tls.pem_root_certs = ReadFile(network_->PkiDir() + "/ca-bundle.pem");
    tls.pem_key_cert_pairs.push_back(
        {ReadFile(dir + "tls.key"), ReadFile(dir + "tls-chain.pem")});
    grpc::ServerBuilder builder;
    builder.AddListeningPort(Cat("127.0.0.1:", network_->Port(kXiamen)),
                             grpc::SslServerCredentials(tls));
    builder.RegisterService(stand_in_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_TRUE(network_->Start(kTongan).ok());
    ASSERT_TRUE(network_->WaitForPeersConnected(kTongan));
    auto client = network_->OperatorClient(kTongan);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  void TearDown() override {
    if (network_ != nullptr) network_->Stop(kTongan);
    if (server_ != nullptr) server_->Shutdown(absl::ToChronoTime(absl::Now()));
  }

  // Submits one referral to Xiamen and waits until Tong'an has settled it
  // as acknowledged or delivered; returns that state.
  v1::DeliveryState SendOne(std::string* id) {
    v1::SubmitMessageRequest request;
    request.set_recipient(kXiamen);
    request.set_kind(v1::MESSAGE_KIND_REFERRAL);
    request.set_payload("a referral");
    request.set_case_id(Cat("case-", ++sent_));
    auto submitted = client_->Submit(request);
    EXPECT_TRUE(submitted.ok()) << submitted.status();
    if (!submitted.ok()) return v1::DELIVERY_STATE_UNSPECIFIED;
    *id = submitted->message_id();
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      auto sent = client_->GetSent(*id);
      if (sent.ok()) {
        v1::DeliveryState state = sent->message().state();
        if (state == v1::DELIVERY_STATE_ACKNOWLEDGED ||
            state == v1::DELIVERY_STATE_DELIVERED) {
          return state;
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "message " << MessageIdText(*id) << " never settled";
    return v1::DELIVERY_STATE_UNSPECIFIED;
  }

  uint64_t Counter(const std::string& name) {
    auto status = client_->GetStatus();
    if (!status.ok()) return 0;
    auto it = status->counters().find(name);
    return it == status->counters().end() ? 0 : it->second;
  }

  std::unique_ptr<TestNetwork> network_;
  std::unique_ptr<StandInXiamen> stand_in_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<client::NodeClient> client_;
  int sent_ = 0;
};

TEST_F(AckedReceiptTest, ValidReceiptOnTheAckDeliversTheMessage) {
  std::string id;
  EXPECT_EQ(SendOne(&id), v1::DELIVERY_STATE_DELIVERED);
  EXPECT_TRUE(stand_in_->asked_receipts_on_acks());
  auto sent = client_->GetSent(id);
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_TRUE(sent->message().has_receipt());
  EXPECT_EQ(Counter("delivered"), 1u);

  // Tong'an's audit log holds the submission and one event for the
  // acknowledgement and the receipt that came with it.
  auto auditor = network_->AuditorClient(kTongan);
  ASSERT_TRUE(auditor.ok()) << auditor.status();
  auto stub = v1::AuditService::NewStub((*auditor)->channel());
  grpc::ClientContext context;
  v1::GetCaseHistoryRequest history;
  history.set_case_id("case-1");
  v1::AuditAnswer answer;
  ASSERT_TRUE(stub->GetCaseHistory(&context, history, &answer).ok());
  std::vector<v1::AuditEventKind> kinds;
  std::string last_detail;
  for (const v1::AuditEntry& entry : answer.entries()) {
    v1::AuditEvent event;
    ASSERT_TRUE(event.ParseFromString(entry.event()));
    kinds.push_back(event.kind());
    last_detail = event.detail();
  }
  EXPECT_EQ(kinds,
            (std::vector<v1::AuditEventKind>{v1::AUDIT_EVENT_KIND_SUBMITTED,
                                             v1::AUDIT_EVENT_KIND_RECEIPT}));
  EXPECT_NE(last_detail.find("came with the acknowledgement"),
            std::string::npos)
      << last_detail;
}

TEST_F(AckedReceiptTest, ReceiptWithABadSignatureIsRefused) {
  const uint64_t before = Counter("refused_bad_signature");
  stand_in_->SetNext(ReceiptKind::kBadSignature);
  std::string bad;
  EXPECT_EQ(SendOne(&bad), v1::DELIVERY_STATE_ACKNOWLEDGED);
  EXPECT_EQ(Counter("refused_bad_signature"), before + 1);
  std::string log = network_->Process(kTongan).Log();
  EXPECT_NE(log.find(Cat("event=envelope_refused")), std::string::npos) << log;
  EXPECT_NE(log.find("does not verify"), std::string::npos) << log;

  // The same stream goes on, and the next valid receipt is taken.
  stand_in_->SetNext(ReceiptKind::kValid);
  std::string good;
  EXPECT_EQ(SendOne(&good), v1::DELIVERY_STATE_DELIVERED);
  auto still = client_->GetSent(bad);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->message().state(), v1::DELIVERY_STATE_ACKNOWLEDGED);
  EXPECT_TRUE(network_->Process(kTongan).Running());
}

TEST_F(AckedReceiptTest, ReceiptForAnotherMessageIsRefused) {
  const uint64_t before = Counter("receipts_refused");
  stand_in_->SetNext(ReceiptKind::kOtherMessage);
  std::string bad;
  EXPECT_EQ(SendOne(&bad), v1::DELIVERY_STATE_ACKNOWLEDGED);
  EXPECT_EQ(Counter("receipts_refused"), before + 1);
  std::string log = network_->Process(kTongan).Log();
  EXPECT_NE(log.find(Cat("event=receipt_refused message=", MessageIdText(bad),
                         " peer=", kXiamen)),
            std::string::npos)
      << log;

  stand_in_->SetNext(ReceiptKind::kValid);
  std::string good;
  EXPECT_EQ(SendOne(&good), v1::DELIVERY_STATE_DELIVERED);
  EXPECT_TRUE(network_->Process(kTongan).Running());
}

}  // namespace
}  // namespace caselink::testing
