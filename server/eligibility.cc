#include "server/eligibility.h"

#include <cstdint>
#include <ctime>
#include <string_view>

#include "core/division_code.h"
#include "core/strings.h"
#include "server/case_type.h"

namespace caselink::server {
namespace {

// "900.50" for 90050 fen; the sign, if any, goes in front.
std::string FormatYuan(int64_t fen) {
  // The magnitude is taken unsigned so that INT64_MIN, which a peer could
  // send, has one too.
  const bool negative = fen < 0;
  const uint64_t magnitude = negative ? uint64_t{0} - static_cast<uint64_t>(fen)
                                      : static_cast<uint64_t>(fen);
  const uint64_t cents = magnitude % 100;
  return Cat(negative ? "-" : "", magnitude / 100, ".", cents < 10 ? "0" : "",
             cents);
}

// The row whose region covers `region12` with the longest significant
// prefix, or null if none covers it.
const LivingAllowance* MostSpecificRow(
    const std::vector<LivingAllowance>& table, std::string_view region12) {
  const LivingAllowance* best = nullptr;
  size_t best_length = 0;
  for (const LivingAllowance& row : table) {
    std::string_view prefix = SignificantPrefix(row.region);
    if (region12.substr(0, prefix.size()) != prefix) continue;
    if (best == nullptr || prefix.size() > best_length) {
      best = &row;
      best_length = prefix.size();
    }
  }
  return best;
}

bool IsExempt(v1::CaseType type) {
  return type == v1::CASE_TYPE_UNPAID_WAGES ||
         type == v1::CASE_TYPE_WORK_INJURY;
}

// "unpaid wages" for unpaid_wages: a reason is read out, not parsed.
std::string SpokenCaseType(v1::CaseType type) {
  std::string name(CaseTypeName(type));
  for (char& c : name) {
    if (c == '_') c = ' ';
  }
  return name;
}

// Fills `verdict` from the allowance `row` applies to the applicants.
void ApplyAllowance(const v1::Referral& referral, const LivingAllowance& row,
                    v1::Eligibility* verdict) {
  const std::string limit =
      Cat("twice the minimum living allowance of ", row.region, " (2 × ",
          FormatYuan(row.monthly_fen), " yuan)");
  verdict->set_region(row.region);
  for (int i = 0; i < referral.applicants_size(); ++i) {
    const int64_t income = referral.applicants(i).income_per_head_fen();
    const std::string who = Cat("applicant ", i + 1, ": income per head ");
    if (income < 0) {
      verdict->set_reason(Cat(who, FormatYuan(income),
                              " yuan is negative, which cannot be right"));
      return;
    }
    // income < 2 * allowance, written so that neither side can overflow.
    if (income - row.monthly_fen >= row.monthly_fen) {
      verdict->set_reason(
          Cat(who, FormatYuan(income), " yuan is not under ", limit));
      return;
    }
  }
  verdict->set_eligible(true);
  verdict->set_reason(
      Cat("income per head of every applicant is under ", limit));
}

}  // namespace

v1::Eligibility EvaluateEligibility(const v1::Referral& referral,
                                    const std::vector<LivingAllowance>& table,
                                    const std::string& region12,
                                    absl::Time now) {
  v1::Eligibility verdict;
  const timespec at = absl::ToTimespec(now);
  verdict.mutable_evaluated_at()->set_seconds(at.tv_sec);
  verdict.mutable_evaluated_at()->set_nanos(static_cast<int32_t>(at.tv_nsec));

  if (referral.applicants().empty()) {
    verdict.set_reason("the referral names no applicant");
    return verdict;
  }
  if (IsExempt(referral.case_type())) {
    verdict.set_eligible(true);
    verdict.set_exempt(true);
    verdict.set_reason(Cat("no economic-hardship test applies to ",
                           SpokenCaseType(referral.case_type()), " cases"));
    return verdict;
  }

  const LivingAllowance* row = MostSpecificRow(table, region12);
  if (row == nullptr) {
    verdict.set_reason(
        Cat("no minimum living allowance is configured for "
            "region ",
            region12, ", so an operator must decide"));
    return verdict;
  }
  ApplyAllowance(referral, *row, &verdict);
  return verdict;
}

}  // namespace caselink::server
