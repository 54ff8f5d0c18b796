// Administrative division codes (GB/T 2260, 12-digit statistical form) that
// name caselink nodes: 2 digits province, 2 city, 2 county, 3 township and
// 3 village.
#ifndef CASELINK_CORE_DIVISION_CODE_H_
#define CASELINK_CORE_DIVISION_CODE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace caselink {

// Returns the 12-digit form of `code`. Accepts the 12-digit form and the
// short forms of 2, 4, 6 or 9 digits, which are padded with zeros on the
// right. Anything else is InvalidArgument, with the offending text quoted.
[[nodiscard]] absl::StatusOr<std::string> NormalizeDivisionCode(
    std::string_view code);

// The level a normalized code names.
enum class DivisionLevel { kProvince, kCity, kCounty, kTownship, kVillage };

// The level of a normalized 12-digit code.
DivisionLevel LevelOf(std::string_view code12);

// The significant prefix of a normalized code: "35" for a province, "3502"
// for a city, and so on.
std::string_view SignificantPrefix(std::string_view code12);

// The province a normalized code belongs to, in 12-digit form.
std::string ProvinceOf(std::string_view code12);

// The ASCII lowercase name of a level, for logs and tables.
std::string_view LevelName(DivisionLevel level);

}  // namespace caselink

#endif  // CASELINK_CORE_DIVISION_CODE_H_
