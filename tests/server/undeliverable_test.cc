// A node that cannot pass a message on takes it, and sends its sender a
// signed undeliverable report saying why.
#include <fstream>
#include <sstream>

#include "caselink/v1/peer.grpc.pb.h"
#include "core/crypto.h"
#include "core/envelope.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/network.h"

namespace caselink::testing {
namespace {

constexpr char kFujian[] = "350000000000";
constexpr char kXiamen[] = "350200000000";

TEST(UndeliverableTest, NodeWithNoRouteReportsBackToTheSender) {
  // Fujian has no parent and no peer for Guizhou (52). This test speaks
  // for Xiamen on a raw stream.
  auto network = TestNetwork::Create(
      {{kFujian, "Fujian", {kXiamen}}, {kXiamen, "Xiamen", {kFujian}}});
  ASSERT_TRUE(network.ok()) << network.status();
  ASSERT_TRUE((*network)->Start(kFujian).ok());

  std::string dir = Cat((*network)->PkiDir(), "/nodes/", kXiamen, "/");
  auto key = PrivateKey::LoadPemFile(dir + "sign.key");
  ASSERT_TRUE(key.ok()) << key.status();
  std::ifstream cert_file(dir + "sign.crt");
  std::stringstream cert;
  cert << cert_file.rdbuf();

  auto stub =
      v1::PeerService::NewStub((*network)->ChannelAsNode(kXiamen, kFujian));
  grpc::ClientContext context;
  auto stream = stub->Exchange(&context);
  v1::ExchangeRequest hello;
  hello.mutable_hello()->set_code(kXiamen);
  hello.mutable_hello()->add_signing_certificates(cert.str());
  ASSERT_TRUE(stream->Write(hello));

  v1::Body body;
  body.set_message_id(NewMessageId());
  body.set_sender(kXiamen);
  body.set_recipient("520000000000");
  *body.mutable_created_at() =
      google::protobuf::util::TimeUtil::GetCurrentTime();
  body.set_kind(v1::MESSAGE_KIND_REFERRAL);
  body.set_priority(v1::PRIORITY_ORDINARY);
  body.set_payload("sealed elsewhere");
  std::vector<std::string> bodies = {body.SerializeAsString()};
  auto envelopes = SignBodies(*key, bodies);
  ASSERT_TRUE(envelopes.ok());
  v1::ExchangeRequest request;
  *request.mutable_envelope() = (*envelopes)[0];
  request.mutable_envelope()->mutable_routing()->add_hops(kXiamen);
  request.mutable_envelope()->mutable_routing()->set_hop_limit(8);
  ASSERT_TRUE(stream->Write(request));

  // Fujian takes responsibility for it...
  v1::ExchangeResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.acks_size(), 1);
  EXPECT_EQ(response.acks(0).message_id(), body.message_id());
  EXPECT_EQ(response.acks(0).code(), 0) << response.acks(0).reason();
  stream->WritesDone();
  stream->Finish();

  // ...and queues a signed report for Xiamen, saying why.
  auto client = (*network)->OperatorClient(kFujian);
  ASSERT_TRUE(client.ok());
  auto status = (*client)->GetStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->counters().at("undeliverable_reported"), 1u);
  ASSERT_EQ(status->peers_size(), 1);
  EXPECT_EQ(status->peers(0).queued(), 1u);
  std::string log = (*network)->Process(kFujian).Log();
  EXPECT_NE(log.find(Cat("event=undeliverable message=",
                         MessageIdText(body.message_id()))),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("no route to 520000000000"), std::string::npos) << log;
}

}  // namespace
}  // namespace caselink::testing
