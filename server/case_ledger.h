// The cases and evidence requests a node takes part in, kept in the cases
// family and changed only on the committer's thread, in the same synced
// batch as the sealed workflow messages each change sends. The rules of
// each step are in case_rules.h; this class reads and writes the records,
// seals what goes to the other side and takes in what arrives.
//
// Operator calls are asynchronous: `done` runs on the committer's thread
// once the change is durable (or refused), and must be quick.
#ifndef CASELINK_SERVER_CASE_LEDGER_H_
#define CASELINK_SERVER_CASE_LEDGER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "caselink/store/v1/records.pb.h"
#include "caselink/v1/cases.pb.h"
#include "core/log.h"
#include "core/seal.h"
#include "server/attachments.h"
#include "server/case_rules.h"
#include "server/committer.h"
#include "server/counters.h"
#include "server/directory.h"
#include "server/node_identity.h"
#include "server/workflow_config.h"
#include "storage/store.h"

namespace caselink::server {

struct CaseLedgerDeps {
  const CurrentIdentity* self = nullptr;
  const WorkflowConfig* config = nullptr;
  storage::Store* store = nullptr;
  Committer* committer = nullptr;
  Directory* directory = nullptr;
  Logger* log = nullptr;
  Counters* counters = nullptr;
  // Sends the attachments a referral, supplement or evidence result names,
  // and takes in those that arrive.
  AttachmentStore* attachments = nullptr;
};

template <typename T>
using Reply = std::function<void(absl::StatusOr<T>)>;

// Thread-safe.
class CaseLedger {
 public:
  explicit CaseLedger(CaseLedgerDeps deps) : deps_(deps) {}

  // Opens a case here and sends the referral, sealed, to `handler`.
  // AlreadyExists if `case_id` is taken; an empty one is chosen here.
  void CreateReferral(std::string handler, std::string case_id,
                      v1::Referral referral, Reply<v1::CaseView> done);
  // Applies the step here if this node owns the case, or checks it and
  // sends it to the owner if it is the origin's.
  void StepReferral(std::string case_id, v1::ReferralStep step,
                    Reply<v1::CaseView> done);
  void RequestEvidence(std::string case_id, std::string collector,
                       v1::EvidenceRequest request,
                       Reply<v1::EvidenceView> done);
  void StepEvidence(std::string evidence_id, v1::EvidenceStep step,
                    Reply<v1::EvidenceView> done);

  // Reads of what is durable. NotFound for an unknown id.
  [[nodiscard]] absl::StatusOr<store::v1::CaseRecord> GetCase(
      const std::string& case_id) const;
  [[nodiscard]] absl::StatusOr<store::v1::EvidenceRecord> GetEvidence(
      const std::string& evidence_id) const;
  // Pages in id order; `after` is the last id of the previous page.
  [[nodiscard]] absl::StatusOr<std::vector<v1::CaseView>> ListCases(
      const std::string& after, size_t limit) const;
  [[nodiscard]] absl::StatusOr<std::vector<v1::EvidenceView>> ListEvidence(
      const std::string& after, size_t limit) const;
  // Evidence requests of one case that this node holds.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> EvidenceOfCase(
      const std::string& case_id) const;

  // Time limits of every record here that have passed or fall due within
  // `within` of `now`.
  [[nodiscard]] absl::StatusOr<std::vector<v1::DueItem>> ListDue(
      absl::Time now, absl::Duration within) const;

  // Records, in the records this node owns, each time limit that has
  // passed, and tells the other side. Called periodically.
  void RecordPassedLimits(absl::Time now);

  // The committer's arrival hook: takes in workflow messages for this node.
  [[nodiscard]] absl::StatusOr<bool> OnArrival(const v1::Body& body,
                                               GroupWriter& writer);

 private:
  absl::Status ApplyStepAsOwner(GroupWriter& writer,
                                store::v1::CaseRecord& record,
                                const v1::ReferralStep& step,
                                const std::string& actor);
  absl::Status TakeReferral(GroupWriter& writer, const v1::Body& body,
                            const v1::OpenReferral& open);
  absl::Status TakeCaseView(GroupWriter& writer, const v1::Body& body,
                            const v1::CaseView& view);
  absl::Status TakeReferralStep(GroupWriter& writer, const v1::Body& body,
                                const v1::ReferralStep& step);
  absl::Status TakeQuestion(GroupWriter& writer, const v1::Body& body,
                            const v1::JurisdictionQuestion& question);
  absl::Status TakeEvidence(GroupWriter& writer, const v1::Body& body,
                            const v1::OpenEvidence& open);
  absl::Status TakeEvidenceView(GroupWriter& writer, const v1::Body& body,
                                const v1::EvidenceView& view);
  absl::Status TakeEvidenceStep(GroupWriter& writer, const v1::Body& body,
                                const v1::EvidenceStep& step);

  // Seals `payload` to `recipient` and stages it in the group.
  absl::Status Send(GroupWriter& writer, const std::string& recipient,
                    v1::MessageKind kind, const std::string& case_id,
                    v1::Priority priority, const v1::WorkflowPayload& payload);
  // Sends the owner's view of a referral to every other node that follows
  // it.
  absl::Status Publish(GroupWriter& writer, const store::v1::CaseRecord& record,
                       v1::MessageKind kind);

  absl::StatusOr<std::optional<store::v1::CaseRecord>> LoadCase(
      GroupWriter& writer, const std::string& case_id) const;
  absl::StatusOr<std::optional<store::v1::EvidenceRecord>> LoadEvidence(
      GroupWriter& writer, const std::string& evidence_id) const;
  // Writes the record and logs its new state.
  void SaveCase(GroupWriter& writer, const store::v1::CaseRecord& record,
                v1::AuditEventKind kind = v1::AUDIT_EVENT_KIND_STATE_CHANGE);
  void SaveEvidence(
      GroupWriter& writer, const store::v1::EvidenceRecord& record,
      v1::AuditEventKind kind = v1::AUDIT_EVENT_KIND_STATE_CHANGE);
  // Open cases per lawyer among the cases this node handles.
  absl::StatusOr<absl::flat_hash_map<std::string, int>> LawyerLoad(
      GroupWriter& writer) const;

  StepContext ContextAt(absl::Time now) const;
  // What an operator's change was about, for the refusal event it leaves
  // if the rules refuse it.
  struct Refusal {
    std::string case_id;
    std::string evidence_id;
    std::string step;
  };
  // Runs `change` on the committer thread; `done` gets what it left in its
  // result once that is durable, or its error, which is logged as a
  // refusal when the rules refused it.
  template <typename T>
  void Run(Refusal refusal,
           std::function<absl::Status(GroupWriter&, T&)> change, Reply<T> done);
  // Logs an operator's step that the rules refused, as a refusal event.
  void RecordRefusal(const absl::Status& status, const std::string& case_id,
                     const std::string& evidence_id, std::string_view step);

  const CaseLedgerDeps deps_;
  SealingCache sealer_;
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_CASE_LEDGER_H_
