// The economic-hardship test of a referral: whether the applicants are poor
// enough for legal aid, as the node that evaluates it judges by its own
// table of minimum living allowances.
#ifndef CASELINK_SERVER_ELIGIBILITY_H_
#define CASELINK_SERVER_ELIGIBILITY_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "caselink/v1/cases.pb.h"
#include "server/workflow_config.h"

namespace caselink::server {

// Evaluates `referral` against `table` for the 12-digit division code
// `region12`, and stamps the result with `now`. Never fails: every outcome,
// including the ones an operator must settle by hand, is a verdict with a
// reason. In order:
//
//   - No applicants: not eligible, since nobody asks for aid.
//   - Unpaid wages and work injury: eligible and exempt; these case types
//     need no hardship test. `region` is left empty.
//   - The row of `table` whose region covers `region12` most specifically
//     (a region covers every code that starts with its significant prefix,
//     so "350000000000" covers "350212000000") gives the allowance, and
//     `region` is set to that row's region. No row: not eligible, and the
//     reason says no allowance is configured, so an operator must decide.
//   - Eligible when the monthly income per head of every applicant is
//     under twice that allowance; exactly twice is not under. A negative
//     income is not believed and makes the referral not eligible.
//
// The reason is one sentence with amounts in yuan to 2 decimals. It names
// applicants only by their 1-based position in the referral, never by name,
// identity card number or phone number, so that it may be logged and sent
// unsealed. When several applicants fail, the reason names the first.
//
// `table` rows must hold normalized 12-digit regions, as LoadNodeConfig
// gives them. Thread-safe; reads only its arguments.
v1::Eligibility EvaluateEligibility(const v1::Referral& referral,
                                    const std::vector<LivingAllowance>& table,
                                    const std::string& region12,
                                    absl::Time now);

}  // namespace caselink::server

#endif  // CASELINK_SERVER_ELIGIBILITY_H_
