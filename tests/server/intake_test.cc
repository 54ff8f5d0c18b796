// Bad input from a peer is refused envelope by envelope, each with its own
// status and reason, logged and counted; the stream and the node go on and
// the next valid envelope is stored.
#include <map>

#include "absl/time/clock.h"
#include "caselink/v1/operator.grpc.pb.h"
#include "caselink/v1/peer.grpc.pb.h"
#include "core/crypto.h"
#include "core/envelope.h"
#include "core/identity.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/network.h"
#include "tests/testing/operator.h"

namespace caselink::testing {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kTongan[] = "350212000000";
constexpr char kXiamen[] = "350200000000";
constexpr char kSmallLimit[] = "delivery:\n  max_envelope_bytes: 65536\n";

// Plays the Xiamen node on a raw Exchange stream to Tong'an.
class IntakeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto network =
        TestNetwork::Create({{kTongan, "Tong'an", {kXiamen}, kSmallLimit},
                             {kXiamen, "Xiamen", {kTongan}, ""},
                             {"510000000000", "Sichuan", {}, ""}});
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = network->release();
    // Only Tong'an runs; this test speaks for Xiamen.
    ASSERT_TRUE(network_->Start(kTongan).ok());
  }

  static void TearDownTestSuite() {
    delete network_;
    network_ = nullptr;
  }

  void SetUp() override {
    std::string dir = Cat(network_->PkiDir(), "/nodes/", kXiamen, "/");
    auto key = PrivateKey::LoadPemFile(dir + "sign.key");
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = std::make_unique<PrivateKey>(std::move(*key));
    sign_cert_ = ReadFile(dir + "sign.crt");

    channel_ = network_->ChannelAsNode(kXiamen, kTongan);
    stub_ = v1::PeerService::NewStub(channel_);
    stream_ = stub_->Exchange(&context_);
    v1::ExchangeRequest hello;
    hello.mutable_hello()->set_code(kXiamen);
    hello.mutable_hello()->add_signing_certificates(sign_cert_);
    ASSERT_TRUE(stream_->Write(hello));
  }

  void TearDown() override {
    stream_->WritesDone();
    v1::ExchangeResponse drain;
    while (stream_->Read(&drain)) {
    }
    stream_->Finish();
  }

  // A valid referral body from Xiamen to Tong'an.
  static v1::Body ValidBody(size_t payload_bytes = 64) {
    v1::Body body;
    body.set_message_id(NewMessageId());
    body.set_sender(kXiamen);
    body.set_recipient(kTongan);
    *body.mutable_created_at() = TimeUtil::GetCurrentTime();
    body.set_kind(v1::MESSAGE_KIND_REFERRAL);
    body.set_priority(v1::PRIORITY_ORDINARY);
    body.set_payload(std::string(payload_bytes, 'p'));
    return body;
  }

  v1::Envelope Sign(const v1::Body& body, const PrivateKey& key) {
    std::vector<std::string> bodies = {body.SerializeAsString()};
    auto envelopes = SignBodies(key, bodies);
    EXPECT_TRUE(envelopes.ok()) << envelopes.status();
    v1::Envelope envelope = (*envelopes)[0];
    envelope.mutable_routing()->add_hops(kXiamen);
    envelope.mutable_routing()->set_hop_limit(8);
    return envelope;
  }

  v1::Envelope Sign(const v1::Body& body) { return Sign(body, *key_); }

  // An envelope from a township behind Xiamen whose signing key Tong'an has
  // never seen; its id goes to stranger_id_.
  v1::Envelope StrangerEnvelope() {
    auto stranger = PrivateKey::Generate(SignatureScheme::kEcdsaP256Sha256);
    EXPECT_TRUE(stranger.ok());
    v1::Body body = ValidBody();
    body.set_sender("350203101000");
    stranger_id_ = body.message_id();
    v1::Envelope envelope = Sign(body, *stranger);
    envelope.mutable_routing()->clear_hops();
    envelope.mutable_routing()->add_hops("350203101000");
    envelope.mutable_routing()->add_hops(kXiamen);
    return envelope;
  }

  // Sends `envelope` and returns the ack for `id`.
  v1::Ack Send(const v1::Envelope& envelope, const std::string& id) {
    v1::ExchangeRequest request;
    *request.mutable_envelope() = envelope;
    EXPECT_TRUE(stream_->Write(request));
    v1::ExchangeResponse response;
    while (stream_->Read(&response)) {
      for (const v1::Ack& ack : response.acks()) {
        if (ack.message_id() == id) return ack;
      }
    }
    ADD_FAILURE() << "stream ended without an ack for " << MessageIdText(id);
    return v1::Ack();
  }

  uint64_t Counter(const std::string& name) {
    auto client = network_->OperatorClient(kTongan);
    auto status = (*client)->GetStatus();
    if (!status.ok()) return 0;
    auto it = status->counters().find(name);
    return it == status->counters().end() ? 0 : it->second;
  }

  bool InInbox(const std::string& id) {
    auto client = network_->OperatorClient(kTongan);
    auto inbox = AllInbox(**client);
    if (!inbox.ok()) return false;
    for (const auto& message : *inbox) {
      if (message.message_id() == id) return true;
    }
    return false;
  }

  // The refusal of `bad` (whose id is `bad_id`, if it has one): its code,
  // reason, log line and counter; then a valid envelope on the same stream
  // is stored.
  void ExpectRefusedThenNextAccepted(const v1::Envelope& bad,
                                     const std::string& bad_id,
                                     grpc::StatusCode code,
                                     const std::string& reason,
                                     const std::string& counter) {
    uint64_t before = Counter(counter);
    v1::Ack ack = Send(bad, bad_id);
    EXPECT_EQ(ack.code(), static_cast<int>(code)) << ack.reason();
    EXPECT_NE(ack.reason().find(reason), std::string::npos) << ack.reason();
    EXPECT_EQ(Counter(counter), before + 1);
    if (!bad_id.empty()) {
      EXPECT_FALSE(InInbox(bad_id));
      std::string log = network_->Process(kTongan).Log();
      EXPECT_NE(log.find(Cat("event=envelope_refused message=",
                             MessageIdText(bad_id), " peer=", kXiamen)),
                std::string::npos)
          << log;
    }

    v1::Body good = ValidBody();
    v1::Ack good_ack = Send(Sign(good), good.message_id());
    EXPECT_EQ(good_ack.code(), 0) << good_ack.reason();
    EXPECT_TRUE(InInbox(good.message_id()));
    EXPECT_TRUE(network_->Process(kTongan).Running());
  }

  static TestNetwork* network_;
  std::unique_ptr<PrivateKey> key_;
  std::string stranger_id_;
  std::string sign_cert_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::PeerService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::ExchangeRequest, v1::ExchangeResponse>>
      stream_;
};

TestNetwork* IntakeTest::network_ = nullptr;

TEST_F(IntakeTest, WrongSignatureIsUnauthenticated) {
  v1::Body body = ValidBody();
  v1::Envelope envelope = Sign(body);
  std::string* value = envelope.mutable_signature()->mutable_value();
  (*value)[value->size() - 1] ^= 0x01;
  ExpectRefusedThenNextAccepted(envelope, body.message_id(),
                                grpc::StatusCode::UNAUTHENTICATED,
                                "does not verify", "refused_bad_signature");
}

TEST_F(IntakeTest, AlteredBodyIsUnauthenticated) {
  v1::Body body = ValidBody();
  v1::Envelope envelope = Sign(body);
  body.set_payload("something else");
  envelope.set_body(body.SerializeAsString());
  ExpectRefusedThenNextAccepted(envelope, body.message_id(),
                                grpc::StatusCode::UNAUTHENTICATED,
                                "does not verify", "refused_bad_signature");
}

TEST_F(IntakeTest, UnknownSenderIsFailedPrecondition) {
  // Xiamen runs, so Tong'an can ask it for the key; it does not know it.
  ASSERT_TRUE(network_->Start(kXiamen).ok());
  ASSERT_TRUE(network_->WaitForPeersConnected(kTongan));
  ExpectRefusedThenNextAccepted(
      StrangerEnvelope(), stranger_id_, grpc::StatusCode::FAILED_PRECONDITION,
      Cat("unknown sender 350203101000: no signing certificate known for key "),
      "refused_unknown_sender");
  EXPECT_EQ(network_->Stop(kXiamen), 0);
}

TEST_F(IntakeTest, UnknownSenderIsUnavailableWhileThePeerCannotBeAsked) {
  // Xiamen's node is down: the key may be known there, so the envelope is
  // to be handed over again later.
  v1::Envelope envelope = StrangerEnvelope();
  ExpectRefusedThenNextAccepted(
      envelope, stranger_id_, grpc::StatusCode::UNAVAILABLE,
      Cat("unknown sender 350203101000"), "refused_unknown_sender");
}

TEST_F(IntakeTest, SenderThatIsNotTheTlsPeerIsPermissionDenied) {
  v1::Body body = ValidBody();
  body.set_sender("350000000000");
  v1::Envelope envelope = Sign(body);
  envelope.mutable_routing()->clear_hops();
  envelope.mutable_routing()->add_hops("350000000000");
  ExpectRefusedThenNextAccepted(
      envelope, body.message_id(), grpc::StatusCode::PERMISSION_DENIED,
      "claims to come from 350000000000 but arrived over the link of "
      "350200000000",
      "refused_wrong_link");
}

TEST_F(IntakeTest, BytesThatDoNotParseAreInvalidArgument) {
  v1::Envelope envelope = Sign(ValidBody());
  envelope.set_body(std::string("\xff\xff\xff\xff", 4));
  ExpectRefusedThenNextAccepted(envelope, "",
                                grpc::StatusCode::INVALID_ARGUMENT,
                                "does not parse", "refused_malformed");
}

TEST_F(IntakeTest, EnvelopeOverSizeLimitIsResourceExhausted) {
  v1::Body body = ValidBody(70 << 10);
  ExpectRefusedThenNextAccepted(Sign(body), body.message_id(),
                                grpc::StatusCode::RESOURCE_EXHAUSTED,
                                "over the limit of 65536", "refused_oversized");
}

TEST_F(IntakeTest, CreationTimeOutsideClockSkewIsOutOfRange) {
  v1::Body body = ValidBody();
  *body.mutable_created_at() = TimeUtil::SecondsToTimestamp(
      absl::ToUnixSeconds(absl::Now() + absl::Hours(1)));
  ExpectRefusedThenNextAccepted(
      Sign(body), body.message_id(), grpc::StatusCode::OUT_OF_RANGE,
      "further ahead of this node's clock", "refused_clock_skew");
}

TEST_F(IntakeTest, DuplicateIsAcknowledgedAndStoredOnce) {
  v1::Body body = ValidBody();
  v1::Envelope envelope = Sign(body);
  uint64_t before = Counter("duplicates_dropped");
  EXPECT_EQ(Send(envelope, body.message_id()).code(), 0);
  EXPECT_EQ(Send(envelope, body.message_id()).code(), 0);
  EXPECT_EQ(Counter("duplicates_dropped"), before + 1);
  auto client = network_->OperatorClient(kTongan);
  auto inbox = AllInbox(**client);
  ASSERT_TRUE(inbox.ok());
  int copies = 0;
  for (const auto& message : *inbox) {
    copies += message.message_id() == body.message_id();
  }
  EXPECT_EQ(copies, 1);
}

TEST_F(IntakeTest, BatchFrameTakesEachEnvelopeOnItsOwn) {
  // A forged envelope between two valid ones in one frame: each gets its
  // own verdict, and the forgery keeps neither of the others out.
  v1::Body first = ValidBody();
  v1::Body forged = ValidBody();
  v1::Body last = ValidBody();
  v1::Envelope bad = Sign(forged);
  std::string* value = bad.mutable_signature()->mutable_value();
  (*value)[value->size() - 1] ^= 0x01;
  v1::ExchangeRequest request;
  *request.mutable_batch()->add_envelopes() = Sign(first);
  *request.mutable_batch()->add_envelopes() = bad;
  *request.mutable_batch()->add_envelopes() = Sign(last);
  ASSERT_TRUE(stream_->Write(request));

  std::map<std::string, v1::Ack> acks;
  v1::ExchangeResponse response;
  while (acks.size() < 3 && stream_->Read(&response)) {
    for (const v1::Ack& ack : response.acks()) acks[ack.message_id()] = ack;
  }
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks[first.message_id()].code(), 0);
  EXPECT_EQ(acks[last.message_id()].code(), 0);
  EXPECT_EQ(acks[forged.message_id()].code(),
            static_cast<int>(grpc::StatusCode::UNAUTHENTICATED));
  EXPECT_TRUE(InInbox(first.message_id()));
  EXPECT_TRUE(InInbox(last.message_id()));
  EXPECT_FALSE(InInbox(forged.message_id()));
}

TEST_F(IntakeTest, ReceiptGoesOnTheAckWhenTheHelloAsksForIt) {
  // A second stream whose hello asks for receipts on acks.
  grpc::ClientContext context;
  auto stream = stub_->Exchange(&context);
  v1::ExchangeRequest hello;
  hello.mutable_hello()->set_code(kXiamen);
  hello.mutable_hello()->add_signing_certificates(sign_cert_);
  hello.mutable_hello()->set_receipts_on_acks(true);
  ASSERT_TRUE(stream->Write(hello));
  auto ack_of = [&stream](const v1::Envelope& envelope, const std::string& id) {
    v1::ExchangeRequest request;
    *request.mutable_envelope() = envelope;
    EXPECT_TRUE(stream->Write(request));
    v1::ExchangeResponse response;
    while (stream->Read(&response)) {
      for (const v1::Ack& ack : response.acks()) {
        if (ack.message_id() == id) return ack;
      }
    }
    ADD_FAILURE() << "no ack for " << MessageIdText(id);
    return v1::Ack();
  };

  v1::Body body = ValidBody();
  v1::Envelope envelope = Sign(body);
  v1::Ack ack = ack_of(envelope, body.message_id());
  ASSERT_EQ(ack.code(), 0) << ack.reason();
  ASSERT_TRUE(ack.has_receipt());

  // Tong'an's receipt for exactly this message, verifying under its key.
  auto certificate = Certificate::LoadPemFile(
      Cat(network_->PkiDir(), "/nodes/", kTongan, "/sign.crt"));
  ASSERT_TRUE(certificate.ok()) << certificate.status();
  auto tongan_key = certificate->public_key();
  ASSERT_TRUE(tongan_key.ok()) << tongan_key.status();
  SignatureChecker checker;
  EXPECT_TRUE(checker.Verify(ack.receipt(), *tongan_key).ok());
  v1::Body receipt;
  ASSERT_TRUE(receipt.ParseFromString(ack.receipt().body()));
  EXPECT_EQ(receipt.kind(), v1::MESSAGE_KIND_RECEIPT);
  EXPECT_EQ(receipt.sender(), kTongan);
  EXPECT_EQ(receipt.recipient(), kXiamen);
  EXPECT_EQ(receipt.receipt().message_id(), body.message_id());
  auto digest = BodyDigest(key_->scheme(), envelope.body());
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(receipt.receipt().body_digest(), *digest);
  EXPECT_TRUE(InInbox(body.message_id()));

  // A retried copy, as after a lost ack, carries the same receipt.
  v1::Ack again = ack_of(envelope, body.message_id());
  EXPECT_EQ(again.code(), 0);
  EXPECT_EQ(again.receipt().SerializeAsString(),
            ack.receipt().SerializeAsString());

  // A stream whose hello did not ask gets plain acks.
  v1::Body plain = ValidBody();
  v1::Ack plain_ack = Send(Sign(plain), plain.message_id());
  EXPECT_EQ(plain_ack.code(), 0);
  EXPECT_FALSE(plain_ack.has_receipt());

  stream->WritesDone();
  v1::ExchangeResponse drain;
  while (stream->Read(&drain)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(IntakeTest, NodeThatIsNotAPeerCannotOpenAStream) {
  // Sichuan holds a valid node certificate from a trusted CA, but is not
  // one of Tong'an's peers.
  auto stub = v1::PeerService::NewStub(
      network_->ChannelAsNode("510000000000", kTongan));
  grpc::ClientContext context;
  auto stream = stub->Exchange(&context);
  v1::ExchangeResponse response;
  EXPECT_FALSE(stream->Read(&response));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(status.error_message().find("not a peer"), std::string::npos);
}

}  // namespace
}  // namespace caselink::testing
