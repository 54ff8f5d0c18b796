#include "server/audit_service.h"

#include <deque>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "caselink/v1/peer.grpc.pb.h"
#include "core/division_code.h"
#include "core/grpc_status.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"
#include "server/caller.h"

namespace caselink::server {
namespace {

using google::protobuf::util::TimeUtil;

constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;
constexpr int kMaxPathNodes = 32;
constexpr absl::Duration kPathCallTimeout = absl::Seconds(5);
constexpr size_t kMaxCaseIdLength = 128;

absl::Time FromTimestamp(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(timestamp));
}

}  // namespace

absl::StatusOr<v1::GetTreeHeadResponse> AuditReader::Head(bool fresh) {
  v1::GetTreeHeadResponse response;
  CASELINK_ASSIGN_OR_RETURN(*response.mutable_head(), heads_->Latest(fresh));
  response.set_signing_certificate_pem(heads_->CertificateOf(response.head()));
  return response;
}

absl::StatusOr<v1::AuditAnswer> AuditReader::Answer(
    const AuditFilter& filter, const std::string& page_token,
    uint32_t page_size) {
  // The token is "<tree size>.<last index>": every page of a listing is
  // proved against the head of its first page.
  std::optional<uint64_t> after;
  std::optional<uint64_t> listing_size;
  if (!page_token.empty()) {
    std::pair<std::string, std::string> parts =
        absl::StrSplit(page_token, absl::MaxSplits('.', 1));
    uint64_t size = 0;
    uint64_t index = 0;
    if (!absl::SimpleAtoi(parts.first, &size) ||
        !absl::SimpleAtoi(parts.second, &index) || size > log_->size()) {
      return absl::InvalidArgumentError("page_token: not one this node gave");
    }
    listing_size = size;
    after = index;
  }
  const size_t limit =
      page_size == 0 ? kDefaultPageSize : std::min(page_size, kMaxPageSize);
  v1::AuditAnswer answer;
  if (listing_size.has_value()) {
    CASELINK_ASSIGN_OR_RETURN(*answer.mutable_head(),
                              heads_->At(*listing_size));
  } else {
    CASELINK_ASSIGN_OR_RETURN(*answer.mutable_head(), heads_->Latest(true));
  }
  answer.set_signing_certificate_pem(heads_->CertificateOf(answer.head()));
  const uint64_t size = answer.head().tree_size();
  CASELINK_ASSIGN_OR_RETURN(std::vector<uint64_t> indexes,
                            log_->Find(filter, after, size, limit + 1));
  const bool more = indexes.size() > limit;
  if (more) indexes.resize(limit);
  for (uint64_t index : indexes) {
    v1::AuditEntry* entry = answer.add_entries();
    entry->set_index(index);
    CASELINK_ASSIGN_OR_RETURN(*entry->mutable_event(), log_->EventBytes(index));
    CASELINK_ASSIGN_OR_RETURN(std::vector<std::string> path,
                              log_->InclusionPath(index, size));
    for (std::string& hash : path) entry->add_inclusion_path(std::move(hash));
  }
  if (more) answer.set_next_page_token(Cat(size, ".", indexes.back()));
  return answer;
}

absl::StatusOr<v1::GetConsistencyProofResponse> AuditReader::Consistency(
    uint64_t first, uint64_t second) {
  if (first == 0 || first > second || second > log_->size()) {
    return absl::InvalidArgumentError(
        Cat("tree sizes must satisfy 1 <= first_tree_size <= "
            "second_tree_size <= ",
            log_->size()));
  }
  v1::GetConsistencyProofResponse response;
  CASELINK_ASSIGN_OR_RETURN(std::vector<std::string> path,
                            log_->ConsistencyPath(first, second));
  for (std::string& hash : path) response.add_path(std::move(hash));
  return response;
}

absl::StatusOr<AuditFilter> FilterOf(const v1::QueryEventsRequest& request) {
  AuditFilter filter;
  if (!request.peer().empty()) {
    auto peer = NormalizeDivisionCode(request.peer());
    if (!peer.ok()) {
      return absl::InvalidArgumentError(
          Cat("peer: ", View(peer.status().message())));
    }
    filter.peer = *peer;
  }
  if (!v1::AuditEventKind_IsValid(request.kind())) {
    return absl::InvalidArgumentError("kind: not a known event kind");
  }
  filter.kind = request.kind();
  filter.state = request.state();
  if (request.has_from()) filter.from = FromTimestamp(request.from());
  if (request.has_to()) filter.to = FromTimestamp(request.to());
  if (filter.from.has_value() && filter.to.has_value() &&
      *filter.to < *filter.from) {
    return absl::InvalidArgumentError("to: earlier than from");
  }
  return filter;
}

grpc::ServerUnaryReactor* AuditServiceImpl::Serve(
    grpc::CallbackServerContext* context, std::string_view rpc,
    const std::function<absl::Status()>& handler) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // An auditor of this node or of any node above it.
  auto caller = RequireCaller(*context, Role::kAuditor, "", deps_.revocations);
  absl::Status admitted = caller.status();
  const std::string& self = deps_.self->code();
  if (admitted.ok() &&
      !std::string_view(self).starts_with(SignificantPrefix(caller->code))) {
    admitted = absl::PermissionDeniedError(
        Cat("auditor of ", caller->code, " may not audit ", self));
  }
  if (!admitted.ok()) {
    deps_.log->Warning("call_refused", {{"rpc", std::string(rpc)},
                                        {"peer", context->peer()},
                                        {"error", admitted.ToString()}});
    reactor->Finish(ToGrpcStatus(admitted));
    return reactor;
  }
  reactor->Finish(ToGrpcStatus(handler()));
  return reactor;
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetTreeHead(
    grpc::CallbackServerContext* context, const v1::GetTreeHeadRequest* request,
    v1::GetTreeHeadResponse* response) {
  return Serve(context, "GetTreeHead", [&]() -> absl::Status {
    CASELINK_ASSIGN_OR_RETURN(*response, deps_.reader->Head(request->fresh()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetCaseHistory(
    grpc::CallbackServerContext* context,
    const v1::GetCaseHistoryRequest* request, v1::AuditAnswer* response) {
  return Serve(context, "GetCaseHistory", [&]() -> absl::Status {
    if (request->case_id().empty() ||
        request->case_id().size() > kMaxCaseIdLength) {
      return absl::InvalidArgumentError("case_id: 1 to 128 characters");
    }
    AuditFilter filter;
    filter.case_id = request->case_id();
    CASELINK_ASSIGN_OR_RETURN(
        *response, deps_.reader->Answer(filter, request->page_token(),
                                        request->page_size()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AuditServiceImpl::QueryEvents(
    grpc::CallbackServerContext* context, const v1::QueryEventsRequest* request,
    v1::AuditAnswer* response) {
  return Serve(context, "QueryEvents", [&]() -> absl::Status {
    CASELINK_ASSIGN_OR_RETURN(AuditFilter filter, FilterOf(*request));
    CASELINK_ASSIGN_OR_RETURN(
        *response, deps_.reader->Answer(filter, request->page_token(),
                                        request->page_size()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetConsistencyProof(
    grpc::CallbackServerContext* context,
    const v1::GetConsistencyProofRequest* request,
    v1::GetConsistencyProofResponse* response) {
  return Serve(context, "GetConsistencyProof", [&]() -> absl::Status {
    CASELINK_ASSIGN_OR_RETURN(
        *response, deps_.reader->Consistency(request->first_tree_size(),
                                             request->second_tree_size()));
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::AuditAnswer> AuditServiceImpl::HistoryAt(
    const std::string& code, const std::string& case_id) {
  // One page, as large as pages go, so that all of a node's entries are
  // proved against one head; a longer history says so with its page token.
  if (code == deps_.self->code()) {
    AuditFilter filter;
    filter.case_id = case_id;
    return deps_.reader->Answer(filter, "", kMaxPageSize);
  }
  CASELINK_ASSIGN_OR_RETURN(std::string address,
                            deps_.directory->AddressOf(code));
  auto stub = v1::PeerService::NewStub(
      MutualTlsChannel(address, code, deps_.self->Get()->tls));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kPathCallTimeout));
  v1::GetCaseHistoryRequest request;
  request.set_case_id(case_id);
  request.set_page_size(kMaxPageSize);
  v1::AuditAnswer answer;
  grpc::Status status = stub->GetCaseHistory(&context, request, &answer);
  if (!status.ok()) return FromGrpcStatus(status);
  return answer;
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetCasePath(
    grpc::CallbackServerContext* context, const v1::GetCasePathRequest* request,
    v1::GetCasePathResponse* response) {
  return Serve(context, "GetCasePath", [&]() -> absl::Status {
    if (request->case_id().empty() ||
        request->case_id().size() > kMaxCaseIdLength) {
      return absl::InvalidArgumentError("case_id: 1 to 128 characters");
    }
    // Each node's events name the nodes the case went to next or came
    // from; following them visits every node of its path.
    std::set<std::string> seen = {deps_.self->code()};
    std::deque<std::string> pending = {deps_.self->code()};
    while (!pending.empty() && response->nodes_size() < kMaxPathNodes) {
      std::string code = pending.front();
      pending.pop_front();
      v1::NodeHistory* node = response->add_nodes();
      node->set_code(code);
      auto answer = HistoryAt(code, request->case_id());
      if (!answer.ok()) {
        node->set_error(answer.status().ToString());
        continue;
      }
      for (const v1::AuditEntry& entry : answer->entries()) {
        v1::AuditEvent event;
        if (!event.ParseFromString(entry.event())) continue;
        auto peer = NormalizeDivisionCode(event.peer());
        if (peer.ok() && seen.insert(*peer).second) pending.push_back(*peer);
      }
      *node->mutable_answer() = std::move(*answer);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetWitnessedHeads(
    grpc::CallbackServerContext* context,
    const v1::GetWitnessedHeadsRequest* /*request*/,
    v1::GetWitnessedHeadsResponse* response) {
  return Serve(context, "GetWitnessedHeads", [&]() -> absl::Status {
    CASELINK_ASSIGN_OR_RETURN(std::vector<v1::WitnessedHead> heads,
                              deps_.witness->Held());
    for (v1::WitnessedHead& head : heads) {
      *response->add_heads() = std::move(head);
    }
    return absl::OkStatus();
  });
}

}  // namespace caselink::server
