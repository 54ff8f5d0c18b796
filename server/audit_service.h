// Answers about this node's audit log: for auditors (AuditService, auditor
// certificates only, read-only) and for other nodes (PeerService's audit
// calls). Every answer carries inclusion proofs against one signed head,
// and the certificate that signed it, so that it can be checked offline.
#ifndef CASELINK_SERVER_AUDIT_SERVICE_H_
#define CASELINK_SERVER_AUDIT_SERVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "caselink/v1/audit.grpc.pb.h"
#include "core/log.h"
#include "core/tls.h"
#include "server/audit_log.h"
#include "server/directory.h"
#include "server/node_identity.h"
#include "server/revocations.h"
#include "server/tree_heads.h"
#include "server/witness.h"

namespace caselink::server {

// Builds answers from the log. Thread-safe.
class AuditReader {
 public:
  AuditReader(const AuditLog* log, TreeHeads* heads)
      : log_(log), heads_(heads) {}

  [[nodiscard]] absl::StatusOr<v1::GetTreeHeadResponse> Head(bool fresh);
  // One page of the events matching `filter`, oldest first, against a head
  // of the log as it stands. The page token is the last index returned.
  [[nodiscard]] absl::StatusOr<v1::AuditAnswer> Answer(
      const AuditFilter& filter, const std::string& page_token,
      uint32_t page_size);
  [[nodiscard]] absl::StatusOr<v1::GetConsistencyProofResponse> Consistency(
      uint64_t first, uint64_t second);

 private:
  const AuditLog* const log_;
  TreeHeads* const heads_;
};

struct AuditServiceDeps {
  // Also the TLS identity to reach other nodes with.
  const CurrentIdentity* self = nullptr;
  const Revocations* revocations = nullptr;
  AuditReader* reader = nullptr;
  const Witness* witness = nullptr;
  // To reach the other nodes of a case's path.
  const Directory* directory = nullptr;
  Logger* log = nullptr;
};

// Auditors of this node, or of a node above it, may call; nobody else.
class AuditServiceImpl final : public v1::AuditService::CallbackService {
 public:
  explicit AuditServiceImpl(AuditServiceDeps deps) : deps_(deps) {}

  grpc::ServerUnaryReactor* GetTreeHead(
      grpc::CallbackServerContext* context,
      const v1::GetTreeHeadRequest* request,
      v1::GetTreeHeadResponse* response) override;
  grpc::ServerUnaryReactor* GetCaseHistory(
      grpc::CallbackServerContext* context,
      const v1::GetCaseHistoryRequest* request,
      v1::AuditAnswer* response) override;
  grpc::ServerUnaryReactor* QueryEvents(grpc::CallbackServerContext* context,
                                        const v1::QueryEventsRequest* request,
                                        v1::AuditAnswer* response) override;
  grpc::ServerUnaryReactor* GetConsistencyProof(
      grpc::CallbackServerContext* context,
      const v1::GetConsistencyProofRequest* request,
      v1::GetConsistencyProofResponse* response) override;
  // Asks each node the case's events name, in turn, through the directory
  // (at most 32 nodes, a few seconds each), on the calling thread.
  grpc::ServerUnaryReactor* GetCasePath(
      grpc::CallbackServerContext* context,
      const v1::GetCasePathRequest* request,
      v1::GetCasePathResponse* response) override;
  grpc::ServerUnaryReactor* GetWitnessedHeads(
      grpc::CallbackServerContext* context,
      const v1::GetWitnessedHeadsRequest* request,
      v1::GetWitnessedHeadsResponse* response) override;

 private:
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* context,
                                  std::string_view rpc,
                                  const std::function<absl::Status()>& handler);
  // The whole history of `case_id` at node `code`: here, or asked of it.
  absl::StatusOr<v1::AuditAnswer> HistoryAt(const std::string& code,
                                            const std::string& case_id);

  const AuditServiceDeps deps_;
};

// The filter of a query, checked: InvalidArgument naming the field.
[[nodiscard]] absl::StatusOr<AuditFilter> FilterOf(
    const v1::QueryEventsRequest& request);

}  // namespace caselink::server

#endif  // CASELINK_SERVER_AUDIT_SERVICE_H_
