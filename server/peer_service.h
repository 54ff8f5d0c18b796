// The node-to-node gRPC service. Only node certificates may call it, and
// only configured peers may hand over envelopes.
#ifndef CASELINK_SERVER_PEER_SERVICE_H_
#define CASELINK_SERVER_PEER_SERVICE_H_

#include <string>

#include "caselink/v1/peer.grpc.pb.h"
#include "core/log.h"
#include "server/audit_service.h"
#include "server/case_ledger.h"
#include "server/committer.h"
#include "server/counters.h"
#include "server/directory.h"
#include "server/intake.h"
#include "server/key_ring.h"
#include "server/link_set.h"
#include "server/node_identity.h"
#include "server/revocations.h"

namespace caselink::server {

struct PeerServiceDeps {
  const CurrentIdentity* self = nullptr;
  // Only nodes this node has a link with may hand over envelopes.
  const LinkSet* links = nullptr;
  KeyRing* keys = nullptr;
  Directory* directory = nullptr;
  const Revocations* revocations = nullptr;
  Intake* intake = nullptr;
  Committer* committer = nullptr;
  Counters* counters = nullptr;
  Logger* log = nullptr;
  // Answers ListDue; without it the call is unimplemented.
  const CaseLedger* ledger = nullptr;
  // Answers the audit calls; likewise.
  AuditReader* audit = nullptr;
  // Envelopes of one stream waiting for the committer, at most; reading
  // pauses beyond it.
  int max_outstanding = 4096;
};

class PeerServiceImpl final : public v1::PeerService::CallbackService {
 public:
  // Everything the deps point to must outlive the service.
  explicit PeerServiceImpl(PeerServiceDeps deps) : deps_(std::move(deps)) {}

  grpc::ServerUnaryReactor* GetNodeInfo(
      grpc::CallbackServerContext* context,
      const v1::GetNodeInfoRequest* request,
      v1::GetNodeInfoResponse* response) override;

  // Any node may ask; the answer is a certificate from the key ring.
  grpc::ServerUnaryReactor* GetSigningCertificate(
      grpc::CallbackServerContext* context,
      const v1::GetSigningCertificateRequest* request,
      v1::GetSigningCertificateResponse* response) override;

  grpc::ServerBidiReactor<v1::ExchangeRequest, v1::ExchangeResponse>* Exchange(
      grpc::CallbackServerContext* context) override;

  grpc::ServerUnaryReactor* GetDirectory(
      grpc::CallbackServerContext* context,
      const v1::GetDirectoryRequest* request,
      v1::GetDirectoryResponse* response) override;
  // Only a node above this one may ask. The subtree's answers are gathered
  // on the calling thread, which the call holds for a few seconds at most
  // per node below.
  grpc::ServerUnaryReactor* ListDue(grpc::CallbackServerContext* context,
                                    const v1::ListDueRequest* request,
                                    v1::ListDueResponse* response) override;
  // Any node may ask, to witness this node's log or to gather a case's
  // path for an auditor.
  grpc::ServerUnaryReactor* GetTreeHead(
      grpc::CallbackServerContext* context,
      const v1::GetTreeHeadRequest* request,
      v1::GetTreeHeadResponse* response) override;
  grpc::ServerUnaryReactor* GetConsistencyProof(
      grpc::CallbackServerContext* context,
      const v1::GetConsistencyProofRequest* request,
      v1::GetConsistencyProofResponse* response) override;
  grpc::ServerUnaryReactor* GetCaseHistory(
      grpc::CallbackServerContext* context,
      const v1::GetCaseHistoryRequest* request,
      v1::AuditAnswer* response) override;

 private:
  const PeerServiceDeps deps_;
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_PEER_SERVICE_H_
