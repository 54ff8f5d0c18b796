#include "server/case_service.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "core/division_code.h"
#include "core/grpc_status.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "server/caller.h"
#include "server/case_rules.h"
#include "server/due_report.h"

namespace caselink::server {
namespace {

constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;

size_t PageSize(uint32_t requested) {
  if (requested == 0) return kDefaultPageSize;
  return std::min(requested, kMaxPageSize);
}

// Normalizes the division code in `*code`; InvalidArgument naming `field`.
absl::Status NormalizeField(std::string_view field, std::string* code) {
  auto normal = NormalizeDivisionCode(*code);
  if (!normal.ok()) {
    return absl::InvalidArgumentError(
        Cat(field, ": ", View(normal.status().message())));
  }
  *code = *normal;
  return absl::OkStatus();
}

absl::Status CheckAttachments(
    const google::protobuf::RepeatedPtrField<v1::AttachmentRef>& attachments,
    std::string_view field, uint64_t limit) {
  for (int i = 0; i < attachments.size(); ++i) {
    if (attachments[i].size() > limit) {
      return absl::InvalidArgumentError(
          Cat(field, "[", i + 1, "].size: ", attachments[i].size(),
              " bytes is over this node's limit of ", limit));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CaseServiceImpl::Admit(grpc::CallbackServerContext* context,
                                    std::string_view rpc) {
  auto caller = RequireCaller(*context, Role::kOperator, deps_.self->code(),
                              deps_.revocations);
  if (!caller.ok()) {
    deps_.log->Warning("call_refused", {{"rpc", std::string(rpc)},
                                        {"peer", context->peer()},
                                        {"error", caller.status().ToString()}});
  }
  return caller.status();
}

grpc::ServerUnaryReactor* CaseServiceImpl::Serve(
    grpc::CallbackServerContext* context, std::string_view rpc,
    const std::function<absl::Status()>& handler) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status admitted = Admit(context, rpc);
  reactor->Finish(ToGrpcStatus(admitted.ok() ? handler() : admitted));
  return reactor;
}

template <typename T, typename Response, typename Fill>
Reply<T> FinishWith(grpc::ServerUnaryReactor* reactor, Response* response,
                    Fill fill) {
  return [reactor, response, fill](absl::StatusOr<T> result) {
    if (!result.ok()) {
      reactor->Finish(ToGrpcStatus(result.status()));
      return;
    }
    fill(response, std::move(*result));
    reactor->Finish(grpc::Status::OK);
  };
}

grpc::ServerUnaryReactor* CaseServiceImpl::CreateReferral(
    grpc::CallbackServerContext* context,
    const v1::CreateReferralRequest* request, v1::CaseResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status checked = Admit(context, "CreateReferral");
  std::string handler = request->handler();
  if (checked.ok()) checked = NormalizeField("handler", &handler);
  if (checked.ok() && handler == deps_.self->code()) {
    checked = absl::InvalidArgumentError(
        "handler: a node does not refer cases to itself");
  }
  if (checked.ok()) checked = CheckReferral(request->referral());
  if (checked.ok()) {
    checked = CheckAttachments(request->referral().attachments(),
                               "referral.attachments",
                               deps_.config->max_attachment_bytes);
  }
  if (!checked.ok()) {
    reactor->Finish(ToGrpcStatus(checked));
    return reactor;
  }
  v1::Referral referral = request->referral();
  for (v1::Applicant& applicant : *referral.mutable_applicants()) {
    // Checked above, so these normalize.
    (void)NormalizeField("", applicant.mutable_home_region());
    (void)NormalizeField("", applicant.mutable_workplace_region());
  }
  deps_.ledger->CreateReferral(
      std::move(handler), request->case_id(), std::move(referral),
      FinishWith<v1::CaseView>(reactor, response,
                               [](v1::CaseResponse* r, v1::CaseView view) {
                                 *r->mutable_case_view() = std::move(view);
                               }));
  return reactor;
}

grpc::ServerUnaryReactor* CaseServiceImpl::StepReferral(
    grpc::CallbackServerContext* context,
    const v1::StepReferralRequest* request, v1::CaseResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status checked = Admit(context, "StepReferral");
  v1::ReferralStep step = request->step();
  if (checked.ok() && step.has_route()) {
    checked =
        NormalizeField("step.route.to", step.mutable_route()->mutable_to());
  }
  if (checked.ok() && step.has_escalate() &&
      !step.escalate().contender().empty()) {
    checked = NormalizeField("step.escalate.contender",
                             step.mutable_escalate()->mutable_contender());
  }
  if (checked.ok() && step.has_supplement()) {
    checked = CheckAttachments(step.supplement().attachments(),
                               "step.supplement.attachments",
                               deps_.config->max_attachment_bytes);
  }
  if (!checked.ok()) {
    reactor->Finish(ToGrpcStatus(checked));
    return reactor;
  }
  deps_.ledger->StepReferral(
      request->case_id(), std::move(step),
      FinishWith<v1::CaseView>(reactor, response,
                               [](v1::CaseResponse* r, v1::CaseView view) {
                                 *r->mutable_case_view() = std::move(view);
                               }));
  return reactor;
}

grpc::ServerUnaryReactor* CaseServiceImpl::GetCase(
    grpc::CallbackServerContext* context, const v1::GetCaseRequest* request,
    v1::GetCaseResponse* response) {
  return Serve(context, "GetCase", [&]() -> absl::Status {
    CASELINK_ASSIGN_OR_RETURN(store::v1::CaseRecord record,
                              deps_.ledger->GetCase(request->case_id()));
    CASELINK_ASSIGN_OR_RETURN(std::vector<std::string> evidence,
                              deps_.ledger->EvidenceOfCase(request->case_id()));
    *response->mutable_case_view() = std::move(*record.mutable_view());
    for (std::string& id : evidence) {
      response->mutable_case_view()->add_evidence_ids(std::move(id));
    }
    *response->mutable_referral() = std::move(*record.mutable_referral());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaseServiceImpl::ListCases(
    grpc::CallbackServerContext* context, const v1::ListCasesRequest* request,
    v1::ListCasesResponse* response) {
  return Serve(context, "ListCases", [&]() -> absl::Status {
    const size_t limit = PageSize(request->page_size());
    CASELINK_ASSIGN_OR_RETURN(
        std::vector<v1::CaseView> views,
        deps_.ledger->ListCases(request->page_token(), limit + 1));
    const bool more = views.size() > limit;
    if (more) views.resize(limit);
    for (v1::CaseView& view : views) {
      // Lists carry the state, not the history.
      view.clear_events();
      *response->add_cases() = std::move(view);
    }
    if (more)
      response->set_next_page_token(response->cases().rbegin()->case_id());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaseServiceImpl::RequestEvidence(
    grpc::CallbackServerContext* context,
    const v1::RequestEvidenceRequest* request, v1::EvidenceResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status checked = Admit(context, "RequestEvidence");
  std::string collector = request->collector();
  if (checked.ok()) checked = NormalizeField("collector", &collector);
  if (checked.ok() && collector == deps_.self->code()) {
    checked = absl::InvalidArgumentError(
        "collector: a node does not ask itself for evidence");
  }
  if (!checked.ok()) {
    reactor->Finish(ToGrpcStatus(checked));
    return reactor;
  }
  deps_.ledger->RequestEvidence(
      request->case_id(), std::move(collector), request->request(),
      FinishWith<v1::EvidenceView>(
          reactor, response, [](v1::EvidenceResponse* r, v1::EvidenceView v) {
            *r->mutable_evidence() = std::move(v);
          }));
  return reactor;
}

grpc::ServerUnaryReactor* CaseServiceImpl::StepEvidence(
    grpc::CallbackServerContext* context,
    const v1::StepEvidenceRequest* request, v1::EvidenceResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status checked = Admit(context, "StepEvidence");
  if (checked.ok() && request->step().has_result()) {
    checked = CheckAttachments(request->step().result().attachments(),
                               "step.result.attachments",
                               deps_.config->max_attachment_bytes);
  }
  if (!checked.ok()) {
    reactor->Finish(ToGrpcStatus(checked));
    return reactor;
  }
  deps_.ledger->StepEvidence(
      request->evidence_id(), request->step(),
      FinishWith<v1::EvidenceView>(
          reactor, response, [](v1::EvidenceResponse* r, v1::EvidenceView v) {
            *r->mutable_evidence() = std::move(v);
          }));
  return reactor;
}

grpc::ServerUnaryReactor* CaseServiceImpl::GetEvidence(
    grpc::CallbackServerContext* context, const v1::GetEvidenceRequest* request,
    v1::EvidenceResponse* response) {
  return Serve(context, "GetEvidence", [&]() -> absl::Status {
    CASELINK_ASSIGN_OR_RETURN(
        store::v1::EvidenceRecord record,
        deps_.ledger->GetEvidence(request->evidence_id()));
    *response->mutable_evidence() = std::move(*record.mutable_view());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaseServiceImpl::ListEvidence(
    grpc::CallbackServerContext* context,
    const v1::ListEvidenceRequest* request,
    v1::ListEvidenceResponse* response) {
  return Serve(context, "ListEvidence", [&]() -> absl::Status {
    const size_t limit = PageSize(request->page_size());
    CASELINK_ASSIGN_OR_RETURN(
        std::vector<v1::EvidenceView> views,
        deps_.ledger->ListEvidence(request->page_token(), limit + 1));
    const bool more = views.size() > limit;
    if (more) views.resize(limit);
    for (v1::EvidenceView& view : views) {
      view.clear_events();
      *response->add_evidence() = std::move(view);
    }
    if (more) {
      response->set_next_page_token(
          response->evidence().rbegin()->evidence_id());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* CaseServiceImpl::ListDue(
    grpc::CallbackServerContext* context, const v1::ListDueRequest* request,
    v1::ListDueResponse* response) {
  return Serve(context, "ListDue", [&]() -> absl::Status {
    absl::Duration within = request->within_seconds() == 0
                                ? deps_.config->due_soon
                                : absl::Seconds(request->within_seconds());
    CASELINK_ASSIGN_OR_RETURN(
        *response, ReportDue(*deps_.ledger, *deps_.links, deps_.self->code(),
                             absl::Now(), within, request->subtree()));
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------
// Attachments

namespace {

// Reads an upload stream: the Start message, then chunks, each stored
// before the next read is asked for, so that a slow disk slows the client
// rather than filling memory.
class UploadReactor final
    : public grpc::ServerReadReactor<v1::UploadAttachmentRequest> {
 public:
  UploadReactor(AttachmentStore* store, v1::UploadAttachmentResponse* response,
                const absl::Status& admitted)
      : store_(store), response_(response) {
    if (!admitted.ok()) {
      Finish(ToGrpcStatus(admitted));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(ToGrpcStatus(Ended()));
      return;
    }
    absl::Status taken = Take();
    if (!taken.ok()) {
      Finish(ToGrpcStatus(taken));
      return;
    }
    if (upload_->complete()) {
      // Said at once, even if the client is still sending: nothing more is
      // needed.
      *response_->mutable_attachment() = upload_->ref();
      Finish(grpc::Status::OK);
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Take() {
    if (upload_ == nullptr) {
      if (!request_.has_start()) {
        return absl::InvalidArgumentError(
            "start: the first message of an upload names the attachment");
      }
      CASELINK_ASSIGN_OR_RETURN(upload_, store_->StartUpload(request_.start()));
      return absl::OkStatus();
    }
    if (!request_.has_chunk()) {
      return absl::InvalidArgumentError(
          "chunk: every message after the first carries a chunk");
    }
    return store_->TakeUploadChunk(*upload_, request_.chunk());
  }

  // The client stopped sending before the upload was complete.
  absl::Status Ended() const {
    if (upload_ == nullptr) {
      return absl::InvalidArgumentError(
          "start: the stream ended before naming the attachment");
    }
    return absl::FailedPreconditionError(Cat(
        "the stream ended with ", upload_->received(), " of ",
        upload_->ref().size(), " bytes stored; resume from there (GetUpload)"));
  }

  AttachmentStore* const store_;
  v1::UploadAttachmentResponse* const response_;
  v1::UploadAttachmentRequest request_;
  std::unique_ptr<AttachmentStore::Upload> upload_;
};

// Writes a complete attachment one stored piece at a time, reading the
// next only when the last is written.
class DownloadReactor final
    : public grpc::ServerWriteReactor<v1::DownloadAttachmentResponse> {
 public:
  DownloadReactor(const AttachmentStore* store, const absl::Status& admitted,
                  std::string_view digest)
      : store_(store) {
    if (!admitted.ok()) {
      Finish(ToGrpcStatus(admitted));
      return;
    }
    absl::StatusOr<store::v1::AttachmentRecord> record =
        store_->OpenDownload(digest);
    if (!record.ok()) {
      Finish(ToGrpcStatus(record.status()));
      return;
    }
    ref_ = record->ref();
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    if (offset_ >= ref_.size()) {
      Finish(grpc::Status::OK);
      return;
    }
    absl::StatusOr<v1::AttachmentChunk> chunk =
        store_->ReadPiece(ref_, offset_);
    if (!chunk.ok()) {
      Finish(ToGrpcStatus(chunk.status()));
      return;
    }
    offset_ += chunk->data().size();
    *response_.mutable_chunk() = *std::move(chunk);
    StartWrite(&response_);
  }

  const AttachmentStore* const store_;
  v1::AttachmentRef ref_;
  uint64_t offset_ = 0;
  v1::DownloadAttachmentResponse response_;
};

}  // namespace

grpc::ServerReadReactor<v1::UploadAttachmentRequest>*
CaseServiceImpl::UploadAttachment(grpc::CallbackServerContext* context,
                                  v1::UploadAttachmentResponse* response) {
  return new UploadReactor(deps_.attachments, response,
                           Admit(context, "UploadAttachment"));
}

grpc::ServerUnaryReactor* CaseServiceImpl::GetUpload(
    grpc::CallbackServerContext* context, const v1::GetUploadRequest* request,
    v1::GetUploadResponse* response) {
  return Serve(context, "GetUpload", [&]() -> absl::Status {
    CASELINK_ASSIGN_OR_RETURN(*response,
                              deps_.attachments->GetUpload(request->digest()));
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<v1::DownloadAttachmentResponse>*
CaseServiceImpl::DownloadAttachment(
    grpc::CallbackServerContext* context,
    const v1::DownloadAttachmentRequest* request) {
  return new DownloadReactor(deps_.attachments,
                             Admit(context, "DownloadAttachment"),
                             request->digest());
}

}  // namespace caselink::server
