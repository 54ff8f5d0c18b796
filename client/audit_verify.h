// Offline checks of what a node's AuditService answers, so that an auditor
// need not trust the node (see caselink/v1/audit.proto).
//
// An answer verifies when its signing certificate chains to a CA of the
// trust store and names, as urn:caselink:node:<code>, the node whose head
// it is; the head's signature verifies with that certificate's key; and
// every entry holds an AuditEvent of that node whose exact bytes are a leaf
// of the signed tree at the index the entry states. What else is checked
// depends on what the answer claims to be (AuditScope).
//
// Nothing here talks to a node, and every function is pure and
// thread-safe. A verification never stops at the first problem: it lists
// every one it finds, each naming the node and, where there is one, the
// entry.
#ifndef CASELINK_CLIENT_AUDIT_VERIFY_H_
#define CASELINK_CLIENT_AUDIT_VERIFY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "caselink/v1/audit.pb.h"
#include "core/crypto.h"

namespace caselink::client {

// What an answer claims to hold, which decides how complete it must be.
enum class AuditScope {
  // Some events of the log, such as a QueryEvents answer: each entry is
  // checked, and the entries must be in strictly ascending index order,
  // but nothing is known about the events left out.
  kEvents,
  // The full history of one case at the head: every event of the case in
  // the tree of the head, oldest first, and no next page. Then the first
  // entry must have previous_in_case == 0, every later entry's
  // previous_in_case must be 1 + the index of the entry just before it,
  // and all entries must have the same case id (the expected one, if
  // given). An event whose previous_in_case points at an index that is not
  // in the answer shows that event was left out, and the problem names the
  // missing index. The chain cannot show events of the case after the
  // last entry: an answer cut short at its end still verifies.
  kCaseHistory,
  // The whole log: exactly the entries 0 .. tree_size-1 of the head, and
  // no next page. Every missing index is named.
  kExport,
};

struct AuditVerifyOptions {
  AuditScope scope = AuditScope::kEvents;
  // If not empty, the 12-digit code of the node the answer must be from.
  std::string expected_node;
  // For kCaseHistory: if not empty, the case every entry must belong to.
  std::string case_id;
  // When the signing certificate (and its chain) must be valid. Unset:
  // at the head's signed_at, so that an export still verifies after the
  // certificate expires. An expired key could then sign a back-dated
  // head; callers that fetch a live answer pass the current time.
  std::optional<absl::Time> certificate_time;
};

// One thing that did not verify.
struct AuditProblem {
  // The node whose log the answer is (the head's code, or the expected
  // node when the head names none); may be empty if neither is known.
  std::string node;
  // The entry's index, unless the problem is about the answer as a whole
  // (its head, certificate or paging). `last_entry` is set for a run of
  // missing entries, entry .. last_entry.
  std::optional<uint64_t> entry;
  std::optional<uint64_t> last_entry;
  std::string what;

  // "350212000000 entry 17: event does not match its inclusion proof",
  // "350212000000 entries 5-9: missing from the export", or
  // "350212000000: signature does not verify: ..." for the answer as a
  // whole.
  std::string ToString() const;
};

// The outcome of one verification.
struct AuditVerification {
  std::string node;        // The head's code.
  uint64_t tree_size = 0;  // The head's size.
  size_t entries = 0;      // How many entries were checked.
  std::vector<AuditProblem> problems;

  bool ok() const { return problems.empty(); }

  // "verified: 12 entries against head 350212000000 size 40" when ok(),
  // else "350212000000: 2 problems in 12 entries against head size 40".
  std::string Summary() const;
};

// Checks the signing certificate chain and the head's signature: the
// checks of VerifyAuditAnswer that concern the head alone, for a
// GetTreeHeadResponse. `entries` of the result is 0.
AuditVerification VerifySignedHead(const v1::SignedTreeHead& head,
                                   std::string_view signing_certificate_pem,
                                   const TrustStore& trust,
                                   const AuditVerifyOptions& options);

// Checks `answer` as described at the top of this file and in AuditScope.
// The entries are checked even when the head is not, so that the result
// lists every problem; but an answer verifies only if ok().
AuditVerification VerifyAuditAnswer(const v1::AuditAnswer& answer,
                                    const TrustStore& trust,
                                    const AuditVerifyOptions& options);

// Checks each node's part of a case path as that node's full history of
// `case_id` (kCaseHistory, expecting the node the part names). A part with
// an error, which the asked node could not gather, has that error as its
// one problem, since the path is then not known to be whole. One result
// per part, in order; options.scope, expected_node and case_id are set
// per part.
std::vector<AuditVerification> VerifyCasePath(
    const v1::GetCasePathResponse& path, std::string_view case_id,
    const TrustStore& trust, AuditVerifyOptions options);

}  // namespace caselink::client

#endif  // CASELINK_CLIENT_AUDIT_VERIFY_H_
