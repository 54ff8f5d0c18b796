#include "server/case_rules.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "absl/time/clock.h"
#include "core/division_code.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"

namespace caselink::server {
namespace {

using google::protobuf::util::TimeUtil;
using store::v1::CaseRecord;
using store::v1::EvidenceRecord;

google::protobuf::Timestamp ToTimestamp(absl::Time time) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(time));
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(timestamp));
}

std::string Rfc3339(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

// "REFERRAL_STATE_MATERIALS_REQUESTED" less `prefix`, in lower case.
std::string EnumName(const std::string& full, std::string_view prefix) {
  std::string name = std::string_view(full).starts_with(prefix)
                         ? full.substr(prefix.size())
                         : full;
  for (char& c : name) c = static_cast<char>(std::tolower(c));
  return name;
}

void AddEvent(google::protobuf::RepeatedPtrField<v1::CaseEvent>* events,
              absl::Time at, const std::string& node, std::string name,
              std::string detail) {
  v1::CaseEvent* event = events->Add();
  *event->mutable_at() = ToTimestamp(at);
  event->set_node(node);
  event->set_name(std::move(name));
  event->set_detail(std::move(detail));
}

// Deadlines live in the view; the record remembers which have been
// recorded as passed. Setting a stage again starts it afresh.
template <typename Record>
void SetDeadline(Record& record, std::string_view stage, absl::Time due,
                 const std::string& owner) {
  auto* deadlines = record.mutable_view()->mutable_deadlines();
  v1::Deadline* deadline = nullptr;
  for (v1::Deadline& existing : *deadlines) {
    if (existing.stage() == stage) deadline = &existing;
  }
  if (deadline == nullptr) deadline = deadlines->Add();
  deadline->set_stage(std::string(stage));
  *deadline->mutable_due() = ToTimestamp(due);
  deadline->set_owner(owner);
  auto* recorded = record.mutable_overdue_recorded();
  recorded->erase(std::remove(recorded->begin(), recorded->end(), stage),
                  recorded->end());
}

template <typename Record>
void ClearDeadline(Record& record, std::string_view stage) {
  auto* deadlines = record.mutable_view()->mutable_deadlines();
  for (int i = 0; i < deadlines->size(); ++i) {
    if (deadlines->Get(i).stage() == stage) {
      deadlines->DeleteSubrange(i, 1);
      return;
    }
  }
}

template <typename Record>
std::optional<absl::Time> DueOf(const Record& record, std::string_view stage) {
  for (const v1::Deadline& deadline : record.view().deadlines()) {
    if (deadline.stage() == stage) return FromTimestamp(deadline.due());
  }
  return std::nullopt;
}

absl::Status StateRefuses(std::string_view step, const std::string& state) {
  return absl::FailedPreconditionError(
      Cat("step ", step, " is not allowed in state ", state));
}

absl::Status Missing(std::string_view step, std::string_view field) {
  return absl::InvalidArgumentError(
      Cat("step.", step, ".", field, ": required"));
}

absl::Status CheckReferralFields(const v1::ReferralStep& step) {
  using S = v1::ReferralStep;
  switch (step.step_case()) {
    case S::kReject:
      if (step.reject().reason().empty()) return Missing("reject", "reason");
      break;
    case S::kRequestMaterials:
      if (step.request_materials().what().empty()) {
        return Missing("request_materials", "what");
      }
      break;
    case S::kSupplement:
      if (step.supplement().note().empty() &&
          step.supplement().attachments().empty()) {
        return Missing("supplement", "note");
      }
      break;
    case S::kClose:
      if (step.close().outcome() == v1::CASE_OUTCOME_UNSPECIFIED ||
          !v1::CaseOutcome_IsValid(step.close().outcome())) {
        return Missing("close", "outcome");
      }
      break;
    case S::kWithdraw:
      if (step.withdraw().reason().empty()) {
        return Missing("withdraw", "reason");
      }
      break;
    case S::kEscalate:
      if (step.escalate().reason().empty()) {
        return Missing("escalate", "reason");
      }
      break;
    case S::kRoute:
      if (step.route().to().empty()) return Missing("route", "to");
      break;
    case S::STEP_NOT_SET:
      return absl::InvalidArgumentError("step: none given");
    default:
      break;
  }
  return absl::OkStatus();
}

// Whether `state` allows `step`, by the rules of the referral lifecycle.
bool ReferralStateAllows(const CaseRecord& record,
                         const v1::ReferralStep& step) {
  using S = v1::ReferralStep;
  const v1::ReferralState state = record.view().state();
  switch (step.step_case()) {
    case S::kAccept:
    case S::kEscalate:
      return state == v1::REFERRAL_STATE_RECEIVED;
    case S::kReject:
      return state == v1::REFERRAL_STATE_RECEIVED ||
             state == v1::REFERRAL_STATE_MATERIALS_REQUESTED;
    case S::kRequestMaterials:
      return state == v1::REFERRAL_STATE_RECEIVED;
    case S::kSupplement:
      return state == v1::REFERRAL_STATE_MATERIALS_REQUESTED ||
             ((state == v1::REFERRAL_STATE_ACCEPTED ||
               state == v1::REFERRAL_STATE_ASSIGNED) &&
              record.view().materials_to_follow());
    case S::kAssign:
      return state == v1::REFERRAL_STATE_ACCEPTED;
    case S::kClose:
      return state == v1::REFERRAL_STATE_ASSIGNED;
    case S::kWithdraw:
      return !IsTerminal(state) &&
             state != v1::REFERRAL_STATE_JURISDICTION_QUESTION;
    case S::kRoute:
      return state == v1::REFERRAL_STATE_JURISDICTION_QUESTION;
    default:
      return false;
  }
}

// The node that may take `step`, and what to call it in an error.
std::pair<const std::string*, std::string_view> ReferralActor(
    const v1::CaseView& view, const v1::ReferralStep& step) {
  if (IsOriginStep(step)) return {&view.origin(), "the origin"};
  if (step.has_route()) return {&view.arbiter(), "the superior node"};
  return {&view.handler(), "the handler"};
}

void ClearAllDeadlines(CaseRecord& record) {
  record.mutable_view()->clear_deadlines();
  record.set_paused_unix_micros(0);
  record.set_decision_due_unix_micros(0);
}

void Accept(CaseRecord& record, const v1::ReferralStep::Accept& accept,
            const StepContext& context, const StageLimits& limits) {
  v1::CaseView& view = *record.mutable_view();
  const std::string& self = context.self;
  view.set_state(v1::REFERRAL_STATE_ACCEPTED);
  ClearDeadline(record, kDecisionStage);
  SetDeadline(record, kAssignmentStage, context.now + limits.assignment, self);
  std::string detail;
  if (accept.materials_to_follow()) {
    view.set_materials_to_follow(true);
    SetDeadline(record, kMaterialsStage, context.now + limits.materials,
                view.origin());
    detail = "accepted first, materials to follow";
  }
  if (!accept.override_reason().empty()) {
    detail = Cat(detail, detail.empty() ? "" : "; ",
                 "hardship test overridden: ", accept.override_reason());
  }
  AddEvent(view.mutable_events(), context.now, self, "accepted", detail);
}

void Supplement(CaseRecord& record, const v1::ReferralStep& step,
                const StepContext& context) {
  v1::CaseView& view = *record.mutable_view();
  if (view.state() == v1::REFERRAL_STATE_MATERIALS_REQUESTED) {
    // The decision clock starts again with the time it had left.
    absl::Time paused = absl::FromUnixMicros(record.paused_unix_micros());
    absl::Time due = absl::FromUnixMicros(record.decision_due_unix_micros());
    SetDeadline(record, kDecisionStage, due + (context.now - paused),
                view.handler());
    record.set_paused_unix_micros(0);
    record.set_decision_due_unix_micros(0);
    view.set_state(v1::REFERRAL_STATE_RECEIVED);
    view.clear_reason();
  } else {
    view.set_materials_to_follow(false);
  }
  ClearDeadline(record, kMaterialsStage);
  AddEvent(view.mutable_events(), context.now, view.origin(), "supplemented",
           Cat(step.supplement().attachments_size(), " attachment(s)"));
}

}  // namespace

std::vector<std::string> SuperiorsOf(const std::string& code12) {
  std::vector<std::string> superiors;
  const size_t own = SignificantPrefix(code12).size();
  for (size_t length : {9, 6, 4, 2}) {
    if (length >= own) continue;
    std::string code = code12.substr(0, length);
    code.resize(code12.size(), '0');
    superiors.push_back(std::move(code));
  }
  return superiors;
}

std::string LowestCommonSuperior(const std::string& a, const std::string& b) {
  std::vector<std::string> candidates = SuperiorsOf(a);
  candidates.insert(candidates.begin(), a);
  for (const std::string& candidate : candidates) {
    if (std::string_view(b).starts_with(SignificantPrefix(candidate))) {
      return candidate;
    }
  }
  return "";
}

absl::Status CheckReferral(const v1::Referral& referral) {
  auto bad = [](std::string field, std::string_view why) {
    return absl::InvalidArgumentError(Cat("referral.", field, ": ", why));
  };
  if (referral.applicants().empty()) {
    return bad("applicants", "at least one applicant is required");
  }
  for (int i = 0; i < referral.applicants_size(); ++i) {
    const v1::Applicant& applicant = referral.applicants(i);
    const std::string at = Cat("applicants[", i + 1, "].");
    if (applicant.name().empty()) return bad(Cat(at, "name"), "required");
    const std::string& id = applicant.id_number();
    if (id.size() != 18 ||
        !std::all_of(id.begin(), id.end() - 1,
                     [](char c) { return c >= '0' && c <= '9'; }) ||
        !((id.back() >= '0' && id.back() <= '9') || id.back() == 'X')) {
      return bad(Cat(at, "id_number"),
                 "must be 18 characters: 17 digits and a digit or X");
    }
    const std::string& phone = applicant.phone();
    if (phone.size() < 5 || phone.size() > 20 ||
        !std::all_of(phone.begin(), phone.end(), [](char c) {
          return (c >= '0' && c <= '9') || c == '+' || c == '-';
        })) {
      return bad(Cat(at, "phone"), "must be 5 to 20 digits");
    }
    for (auto [field, code] :
         {std::pair<std::string_view, const std::string*>{
              "home_region", &applicant.home_region()},
          {"workplace_region", &applicant.workplace_region()}}) {
      auto normal = NormalizeDivisionCode(*code);
      if (!normal.ok()) {
        return bad(Cat(at, field), View(normal.status().message()));
      }
    }
    if (applicant.income_per_head_fen() < 0) {
      return bad(Cat(at, "income_per_head_fen"), "must not be negative");
    }
  }
  if (referral.case_type() == v1::CASE_TYPE_UNSPECIFIED ||
      !v1::CaseType_IsValid(referral.case_type())) {
    return bad("case_type", "required");
  }
  if (referral.employer().empty()) return bad("employer", "required");
  if (referral.facts().empty()) return bad("facts", "required");
  if (referral.amount_claimed_fen() < 0) {
    return bad("amount_claimed_fen", "must not be negative");
  }
  for (int i = 0; i < referral.attachments_size(); ++i) {
    if (referral.attachments(i).digest().empty()) {
      return bad(Cat("attachments[", i + 1, "].digest"), "required");
    }
  }
  return absl::OkStatus();
}

v1::Priority PriorityOf(const v1::Referral& referral) {
  if (referral.case_type() == v1::CASE_TYPE_UNPAID_WAGES ||
      referral.case_type() == v1::CASE_TYPE_WORK_INJURY || referral.urgent() ||
      referral.applicants_size() > 1) {
    return v1::PRIORITY_GREEN_CHANNEL;
  }
  return v1::PRIORITY_ORDINARY;
}

const StageLimits& LimitsFor(const WorkflowConfig& config,
                             v1::Priority priority) {
  return priority == v1::PRIORITY_GREEN_CHANNEL ? config.green_channel
                                                : config.ordinary;
}

std::string ReferralStateName(v1::ReferralState state) {
  return EnumName(v1::ReferralState_Name(state), "REFERRAL_STATE_");
}

std::string EvidenceStateName(v1::EvidenceState state) {
  return EnumName(v1::EvidenceState_Name(state), "EVIDENCE_STATE_");
}

std::string OutcomeName(v1::CaseOutcome outcome) {
  return EnumName(v1::CaseOutcome_Name(outcome), "CASE_OUTCOME_");
}

bool IsTerminal(v1::ReferralState state) {
  return state == v1::REFERRAL_STATE_REJECTED ||
         state == v1::REFERRAL_STATE_CLOSED ||
         state == v1::REFERRAL_STATE_WITHDRAWN ||
         state == v1::REFERRAL_STATE_TRANSFERRED;
}

bool IsTerminal(v1::EvidenceState state) {
  return state == v1::EVIDENCE_STATE_DECLINED ||
         state == v1::EVIDENCE_STATE_CONFIRMED;
}

const std::string& OwnerOf(const v1::CaseView& view) {
  return view.state() == v1::REFERRAL_STATE_JURISDICTION_QUESTION
             ? view.arbiter()
             : view.handler();
}

std::string_view StepName(const v1::ReferralStep& step) {
  using S = v1::ReferralStep;
  switch (step.step_case()) {
    case S::kAccept:
      return "accept";
    case S::kReject:
      return "reject";
    case S::kRequestMaterials:
      return "request_materials";
    case S::kSupplement:
      return "supplement";
    case S::kAssign:
      return "assign";
    case S::kClose:
      return "close";
    case S::kWithdraw:
      return "withdraw";
    case S::kEscalate:
      return "escalate";
    case S::kRoute:
      return "route";
    case S::STEP_NOT_SET:
      break;
  }
  return "none";
}

std::string_view StepName(const v1::EvidenceStep& step) {
  using S = v1::EvidenceStep;
  switch (step.step_case()) {
    case S::kAccept:
      return "accept";
    case S::kDecline:
      return "decline";
    case S::kProgress:
      return "progress";
    case S::kResult:
      return "result";
    case S::kConfirm:
      return "confirm";
    case S::STEP_NOT_SET:
      break;
  }
  return "none";
}

bool IsOriginStep(const v1::ReferralStep& step) {
  return step.has_supplement() || step.has_withdraw();
}

bool IsRequesterStep(const v1::EvidenceStep& step) {
  return step.has_confirm();
}

CaseRecord OpenCase(const std::string& case_id, const std::string& origin,
                    const std::string& handler, const v1::Referral& referral,
                    const v1::Eligibility& eligibility, absl::Time now) {
  CaseRecord record;
  v1::CaseView& view = *record.mutable_view();
  view.set_case_id(case_id);
  view.set_version(1);
  view.set_state(v1::REFERRAL_STATE_SUBMITTED);
  view.set_origin(origin);
  view.set_handler(handler);
  view.set_priority(PriorityOf(referral));
  view.set_case_type(referral.case_type());
  view.set_applicant_count(static_cast<uint32_t>(referral.applicants_size()));
  *view.mutable_eligibility() = eligibility;
  *view.mutable_updated_at() = ToTimestamp(now);
  AddEvent(view.mutable_events(), now, origin, "submitted",
           Cat("to ", handler));
  *record.mutable_referral() = referral;
  return record;
}

void ReceiveReferral(CaseRecord& record, const v1::Eligibility& eligibility,
                     const StepContext& context) {
  v1::CaseView& view = *record.mutable_view();
  const StageLimits& limits = LimitsFor(*context.config, view.priority());
  view.set_state(v1::REFERRAL_STATE_RECEIVED);
  view.set_version(view.version() + 1);
  *view.mutable_eligibility() = eligibility;
  view.clear_deadlines();
  record.clear_overdue_recorded();
  SetDeadline(record, kDecisionStage, context.now + limits.decision,
              context.self);
  *view.mutable_updated_at() = ToTimestamp(context.now);
  AddEvent(view.mutable_events(), context.now, context.self, "received",
           Cat("eligibility: ", eligibility.reason()));
}

absl::Status CheckOriginStep(const v1::CaseView& view,
                             const v1::ReferralStep& step,
                             const std::string& self) {
  CASELINK_RETURN_IF_ERROR(CheckReferralFields(step));
  if (!IsOriginStep(step)) {
    return absl::FailedPreconditionError(
        Cat("step ", StepName(step), " is the handler's, and this node is ",
            "the origin of case ", view.case_id()));
  }
  if (view.origin() != self) {
    return absl::FailedPreconditionError(
        Cat("step ", StepName(step), " is the origin's, and this node is not ",
            "the origin of case ", view.case_id()));
  }
  CaseRecord probe;
  *probe.mutable_view() = view;
  if (!ReferralStateAllows(probe, step)) {
    return StateRefuses(StepName(step), ReferralStateName(view.state()));
  }
  return absl::OkStatus();
}

absl::Status ApplyReferralStep(CaseRecord& record, const v1::ReferralStep& step,
                               const std::string& actor,
                               const StepContext& context) {
  CASELINK_RETURN_IF_ERROR(CheckReferralFields(step));
  const v1::CaseView& current = record.view();
  auto [who, role] = ReferralActor(current, step);
  if (actor != *who) {
    return absl::FailedPreconditionError(
        Cat("step ", StepName(step), " is for ", role, " of case ",
            current.case_id(), " (", who->empty() ? "none" : *who, "), not ",
            actor));
  }
  if (!ReferralStateAllows(record, step)) {
    return StateRefuses(StepName(step), ReferralStateName(current.state()));
  }
  const StageLimits& limits = LimitsFor(*context.config, current.priority());
  using S = v1::ReferralStep;
  if (step.has_accept()) {
    if (step.accept().materials_to_follow() &&
        current.priority() != v1::PRIORITY_GREEN_CHANNEL) {
      return absl::FailedPreconditionError(
          "step.accept.materials_to_follow: only green-channel cases may be "
          "accepted before their materials are in");
    }
    if (!current.eligibility().eligible() &&
        step.accept().override_reason().empty()) {
      return absl::FailedPreconditionError(
          Cat("step.accept.override_reason: required, because the case "
              "failed the hardship test: ",
              current.eligibility().reason()));
    }
  }
  if (step.has_assign() && context.lawyer == nullptr) {
    return absl::FailedPreconditionError("step.assign: no lawyer chosen");
  }
  if (step.has_escalate() &&
      (context.arbiter.empty() || context.arbiter == context.self)) {
    return absl::FailedPreconditionError(
        "step.escalate: this node is itself the lowest common superior; "
        "decide the question with the route step");
  }

  v1::CaseView& view = *record.mutable_view();
  const std::string& self = context.self;
  switch (step.step_case()) {
    case S::kAccept:
      Accept(record, step.accept(), context, limits);
      break;
    case S::kReject:
      view.set_state(v1::REFERRAL_STATE_REJECTED);
      view.set_reason(step.reject().reason());
      ClearAllDeadlines(record);
      AddEvent(view.mutable_events(), context.now, self, "rejected",
               step.reject().reason());
      break;
    case S::kRequestMaterials: {
      // The decision clock stops until the materials are in.
      std::optional<absl::Time> due = DueOf(record, kDecisionStage);
      record.set_paused_unix_micros(absl::ToUnixMicros(context.now));
      record.set_decision_due_unix_micros(
          absl::ToUnixMicros(due.value_or(context.now + limits.decision)));
      ClearDeadline(record, kDecisionStage);
      SetDeadline(record, kMaterialsStage, context.now + limits.materials,
                  view.origin());
      view.set_state(v1::REFERRAL_STATE_MATERIALS_REQUESTED);
      view.set_reason(step.request_materials().what());
      AddEvent(view.mutable_events(), context.now, self, "materials_requested",
               step.request_materials().what());
      break;
    }
    case S::kSupplement:
      Supplement(record, step, context);
      break;
    case S::kAssign:
      view.set_state(v1::REFERRAL_STATE_ASSIGNED);
      view.set_lawyer_id(context.lawyer->id);
      view.set_lawyer_name(context.lawyer->name);
      ClearDeadline(record, kAssignmentStage);
      AddEvent(view.mutable_events(), context.now, self, "assigned",
               Cat("lawyer ", context.lawyer->id));
      break;
    case S::kClose:
      view.set_state(v1::REFERRAL_STATE_CLOSED);
      view.set_outcome(step.close().outcome());
      view.set_outcome_note(step.close().note());
      ClearAllDeadlines(record);
      AddEvent(view.mutable_events(), context.now, self, "closed",
               OutcomeName(step.close().outcome()));
      break;
    case S::kWithdraw:
      view.set_state(v1::REFERRAL_STATE_WITHDRAWN);
      view.set_reason(step.withdraw().reason());
      ClearAllDeadlines(record);
      AddEvent(view.mutable_events(), context.now, view.origin(), "withdrawn",
               step.withdraw().reason());
      break;
    case S::kEscalate:
      view.set_state(v1::REFERRAL_STATE_JURISDICTION_QUESTION);
      view.set_arbiter(context.arbiter);
      view.set_reason(step.escalate().reason());
      SetDeadline(record, kDecisionStage,
                  DueOf(record, kDecisionStage).value_or(context.now),
                  context.arbiter);
      AddEvent(view.mutable_events(), context.now, self,
               "jurisdiction_question",
               step.escalate().contender().empty()
                   ? Cat("cannot take the case; asked ", context.arbiter)
                   : Cat("also claimed by ", step.escalate().contender(),
                         "; asked ", context.arbiter));
      break;
    case S::kRoute:
      view.set_handler(step.route().to());
      view.set_state(v1::REFERRAL_STATE_SUBMITTED);
      view.set_reason(step.route().reason());
      view.clear_deadlines();
      record.clear_overdue_recorded();
      AddEvent(view.mutable_events(), context.now, self, "routed",
               Cat("to ", step.route().to()));
      break;
    case S::STEP_NOT_SET:
      break;
  }
  view.set_version(view.version() + 1);
  *view.mutable_updated_at() = ToTimestamp(context.now);
  return absl::OkStatus();
}

void MarkTransferred(CaseRecord& record, const std::string& to, absl::Time now,
                     const std::string& by) {
  v1::CaseView& view = *record.mutable_view();
  view.set_state(v1::REFERRAL_STATE_TRANSFERRED);
  view.set_handler(to);
  ClearAllDeadlines(record);
  view.set_version(view.version() + 1);
  *view.mutable_updated_at() = ToTimestamp(now);
  AddEvent(view.mutable_events(), now, by, "transferred", Cat("to ", to));
}

EvidenceRecord OpenEvidence(const std::string& evidence_id,
                            const std::string& case_id,
                            const std::string& requester,
                            const std::string& collector, v1::Priority priority,
                            const v1::EvidenceRequest& request,
                            absl::Time now) {
  EvidenceRecord record;
  v1::EvidenceView& view = *record.mutable_view();
  view.set_evidence_id(evidence_id);
  view.set_case_id(case_id);
  view.set_version(1);
  view.set_state(v1::EVIDENCE_STATE_REQUESTED);
  view.set_requester(requester);
  view.set_collector(collector);
  view.set_priority(priority);
  *view.mutable_request() = request;
  *view.mutable_updated_at() = ToTimestamp(now);
  AddEvent(view.mutable_events(), now, requester, "requested",
           Cat("of ", collector));
  return record;
}

absl::Status CheckEvidenceRequest(const v1::EvidenceRequest& request,
                                  absl::Time now) {
  if (request.what().empty()) {
    return absl::InvalidArgumentError("request.what: required");
  }
  if (request.where().empty()) {
    return absl::InvalidArgumentError("request.where: required");
  }
  if (request.has_due_by() && FromTimestamp(request.due_by()) <= now) {
    return absl::InvalidArgumentError("request.due_by: already past");
  }
  return absl::OkStatus();
}

void ReceiveEvidence(EvidenceRecord& record, const StepContext& context) {
  v1::EvidenceView& view = *record.mutable_view();
  const StageLimits& limits = LimitsFor(*context.config, view.priority());
  absl::Time due = view.request().has_due_by()
                       ? FromTimestamp(view.request().due_by())
                       : context.now + limits.evidence;
  view.set_version(view.version() + 1);
  view.clear_deadlines();
  SetDeadline(record, kEvidenceStage, due, context.self);
  *view.mutable_updated_at() = ToTimestamp(context.now);
  AddEvent(view.mutable_events(), context.now, context.self, "received", "");
}

absl::Status CheckRequesterStep(const v1::EvidenceView& view,
                                const v1::EvidenceStep& step,
                                const std::string& self) {
  if (!IsRequesterStep(step)) {
    return absl::FailedPreconditionError(
        Cat("step ", StepName(step), " is the collector's, and this node ",
            "requested evidence ", view.evidence_id()));
  }
  if (view.requester() != self) {
    return absl::FailedPreconditionError(
        Cat("step confirm is the requester's, and this node did not request ",
            "evidence ", view.evidence_id()));
  }
  if (view.state() != v1::EVIDENCE_STATE_RESULT_SENT) {
    return StateRefuses("confirm", EvidenceStateName(view.state()));
  }
  return absl::OkStatus();
}

absl::Status ApplyEvidenceStep(EvidenceRecord& record,
                               const v1::EvidenceStep& step,
                               const std::string& actor,
                               const StepContext& context) {
  using S = v1::EvidenceStep;
  const v1::EvidenceView& current = record.view();
  const v1::EvidenceState state = current.state();
  const std::string& expected =
      IsRequesterStep(step) ? current.requester() : current.collector();
  if (step.step_case() == S::STEP_NOT_SET) {
    return absl::InvalidArgumentError("step: none given");
  }
  if (actor != expected) {
    return absl::FailedPreconditionError(
        Cat("step ", StepName(step), " is for ",
            IsRequesterStep(step) ? "the requester" : "the collector",
            " of evidence ", current.evidence_id(), " (", expected, "), not ",
            actor));
  }
  bool allowed = false;
  switch (step.step_case()) {
    case S::kAccept:
    case S::kDecline:
      allowed = state == v1::EVIDENCE_STATE_REQUESTED;
      break;
    case S::kProgress:
    case S::kResult:
      allowed = state == v1::EVIDENCE_STATE_ACCEPTED ||
                state == v1::EVIDENCE_STATE_IN_PROGRESS;
      break;
    case S::kConfirm:
      allowed = state == v1::EVIDENCE_STATE_RESULT_SENT;
      break;
    case S::STEP_NOT_SET:
      break;
  }
  if (!allowed) return StateRefuses(StepName(step), EvidenceStateName(state));
  if (step.has_decline() && step.decline().reason().empty()) {
    return Missing("decline", "reason");
  }
  if (step.has_progress() && step.progress().note().empty()) {
    return Missing("progress", "note");
  }
  if (step.has_result() && step.result().findings().empty()) {
    return Missing("result", "findings");
  }

  v1::EvidenceView& view = *record.mutable_view();
  auto* events = view.mutable_events();
  switch (step.step_case()) {
    case S::kAccept:
      view.set_state(v1::EVIDENCE_STATE_ACCEPTED);
      AddEvent(events, context.now, actor, "accepted", "");
      break;
    case S::kDecline:
      view.set_state(v1::EVIDENCE_STATE_DECLINED);
      view.set_reason(step.decline().reason());
      view.clear_deadlines();
      AddEvent(events, context.now, actor, "declined", step.decline().reason());
      break;
    case S::kProgress:
      view.set_state(v1::EVIDENCE_STATE_IN_PROGRESS);
      AddEvent(events, context.now, actor, "progress", step.progress().note());
      break;
    case S::kResult:
      view.set_state(v1::EVIDENCE_STATE_RESULT_SENT);
      view.set_findings(step.result().findings());
      *view.mutable_attachments() = step.result().attachments();
      view.clear_deadlines();
      AddEvent(events, context.now, actor, "result_sent",
               Cat(step.result().attachments_size(), " attachment(s)"));
      break;
    case S::kConfirm:
      view.set_state(v1::EVIDENCE_STATE_CONFIRMED);
      AddEvent(events, context.now, actor, "confirmed", step.confirm().note());
      break;
    case S::STEP_NOT_SET:
      break;
  }
  view.set_version(view.version() + 1);
  *view.mutable_updated_at() = ToTimestamp(context.now);
  return absl::OkStatus();
}

namespace {

template <typename Record>
bool RecordPassed(Record& record, absl::Time now, const std::string& self) {
  bool changed = false;
  std::vector<v1::Deadline> passed;
  for (const v1::Deadline& deadline : record.view().deadlines()) {
    if (FromTimestamp(deadline.due()) > now) continue;
    const auto& recorded = record.overdue_recorded();
    if (std::find(recorded.begin(), recorded.end(), deadline.stage()) !=
        recorded.end()) {
      continue;
    }
    passed.push_back(deadline);
  }
  for (const v1::Deadline& deadline : passed) {
    record.add_overdue_recorded(deadline.stage());
    AddEvent(record.mutable_view()->mutable_events(), now, self,
             "time_limit_passed",
             Cat(deadline.stage(), " was due ",
                 Rfc3339(FromTimestamp(deadline.due())), ", with ",
                 deadline.owner()));
    changed = true;
  }
  if (changed) {
    record.mutable_view()->set_version(record.view().version() + 1);
    *record.mutable_view()->mutable_updated_at() = ToTimestamp(now);
  }
  return changed;
}

void AddDue(const v1::Deadline& deadline, absl::Time now, absl::Duration within,
            const std::string& self, v1::DueItem prototype,
            std::vector<v1::DueItem>* items) {
  absl::Time due = FromTimestamp(deadline.due());
  if (due > now + within) return;
  prototype.set_stage(deadline.stage());
  *prototype.mutable_due() = deadline.due();
  prototype.set_overdue(due <= now);
  prototype.set_owner(deadline.owner());
  prototype.set_reported_by(self);
  items->push_back(std::move(prototype));
}

}  // namespace

bool RecordPassedLimits(CaseRecord& record, absl::Time now,
                        const std::string& self) {
  return RecordPassed(record, now, self);
}

bool RecordPassedLimits(EvidenceRecord& record, absl::Time now,
                        const std::string& self) {
  return RecordPassed(record, now, self);
}

void CollectDue(const v1::CaseView& view, absl::Time now, absl::Duration within,
                const std::string& self, std::vector<v1::DueItem>* items) {
  v1::DueItem item;
  item.set_id(view.case_id());
  item.set_case_id(view.case_id());
  item.set_priority(view.priority());
  item.set_state(ReferralStateName(view.state()));
  for (const v1::Deadline& deadline : view.deadlines()) {
    AddDue(deadline, now, within, self, item, items);
  }
}

void CollectDue(const v1::EvidenceView& view, absl::Time now,
                absl::Duration within, const std::string& self,
                std::vector<v1::DueItem>* items) {
  v1::DueItem item;
  item.set_id(view.evidence_id());
  item.set_evidence(true);
  item.set_case_id(view.case_id());
  item.set_priority(view.priority());
  item.set_state(EvidenceStateName(view.state()));
  for (const v1::Deadline& deadline : view.deadlines()) {
    AddDue(deadline, now, within, self, item, items);
  }
}

}  // namespace caselink::server
