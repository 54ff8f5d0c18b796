#include "core/division_code.h"

#include <algorithm>

#include "absl/status/status.h"
#include "core/strings.h"

namespace caselink {
namespace {

constexpr size_t kFullLength = 12;

bool AllDigits(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

absl::StatusOr<std::string> NormalizeDivisionCode(std::string_view code) {
  const size_t n = code.size();
  if (!AllDigits(code) ||
      (n != 2 && n != 4 && n != 6 && n != 9 && n != kFullLength)) {
    return absl::InvalidArgumentError(Cat(
        "division code \"", code, "\" is not 2, 4, 6, 9 or 12 decimal digits"));
  }
  if (code.substr(0, 2) == "00") {
    return absl::InvalidArgumentError(
        Cat("division code \"", code, "\" names no province"));
  }
  std::string full(code);
  full.resize(kFullLength, '0');
  return full;
}

DivisionLevel LevelOf(std::string_view code12) {
  if (code12.substr(2) == "0000000000") return DivisionLevel::kProvince;
  if (code12.substr(4) == "00000000") return DivisionLevel::kCity;
  if (code12.substr(6) == "000000") return DivisionLevel::kCounty;
  if (code12.substr(9) == "000") return DivisionLevel::kTownship;
  return DivisionLevel::kVillage;
}

std::string_view SignificantPrefix(std::string_view code12) {
  switch (LevelOf(code12)) {
    case DivisionLevel::kProvince:
      return code12.substr(0, 2);
    case DivisionLevel::kCity:
      return code12.substr(0, 4);
    case DivisionLevel::kCounty:
      return code12.substr(0, 6);
    case DivisionLevel::kTownship:
      return code12.substr(0, 9);
    case DivisionLevel::kVillage:
      break;
  }
  return code12;
}

std::string ProvinceOf(std::string_view code12) {
  std::string province(code12.substr(0, 2));
  province.resize(kFullLength, '0');
  return province;
}

std::string_view LevelName(DivisionLevel level) {
  switch (level) {
    case DivisionLevel::kProvince:
      return "province";
    case DivisionLevel::kCity:
      return "city";
    case DivisionLevel::kCounty:
      return "county";
    case DivisionLevel::kTownship:
      return "township";
    case DivisionLevel::kVillage:
      return "village";
  }
  return "unknown";
}

}  // namespace caselink
