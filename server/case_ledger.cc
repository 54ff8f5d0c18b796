#include "server/case_ledger.h"

#include <memory>
#include <utility>

#include "absl/random/random.h"
#include "absl/time/clock.h"
#include "core/crypto.h"
#include "core/division_code.h"
#include "core/envelope.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"
#include "server/case_rules.h"
#include "server/eligibility.h"
#include "server/lawyer_pool.h"

namespace caselink::server {
namespace {

using storage::Family;
using store::v1::CaseRecord;
using store::v1::EvidenceRecord;

constexpr size_t kMaxIdLength = 128;

std::string CaseKey(std::string_view id) { return Cat("c/", id); }
std::string EvidenceKey(std::string_view id) { return Cat("e/", id); }

// A new id: this node's code, the day and 8 random hex digits, so that ids
// are unique across nodes and readable over the phone.
std::string NewId(const std::string& self, absl::Time now) {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen = new absl::BitGen();
  uint32_t random;
  {
    absl::MutexLock lock(&mu);
    random = absl::Uniform<uint32_t>(*gen);
  }
  std::string bytes(4, '\0');
  for (int i = 0; i < 4; ++i) {
    bytes[i] = static_cast<char>((random >> (8 * i)) & 0xff);
  }
  return Cat(self, "-", absl::FormatTime("%Y%m%d", now, absl::UTCTimeZone()),
             "-", HexEncode(bytes));
}

absl::Status CheckId(std::string_view field, const std::string& id) {
  if (id.empty() || id.size() > kMaxIdLength ||
      !std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
               (c >= 'a' && c <= 'z') || c == '-' || c == '_' || c == '.';
      })) {
    return absl::InvalidArgumentError(Cat(field, ": 1 to ", kMaxIdLength,
                                          " letters, digits, '-', '_' or '.'"));
  }
  return absl::OkStatus();
}

template <typename Record>
absl::StatusOr<std::optional<Record>> Load(GroupWriter& writer,
                                           const std::string& key,
                                           std::string_view what) {
  auto value = writer.Get(Family::kCases, key);
  if (!value.ok()) {
    return absl::UnavailableError(
        Cat("cannot read ", what, ": ", View(value.status().message())));
  }
  if (!value->has_value()) return std::optional<Record>();
  Record record;
  if (!record.ParseFromString(**value)) {
    return absl::DataLossError(Cat("stored ", what, " is corrupt"));
  }
  return std::optional<Record>(std::move(record));
}

template <typename T>
void Finish(const Reply<T>& done, const absl::Status& status,
            const std::shared_ptr<T>& result) {
  if (status.ok()) {
    done(std::move(*result));
  } else {
    done(status);
  }
}

// The kind a referral view travels as, after `step`.
v1::MessageKind KindAfter(const v1::ReferralStep& step) {
  if (step.has_accept() || step.has_reject() || step.has_request_materials()) {
    return v1::MESSAGE_KIND_REFERRAL_DECISION;
  }
  return v1::MESSAGE_KIND_CASE_STATUS;
}

}  // namespace

StepContext CaseLedger::ContextAt(absl::Time now) const {
  StepContext context;
  context.now = now;
  context.self = deps_.self->code();
  context.config = deps_.config;
  return context;
}

template <typename T>
void CaseLedger::Run(Refusal refusal,
                     std::function<absl::Status(GroupWriter&, T&)> change,
                     Reply<T> done) {
  auto result = std::make_shared<T>();
  deps_.committer->Apply(
      [change = std::move(change), result](GroupWriter& writer) {
        return change(writer, *result);
      },
      [this, done = std::move(done), result,
       refusal = std::move(refusal)](const absl::Status& status) {
        RecordRefusal(status, refusal.case_id, refusal.evidence_id,
                      refusal.step);
        Finish(done, status, result);
      });
}

void CaseLedger::RecordRefusal(const absl::Status& status,
                               const std::string& case_id,
                               const std::string& evidence_id,
                               std::string_view step) {
  // Refusals by the rules are events; a failure to write is not a refusal
  // of the step, and the operator hears of it anyway.
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
      break;
    default:
      return;
  }
  v1::AuditEvent event;
  event.set_kind(v1::AUDIT_EVENT_KIND_REFUSAL);
  if (case_id.size() <= kMaxIdLength) event.set_case_id(case_id);
  event.set_peer(deps_.self->code());
  event.set_detail(Cat(
      "operator step ", step, evidence_id.empty() ? "" : " on evidence ",
      evidence_id.substr(0, kMaxIdLength), ": ",
      absl::StatusCodeToString(status.code()), ": ", View(status.message())));
  deps_.committer->AuditOnly(std::move(event));
}

absl::StatusOr<std::optional<CaseRecord>> CaseLedger::LoadCase(
    GroupWriter& writer, const std::string& case_id) const {
  return Load<CaseRecord>(writer, CaseKey(case_id), Cat("case ", case_id));
}

absl::StatusOr<std::optional<EvidenceRecord>> CaseLedger::LoadEvidence(
    GroupWriter& writer, const std::string& evidence_id) const {
  return Load<EvidenceRecord>(writer, EvidenceKey(evidence_id),
                              Cat("evidence request ", evidence_id));
}

void CaseLedger::SaveCase(GroupWriter& writer, const CaseRecord& record,
                          v1::AuditEventKind kind) {
  const v1::CaseView& view = record.view();
  writer.Put(Family::kCases, CaseKey(view.case_id()),
             record.SerializeAsString());
  v1::AuditEvent event;
  event.set_kind(kind);
  event.set_case_id(view.case_id());
  event.set_peer(view.origin() == deps_.self->code() ? view.handler()
                                                     : view.origin());
  event.set_state(ReferralStateName(view.state()));
  // Event names and versions only: reasons and notes are the operators'
  // free text and may name people.
  event.set_detail(Cat(
      "version ", view.version(), ": ",
      view.events().empty() ? std::string() : view.events().rbegin()->name()));
  writer.Audit(std::move(event));
}

void CaseLedger::SaveEvidence(GroupWriter& writer, const EvidenceRecord& record,
                              v1::AuditEventKind kind) {
  const v1::EvidenceView& view = record.view();
  writer.Put(Family::kCases, EvidenceKey(view.evidence_id()),
             record.SerializeAsString());
  v1::AuditEvent event;
  event.set_kind(kind);
  event.set_case_id(view.case_id());
  event.set_peer(view.requester() == deps_.self->code() ? view.collector()
                                                        : view.requester());
  event.set_state(EvidenceStateName(view.state()));
  event.set_detail(Cat(
      "evidence ", view.evidence_id(), " version ", view.version(), ": ",
      view.events().empty() ? std::string() : view.events().rbegin()->name()));
  writer.Audit(std::move(event));
}

absl::Status CaseLedger::Send(GroupWriter& writer, const std::string& recipient,
                              v1::MessageKind kind, const std::string& case_id,
                              v1::Priority priority,
                              const v1::WorkflowPayload& payload) {
  CASELINK_ASSIGN_OR_RETURN(SealingPublicKey key,
                            deps_.directory->SealingKeyOf(recipient));
  v1::Body body;
  body.set_message_id(NewMessageId());
  body.set_recipient(recipient);
  body.set_kind(kind);
  body.set_case_id(case_id);
  body.set_priority(priority);
  body.set_workflow(true);
  CASELINK_ASSIGN_OR_RETURN(
      *body.mutable_sealed_payload(),
      sealer_.Seal(key, payload.SerializeAsString(),
                   SealAssociatedData(body.message_id(), deps_.self->code(),
                                      recipient)));
  return writer.Send(std::move(body));
}

absl::Status CaseLedger::Publish(GroupWriter& writer, const CaseRecord& record,
                                 v1::MessageKind kind) {
  const v1::CaseView& view = record.view();
  v1::WorkflowPayload payload;
  *payload.mutable_case_view() = view;
  // Everyone who follows the case but the node writing it: the origin, and
  // the superior node once it has taken part.
  std::vector<std::string> followers = {view.origin(), view.handler()};
  if (!view.arbiter().empty()) followers.push_back(view.arbiter());
  std::sort(followers.begin(), followers.end());
  followers.erase(std::unique(followers.begin(), followers.end()),
                  followers.end());
  for (const std::string& follower : followers) {
    if (follower == deps_.self->code()) continue;
    CASELINK_RETURN_IF_ERROR(
        Send(writer, follower, kind, view.case_id(), view.priority(), payload));
  }
  return absl::OkStatus();
}

void CaseLedger::CreateReferral(std::string handler, std::string case_id,
                                v1::Referral referral,
                                Reply<v1::CaseView> done) {
  const std::string& self = deps_.self->code();
  // Built before the call: its arguments are evaluated in no fixed order.
  Refusal refusal{case_id, "", "create_referral"};
  Run<v1::CaseView>(
      std::move(refusal),
      [this, handler = std::move(handler), case_id = std::move(case_id),
       referral = std::move(referral), &self](
          GroupWriter& writer, v1::CaseView& result) mutable -> absl::Status {
        if (case_id.empty()) case_id = NewId(self, writer.now());
        CASELINK_RETURN_IF_ERROR(CheckId("case_id", case_id));
        CASELINK_ASSIGN_OR_RETURN(std::optional<CaseRecord> existing,
                                  LoadCase(writer, case_id));
        if (existing.has_value()) {
          return absl::AlreadyExistsError(
              Cat("case_id: case ", case_id, " already exists here"));
        }
        v1::Eligibility eligibility = EvaluateEligibility(
            referral, deps_.config->allowances, self, writer.now());
        CaseRecord record = OpenCase(case_id, self, handler, referral,
                                     eligibility, writer.now());
        // The attachments go first, so that they tend to be whole at the
        // handler by the time the referral naming them is read.
        CASELINK_RETURN_IF_ERROR(deps_.attachments->StageTransfer(
            writer, referral.attachments(), "referral.attachments",
            [&](const v1::WorkflowPayload& chunk) {
              return Send(writer, handler, v1::MESSAGE_KIND_REFERRAL, case_id,
                          record.view().priority(), chunk);
            }));
        v1::WorkflowPayload payload;
        *payload.mutable_referral()->mutable_view() = record.view();
        *payload.mutable_referral()->mutable_referral() = referral;
        CASELINK_RETURN_IF_ERROR(Send(writer, handler,
                                      v1::MESSAGE_KIND_REFERRAL, case_id,
                                      record.view().priority(), payload));
        SaveCase(writer, record);
        result = record.view();
        return absl::OkStatus();
      },
      std::move(done));
}

absl::Status CaseLedger::ApplyStepAsOwner(GroupWriter& writer,
                                          CaseRecord& record,
                                          const v1::ReferralStep& step,
                                          const std::string& actor) {
  const std::string& self = deps_.self->code();
  StepContext context = ContextAt(writer.now());
  std::optional<Lawyer> lawyer;
  if (step.has_assign()) {
    CASELINK_ASSIGN_OR_RETURN(auto load, LawyerLoad(writer));
    CASELINK_ASSIGN_OR_RETURN(
        lawyer, ChooseLawyer(deps_.config->lawyers, record.view().case_type(),
                             step.assign().lawyer_id(), load));
    context.lawyer = &*lawyer;
  }
  if (step.has_escalate()) {
    const v1::CaseView& view = record.view();
    const std::string& other = step.escalate().contender().empty()
                                   ? view.origin()
                                   : step.escalate().contender();
    std::string arbiter = LowestCommonSuperior(self, other);
    // Across provinces there is no common superior: the question goes to
    // the handler's own province, which can name a bureau within it.
    if (arbiter.empty()) arbiter = ProvinceOf(self);
    context.arbiter = arbiter;
  }
  if (step.has_route()) {
    auto to = NormalizeDivisionCode(step.route().to());
    if (!to.ok()) {
      return absl::InvalidArgumentError(
          Cat("step.route.to: ", View(to.status().message())));
    }
  }
  const std::string old_handler = record.view().handler();
  CASELINK_RETURN_IF_ERROR(ApplyReferralStep(record, step, actor, context));

  if (step.has_route()) {
    // The bureau named takes the case as a new referral; the old handler
    // learns that it has passed on.
    v1::WorkflowPayload payload;
    *payload.mutable_referral()->mutable_view() = record.view();
    *payload.mutable_referral()->mutable_referral() = record.referral();
    CASELINK_RETURN_IF_ERROR(
        Send(writer, record.view().handler(), v1::MESSAGE_KIND_REFERRAL,
             record.view().case_id(), record.view().priority(), payload));
    if (old_handler != record.view().handler() && old_handler != self) {
      CaseRecord transferred = record;
      MarkTransferred(transferred, record.view().handler(), writer.now(), self);
      v1::WorkflowPayload notice;
      *notice.mutable_case_view() = transferred.view();
      CASELINK_RETURN_IF_ERROR(
          Send(writer, old_handler, v1::MESSAGE_KIND_CASE_STATUS,
               record.view().case_id(), record.view().priority(), notice));
    }
    if (record.view().origin() != self &&
        record.view().origin() != record.view().handler()) {
      v1::WorkflowPayload view;
      *view.mutable_case_view() = record.view();
      CASELINK_RETURN_IF_ERROR(
          Send(writer, record.view().origin(), v1::MESSAGE_KIND_CASE_STATUS,
               record.view().case_id(), record.view().priority(), view));
    }
  } else if (step.has_escalate()) {
    v1::WorkflowPayload payload;
    v1::JurisdictionQuestion* question =
        payload.mutable_jurisdiction_question();
    *question->mutable_view() = record.view();
    *question->mutable_referral() = record.referral();
    question->set_contender(step.escalate().contender());
    CASELINK_RETURN_IF_ERROR(
        Send(writer, record.view().arbiter(), v1::MESSAGE_KIND_CASE_STATUS,
             record.view().case_id(), record.view().priority(), payload));
    v1::WorkflowPayload view;
    *view.mutable_case_view() = record.view();
    CASELINK_RETURN_IF_ERROR(
        Send(writer, record.view().origin(), v1::MESSAGE_KIND_CASE_STATUS,
             record.view().case_id(), record.view().priority(), view));
  } else {
    CASELINK_RETURN_IF_ERROR(Publish(writer, record, KindAfter(step)));
  }
  SaveCase(writer, record);
  deps_.counters->Add(Cat("referral_", StepName(step)));
  return absl::OkStatus();
}

void CaseLedger::StepReferral(std::string case_id, v1::ReferralStep step,
                              Reply<v1::CaseView> done) {
  Refusal refusal{case_id, "", std::string(StepName(step))};
  Run<v1::CaseView>(
      std::move(refusal),
      [this, case_id = std::move(case_id), step = std::move(step)](
          GroupWriter& writer, v1::CaseView& result) -> absl::Status {
        const std::string& self = deps_.self->code();
        CASELINK_RETURN_IF_ERROR(CheckId("case_id", case_id));
        CASELINK_ASSIGN_OR_RETURN(std::optional<CaseRecord> record,
                                  LoadCase(writer, case_id));
        if (!record.has_value()) {
          return absl::NotFoundError(
              Cat("case_id: no case ", case_id, " here"));
        }
        const v1::CaseView& view = record->view();
        if (IsOriginStep(step) && OwnerOf(view) != self) {
          // The origin's steps count once the owner has applied them.
          CASELINK_RETURN_IF_ERROR(CheckOriginStep(view, step, self));
          if (step.has_supplement()) {
            CASELINK_RETURN_IF_ERROR(deps_.attachments->StageTransfer(
                writer, step.supplement().attachments(),
                "step.supplement.attachments",
                [&](const v1::WorkflowPayload& chunk) {
                  return Send(writer, OwnerOf(view),
                              v1::MESSAGE_KIND_SUPPLEMENT, case_id,
                              view.priority(), chunk);
                }));
          }
          v1::WorkflowPayload payload;
          *payload.mutable_referral_step() = step;
          CASELINK_RETURN_IF_ERROR(Send(writer, OwnerOf(view),
                                        step.has_supplement()
                                            ? v1::MESSAGE_KIND_SUPPLEMENT
                                            : v1::MESSAGE_KIND_WITHDRAWAL,
                                        case_id, view.priority(), payload));
          result = view;
          return absl::OkStatus();
        }
        CASELINK_RETURN_IF_ERROR(ApplyStepAsOwner(writer, *record, step, self));
        result = record->view();
        return absl::OkStatus();
      },
      std::move(done));
}

void CaseLedger::RequestEvidence(std::string case_id, std::string collector,
                                 v1::EvidenceRequest request,
                                 Reply<v1::EvidenceView> done) {
  Refusal refusal{case_id, "", "request_evidence"};
  Run<v1::EvidenceView>(
      std::move(refusal),
      [this, case_id = std::move(case_id), collector = std::move(collector),
       request = std::move(request)](GroupWriter& writer,
                                     v1::EvidenceView& result) -> absl::Status {
        const std::string& self = deps_.self->code();
        CASELINK_RETURN_IF_ERROR(CheckId("case_id", case_id));
        CASELINK_ASSIGN_OR_RETURN(std::optional<CaseRecord> record,
                                  LoadCase(writer, case_id));
        if (!record.has_value()) {
          return absl::NotFoundError(
              Cat("case_id: no case ", case_id, " here"));
        }
        if (IsTerminal(record->view().state())) {
          return absl::FailedPreconditionError(
              Cat("case ", case_id, " is ",
                  ReferralStateName(record->view().state()),
                  "; no evidence can be requested for it"));
        }
        CASELINK_RETURN_IF_ERROR(CheckEvidenceRequest(request, writer.now()));
        EvidenceRecord evidence =
            OpenEvidence(NewId(self, writer.now()), case_id, self, collector,
                         record->view().priority(), request, writer.now());
        v1::WorkflowPayload payload;
        *payload.mutable_evidence()->mutable_view() = evidence.view();
        CASELINK_RETURN_IF_ERROR(
            Send(writer, collector, v1::MESSAGE_KIND_EVIDENCE_REQUEST, case_id,
                 evidence.view().priority(), payload));
        SaveEvidence(writer, evidence);
        result = evidence.view();
        return absl::OkStatus();
      },
      std::move(done));
}

void CaseLedger::StepEvidence(std::string evidence_id, v1::EvidenceStep step,
                              Reply<v1::EvidenceView> done) {
  Refusal refusal{"", evidence_id, std::string(StepName(step))};
  Run<v1::EvidenceView>(
      std::move(refusal),
      [this, evidence_id = std::move(evidence_id), step = std::move(step)](
          GroupWriter& writer, v1::EvidenceView& result) -> absl::Status {
        const std::string& self = deps_.self->code();
        CASELINK_RETURN_IF_ERROR(CheckId("evidence_id", evidence_id));
        CASELINK_ASSIGN_OR_RETURN(std::optional<EvidenceRecord> record,
                                  LoadEvidence(writer, evidence_id));
        if (!record.has_value()) {
          return absl::NotFoundError(
              Cat("evidence_id: no evidence request ", evidence_id, " here"));
        }
        const v1::EvidenceView& view = record->view();
        if (IsRequesterStep(step) && view.collector() != self) {
          CASELINK_RETURN_IF_ERROR(CheckRequesterStep(view, step, self));
          v1::WorkflowPayload payload;
          *payload.mutable_evidence_step() = step;
          payload.mutable_evidence_step()->set_evidence_id(evidence_id);
          CASELINK_RETURN_IF_ERROR(
              Send(writer, view.collector(), v1::MESSAGE_KIND_CASE_STATUS,
                   view.case_id(), view.priority(), payload));
          result = view;
          return absl::OkStatus();
        }
        StepContext context = ContextAt(writer.now());
        CASELINK_RETURN_IF_ERROR(
            ApplyEvidenceStep(*record, step, self, context));
        if (step.has_result()) {
          CASELINK_RETURN_IF_ERROR(deps_.attachments->StageTransfer(
              writer, step.result().attachments(), "step.result.attachments",
              [&](const v1::WorkflowPayload& chunk) {
                return Send(writer, record->view().requester(),
                            v1::MESSAGE_KIND_EVIDENCE_RESULT,
                            record->view().case_id(), record->view().priority(),
                            chunk);
              }));
        }
        v1::WorkflowPayload payload;
        *payload.mutable_evidence_view() = record->view();
        CASELINK_RETURN_IF_ERROR(
            Send(writer, record->view().requester(),
                 step.has_result() ? v1::MESSAGE_KIND_EVIDENCE_RESULT
                                   : v1::MESSAGE_KIND_CASE_STATUS,
                 record->view().case_id(), record->view().priority(), payload));
        SaveEvidence(writer, *record);
        deps_.counters->Add(Cat("evidence_", StepName(step)));
        result = record->view();
        return absl::OkStatus();
      },
      std::move(done));
}

absl::StatusOr<bool> CaseLedger::OnArrival(const v1::Body& body,
                                           GroupWriter& writer) {
  if (!body.workflow() || !body.has_sealed_payload()) return false;
  switch (body.kind()) {
    case v1::MESSAGE_KIND_REFERRAL:
    case v1::MESSAGE_KIND_REFERRAL_DECISION:
    case v1::MESSAGE_KIND_CASE_STATUS:
    case v1::MESSAGE_KIND_EVIDENCE_REQUEST:
    case v1::MESSAGE_KIND_EVIDENCE_RESULT:
    case v1::MESSAGE_KIND_SUPPLEMENT:
    case v1::MESSAGE_KIND_WITHDRAWAL:
      break;
    default:
      return false;
  }
  std::shared_ptr<const NodeIdentity> self = deps_.self->Get();
  if (!self->HasSealingKey()) return false;
  auto clear = self->OpenSealed(
      body.sealed_payload(),
      SealAssociatedData(body.message_id(), body.sender(), body.recipient()));
  if (!clear.ok()) {
    return absl::InvalidArgumentError(
        Cat("sealed payload does not open: ", View(clear.status().message())));
  }
  v1::WorkflowPayload payload;
  if (!payload.ParseFromString(*clear) ||
      payload.content_case() == v1::WorkflowPayload::CONTENT_NOT_SET) {
    return absl::InvalidArgumentError(
        "payload is marked workflow but is not a workflow payload");
  }
  absl::Status status;
  switch (payload.content_case()) {
    case v1::WorkflowPayload::kReferral:
      status = TakeReferral(writer, body, payload.referral());
      break;
    case v1::WorkflowPayload::kCaseView:
      status = TakeCaseView(writer, body, payload.case_view());
      break;
    case v1::WorkflowPayload::kReferralStep:
      status = TakeReferralStep(writer, body, payload.referral_step());
      break;
    case v1::WorkflowPayload::kJurisdictionQuestion:
      status = TakeQuestion(writer, body, payload.jurisdiction_question());
      break;
    case v1::WorkflowPayload::kEvidence:
      status = TakeEvidence(writer, body, payload.evidence());
      break;
    case v1::WorkflowPayload::kEvidenceView:
      status = TakeEvidenceView(writer, body, payload.evidence_view());
      break;
    case v1::WorkflowPayload::kEvidenceStep:
      status = TakeEvidenceStep(writer, body, payload.evidence_step());
      break;
    case v1::WorkflowPayload::kAttachmentChunk:
      status = deps_.attachments->TakeChunk(writer, body,
                                            payload.attachment_chunk());
      break;
    default:
      return false;
  }
  if (!status.ok()) {
    deps_.counters->Add("workflow_refused");
    return status;
  }
  return true;
}

absl::Status CaseLedger::TakeReferral(GroupWriter& writer, const v1::Body& body,
                                      const v1::OpenReferral& open) {
  const std::string& self = deps_.self->code();
  const v1::CaseView& view = open.view();
  CASELINK_RETURN_IF_ERROR(CheckId("case_id", view.case_id()));
  if (view.handler() != self) {
    return absl::InvalidArgumentError(Cat("referral ", view.case_id(),
                                          " names handler ", view.handler(),
                                          ", not this node"));
  }
  const bool routed =
      !view.arbiter().empty() && body.sender() == view.arbiter();
  if (body.sender() != view.origin() && !routed) {
    return absl::PermissionDeniedError(
        Cat("referral ", view.case_id(), " comes from ", body.sender(),
            ", which is neither its origin nor its superior node"));
  }
  CASELINK_RETURN_IF_ERROR(CheckReferral(open.referral()));
  CASELINK_ASSIGN_OR_RETURN(std::optional<CaseRecord> existing,
                            LoadCase(writer, view.case_id()));
  if (existing.has_value()) {
    if (existing->view().version() >= view.version()) return absl::OkStatus();
    // Only a case this node put to a superior may come back to it.
    if (!routed || existing->view().arbiter() != body.sender()) {
      return absl::AlreadyExistsError(
          Cat("case ", view.case_id(), " already exists here"));
    }
  }
  CaseRecord record;
  *record.mutable_view() = view;
  *record.mutable_referral() = open.referral();
  StepContext context = ContextAt(writer.now());
  ReceiveReferral(record,
                  EvaluateEligibility(open.referral(), deps_.config->allowances,
                                      self, writer.now()),
                  context);
  CASELINK_RETURN_IF_ERROR(
      Publish(writer, record, v1::MESSAGE_KIND_CASE_STATUS));
  SaveCase(writer, record);
  deps_.counters->Add("referrals_received");
  deps_.log->Info("referral_received",
                  {{"case", view.case_id()},
                   {"origin", view.origin()},
                   {"priority", v1::Priority_Name(view.priority())}});
  return absl::OkStatus();
}

absl::Status CaseLedger::TakeCaseView(GroupWriter& writer, const v1::Body& body,
                                      const v1::CaseView& view) {
  const std::string& self = deps_.self->code();
  CASELINK_RETURN_IF_ERROR(CheckId("case_id", view.case_id()));
  CASELINK_ASSIGN_OR_RETURN(std::optional<CaseRecord> record,
                            LoadCase(writer, view.case_id()));
  if (!record.has_value()) {
    return absl::NotFoundError(
        Cat("case view for unknown case ", view.case_id()));
  }
  const v1::CaseView& mine = record->view();
  const std::string& sender = body.sender();
  // A view counts from the node that owns the case, or from the new handler
  // that the superior node this case went through named.
  const bool from_owner = sender == OwnerOf(mine) || sender == mine.handler() ||
                          (!mine.arbiter().empty() && sender == mine.arbiter());
  const bool from_new_handler = !mine.arbiter().empty() &&
                                view.arbiter() == mine.arbiter() &&
                                sender == view.handler();
  if (!from_owner && !from_new_handler) {
    return absl::PermissionDeniedError(
        Cat("case ", view.case_id(), ": ", sender,
            " may not change this node's view of it"));
  }
  if (OwnerOf(view) == self && view.state() != v1::REFERRAL_STATE_TRANSFERRED) {
    return absl::FailedPreconditionError(
        Cat("case ", view.case_id(), ": a view that makes this node the ",
            "owner must come as a referral"));
  }
  if (view.version() <= mine.version()) return absl::OkStatus();
  *record->mutable_view() = view;
  SaveCase(writer, *record);
  return absl::OkStatus();
}

absl::Status CaseLedger::TakeReferralStep(GroupWriter& writer,
                                          const v1::Body& body,
                                          const v1::ReferralStep& step) {
  CASELINK_RETURN_IF_ERROR(CheckId("case_id", body.case_id()));
  CASELINK_ASSIGN_OR_RETURN(std::optional<CaseRecord> record,
                            LoadCase(writer, body.case_id()));
  if (!record.has_value()) {
    return absl::NotFoundError(Cat("step for unknown case ", body.case_id()));
  }
  if (!IsOriginStep(step)) {
    return absl::PermissionDeniedError(
        Cat("case ", body.case_id(), ": step ", StepName(step),
            " cannot be asked for by another node"));
  }
  return ApplyStepAsOwner(writer, *record, step, body.sender());
}

absl::Status CaseLedger::TakeQuestion(
    GroupWriter& writer, const v1::Body& body,
    const v1::JurisdictionQuestion& question) {
  const v1::CaseView& view = question.view();
  CASELINK_RETURN_IF_ERROR(CheckId("case_id", view.case_id()));
  if (view.arbiter() != deps_.self->code() || body.sender() != view.handler() ||
      view.state() != v1::REFERRAL_STATE_JURISDICTION_QUESTION) {
    return absl::InvalidArgumentError(
        Cat("jurisdiction question on case ", view.case_id(),
            " is not one this node is asked to decide"));
  }
  CASELINK_ASSIGN_OR_RETURN(std::optional<CaseRecord> existing,
                            LoadCase(writer, view.case_id()));
  if (existing.has_value() && existing->view().version() >= view.version()) {
    return absl::OkStatus();
  }
  CaseRecord record;
  *record.mutable_view() = view;
  *record.mutable_referral() = question.referral();
  SaveCase(writer, record);
  deps_.counters->Add("jurisdiction_questions");
  deps_.log->Info("jurisdiction_question",
                  {{"case", view.case_id()},
                   {"handler", view.handler()},
                   {"contender", question.contender()},
                   {"next", "waiting for an operator's route step"}});
  return absl::OkStatus();
}

absl::Status CaseLedger::TakeEvidence(GroupWriter& writer, const v1::Body& body,
                                      const v1::OpenEvidence& open) {
  const v1::EvidenceView& view = open.view();
  CASELINK_RETURN_IF_ERROR(CheckId("evidence_id", view.evidence_id()));
  if (view.collector() != deps_.self->code() ||
      body.sender() != view.requester()) {
    return absl::InvalidArgumentError(
        Cat("evidence request ", view.evidence_id(),
            " is not from its requester to this node"));
  }
  CASELINK_RETURN_IF_ERROR(CheckEvidenceRequest(view.request(), absl::Time()));
  CASELINK_ASSIGN_OR_RETURN(std::optional<EvidenceRecord> existing,
                            LoadEvidence(writer, view.evidence_id()));
  if (existing.has_value()) return absl::OkStatus();
  EvidenceRecord record;
  *record.mutable_view() = view;
  ReceiveEvidence(record, ContextAt(writer.now()));
  v1::WorkflowPayload payload;
  *payload.mutable_evidence_view() = record.view();
  CASELINK_RETURN_IF_ERROR(Send(writer, view.requester(),
                                v1::MESSAGE_KIND_CASE_STATUS, view.case_id(),
                                view.priority(), payload));
  SaveEvidence(writer, record);
  deps_.counters->Add("evidence_requests_received");
  return absl::OkStatus();
}

absl::Status CaseLedger::TakeEvidenceView(GroupWriter& writer,
                                          const v1::Body& body,
                                          const v1::EvidenceView& view) {
  CASELINK_RETURN_IF_ERROR(CheckId("evidence_id", view.evidence_id()));
  CASELINK_ASSIGN_OR_RETURN(std::optional<EvidenceRecord> record,
                            LoadEvidence(writer, view.evidence_id()));
  if (!record.has_value()) {
    return absl::NotFoundError(
        Cat("view of unknown evidence request ", view.evidence_id()));
  }
  if (body.sender() != record->view().collector()) {
    return absl::PermissionDeniedError(
        Cat("evidence request ", view.evidence_id(), ": ", body.sender(),
            " is not its collector"));
  }
  if (view.version() <= record->view().version()) return absl::OkStatus();
  *record->mutable_view() = view;
  SaveEvidence(writer, *record);
  return absl::OkStatus();
}

absl::Status CaseLedger::TakeEvidenceStep(GroupWriter& writer,
                                          const v1::Body& body,
                                          const v1::EvidenceStep& step) {
  CASELINK_RETURN_IF_ERROR(CheckId("evidence_id", step.evidence_id()));
  CASELINK_ASSIGN_OR_RETURN(std::optional<EvidenceRecord> record,
                            LoadEvidence(writer, step.evidence_id()));
  if (!record.has_value()) {
    return absl::NotFoundError(
        Cat("step for unknown evidence request ", step.evidence_id()));
  }
  if (!IsRequesterStep(step)) {
    return absl::PermissionDeniedError(
        Cat("evidence request ", step.evidence_id(), ": step ", StepName(step),
            " cannot be asked for by another node"));
  }
  StepContext context = ContextAt(writer.now());
  CASELINK_RETURN_IF_ERROR(
      ApplyEvidenceStep(*record, step, body.sender(), context));
  v1::WorkflowPayload payload;
  *payload.mutable_evidence_view() = record->view();
  CASELINK_RETURN_IF_ERROR(
      Send(writer, record->view().requester(), v1::MESSAGE_KIND_CASE_STATUS,
           record->view().case_id(), record->view().priority(), payload));
  SaveEvidence(writer, *record);
  return absl::OkStatus();
}

absl::StatusOr<absl::flat_hash_map<std::string, int>> CaseLedger::LawyerLoad(
    GroupWriter& /*writer*/) const {
  absl::flat_hash_map<std::string, int> load;
  absl::Status parsed = absl::OkStatus();
  CASELINK_RETURN_IF_ERROR(deps_.store->Scan(
      Family::kCases, "c/", [&](std::string_view, std::string_view value) {
        CaseRecord record;
        if (!record.ParseFromArray(value.data(),
                                   static_cast<int>(value.size()))) {
          parsed = absl::DataLossError("a stored case is corrupt");
          return false;
        }
        const v1::CaseView& view = record.view();
        if (view.handler() == deps_.self->code() &&
            view.state() == v1::REFERRAL_STATE_ASSIGNED) {
          ++load[view.lawyer_id()];
        }
        return true;
      }));
  CASELINK_RETURN_IF_ERROR(parsed);
  return load;
}

namespace {

template <typename Record>
absl::StatusOr<Record> ReadRecord(const storage::Store& store,
                                  const std::string& key,
                                  std::string_view what) {
  CASELINK_ASSIGN_OR_RETURN(std::optional<std::string> value,
                            store.Get(Family::kCases, key));
  if (!value.has_value()) return absl::NotFoundError(Cat("no ", what, " here"));
  Record record;
  if (!record.ParseFromString(*value)) {
    return absl::DataLossError(Cat("stored ", what, " is corrupt"));
  }
  return record;
}

// Visits the records under `prefix` in key order, from after `after`.
template <typename Record>
absl::Status ForEachRecord(const storage::Store& store, std::string_view prefix,
                           const std::string& after,
                           const std::function<bool(Record&)>& visit) {
  storage::Cursor cursor = store.NewCursor(Family::kCases, prefix);
  if (!after.empty()) cursor.Seek(Cat(prefix, after, std::string(1, '\0')));
  for (; cursor.Valid(); cursor.Next()) {
    Record record;
    std::string_view value = cursor.value();
    if (!record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return absl::DataLossError(
          Cat("stored record ", cursor.key(), " is corrupt"));
    }
    if (!visit(record)) break;
  }
  return cursor.status();
}

}  // namespace

absl::StatusOr<CaseRecord> CaseLedger::GetCase(
    const std::string& case_id) const {
  CASELINK_RETURN_IF_ERROR(CheckId("case_id", case_id));
  return ReadRecord<CaseRecord>(*deps_.store, CaseKey(case_id),
                                Cat("case ", case_id));
}

absl::StatusOr<EvidenceRecord> CaseLedger::GetEvidence(
    const std::string& evidence_id) const {
  CASELINK_RETURN_IF_ERROR(CheckId("evidence_id", evidence_id));
  return ReadRecord<EvidenceRecord>(*deps_.store, EvidenceKey(evidence_id),
                                    Cat("evidence request ", evidence_id));
}

absl::StatusOr<std::vector<v1::CaseView>> CaseLedger::ListCases(
    const std::string& after, size_t limit) const {
  std::vector<v1::CaseView> views;
  CASELINK_RETURN_IF_ERROR(ForEachRecord<CaseRecord>(
      *deps_.store, "c/", after, [&](CaseRecord& record) {
        views.push_back(std::move(*record.mutable_view()));
        return views.size() < limit;
      }));
  return views;
}

absl::StatusOr<std::vector<v1::EvidenceView>> CaseLedger::ListEvidence(
    const std::string& after, size_t limit) const {
  std::vector<v1::EvidenceView> views;
  CASELINK_RETURN_IF_ERROR(ForEachRecord<EvidenceRecord>(
      *deps_.store, "e/", after, [&](EvidenceRecord& record) {
        views.push_back(std::move(*record.mutable_view()));
        return views.size() < limit;
      }));
  return views;
}

absl::StatusOr<std::vector<std::string>> CaseLedger::EvidenceOfCase(
    const std::string& case_id) const {
  // A scan of every evidence request here: nodes hold thousands, not
  // millions, and no index is kept for this.
  std::vector<std::string> ids;
  CASELINK_RETURN_IF_ERROR(ForEachRecord<EvidenceRecord>(
      *deps_.store, "e/", "", [&](EvidenceRecord& record) {
        if (record.view().case_id() == case_id) {
          ids.push_back(record.view().evidence_id());
        }
        return true;
      }));
  return ids;
}

absl::StatusOr<std::vector<v1::DueItem>> CaseLedger::ListDue(
    absl::Time now, absl::Duration within) const {
  std::vector<v1::DueItem> items;
  const std::string& self = deps_.self->code();
  CASELINK_RETURN_IF_ERROR(ForEachRecord<CaseRecord>(
      *deps_.store, "c/", "", [&](CaseRecord& record) {
        CollectDue(record.view(), now, within, self, &items);
        return true;
      }));
  CASELINK_RETURN_IF_ERROR(ForEachRecord<EvidenceRecord>(
      *deps_.store, "e/", "", [&](EvidenceRecord& record) {
        CollectDue(record.view(), now, within, self, &items);
        return true;
      }));
  return items;
}

void CaseLedger::RecordPassedLimits(absl::Time now) {
  const std::string& self = deps_.self->code();
  std::vector<std::string> cases;
  std::vector<std::string> evidence;
  auto passed = [&](const auto& record) {
    for (const v1::Deadline& deadline : record.view().deadlines()) {
      if (google::protobuf::util::TimeUtil::TimestampToMicroseconds(
              deadline.due()) > absl::ToUnixMicros(now)) {
        continue;
      }
      const auto& recorded = record.overdue_recorded();
      if (std::find(recorded.begin(), recorded.end(), deadline.stage()) ==
          recorded.end()) {
        return true;
      }
    }
    return false;
  };
  absl::Status status = ForEachRecord<CaseRecord>(
      *deps_.store, "c/", "", [&](CaseRecord& record) {
        if (OwnerOf(record.view()) == self && passed(record)) {
          cases.push_back(record.view().case_id());
        }
        return true;
      });
  if (status.ok()) {
    status = ForEachRecord<EvidenceRecord>(
        *deps_.store, "e/", "", [&](EvidenceRecord& record) {
          if (record.view().collector() == self && passed(record)) {
            evidence.push_back(record.view().evidence_id());
          }
          return true;
        });
  }
  if (!status.ok()) {
    deps_.log->Error("time_limit_check_failed",
                     {{"error", status.ToString()},
                      {"next", "trying again at the next check"}});
    return;
  }
  if (cases.empty() && evidence.empty()) return;

  // The change reads each record again in its group, so a step taken in
  // between is not overwritten.
  deps_.committer->Apply(
      [this, cases, evidence](GroupWriter& writer) -> absl::Status {
        const std::string& me = deps_.self->code();
        for (const std::string& id : cases) {
          CASELINK_ASSIGN_OR_RETURN(std::optional<CaseRecord> record,
                                    LoadCase(writer, id));
          if (!record.has_value() || OwnerOf(record->view()) != me ||
              !server::RecordPassedLimits(*record, writer.now(), me)) {
            continue;
          }
          CASELINK_RETURN_IF_ERROR(
              Publish(writer, *record, v1::MESSAGE_KIND_CASE_STATUS));
          SaveCase(writer, *record, v1::AUDIT_EVENT_KIND_TIME_LIMIT_PASSED);
          deps_.counters->Add("time_limits_passed");
          deps_.log->Info("time_limit_passed",
                          {{"case", id},
                           {"stages", Cat(record->overdue_recorded_size())},
                           {"next", "listed by caselink due until met"}});
        }
        for (const std::string& id : evidence) {
          CASELINK_ASSIGN_OR_RETURN(std::optional<EvidenceRecord> record,
                                    LoadEvidence(writer, id));
          if (!record.has_value() || record->view().collector() != me ||
              !server::RecordPassedLimits(*record, writer.now(), me)) {
            continue;
          }
          v1::WorkflowPayload payload;
          *payload.mutable_evidence_view() = record->view();
          CASELINK_RETURN_IF_ERROR(Send(
              writer, record->view().requester(), v1::MESSAGE_KIND_CASE_STATUS,
              record->view().case_id(), record->view().priority(), payload));
          SaveEvidence(writer, *record, v1::AUDIT_EVENT_KIND_TIME_LIMIT_PASSED);
          deps_.counters->Add("time_limits_passed");
          deps_.log->Info(
              "time_limit_passed",
              {{"evidence", id}, {"next", "listed by caselink due until met"}});
        }
        return absl::OkStatus();
      },
      [this](const absl::Status& written) {
        if (!written.ok()) {
          deps_.log->Error("time_limit_record_failed",
                           {{"error", written.ToString()},
                            {"next", "trying again at the next check"}});
        }
      });
}

}  // namespace caselink::server
