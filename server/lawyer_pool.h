// Choosing the legal-aid lawyer a handling bureau assigns to an accepted
// case, from the lawyers its node configuration lists.
#ifndef CASELINK_SERVER_LAWYER_POOL_H_
#define CASELINK_SERVER_LAWYER_POOL_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "caselink/v1/cases.pb.h"
#include "server/workflow_config.h"

namespace caselink::server {

// Picks a lawyer from `pool` for a case of `type`. `open_cases` counts the
// cases each lawyer, by id, holds now; a lawyer missing from it holds none.
//
// With `requested_id` empty, the lawyer who takes `type` and holds the
// fewest open cases is chosen; of equals, the one listed first in `pool`,
// so that the choice is the same on every run. FailedPrecondition if no
// lawyer in `pool` takes `type`.
//
// With `requested_id` set (an operator's choice), that lawyer is returned
// whatever the counts. NotFound, naming the id, if `pool` has no such
// lawyer; FailedPrecondition if the lawyer does not take `type`.
//
// Error messages name lawyers by id only and case types by CaseTypeName.
// Returns a copy, so the result outlives `pool`. Thread-safe.
[[nodiscard]] absl::StatusOr<Lawyer> ChooseLawyer(
    const std::vector<Lawyer>& pool, v1::CaseType type,
    std::string_view requested_id,
    const absl::flat_hash_map<std::string, int>& open_cases);

}  // namespace caselink::server

#endif  // CASELINK_SERVER_LAWYER_POOL_H_
