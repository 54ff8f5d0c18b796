#include "server/operator_service.h"

#include <atomic>
#include <memory>

#include "caselink/store/v1/records.pb.h"
#include "core/division_code.h"
#include "core/envelope.h"
#include "core/grpc_status.h"
#include "core/seal.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"
#include "server/caller.h"
#include "server/store_keys.h"

namespace caselink::server {
namespace {

using google::protobuf::util::TimeUtil;
using storage::Family;

constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;
constexpr size_t kMaxCaseIdLength = 128;
// Room left in an envelope for everything but the payload.
constexpr uint64_t kEnvelopeOverhead = 4096;
// The most messages one SubmitMessages call may carry.
constexpr int kMaxSubmitBatch = 1000;

uint32_t PageSize(uint32_t requested) {
  if (requested == 0) return kDefaultPageSize;
  return std::min(requested, kMaxPageSize);
}

absl::StatusOr<std::string> DecodePageToken(const std::string& token) {
  if (token.empty()) return std::string();
  auto key = HexDecode(token);
  if (!key.ok()) return absl::InvalidArgumentError("page_token is not valid");
  key->push_back('\0');  // Resume after the last key returned.
  return *key;
}

absl::Status RequireMessageId(const std::string& id) {
  if (id.size() != kMessageIdSize) {
    return absl::InvalidArgumentError(
        Cat("message_id must be ", kMessageIdSize, " bytes"));
  }
  return absl::OkStatus();
}

void SetRefusal(v1::SubmitResult& result, const absl::Status& status) {
  result.set_code(static_cast<int>(status.code()));
  result.set_error(std::string(View(status.message())));
}

bool OperatorKind(v1::MessageKind kind) {
  return kind != v1::MESSAGE_KIND_UNSPECIFIED &&
         kind != v1::MESSAGE_KIND_RECEIPT &&
         kind != v1::MESSAGE_KIND_UNDELIVERABLE &&
         v1::MessageKind_IsValid(kind);
}

}  // namespace

bool OperatorServiceImpl::Admit(grpc::CallbackServerContext* context,
                                std::string_view rpc,
                                grpc::ServerUnaryReactor* reactor) {
  auto caller = RequireCaller(*context, Role::kOperator, deps_.self->code(),
                              deps_.revocations);
  if (caller.ok()) return true;
  deps_.log->Warning("call_refused", {{"rpc", std::string(rpc)},
                                      {"peer", context->peer()},
                                      {"error", caller.status().ToString()}});
  reactor->Finish(ToGrpcStatus(caller.status()));
  return false;
}

grpc::ServerUnaryReactor* OperatorServiceImpl::Serve(
    grpc::CallbackServerContext* context, std::string_view rpc,
    const std::function<absl::Status()>& handler) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (Admit(context, rpc, reactor)) reactor->Finish(ToGrpcStatus(handler()));
  return reactor;
}

grpc::ServerUnaryReactor* OperatorServiceImpl::GetStatus(
    grpc::CallbackServerContext* context,
    const v1::GetStatusRequest* /*request*/, v1::GetStatusResponse* response) {
  return Serve(context, "GetStatus", [&] { return FillStatus(response); });
}

absl::Status OperatorServiceImpl::FillStatus(
    v1::GetStatusResponse* response) const {
  response->set_code(deps_.self->code());
  response->set_name(deps_.self->name());
  response->set_attachment_digest(deps_.attachment_digest);
  for (PeerLink* link : deps_.links->All()) {
    PeerLinkSnapshot snapshot = link->Snapshot();
    v1::PeerStatus* peer = response->add_peers();
    peer->set_code(snapshot.code);
    peer->set_name(snapshot.name);
    peer->set_address(snapshot.address);
    peer->set_state(snapshot.state);
    peer->set_last_error(snapshot.last_error);
    peer->set_queued(snapshot.queued);
  }
  for (const auto& [name, value] : deps_.counters->Snapshot()) {
    (*response->mutable_counters())[name] = value;
  }
  for (const auto& [province, version] : deps_.directory->Versions()) {
    (*response->mutable_directory_versions())[province] = version;
  }
  return absl::OkStatus();
}

absl::StatusOr<Submission> OperatorServiceImpl::Prepare(
    const v1::SubmitMessageRequest& request) {
  auto recipient = NormalizeDivisionCode(request.recipient());
  if (!recipient.ok()) {
    return absl::InvalidArgumentError(
        Cat("recipient: ", View(recipient.status().message())));
  }
  if (*recipient == deps_.self->code()) {
    return absl::InvalidArgumentError(
        "recipient: a node does not send messages to itself");
  }
  if (!OperatorKind(request.kind())) {
    return absl::InvalidArgumentError(
        "kind: must be a case message kind (referral, decision, status, "
        "evidence request or result, supplement, withdrawal)");
  }
  if (request.case_id().size() > kMaxCaseIdLength) {
    return absl::InvalidArgumentError(
        Cat("case_id: longer than ", kMaxCaseIdLength, " bytes"));
  }
  const uint64_t limit = deps_.delivery->max_envelope_bytes;
  if (request.payload().size() + kEnvelopeOverhead > limit) {
    return absl::ResourceExhaustedError(
        Cat("payload: ", request.payload().size(),
            " bytes is over this node's limit of ",
            limit > kEnvelopeOverhead ? limit - kEnvelopeOverhead : 0));
  }

  // The payload is sealed to the recipient here, so that no store or relay
  // on the way holds it in clear.
  CASELINK_ASSIGN_OR_RETURN(SealingPublicKey sealing_key,
                            deps_.directory->SealingKeyOf(*recipient));
  Submission submission;
  v1::Body& body = submission.body;
  body.set_message_id(NewMessageId());
  CASELINK_ASSIGN_OR_RETURN(
      *body.mutable_sealed_payload(),
      sealer_.Seal(sealing_key, request.payload(),
                   SealAssociatedData(body.message_id(), deps_.self->code(),
                                      *recipient)));
  body.set_recipient(*recipient);
  body.set_kind(request.kind());
  body.set_case_id(request.case_id());
  body.set_in_reply_to(request.in_reply_to());
  body.set_priority(request.priority() == v1::PRIORITY_GREEN_CHANNEL
                        ? v1::PRIORITY_GREEN_CHANNEL
                        : v1::PRIORITY_ORDINARY);
  if (request.has_deadline()) *body.mutable_deadline() = request.deadline();
  return submission;
}

grpc::ServerUnaryReactor* OperatorServiceImpl::SubmitMessage(
    grpc::CallbackServerContext* context,
    const v1::SubmitMessageRequest* request,
    v1::SubmitMessageResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(context, "SubmitMessage", reactor)) return reactor;
  absl::StatusOr<Submission> submission = Prepare(*request);
  if (!submission.ok()) {
    reactor->Finish(ToGrpcStatus(submission.status()));
    return reactor;
  }
  submission->done = [reactor,
                      response](absl::StatusOr<std::string> message_id) {
    if (!message_id.ok()) {
      reactor->Finish(ToGrpcStatus(message_id.status()));
      return;
    }
    response->set_message_id(*message_id);
    reactor->Finish(grpc::Status::OK);
  };
  deps_.committer->Submit(*std::move(submission));
  return reactor;
}

grpc::ServerUnaryReactor* OperatorServiceImpl::SubmitMessages(
    grpc::CallbackServerContext* context,
    const v1::SubmitMessagesRequest* request,
    v1::SubmitMessagesResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!Admit(context, "SubmitMessages", reactor)) return reactor;
  const int count = request->messages_size();
  if (count > kMaxSubmitBatch) {
    reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(
        Cat("messages: ", count, " in one call, more than the ",
            kMaxSubmitBatch, " allowed"))));
    return reactor;
  }
  // Every result exists before the committer may answer any of them, and
  // each answer writes only its own. The call finishes when the last
  // accepted message is answered; the extra count is this handler's own,
  // so that cannot happen before every message is handed on.
  for (int i = 0; i < count; ++i) response->add_results();
  auto pending = std::make_shared<std::atomic<int>>(1);
  auto finish_one = [reactor, pending] {
    if (pending->fetch_sub(1, std::memory_order_acq_rel) == 1) {
      reactor->Finish(grpc::Status::OK);
    }
  };
  std::vector<Submission> accepted;
  accepted.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    v1::SubmitResult* result = response->mutable_results(i);
    absl::StatusOr<Submission> submission = Prepare(request->messages(i));
    if (!submission.ok()) {
      SetRefusal(*result, submission.status());
      continue;
    }
    pending->fetch_add(1, std::memory_order_relaxed);
    submission->done = [result,
                        finish_one](absl::StatusOr<std::string> message_id) {
      if (message_id.ok()) {
        result->set_message_id(*message_id);
      } else {
        SetRefusal(*result, message_id.status());
      }
      finish_one();
    };
    accepted.push_back(*std::move(submission));
  }
  deps_.committer->SubmitAll(std::move(accepted));
  finish_one();
  return reactor;
}

absl::StatusOr<v1::SentMessage> OperatorServiceImpl::LoadSent(
    const std::string& id) const {
  CASELINK_ASSIGN_OR_RETURN(std::optional<std::string> value,
                            deps_.store->Get(Family::kMessages, SentKey(id)));
  if (!value.has_value()) {
    return absl::NotFoundError(
        Cat("no message ", MessageIdText(id), " was sent from this node"));
  }
  store::v1::SentState state;
  if (!state.ParseFromString(*value)) {
    return absl::DataLossError(
        Cat("sent state of ", MessageIdText(id), " is corrupt"));
  }
  v1::SentMessage message;
  message.set_message_id(id);
  message.set_recipient(state.recipient());
  message.set_kind(state.kind());
  message.set_case_id(state.case_id());
  message.set_priority(state.priority());
  *message.mutable_created_at() =
      TimeUtil::MicrosecondsToTimestamp(state.created_unix_micros());
  *message.mutable_updated_at() =
      TimeUtil::MicrosecondsToTimestamp(state.updated_unix_micros());
  message.set_state(state.state());
  message.set_reason(state.reason());
  *message.mutable_route() = state.route();
  if (state.has_receipt()) *message.mutable_receipt() = state.receipt();
  if (state.state() == v1::DELIVERY_STATE_QUEUED) {
    PeerLink* link = deps_.links->Find(state.next_hop());
    if (link != nullptr && link->InFlight(id)) {
      message.set_state(v1::DELIVERY_STATE_SENT);
    }
  }
  return message;
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ListSent(
    grpc::CallbackServerContext* context, const v1::ListSentRequest* request,
    v1::ListSentResponse* response) {
  return Serve(context, "ListSent", [&]() -> absl::Status {
    CASELINK_ASSIGN_OR_RETURN(std::string from,
                              DecodePageToken(request->page_token()));
    const uint32_t limit = PageSize(request->page_size());
    std::vector<std::string> ids;
    std::string last_key;
    bool more = false;
    storage::Cursor cursor = deps_.store->NewCursor(Family::kMessages, "s/");
    if (!from.empty()) cursor.Seek(from);
    for (; cursor.Valid(); cursor.Next()) {
      if (ids.size() == limit) {
        more = true;
        break;
      }
      std::string_view key = cursor.key();
      ids.emplace_back(key.substr(key.size() - kMessageIdSize));
      last_key = std::string(key);
    }
    CASELINK_RETURN_IF_ERROR(cursor.status());
    for (const std::string& id : ids) {
      CASELINK_ASSIGN_OR_RETURN(*response->add_messages(), LoadSent(id));
    }
    if (more) response->set_next_page_token(HexEncode(last_key));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* OperatorServiceImpl::GetSent(
    grpc::CallbackServerContext* context, const v1::GetSentRequest* request,
    v1::GetSentResponse* response) {
  return Serve(context, "GetSent", [&]() -> absl::Status {
    CASELINK_RETURN_IF_ERROR(RequireMessageId(request->message_id()));
    CASELINK_ASSIGN_OR_RETURN(*response->mutable_message(),
                              LoadSent(request->message_id()));
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::InboxMessage> OperatorServiceImpl::LoadInbox(
    const std::string& id, bool with_envelope) const {
  CASELINK_ASSIGN_OR_RETURN(
      std::optional<std::string> value,
      deps_.store->Get(Family::kMessages, InboxRecordKey(id)));
  if (!value.has_value()) {
    return absl::NotFoundError(
        Cat("no message ", MessageIdText(id), " arrived at this node"));
  }
  store::v1::InboxRecord record;
  v1::Body body;
  if (!record.ParseFromString(*value) ||
      !body.ParseFromString(record.envelope().body())) {
    return absl::DataLossError(
        Cat("inbox record of ", MessageIdText(id), " is corrupt"));
  }
  v1::InboxMessage message;
  message.set_message_id(id);
  message.set_sender(body.sender());
  message.set_kind(body.kind());
  message.set_case_id(body.case_id());
  message.set_priority(body.priority());
  *message.mutable_created_at() = body.created_at();
  *message.mutable_received_at() =
      TimeUtil::MicrosecondsToTimestamp(record.received_unix_micros());
  message.set_handled(record.handled());
  if (with_envelope) *message.mutable_envelope() = record.envelope();
  return message;
}

grpc::ServerUnaryReactor* OperatorServiceImpl::ListInbox(
    grpc::CallbackServerContext* context, const v1::ListInboxRequest* request,
    v1::ListInboxResponse* response) {
  return Serve(context, "ListInbox", [&]() -> absl::Status {
    CASELINK_ASSIGN_OR_RETURN(std::string from,
                              DecodePageToken(request->page_token()));
    const uint32_t limit = PageSize(request->page_size());
    storage::Cursor cursor = deps_.store->NewCursor(Family::kInbox, "");
    if (!from.empty()) cursor.Seek(from);
    std::string last_key;
    for (; cursor.Valid(); cursor.Next()) {
      if (static_cast<uint32_t>(response->messages_size()) == limit) {
        response->set_next_page_token(HexEncode(last_key));
        break;
      }
      last_key = std::string(cursor.key());
      CASELINK_ASSIGN_OR_RETURN(
          v1::InboxMessage message,
          LoadInbox(std::string(cursor.value()), /*with_envelope=*/false));
      if (request->unhandled_only() && message.handled()) continue;
      *response->add_messages() = std::move(message);
    }
    return cursor.status();
  });
}

grpc::ServerUnaryReactor* OperatorServiceImpl::GetInboxMessage(
    grpc::CallbackServerContext* context,
    const v1::GetInboxMessageRequest* request,
    v1::GetInboxMessageResponse* response) {
  return Serve(context, "GetInboxMessage", [&]() -> absl::Status {
    CASELINK_RETURN_IF_ERROR(RequireMessageId(request->message_id()));
    CASELINK_ASSIGN_OR_RETURN(
        *response->mutable_message(),
        LoadInbox(request->message_id(), /*with_envelope=*/true));
    v1::Body body;
    if (!body.ParseFromString(response->message().envelope().body())) {
      return absl::DataLossError("stored envelope is corrupt");
    }
    if (!body.has_sealed_payload()) {
      response->set_payload(body.payload());
      return absl::OkStatus();
    }
    std::shared_ptr<const NodeIdentity> self = deps_.self->Get();
    if (!self->HasSealingKey()) {
      return absl::FailedPreconditionError(
          "the payload is sealed, and this node has no sealing key");
    }
    CASELINK_ASSIGN_OR_RETURN(
        *response->mutable_payload(),
        self->OpenSealed(body.sealed_payload(),
                         SealAssociatedData(body.message_id(), body.sender(),
                                            body.recipient())));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* OperatorServiceImpl::MarkHandled(
    grpc::CallbackServerContext* context, const v1::MarkHandledRequest* request,
    v1::MarkHandledResponse* /*response*/) {
  return Serve(context, "MarkHandled", [&]() -> absl::Status {
    CASELINK_RETURN_IF_ERROR(RequireMessageId(request->message_id()));
    const std::string key = InboxRecordKey(request->message_id());
    CASELINK_ASSIGN_OR_RETURN(std::optional<std::string> value,
                              deps_.store->Get(Family::kMessages, key));
    if (!value.has_value()) {
      return absl::NotFoundError(Cat("no message ",
                                     MessageIdText(request->message_id()),
                                     " arrived at this node"));
    }
    store::v1::InboxRecord record;
    if (!record.ParseFromString(*value)) {
      return absl::DataLossError("inbox record is corrupt");
    }
    if (record.handled()) return absl::OkStatus();
    record.set_handled(true);
    storage::Batch batch = deps_.store->NewBatch();
    batch.Put(Family::kMessages, key, record.SerializeAsString());
    return deps_.store->Commit(batch);
  });
}

}  // namespace caselink::server
