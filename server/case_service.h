// The gRPC service for this node's operators to run cases: referrals,
// their steps, evidence requests and time limits. Callers present an
// operator certificate of this node.
#ifndef CASELINK_SERVER_CASE_SERVICE_H_
#define CASELINK_SERVER_CASE_SERVICE_H_

#include <functional>
#include <string_view>

#include "caselink/v1/cases.grpc.pb.h"
#include "core/log.h"
#include "server/attachments.h"
#include "server/case_ledger.h"
#include "server/link_set.h"
#include "server/node_identity.h"
#include "server/revocations.h"
#include "server/workflow_config.h"

namespace caselink::server {

struct CaseServiceDeps {
  const CurrentIdentity* self = nullptr;
  const WorkflowConfig* config = nullptr;
  const LinkSet* links = nullptr;
  const Revocations* revocations = nullptr;
  CaseLedger* ledger = nullptr;
  AttachmentStore* attachments = nullptr;
  Logger* log = nullptr;
};

// Each answer is the state after the step, durable. Errors: InvalidArgument
// naming the field, FailedPrecondition naming the state or side that does
// not allow a step, NotFound for an unknown id, PermissionDenied for a
// caller that is not an operator of this node.
//
// Attachments: UploadAttachment takes a Start message, then chunks from
// where the upload stands (GetUpload says where), each stored durably
// before the next is read; it answers with the reference once every byte
// is in and has the digest, or at once if the attachment is already
// complete here. A stream that ends early leaves what it stored, to be
// resumed, and fails FailedPrecondition saying how much is stored.
// DownloadAttachment streams a complete attachment in chunks of at most
// kAttachmentPieceBytes. Errors as AttachmentStore's.
class CaseServiceImpl final : public v1::CaseService::CallbackService {
 public:
  // Everything the deps point to must outlive the service.
  explicit CaseServiceImpl(CaseServiceDeps deps) : deps_(deps) {}

  grpc::ServerUnaryReactor* CreateReferral(
      grpc::CallbackServerContext* context,
      const v1::CreateReferralRequest* request,
      v1::CaseResponse* response) override;
  grpc::ServerUnaryReactor* StepReferral(grpc::CallbackServerContext* context,
                                         const v1::StepReferralRequest* request,
                                         v1::CaseResponse* response) override;
  grpc::ServerUnaryReactor* GetCase(grpc::CallbackServerContext* context,
                                    const v1::GetCaseRequest* request,
                                    v1::GetCaseResponse* response) override;
  grpc::ServerUnaryReactor* ListCases(grpc::CallbackServerContext* context,
                                      const v1::ListCasesRequest* request,
                                      v1::ListCasesResponse* response) override;
  grpc::ServerUnaryReactor* RequestEvidence(
      grpc::CallbackServerContext* context,
      const v1::RequestEvidenceRequest* request,
      v1::EvidenceResponse* response) override;
  grpc::ServerUnaryReactor* StepEvidence(
      grpc::CallbackServerContext* context,
      const v1::StepEvidenceRequest* request,
      v1::EvidenceResponse* response) override;
  grpc::ServerUnaryReactor* GetEvidence(
      grpc::CallbackServerContext* context,
      const v1::GetEvidenceRequest* request,
      v1::EvidenceResponse* response) override;
  grpc::ServerUnaryReactor* ListEvidence(
      grpc::CallbackServerContext* context,
      const v1::ListEvidenceRequest* request,
      v1::ListEvidenceResponse* response) override;
  grpc::ServerUnaryReactor* ListDue(grpc::CallbackServerContext* context,
                                    const v1::ListDueRequest* request,
                                    v1::ListDueResponse* response) override;
  grpc::ServerReadReactor<v1::UploadAttachmentRequest>* UploadAttachment(
      grpc::CallbackServerContext* context,
      v1::UploadAttachmentResponse* response) override;
  grpc::ServerUnaryReactor* GetUpload(grpc::CallbackServerContext* context,
                                      const v1::GetUploadRequest* request,
                                      v1::GetUploadResponse* response) override;
  grpc::ServerWriteReactor<v1::DownloadAttachmentResponse>* DownloadAttachment(
      grpc::CallbackServerContext* context,
      const v1::DownloadAttachmentRequest* request) override;

 private:
  // The caller's check; on failure the reactor is already finished.
  absl::Status Admit(grpc::CallbackServerContext* context,
                     std::string_view rpc);
  // Finishes a synchronous call with what `handler` returns.
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* context,
                                  std::string_view rpc,
                                  const std::function<absl::Status()>& handler);

  const CaseServiceDeps deps_;
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_CASE_SERVICE_H_
