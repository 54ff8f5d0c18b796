// The names of case types as operators write them: in node configuration
// files, on the caselink command line and in reasons shown to operators.
//
//   unpaid_wages, work_injury, labour_contract, social_insurance, other
#ifndef CASELINK_SERVER_CASE_TYPE_H_
#define CASELINK_SERVER_CASE_TYPE_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "caselink/v1/cases.pb.h"

namespace caselink::server {

// The case type `name` names, exactly as listed above (lowercase, no
// surrounding spaces). Anything else, including "unspecified", is
// InvalidArgument with the text quoted and the accepted names listed.
[[nodiscard]] absl::StatusOr<v1::CaseType> ParseCaseTypeName(
    std::string_view name);

// The name of `type`, which ParseCaseTypeName accepts back.
// CASE_TYPE_UNSPECIFIED and values this build does not know (a newer peer
// may send them) give "unspecified", which ParseCaseTypeName refuses.
std::string_view CaseTypeName(v1::CaseType type);

}  // namespace caselink::server

#endif  // CASELINK_SERVER_CASE_TYPE_H_
