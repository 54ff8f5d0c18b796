#include "client/cli_commands.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli_format.h"
#include "core/crypto.h"
#include "core/division_code.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::cli {
namespace {

using client::NodeClient;

// How much of a binary payload `read` shows as hex.
constexpr size_t kHexDumpBytes = 512;

// Poll intervals of `sent --wait`: short at first, since delivery between
// connected nodes takes well under a second, then backing off.
constexpr absl::Duration kFirstPoll = absl::Milliseconds(200);
constexpr absl::Duration kLongestPoll = absl::Seconds(2);

int FailRpc(const absl::Status& status) { return Fail(status.ToString()); }

// Prints one line of a detail view.
void Field(std::string_view label, std::string_view value) {
  std::printf("%-12.*s%.*s\n", static_cast<int>(label.size()), label.data(),
              static_cast<int>(value.size()), value.data());
}

std::string Route(const google::protobuf::RepeatedPtrField<std::string>& hops) {
  std::string route;
  for (const std::string& hop : hops) {
    if (!route.empty()) route += " -> ";
    route += Printable(hop, 64);
  }
  return route.empty() ? "-" : route;
}

absl::Status Flagged(std::string_view flag, const absl::Status& status) {
  return absl::Status(status.code(), Cat(flag, ": ", View(status.message())));
}

// ---------------------------------------------------------------------------
// send

absl::StatusOr<std::string> ReadPayloadFile(const std::string& path) {
  const bool from_stdin = path == "-";
  std::FILE* file = from_stdin ? stdin : std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::NotFoundError(Cat("--payload-file: cannot open \"", path,
                                   "\": ", std::strerror(errno)));
  }
  std::string payload;
  char buffer[65536];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    payload.append(buffer, n);
  }
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  if (!from_stdin) std::fclose(file);
  if (failed) {
    return absl::DataLossError(Cat("--payload-file: cannot read \"", path,
                                   "\": ", std::strerror(error)));
  }
  return payload;
}

absl::StatusOr<v1::SubmitMessageRequest> BuildSubmission(
    const SendOptions& options) {
  v1::SubmitMessageRequest request;
  auto recipient = NormalizeDivisionCode(options.to);
  if (!recipient.ok()) return Flagged("--to", recipient.status());
  request.set_recipient(*recipient);

  auto kind = ParseSendableKind(options.kind);
  if (!kind.ok()) return Flagged("--kind", kind.status());
  request.set_kind(*kind);
  request.set_case_id(options.case_id);
  request.set_priority(options.green ? v1::PRIORITY_GREEN_CHANNEL
                                     : v1::PRIORITY_ORDINARY);

  if (!options.reply_to.empty()) {
    auto reply_to = ParseMessageId(options.reply_to);
    if (!reply_to.ok()) return Flagged("--reply-to", reply_to.status());
    request.set_in_reply_to(*reply_to);
  }
  if (!options.deadline.empty()) {
    auto deadline = ParseRfc3339(options.deadline);
    if (!deadline.ok()) return Flagged("--deadline", deadline.status());
    *request.mutable_deadline() = *deadline;
  }

  if (!options.payload_file.empty()) {
    CASELINK_ASSIGN_OR_RETURN(*request.mutable_payload(),
                              ReadPayloadFile(options.payload_file));
  } else {
    request.set_payload(options.payload);
  }
  return request;
}

// ---------------------------------------------------------------------------
// sent

absl::StatusOr<v1::ListSentResponse> ListAllSent(NodeClient& client) {
  v1::ListSentResponse all;
  std::string token;
  do {
    CASELINK_ASSIGN_OR_RETURN(v1::ListSentResponse page,
                              client.ListSent(/*page_size=*/0, token));
    for (v1::SentMessage& message : *page.mutable_messages()) {
      *all.add_messages() = std::move(message);
    }
    if (!page.next_page_token().empty() && page.next_page_token() == token) {
      return absl::DataLossError("the node returned the same page twice");
    }
    token = page.next_page_token();
  } while (!token.empty());
  return all;
}

int PrintSentTable(const v1::ListSentResponse& sent) {
  Table table({"ID", "TO", "KIND", "PRIORITY", "STATE", "UPDATED", "REASON"});
  for (const v1::SentMessage& message : sent.messages()) {
    table.AddRow({HexEncode(message.message_id()),
                  Printable(message.recipient(), 64),
                  std::string(KindName(message.kind())),
                  std::string(PriorityName(message.priority())),
                  std::string(DeliveryStateName(message.state())),
                  FormatTableTime(message.updated_at()),
                  Printable(message.reason(), 200)});
  }
  table.Print(stdout);
  return 0;
}

// "held, signed by key K, received at T", from the receipt envelope.
std::string ReceiptSummary(const v1::Envelope& receipt) {
  std::string summary =
      Cat("held, signed by key ", HexEncode(receipt.signature().key_id()));
  v1::Body body;
  if (!body.ParseFromString(receipt.body()) || !body.has_receipt()) {
    return Cat(summary, " (its body is not a receipt)");
  }
  return Cat(summary, ", received ",
             FormatFullTime(body.receipt().received_at()));
}

void PrintSentDetails(const v1::SentMessage& message) {
  Field("message", HexEncode(message.message_id()));
  Field("to", Printable(message.recipient(), 64));
  Field("kind", KindName(message.kind()));
  Field("case",
        message.case_id().empty() ? "-" : Printable(message.case_id(), 256));
  Field("priority", PriorityName(message.priority()));
  Field("state", DeliveryStateName(message.state()));
  if (!message.reason().empty()) Field("reason", Printable(message.reason()));
  Field("created", FormatFullTime(message.created_at()));
  Field("updated", FormatFullTime(message.updated_at()));
  Field("route", Route(message.route()));
  Field("receipt",
        message.has_receipt() ? ReceiptSummary(message.receipt()) : "none");
}

bool IsFinal(v1::DeliveryState state) {
  return state == v1::DELIVERY_STATE_DELIVERED ||
         state == v1::DELIVERY_STATE_REJECTED;
}

// Errors worth polling through: the node restarting or being slow.
bool IsTransient(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

// Polls GetSent until the message reaches a final state or `timeout`
// passes, and returns the last answer. Fails only if the node never gave
// one, or refused the question itself (an unknown id, say).
absl::StatusOr<v1::GetSentResponse> PollSent(NodeClient& client,
                                             const std::string& id,
                                             absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration poll = kFirstPoll;
  std::optional<v1::GetSentResponse> last;
  absl::Status last_error;
  while (true) {
    // At least a second per call, so a short timeout still gets an answer.
    const absl::Duration call_timeout =
        std::clamp(deadline - absl::Now(), absl::Seconds(1), absl::Seconds(10));
    absl::StatusOr<v1::GetSentResponse> sent = client.GetSent(id, call_timeout);
    if (sent.ok()) {
      last = *std::move(sent);
      if (IsFinal(last->message().state())) return *std::move(last);
    } else if (IsTransient(sent.status())) {
      last_error = sent.status();
    } else {
      return sent.status();
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    absl::SleepFor(std::min(poll, left));
    poll = std::min(poll * 2, kLongestPoll);
  }
  if (!last.has_value()) return last_error;
  return *std::move(last);
}

int WaitForOutcome(NodeClient& client, const std::string& id,
                   absl::Duration timeout, bool json) {
  absl::StatusOr<v1::GetSentResponse> last = PollSent(client, id, timeout);
  if (!last.ok()) return FailRpc(last.status());

  const v1::SentMessage& message = last->message();
  if (json) {
    if (PrintJson(*last) != 0) return 1;
  } else if (message.state() == v1::DELIVERY_STATE_REJECTED) {
    std::printf("rejected: %s\n", Printable(message.reason()).c_str());
  } else {
    std::printf("%s\n",
                std::string(DeliveryStateName(message.state())).c_str());
  }
  if (message.state() == v1::DELIVERY_STATE_DELIVERED) return 0;
  if (message.state() == v1::DELIVERY_STATE_REJECTED) return 1;
  return Fail(Cat("message ", HexEncode(id), " is still ",
                  DeliveryStateName(message.state()), " after ",
                  absl::FormatDuration(timeout)));
}

// ---------------------------------------------------------------------------
// inbox and read

absl::StatusOr<v1::ListInboxResponse> ListAllInbox(NodeClient& client,
                                                   bool unhandled_only) {
  v1::ListInboxResponse all;
  std::string token;
  do {
    CASELINK_ASSIGN_OR_RETURN(
        v1::ListInboxResponse page,
        client.ListInbox(/*page_size=*/0, token, unhandled_only));
    for (v1::InboxMessage& message : *page.mutable_messages()) {
      *all.add_messages() = std::move(message);
    }
    if (!page.next_page_token().empty() && page.next_page_token() == token) {
      return absl::DataLossError("the node returned the same page twice");
    }
    token = page.next_page_token();
  } while (!token.empty());
  return all;
}

void PrintInboxHeader(const v1::InboxMessage& message) {
  Field("message", HexEncode(message.message_id()));
  Field("from", Printable(message.sender(), 64));
  Field("kind", KindName(message.kind()));
  Field("case",
        message.case_id().empty() ? "-" : Printable(message.case_id(), 256));
  Field("priority", PriorityName(message.priority()));

  // The reply link and deadline travel only in the signed body.
  v1::Body body;
  if (body.ParseFromString(message.envelope().body())) {
    if (!body.in_reply_to().empty()) {
      Field("in reply to", HexEncode(body.in_reply_to()));
    }
    if (body.has_deadline()) Field("deadline", FormatFullTime(body.deadline()));
  }
  Field("created", FormatFullTime(message.created_at()));
  Field("received", FormatFullTime(message.received_at()));
  Field("handled", message.handled() ? "yes" : "no");
  Field("route", Route(message.envelope().routing().hops()));
  Field("signed by",
        Cat("key ", HexEncode(message.envelope().signature().key_id())));
}

void PrintPayload(const std::string& payload) {
  if (IsPlainText(payload)) {
    Field("payload", Cat(payload.size(), " bytes of text"));
    std::printf("\n");
    std::fwrite(payload.data(), 1, payload.size(), stdout);
    if (!payload.empty() && payload.back() != '\n') std::printf("\n");
    return;
  }
  Field("payload", Cat(payload.size(),
                       " bytes, not plain text; shown as hex (use "
                       "--payload-only for the raw bytes)"));
  std::printf("\n%s", HexDump(payload, kHexDumpBytes).c_str());
  if (payload.size() > kHexDumpBytes) {
    std::printf("... %zu more bytes\n", payload.size() - kHexDumpBytes);
  }
}

int WriteRawPayload(const std::string& payload) {
  if (std::fwrite(payload.data(), 1, payload.size(), stdout) !=
          payload.size() ||
      std::fflush(stdout) != 0) {
    return Fail(
        Cat("cannot write the payload to stdout: ", std::strerror(errno)));
  }
  return 0;
}

}  // namespace

int RunStatus(NodeClient& client, bool json) {
  auto status = client.GetStatus();
  if (!status.ok()) return FailRpc(status.status());
  if (json) return PrintJson(*status);
  std::printf("node %s  %s\n", status->code().c_str(),
              Printable(status->name(), 256).c_str());
  std::printf("%-12s  %-12s  %-7s  %-22s  %s\n", "PEER", "STATE", "QUEUED",
              "ADDRESS", "NAME / ERROR");
  for (const auto& peer : status->peers()) {
    const std::string& detail = peer.state() == v1::LINK_STATE_CONNECTED
                                    ? peer.name()
                                    : peer.last_error();
    std::printf("%-12s  %-12s  %-7llu  %-22s  %s\n", peer.code().c_str(),
                std::string(LinkStateName(peer.state())).c_str(),
                static_cast<unsigned long long>(peer.queued()),
                peer.address().c_str(), Printable(detail, 512).c_str());
  }
  return 0;
}

int RunSend(NodeClient& client, const SendOptions& options, bool json) {
  absl::StatusOr<v1::SubmitMessageRequest> request = BuildSubmission(options);
  if (!request.ok()) return Fail(View(request.status().message()));
  auto response = client.Submit(*request);
  if (!response.ok()) return FailRpc(response.status());
  if (json) return PrintJson(*response);
  std::printf("%s\n", HexEncode(response->message_id()).c_str());
  return 0;
}

int RunSent(NodeClient& client, const SentOptions& options, bool json) {
  if (options.id.empty()) {
    if (options.wait) return Fail("sent --wait needs a message id", 2);
    auto sent = ListAllSent(client);
    if (!sent.ok()) return FailRpc(sent.status());
    return json ? PrintJson(*sent) : PrintSentTable(*sent);
  }
  auto id = ParseMessageId(options.id);
  if (!id.ok()) return Fail(View(id.status().message()));
  if (options.wait) {
    return WaitForOutcome(client, *id, absl::Seconds(options.timeout_seconds),
                          json);
  }
  auto sent = client.GetSent(*id);
  if (!sent.ok()) return FailRpc(sent.status());
  if (json) return PrintJson(*sent);
  PrintSentDetails(sent->message());
  return 0;
}

int RunInbox(NodeClient& client, bool unhandled_only, bool json) {
  auto inbox = ListAllInbox(client, unhandled_only);
  if (!inbox.ok()) return FailRpc(inbox.status());
  if (json) return PrintJson(*inbox);
  Table table(
      {"ID", "FROM", "KIND", "PRIORITY", "CASE", "RECEIVED", "HANDLED"});
  for (const v1::InboxMessage& message : inbox->messages()) {
    table.AddRow({HexEncode(message.message_id()),
                  Printable(message.sender(), 64),
                  std::string(KindName(message.kind())),
                  std::string(PriorityName(message.priority())),
                  Printable(message.case_id(), 64),
                  FormatTableTime(message.received_at()),
                  message.handled() ? "yes" : "no"});
  }
  table.Print(stdout);
  return 0;
}

int RunRead(NodeClient& client, const std::string& id, bool payload_only,
            bool json) {
  auto message_id = ParseMessageId(id);
  if (!message_id.ok()) return Fail(View(message_id.status().message()));
  auto read = client.GetInboxMessage(*message_id);
  if (!read.ok()) return FailRpc(read.status());
  if (payload_only) return WriteRawPayload(read->payload());
  if (json) return PrintJson(*read);
  PrintInboxHeader(read->message());
  PrintPayload(read->payload());
  return 0;
}

int RunHandled(NodeClient& client, const std::string& id, bool json) {
  auto message_id = ParseMessageId(id);
  if (!message_id.ok()) return Fail(View(message_id.status().message()));
  absl::Status marked = client.MarkHandled(*message_id);
  if (!marked.ok()) return FailRpc(marked);
  if (json) return PrintJson(v1::MarkHandledResponse());
  std::printf("%s handled\n", HexEncode(*message_id).c_str());
  return 0;
}

}  // namespace caselink::cli
