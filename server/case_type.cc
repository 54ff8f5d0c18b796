#include "server/case_type.h"

#include <array>
#include <utility>

#include "absl/status/status.h"
#include "core/strings.h"

namespace caselink::server {
namespace {

// One table serves both directions, so a name cannot be added to one and
// forgotten in the other.
constexpr std::array<std::pair<v1::CaseType, std::string_view>, 5> kNames = {{
    {v1::CASE_TYPE_UNPAID_WAGES, "unpaid_wages"},
    {v1::CASE_TYPE_WORK_INJURY, "work_injury"},
    {v1::CASE_TYPE_LABOUR_CONTRACT, "labour_contract"},
    {v1::CASE_TYPE_SOCIAL_INSURANCE, "social_insurance"},
    {v1::CASE_TYPE_OTHER, "other"},
}};

}  // namespace

absl::StatusOr<v1::CaseType> ParseCaseTypeName(std::string_view name) {
  for (const auto& [type, type_name] : kNames) {
    if (name == type_name) return type;
  }
  return absl::InvalidArgumentError(
      Cat("case type \"", name,
          "\" is not unpaid_wages, work_injury, labour_contract, "
          "social_insurance or other"));
}

std::string_view CaseTypeName(v1::CaseType type) {
  for (const auto& [known, type_name] : kNames) {
    if (type == known) return type_name;
  }
  return "unspecified";
}

}  // namespace caselink::server
