// The rules of the case workflows, free of I/O: which step may follow which
// state and by whom, what each step changes, which time limits run, and
// which have passed. The time is always passed in, so that tests choose it.
//
// A referral's owner is its handler, or its arbiter while a jurisdiction
// question is open; an evidence request's owner is its collector. Only an
// owner applies steps; each applied step raises the view's version by one,
// and the other side keeps the highest version it has seen.
//
// Every function that changes a record leaves it unchanged when it returns
// an error: FailedPrecondition names the state that does not allow the step
// (or the side that may not take it), InvalidArgument names the missing or
// bad field.
#ifndef CASELINK_SERVER_CASE_RULES_H_
#define CASELINK_SERVER_CASE_RULES_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "caselink/store/v1/records.pb.h"
#include "caselink/v1/cases.pb.h"
#include "server/workflow_config.h"

namespace caselink::server {

// Time-limit stage names, as in Deadline.stage.
inline constexpr std::string_view kDecisionStage = "decision";
inline constexpr std::string_view kAssignmentStage = "assignment";
inline constexpr std::string_view kMaterialsStage = "materials";
inline constexpr std::string_view kEvidenceStage = "evidence";

// Green channel: unpaid wages, work injury, urgent and group cases.
v1::Priority PriorityOf(const v1::Referral& referral);
const StageLimits& LimitsFor(const WorkflowConfig& config,
                             v1::Priority priority);

// Lower-case names without the enum prefix: "materials_requested".
std::string ReferralStateName(v1::ReferralState state);
std::string EvidenceStateName(v1::EvidenceState state);
std::string OutcomeName(v1::CaseOutcome outcome);

bool IsTerminal(v1::ReferralState state);
bool IsTerminal(v1::EvidenceState state);

// The node that decides the referral's next state.
const std::string& OwnerOf(const v1::CaseView& view);

// The name of the step, for errors and events: "accept", "supplement"...
std::string_view StepName(const v1::ReferralStep& step);
std::string_view StepName(const v1::EvidenceStep& step);

// True for the steps the origin takes (supplement, withdraw); they are
// checked at the origin and applied by the owner.
bool IsOriginStep(const v1::ReferralStep& step);
// True for the step the requester takes (confirm).
bool IsRequesterStep(const v1::EvidenceStep& step);

// The nodes above `code12` in the division tree, nearest first: for
// 350212000000, 350200000000 then 350000000000.
std::vector<std::string> SuperiorsOf(const std::string& code12);

// The lowest node at or above both `a` and `b` (it may be one of them), or
// empty when they lie in different provinces: provinces are peers, with no
// node above them.
std::string LowestCommonSuperior(const std::string& a, const std::string& b);

// Checks what an origin's operator submits: InvalidArgument naming the
// field, e.g. "referral.applicants[2].id_number: must be 18 characters".
[[nodiscard]] absl::Status CheckReferral(const v1::Referral& referral);

// What a step needs from outside the record.
struct StepContext {
  absl::Time now;
  // The node applying the step.
  std::string self;
  const WorkflowConfig* config = nullptr;
  // Assign: the lawyer chosen from the pool.
  const Lawyer* lawyer = nullptr;
  // Escalate: the lowest common superior of the handler and the other
  // party.
  std::string arbiter;
};

// A new record at the origin, before it is sent: state submitted,
// version 1.
store::v1::CaseRecord OpenCase(const std::string& case_id,
                               const std::string& origin,
                               const std::string& handler,
                               const v1::Referral& referral,
                               const v1::Eligibility& eligibility,
                               absl::Time now);

// Takes an arriving referral into the handler's record: state received,
// the decision limit starts, `eligibility` is this node's own evaluation.
void ReceiveReferral(store::v1::CaseRecord& record,
                     const v1::Eligibility& eligibility,
                     const StepContext& context);

// Checks at the origin, against its copy, that it may ask for `step` now.
[[nodiscard]] absl::Status CheckOriginStep(const v1::CaseView& view,
                                           const v1::ReferralStep& step,
                                           const std::string& self);

// Applies `step`, taken by node `actor`, at the owner.
[[nodiscard]] absl::Status ApplyReferralStep(store::v1::CaseRecord& record,
                                             const v1::ReferralStep& step,
                                             const std::string& actor,
                                             const StepContext& context);

// Marks the record of a handler whose case a superior node gave to another
// bureau.
void MarkTransferred(store::v1::CaseRecord& record, const std::string& to,
                     absl::Time now, const std::string& by);

// A new evidence request at the requester: state requested, version 1.
store::v1::EvidenceRecord OpenEvidence(
    const std::string& evidence_id, const std::string& case_id,
    const std::string& requester, const std::string& collector,
    v1::Priority priority, const v1::EvidenceRequest& request, absl::Time now);

// Validates what the requester asks for: InvalidArgument naming the field.
[[nodiscard]] absl::Status CheckEvidenceRequest(
    const v1::EvidenceRequest& request, absl::Time now);

// Takes an arriving request into the collector's record; the evidence limit
// starts, unless the requester named a date.
void ReceiveEvidence(store::v1::EvidenceRecord& record,
                     const StepContext& context);

[[nodiscard]] absl::Status CheckRequesterStep(const v1::EvidenceView& view,
                                              const v1::EvidenceStep& step,
                                              const std::string& self);

[[nodiscard]] absl::Status ApplyEvidenceStep(store::v1::EvidenceRecord& record,
                                             const v1::EvidenceStep& step,
                                             const std::string& actor,
                                             const StepContext& context);

// Records each open time limit that has passed by `now` and was not
// recorded yet, as a time_limit_passed event. True if any was.
bool RecordPassedLimits(store::v1::CaseRecord& record, absl::Time now,
                        const std::string& self);
bool RecordPassedLimits(store::v1::EvidenceRecord& record, absl::Time now,
                        const std::string& self);

// Appends the record's time limits that have passed or fall due within
// `within` of `now`.
void CollectDue(const v1::CaseView& view, absl::Time now, absl::Duration within,
                const std::string& self, std::vector<v1::DueItem>* items);
void CollectDue(const v1::EvidenceView& view, absl::Time now,
                absl::Duration within, const std::string& self,
                std::vector<v1::DueItem>* items);

}  // namespace caselink::server

#endif  // CASELINK_SERVER_CASE_RULES_H_
