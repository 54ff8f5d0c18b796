// The time limits a node reports: its own, and on request those of every
// node below it in the division tree that it links to, each of which
// answers for its own subtree in turn.
#ifndef CASELINK_SERVER_DUE_REPORT_H_
#define CASELINK_SERVER_DUE_REPORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "caselink/v1/cases.pb.h"
#include "server/case_ledger.h"
#include "server/link_set.h"

namespace caselink::server {

// Items due at this node that have passed or fall within `within` of `now`,
// overdue first, then by due time. With `subtree`, each linked node below
// this one is asked too (one at a time, a few seconds each); one that does
// not answer is named in `unreachable` and the rest still count. An item
// that two nodes report (the origin and the handler of one case) is listed
// once, as the node that must act reports it.
[[nodiscard]] absl::StatusOr<v1::ListDueResponse> ReportDue(
    const CaseLedger& ledger, const LinkSet& links, const std::string& self,
    absl::Time now, absl::Duration within, bool subtree);

}  // namespace caselink::server

#endif  // CASELINK_SERVER_DUE_REPORT_H_
