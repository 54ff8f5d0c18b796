// Reliable delivery between real nodes: every message arrives once, with a
// verified receipt, whatever is killed or cut in between.
#include <signal.h>

#include <set>

#include "caselink/v1/envelope.pb.h"
#include "core/strings.h"
#include "gtest/gtest.h"
#include "tests/testing/network.h"
#include "tests/testing/operator.h"

namespace caselink::testing {
namespace {

constexpr char kTongan[] = "350212000000";
constexpr char kXiamen[] = "350200000000";

// Short retry delays so that tests see a returning peer quickly.
class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto network = TestNetwork::Create(
        {{kTongan, "Tong'an County Justice Bureau", {kXiamen}, kFastRetry},
         {kXiamen, "Xiamen City Justice Bureau", {kTongan}, kFastRetry}});
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = std::move(*network);
    ASSERT_TRUE(network_->StartAll().ok());
    // Linked once, each knows the other's sealing key from then on.
    ASSERT_TRUE(network_->WaitForPeersConnected(kTongan));
    ASSERT_TRUE(network_->WaitForPeersConnected(kXiamen));
    tongan_ = Client(kTongan);
    xiamen_ = Client(kXiamen);
  }

  std::unique_ptr<client::NodeClient> Client(const std::string& code) {
    auto client = network_->OperatorClient(code);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  // Waits until `count` messages sent from Tong'an are delivered.
  bool WaitDelivered(size_t count, absl::Duration timeout) {
    return WaitFor(
        [&] {
          auto n = CountSentIn(*tongan_, v1::DELIVERY_STATE_DELIVERED);
          return n.ok() && *n == count;
        },
        timeout);
  }

  // Every message in Xiamen's inbox exactly once, and nothing else.
  void ExpectInboxHoldsExactly(const std::vector<std::string>& ids) {
    auto inbox = AllInbox(*xiamen_);
    ASSERT_TRUE(inbox.ok()) << inbox.status();
    std::multiset<std::string> arrived;
    for (const auto& message : *inbox) arrived.insert(message.message_id());
    EXPECT_EQ(arrived.size(), ids.size());
    for (const std::string& id : ids) {
      EXPECT_EQ(arrived.count(id), 1u);
    }
  }

  std::unique_ptr<TestNetwork> network_;
  std::unique_ptr<client::NodeClient> tongan_;
  std::unique_ptr<client::NodeClient> xiamen_;
};

TEST_F(DeliveryTest, MessageIsDeliveredWithVerifiedReceipt) {
  auto ids = SubmitMany(*tongan_, kXiamen, 1, 512);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_TRUE(WaitDelivered(1, absl::Seconds(20)));

  auto sent = AllSent(*tongan_);
  ASSERT_TRUE(sent.ok());
  const v1::SentMessage& message = sent->at((*ids)[0]);
  EXPECT_EQ(message.state(), v1::DELIVERY_STATE_DELIVERED);
  EXPECT_EQ(message.recipient(), kXiamen);
  v1::Body receipt;
  ASSERT_TRUE(receipt.ParseFromString(message.receipt().body()));
  EXPECT_EQ(receipt.kind(), v1::MESSAGE_KIND_RECEIPT);
  EXPECT_EQ(receipt.sender(), kXiamen);
  EXPECT_EQ(receipt.receipt().message_id(), (*ids)[0]);
  EXPECT_FALSE(message.receipt().signature().value().empty());

  ExpectInboxHoldsExactly(*ids);
  grpc::ClientContext context;
  v1::GetInboxMessageRequest request;
  request.set_message_id((*ids)[0]);
  v1::GetInboxMessageResponse response;
  ASSERT_TRUE(
      xiamen_->stub()->GetInboxMessage(&context, request, &response).ok());
  EXPECT_EQ(response.payload(), std::string(512, 'x'));
  EXPECT_EQ(response.message().sender(), kTongan);
}

TEST_F(DeliveryTest, BatchSubmissionTakesEachMessageOnItsOwn) {
  // Ten messages in one call, two of them bad: the eight good ones are
  // stored and delivered, each bad one is refused with its own reason.
  v1::SubmitMessagesRequest request;
  for (int i = 0; i < 10; ++i) {
    v1::SubmitMessageRequest* message = request.add_messages();
    message->set_recipient(kXiamen);
    message->set_kind(v1::MESSAGE_KIND_REFERRAL);
    message->set_payload(Cat("referral ", i));
  }
  request.mutable_messages(3)->set_recipient("not a code");
  request.mutable_messages(7)->set_kind(v1::MESSAGE_KIND_RECEIPT);
  auto response = tongan_->SubmitBatch(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->results_size(), 10);
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    const v1::SubmitResult& result = response->results(i);
    if (i == 3) {
      EXPECT_EQ(result.code(),
                static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
      EXPECT_NE(result.error().find("recipient"), std::string::npos)
          << result.error();
      EXPECT_TRUE(result.message_id().empty());
    } else if (i == 7) {
      EXPECT_EQ(result.code(),
                static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
      EXPECT_NE(result.error().find("kind"), std::string::npos)
          << result.error();
    } else {
      EXPECT_EQ(result.code(), 0) << result.error();
      ids.push_back(result.message_id());
    }
  }
  ASSERT_EQ(ids.size(), 8u);
  ASSERT_TRUE(WaitDelivered(8, absl::Seconds(20)));
  ExpectInboxHoldsExactly(ids);

  // Over the limit, the call is refused whole and nothing is taken.
  v1::SubmitMessagesRequest too_many;
  for (int i = 0; i < 1001; ++i) *too_many.add_messages() = request.messages(0);
  auto refused = tongan_->SubmitBatch(too_many);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument)
      << refused.status();
  auto total = AllSent(*tongan_);
  ASSERT_TRUE(total.ok());
  EXPECT_EQ(total->size(), 8u);
}

TEST_F(DeliveryTest, ReceiverKilledWithMessagesInFlightGetsEachOnce) {
  // A frozen receiver keeps its connection open but acknowledges nothing,
  // so what the sender streams stays in flight until the kill.
  network_->Process(kXiamen).Notify(SIGSTOP);
  auto ids = SubmitMany(*tongan_, kXiamen, 1000, 1024);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto n = CountSentIn(*tongan_, v1::DELIVERY_STATE_SENT);
        return n.ok() && *n > 0;
      },
      absl::Seconds(20)));
  network_->Kill(kXiamen);
  auto delivered = CountSentIn(*tongan_, v1::DELIVERY_STATE_DELIVERED);
  ASSERT_TRUE(delivered.ok());
  EXPECT_EQ(*delivered, 0u);

  ASSERT_TRUE(network_->Start(kXiamen).ok());
  ASSERT_TRUE(WaitDelivered(1000, absl::Seconds(60)))
      << network_->Process(kTongan).Log();
  ExpectInboxHoldsExactly(*ids);
}

TEST_F(DeliveryTest, SenderKilledMidStreamSendsTheRestOnce) {
  // Messages too large for the stream's flow-control window to take at
  // once: the sender is cut off part way through.
  network_->Process(kXiamen).Notify(SIGSTOP);
  auto ids = SubmitMany(*tongan_, kXiamen, 1000, 16 << 10);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto n = CountSentIn(*tongan_, v1::DELIVERY_STATE_SENT);
        return n.ok() && *n > 0;
      },
      absl::Seconds(20)));
  network_->Kill(kTongan);
  network_->Process(kXiamen).Notify(SIGCONT);

  // The receiver stores what reached it before the sender died.
  size_t before = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto inbox = AllInbox(*xiamen_);
        if (!inbox.ok() || inbox->empty() || inbox->size() != before) {
          before = inbox.ok() ? inbox->size() : 0;
          return false;
        }
        return true;
      },
      absl::Seconds(20)));
  EXPECT_GT(before, 0u);
  EXPECT_LT(before, 1000u);

  ASSERT_TRUE(network_->Start(kTongan).ok());
  tongan_ = Client(kTongan);
  ASSERT_TRUE(WaitDelivered(1000, absl::Seconds(60)))
      << network_->Process(kTongan).Log();
  ExpectInboxHoldsExactly(*ids);
  auto status = xiamen_->GetStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_GT(status->counters().at("duplicates_dropped"), 0u);
}

TEST_F(DeliveryTest, DownPeerQueuesOnDiskThenDrains) {
  ASSERT_EQ(network_->Stop(kXiamen), 0);
  auto ids = SubmitMany(*tongan_, kXiamen, 500, 1024);
  ASSERT_TRUE(ids.ok()) << ids.status();

  auto status = tongan_->GetStatus();
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->peers_size(), 1);
  EXPECT_EQ(status->peers(0).queued(), 500u);
  EXPECT_NE(status->peers(0).state(), v1::LINK_STATE_CONNECTED);
  auto queued = CountSentIn(*tongan_, v1::DELIVERY_STATE_QUEUED);
  ASSERT_TRUE(queued.ok());
  EXPECT_EQ(*queued, 500u);

  // Queued on disk: a sender restart while the peer is away loses nothing.
  ASSERT_EQ(network_->Stop(kTongan), 0);
  ASSERT_TRUE(network_->Start(kTongan).ok());
  tongan_ = Client(kTongan);

  ASSERT_TRUE(network_->Start(kXiamen).ok());
  ASSERT_TRUE(WaitDelivered(500, absl::Seconds(60)));
  status = tongan_->GetStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->peers(0).queued(), 0u);
  ExpectInboxHoldsExactly(*ids);
}

TEST_F(DeliveryTest, GreenChannelOvertakesQueuedOrdinaryMessages) {
  ASSERT_EQ(network_->Stop(kXiamen), 0);
  auto ordinary = SubmitMany(*tongan_, kXiamen, 300, 256, v1::PRIORITY_ORDINARY,
                             /*threads=*/1);
  ASSERT_TRUE(ordinary.ok());
  auto green = SubmitMany(*tongan_, kXiamen, 1, 256, v1::PRIORITY_GREEN_CHANNEL,
                          /*threads=*/1);
  ASSERT_TRUE(green.ok());
  ASSERT_TRUE(network_->Start(kXiamen).ok());
  ASSERT_TRUE(WaitDelivered(301, absl::Seconds(60)));

  auto inbox = AllInbox(*xiamen_);
  ASSERT_TRUE(inbox.ok());
  ASSERT_EQ(inbox->size(), 301u);
  EXPECT_EQ((*inbox)[0].message_id(), (*green)[0]);
  EXPECT_EQ((*inbox)[0].priority(), v1::PRIORITY_GREEN_CHANNEL);
}

}  // namespace
}  // namespace caselink::testing
