#include "tests/testing/operator.h"

#include <thread>

#include "absl/synchronization/mutex.h"
#include "core/grpc_status.h"

namespace caselink::testing {

absl::StatusOr<std::vector<std::string>> SubmitMany(
    client::NodeClient& client, const std::string& recipient, int count,
    size_t payload_bytes, v1::Priority priority, int threads) {
  absl::Mutex mu;
  std::vector<std::string> ids;
  absl::Status failure;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = t; i < count; i += threads) {
        v1::SubmitMessageRequest request;
        request.set_recipient(recipient);
        request.set_kind(v1::MESSAGE_KIND_REFERRAL);
        request.set_case_id("case-" + std::to_string(i));
        request.set_priority(priority);
        request.set_payload(std::string(payload_bytes, 'x'));
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(30));
        v1::SubmitMessageResponse response;
        grpc::Status status =
            client.stub()->SubmitMessage(&context, request, &response);
        absl::MutexLock lock(&mu);
        if (!status.ok()) {
          failure = FromGrpcStatus(status);
          return;
        }
        ids.push_back(response.message_id());
      }
    });
  }
  for (auto& worker : workers) worker.join();
  if (!failure.ok()) return failure;
  return ids;
}

absl::StatusOr<std::map<std::string, v1::SentMessage>> AllSent(
    client::NodeClient& client) {
  std::map<std::string, v1::SentMessage> sent;
  std::string token;
  do {
    v1::ListSentRequest request;
    request.set_page_size(1000);
    request.set_page_token(token);
    grpc::ClientContext context;
    v1::ListSentResponse response;
    grpc::Status status = client.stub()->ListSent(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    for (const auto& message : response.messages()) {
      sent[message.message_id()] = message;
    }
    token = response.next_page_token();
  } while (!token.empty());
  return sent;
}

absl::StatusOr<size_t> CountSentIn(client::NodeClient& client,
                                   v1::DeliveryState state) {
  auto sent = AllSent(client);
  if (!sent.ok()) return sent.status();
  size_t n = 0;
  for (const auto& [id, message] : *sent) n += message.state() == state;
  return n;
}

absl::StatusOr<std::vector<v1::InboxMessage>> AllInbox(
    client::NodeClient& client) {
  std::vector<v1::InboxMessage> inbox;
  std::string token;
  do {
    v1::ListInboxRequest request;
    request.set_page_size(1000);
    request.set_page_token(token);
    grpc::ClientContext context;
    v1::ListInboxResponse response;
    grpc::Status status =
        client.stub()->ListInbox(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    for (const auto& message : response.messages()) inbox.push_back(message);
    token = response.next_page_token();
  } while (!token.empty());
  return inbox;
}

}  // namespace caselink::testing
