#include "server/lawyer_pool.h"

#include <algorithm>

#include "absl/status/status.h"
#include "core/strings.h"
#include "server/case_type.h"

namespace caselink::server {
namespace {

bool Takes(const Lawyer& lawyer, v1::CaseType type) {
  return std::find(lawyer.case_types.begin(), lawyer.case_types.end(), type) !=
         lawyer.case_types.end();
}

int OpenCasesOf(const Lawyer& lawyer,
                const absl::flat_hash_map<std::string, int>& open_cases) {
  auto it = open_cases.find(lawyer.id);
  return it == open_cases.end() ? 0 : it->second;
}

absl::StatusOr<Lawyer> RequestedLawyer(const std::vector<Lawyer>& pool,
                                       v1::CaseType type,
                                       std::string_view requested_id) {
  for (const Lawyer& lawyer : pool) {
    if (lawyer.id != requested_id) continue;
    if (!Takes(lawyer, type)) {
      return absl::FailedPreconditionError(Cat("lawyer ", requested_id,
                                               " does not take ",
                                               CaseTypeName(type), " cases"));
    }
    return lawyer;
  }
  return absl::NotFoundError(
      Cat("lawyer ", requested_id, " is not in this node's pool"));
}

}  // namespace

absl::StatusOr<Lawyer> ChooseLawyer(
    const std::vector<Lawyer>& pool, v1::CaseType type,
    std::string_view requested_id,
    const absl::flat_hash_map<std::string, int>& open_cases) {
  if (!requested_id.empty()) return RequestedLawyer(pool, type, requested_id);

  const Lawyer* chosen = nullptr;
  int chosen_load = 0;
  for (const Lawyer& lawyer : pool) {
    if (!Takes(lawyer, type)) continue;
    const int load = OpenCasesOf(lawyer, open_cases);
    // Strictly fewer, so that of equals the first listed stays chosen.
    if (chosen == nullptr || load < chosen_load) {
      chosen = &lawyer;
      chosen_load = load;
    }
  }
  if (chosen == nullptr) {
    return absl::FailedPreconditionError(Cat(
        "no lawyer in this node's pool takes ", CaseTypeName(type), " cases"));
  }
  return *chosen;
}

}  // namespace caselink::server
