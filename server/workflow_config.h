// Settings of the case workflows: time limits, the legal-aid lawyers a node
// can assign, and the minimum living allowances the hardship test uses.
//
//   workflow:
//     time_limits:                 # per stage; d, h, m and s units
//       ordinary:    {decision: 7d, assignment: 3d, materials: 15d,
//                     evidence: 15d}
//       green_channel: {decision: 3d, assignment: 1d, materials: 10d,
//                       evidence: 7d}
//     due_soon: 1d                 # how far ahead "caselink due" looks
//     check_interval: 60s          # how often passed limits are recorded
//     max_attachment_bytes: 67108864
//     lawyers:
//       - id: "L-001"
//         name: "Chen Jing"
//         case_types: [unpaid_wages, work_injury]
//     minimum_living_allowance:    # monthly, per person, in yuan
//       - region: "35"
//         yuan: "800"
//       - region: "350212"
//         yuan: "900.50"
//
// Every setting is optional. A duration is a positive whole number and one
// unit, at most 3650 days; a section of time_limits may name any of the
// four stages, and the others keep their defaults. max_attachment_bytes is
// 1 to 4 GiB. Lawyer ids and allowance regions are unique; a lawyer takes
// at least one case type, named as in case_type.h. Regions are division
// codes, short forms padded; an amount of yuan has at most 2 decimals and is
// more than zero. LoadNodeConfig reports any other value as an error.
#ifndef CASELINK_SERVER_WORKFLOW_CONFIG_H_
#define CASELINK_SERVER_WORKFLOW_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "caselink/v1/cases.pb.h"

namespace caselink::server {

// How long each stage may take. The decision limit runs from receipt and
// stops while the applicant's materials are awaited; the assignment limit
// runs from acceptance; the materials limit from the request for them (or
// from an acceptance with materials to follow); the evidence limit from the
// request, unless the requester named a date.
struct StageLimits {
  absl::Duration decision;
  absl::Duration assignment;
  absl::Duration materials;
  absl::Duration evidence;
};

struct Lawyer {
  std::string id;
  std::string name;
  // The case types this lawyer takes; never empty.
  std::vector<v1::CaseType> case_types;
};

struct LivingAllowance {
  // 12-digit division code; it applies to every code below it.
  std::string region;
  // Monthly, per person, in fen.
  int64_t monthly_fen = 0;
};

struct WorkflowConfig {
  // The Legal Aid Law of 2021: a decision within 7 days of the application
  // and a lawyer within 3 days of the decision.
  StageLimits ordinary{absl::Hours(7 * 24), absl::Hours(3 * 24),
                       absl::Hours(15 * 24), absl::Hours(15 * 24)};
  StageLimits green_channel{absl::Hours(3 * 24), absl::Hours(24),
                            absl::Hours(10 * 24), absl::Hours(7 * 24)};
  absl::Duration due_soon = absl::Hours(24);
  absl::Duration check_interval = absl::Seconds(60);
  uint64_t max_attachment_bytes = 64 << 20;
  std::vector<Lawyer> lawyers;
  std::vector<LivingAllowance> allowances;
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_WORKFLOW_CONFIG_H_
