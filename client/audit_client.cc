#include "client/audit_client.h"

#include <functional>
#include <string>
#include <utility>

#include "client/unary_call.h"
#include "core/crypto.h"
#include "core/grpc_status.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "core/tls.h"
#include "google/protobuf/util/message_differencer.h"

namespace caselink::client {
namespace {

using Stub = v1::AuditService::Stub;

std::string HeadName(const v1::SignedTreeHead& head) {
  return Cat(head.code(), " size ", head.tree_size(), " root ",
             HexEncode(head.root_hash()));
}

// Fetches pages with `fetch(token)` until one has no next page.
absl::StatusOr<v1::AuditAnswer> AllPages(
    const std::function<absl::StatusOr<v1::AuditAnswer>(const std::string&)>&
        fetch) {
  v1::AuditAnswer all;
  std::string token;
  bool first = true;
  do {
    CASELINK_ASSIGN_OR_RETURN(v1::AuditAnswer page, fetch(token));
    if (!page.next_page_token().empty() && page.next_page_token() == token) {
      return absl::DataLossError("the node returned the same page twice");
    }
    CASELINK_RETURN_IF_ERROR(AppendAuditPage(std::move(page), &all, first));
    first = false;
    token = all.next_page_token();
  } while (!token.empty());
  return all;
}

}  // namespace

absl::Status AppendAuditPage(v1::AuditAnswer page, v1::AuditAnswer* all,
                             bool first) {
  if (first) {
    *all->mutable_head() = page.head();
    all->set_signing_certificate_pem(page.signing_certificate_pem());
  } else if (!google::protobuf::util::MessageDifferencer::Equals(page.head(),
                                                                 all->head())) {
    return absl::FailedPreconditionError(
        Cat("the node answered a later page against head ",
            HeadName(page.head()), " after ", HeadName(all->head()),
            "; one answer holds one head, so try again"));
  }
  for (v1::AuditEntry& entry : *page.mutable_entries()) {
    *all->add_entries() = std::move(entry);
  }
  all->set_next_page_token(page.next_page_token());
  return absl::OkStatus();
}

AuditClient::AuditClient(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)),
      stub_(v1::AuditService::NewStub(channel_)) {}

absl::StatusOr<std::unique_ptr<AuditClient>> AuditClient::Connect(
    const ClientConfig& config) {
  CASELINK_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                            ChannelFor(config));
  return std::unique_ptr<AuditClient>(new AuditClient(std::move(channel)));
}

std::unique_ptr<AuditClient> AuditClient::ForChannel(
    std::shared_ptr<grpc::Channel> channel) {
  return std::unique_ptr<AuditClient>(new AuditClient(std::move(channel)));
}

absl::StatusOr<v1::GetTreeHeadResponse> AuditClient::GetTreeHead(
    bool fresh, absl::Duration timeout) {
  v1::GetTreeHeadRequest request;
  request.set_fresh(fresh);
  return UnaryCall(*stub_, &Stub::GetTreeHead, request, timeout);
}

absl::StatusOr<v1::AuditAnswer> AuditClient::GetCaseHistory(
    std::string_view case_id, uint32_t page_size, std::string_view page_token,
    absl::Duration timeout) {
  v1::GetCaseHistoryRequest request;
  request.set_case_id(std::string(case_id));
  request.set_page_size(page_size);
  request.set_page_token(std::string(page_token));
  return UnaryCall(*stub_, &Stub::GetCaseHistory, request, timeout);
}

absl::StatusOr<v1::AuditAnswer> AuditClient::QueryEvents(
    const v1::QueryEventsRequest& request, absl::Duration timeout) {
  return UnaryCall(*stub_, &Stub::QueryEvents, request, timeout);
}

absl::StatusOr<v1::GetConsistencyProofResponse>
AuditClient::GetConsistencyProof(uint64_t first_tree_size,
                                 uint64_t second_tree_size,
                                 absl::Duration timeout) {
  v1::GetConsistencyProofRequest request;
  request.set_first_tree_size(first_tree_size);
  request.set_second_tree_size(second_tree_size);
  return UnaryCall(*stub_, &Stub::GetConsistencyProof, request, timeout);
}

absl::StatusOr<v1::GetCasePathResponse> AuditClient::GetCasePath(
    std::string_view case_id, absl::Duration timeout) {
  v1::GetCasePathRequest request;
  request.set_case_id(std::string(case_id));
  return UnaryCall(*stub_, &Stub::GetCasePath, request, timeout);
}

absl::StatusOr<v1::GetWitnessedHeadsResponse> AuditClient::GetWitnessedHeads(
    absl::Duration timeout) {
  return UnaryCall(*stub_, &Stub::GetWitnessedHeads,
                   v1::GetWitnessedHeadsRequest(), timeout);
}

absl::StatusOr<v1::AuditAnswer> AuditClient::FullCaseHistory(
    std::string_view case_id, absl::Duration timeout) {
  return AllPages([&](const std::string& token) {
    return GetCaseHistory(case_id, /*page_size=*/0, token, timeout);
  });
}

absl::StatusOr<v1::AuditAnswer> AuditClient::AllEvents(
    const v1::QueryEventsRequest& filter, absl::Duration timeout) {
  v1::QueryEventsRequest request = filter;
  request.set_page_size(0);
  return AllPages([&](const std::string& token) {
    request.set_page_token(token);
    return QueryEvents(request, timeout);
  });
}

}  // namespace caselink::client
