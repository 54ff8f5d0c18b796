// A client of one node's AuditService (caselink/v1/audit.proto), for
// auditors, who present auditor certificates. It fetches answers; checking
// them is client/audit_verify.h's work, and nothing here trusts or checks
// what the node says beyond its paging.
#ifndef CASELINK_CLIENT_AUDIT_CLIENT_H_
#define CASELINK_CLIENT_AUDIT_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "caselink/v1/audit.grpc.pb.h"
#include "client/client_config.h"

namespace caselink::client {

// Every call is one RPC with its own deadline, `timeout` from the moment it
// is made, on a mutual TLS channel as NodeClient's. Errors carry the gRPC
// status of the call unchanged: Unavailable when the node cannot be
// reached, DeadlineExceeded when it did not answer in time,
// PermissionDenied when the certificate is not an auditor's, and whatever
// the node reports (InvalidArgument, NotFound, ...) with its own message.
//
// Thread-safe: calls may be made from many threads at once.
class AuditClient {
 public:
  // Reads the certificate, key and CA bundle the config names (errors name
  // the file) and prepares a channel; no connection is made yet.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AuditClient>> Connect(
      const ClientConfig& config);

  // A client over a channel the caller made, such as an in-process one to a
  // fake node in a test. No certificate is checked here.
  static std::unique_ptr<AuditClient> ForChannel(
      std::shared_ptr<grpc::Channel> channel);

  // The node's latest signed head, or with `fresh` one it signs now.
  [[nodiscard]] absl::StatusOr<v1::GetTreeHeadResponse> GetTreeHead(
      bool fresh = false, absl::Duration timeout = absl::Seconds(10));

  // One page of a case's events, oldest first. A page_size of 0 lets the
  // node choose; an empty token asks for the first page.
  [[nodiscard]] absl::StatusOr<v1::AuditAnswer> GetCaseHistory(
      std::string_view case_id, uint32_t page_size = 0,
      std::string_view page_token = {},
      absl::Duration timeout = absl::Seconds(30));

  // One page of the events that match every filter `request` sets.
  [[nodiscard]] absl::StatusOr<v1::AuditAnswer> QueryEvents(
      const v1::QueryEventsRequest& request,
      absl::Duration timeout = absl::Seconds(30));

  // The proof that the head of `second_tree_size` extends the head of
  // `first_tree_size`.
  [[nodiscard]] absl::StatusOr<v1::GetConsistencyProofResponse>
  GetConsistencyProof(uint64_t first_tree_size, uint64_t second_tree_size,
                      absl::Duration timeout = absl::Seconds(10));

  // A case's history at every node it passed through. The node asks each
  // of them in turn, so the default deadline is longer.
  [[nodiscard]] absl::StatusOr<v1::GetCasePathResponse> GetCasePath(
      std::string_view case_id, absl::Duration timeout = absl::Minutes(2));

  // The heads of its peers this node holds.
  [[nodiscard]] absl::StatusOr<v1::GetWitnessedHeadsResponse> GetWitnessedHeads(
      absl::Duration timeout = absl::Seconds(10));

  // Every page of a case's history, or of QueryEvents for `filter` (its
  // page fields are ignored), as one answer without a next page. Each page
  // gets its own deadline `timeout`. All pages must come with the same
  // head, since one answer holds one head: FailedPrecondition otherwise,
  // naming both heads (a node must keep a listing on the head of its first
  // page; the request has no other way to ask for one). DataLoss if the
  // node hands out the same page token twice.
  [[nodiscard]] absl::StatusOr<v1::AuditAnswer> FullCaseHistory(
      std::string_view case_id, absl::Duration timeout = absl::Seconds(30));
  [[nodiscard]] absl::StatusOr<v1::AuditAnswer> AllEvents(
      const v1::QueryEventsRequest& filter,
      absl::Duration timeout = absl::Seconds(30));

  v1::AuditService::Stub* stub() { return stub_.get(); }

 private:
  explicit AuditClient(std::shared_ptr<grpc::Channel> channel);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AuditService::Stub> stub_;
};

// Appends `page` to `all`, the pages before it; the paging rule of
// FullCaseHistory and AllEvents, apart for tests. The first page gives
// `all` its head and certificate; a later page must have the same head
// (FailedPrecondition otherwise). `all` takes the page's next_page_token.
[[nodiscard]] absl::Status AppendAuditPage(v1::AuditAnswer page,
                                           v1::AuditAnswer* all, bool first);

}  // namespace caselink::client

#endif  // CASELINK_CLIENT_AUDIT_CLIENT_H_
