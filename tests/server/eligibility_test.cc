#include "server/eligibility.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace caselink::server {
namespace {

// Personal data every test applicant carries, which no reason may repeat.
constexpr const char* kName = "Wang Fang";
constexpr const char* kIdNumber = "35021219900101123X";
constexpr const char* kPhone = "13800138000";

// Deliberately listed broadest first, so that the most specific row has to
// win on its prefix, not on its place in the table.
const std::vector<LivingAllowance>& Table() {
  static const auto* table = new std::vector<LivingAllowance>{
      {"350000000000", 80000},
      {"350212000000", 90050},
      {"350200000000", 85000},
  };
  return *table;
}

v1::Referral ReferralOf(v1::CaseType type, std::vector<int64_t> incomes) {
  v1::Referral referral;
  referral.set_case_type(type);
  for (int64_t income : incomes) {
    v1::Applicant* applicant = referral.add_applicants();
    applicant->set_name(kName);
    applicant->set_id_number(kIdNumber);
    applicant->set_phone(kPhone);
    applicant->set_income_per_head_fen(income);
  }
  return referral;
}

struct Case {
  std::string name;
  v1::Referral referral;
  std::string region12;
  bool eligible;
  bool exempt;
  std::string region;  // The row applied; empty if none.
  std::string reason;
};

std::vector<Case> Cases() {
  const std::string under_tongan =
      "under twice the minimum living allowance of 350212000000 "
      "(2 × 900.50 yuan)";
  return {
      {"unpaid wages are exempt whatever the income",
       ReferralOf(v1::CASE_TYPE_UNPAID_WAGES, {99999999}), "350212000000", true,
       true, "", "no economic-hardship test applies to unpaid wages cases"},
      {"work injury is exempt, even without a configured region",
       ReferralOf(v1::CASE_TYPE_WORK_INJURY, {99999999}), "110000000000", true,
       true, "", "no economic-hardship test applies to work injury cases"},
      {"income under twice the allowance is eligible",
       ReferralOf(v1::CASE_TYPE_LABOUR_CONTRACT, {100000}), "350212000000",
       true, false, "350212000000",
       "income per head of every applicant is " + under_tongan},
      {"one fen under twice the allowance is eligible",
       ReferralOf(v1::CASE_TYPE_OTHER, {180099}), "350212000000", true, false,
       "350212000000", "income per head of every applicant is " + under_tongan},
      {"exactly twice the allowance is not eligible",
       ReferralOf(v1::CASE_TYPE_LABOUR_CONTRACT, {180100}), "350212000000",
       false, false, "350212000000",
       "applicant 1: income per head 1801.00 yuan is not " + under_tongan},
      {"a county row wins over its province for a township below it",
       ReferralOf(v1::CASE_TYPE_SOCIAL_INSURANCE, {180100}), "350212101000",
       false, false, "350212000000",
       "applicant 1: income per head 1801.00 yuan is not " + under_tongan},
      {"a city row wins over its province",
       ReferralOf(v1::CASE_TYPE_OTHER, {169999}), "350203000000", true, false,
       "350200000000",
       "income per head of every applicant is under twice the minimum "
       "living allowance of 350200000000 (2 × 850.00 yuan)"},
      {"the province row covers a city with no row of its own",
       ReferralOf(v1::CASE_TYPE_OTHER, {160000}), "350800000000", false, false,
       "350000000000",
       "applicant 1: income per head 1600.00 yuan is not under twice the "
       "minimum living allowance of 350000000000 (2 × 800.00 yuan)"},
      {"a region no row covers is left to an operator",
       ReferralOf(v1::CASE_TYPE_LABOUR_CONTRACT, {100}), "110000000000", false,
       false, "",
       "no minimum living allowance is configured for region 110000000000, "
       "so an operator must decide"},
      {"one applicant over twice the allowance makes the group not eligible",
       ReferralOf(v1::CASE_TYPE_LABOUR_CONTRACT, {50000, 200000, 70000}),
       "350212000000", false, false, "350212000000",
       "applicant 2: income per head 2000.00 yuan is not " + under_tongan},
      {"a group all under twice the allowance is eligible",
       ReferralOf(v1::CASE_TYPE_LABOUR_CONTRACT, {50000, 0, 180000}),
       "350212000000", true, false, "350212000000",
       "income per head of every applicant is " + under_tongan},
      {"a negative income is not believed",
       ReferralOf(v1::CASE_TYPE_OTHER, {10000, -5}), "350212000000", false,
       false, "350212000000",
       "applicant 2: income per head -0.05 yuan is negative, which cannot "
       "be right"},
      {"a referral with no applicants is not eligible",
       ReferralOf(v1::CASE_TYPE_LABOUR_CONTRACT, {}), "350212000000", false,
       false, "", "the referral names no applicant"},
      {"an exempt case type with no applicants is not eligible either",
       ReferralOf(v1::CASE_TYPE_UNPAID_WAGES, {}), "350212000000", false, false,
       "", "the referral names no applicant"},
  };
}

TEST(EligibilityTest, EachCaseGetsItsVerdictRowAndReason) {
  const absl::Time now =
      absl::FromUnixSeconds(1767225600) + absl::Nanoseconds(250);
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    v1::Eligibility verdict =
        EvaluateEligibility(c.referral, Table(), c.region12, now);
    EXPECT_EQ(verdict.eligible(), c.eligible);
    EXPECT_EQ(verdict.exempt(), c.exempt);
    EXPECT_EQ(verdict.region(), c.region);
    EXPECT_EQ(verdict.reason(), c.reason);
    EXPECT_EQ(verdict.evaluated_at().seconds(), 1767225600);
    EXPECT_EQ(verdict.evaluated_at().nanos(), 250);
  }
}

TEST(EligibilityTest, NoReasonRepeatsAnApplicantsPersonalData) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    const std::string reason =
        EvaluateEligibility(c.referral, Table(), c.region12, absl::UnixEpoch())
            .reason();
    EXPECT_FALSE(reason.empty());
    EXPECT_EQ(reason.find(kName), std::string::npos) << reason;
    EXPECT_EQ(reason.find(kIdNumber), std::string::npos) << reason;
    EXPECT_EQ(reason.find(kPhone), std::string::npos) << reason;
  }
}

TEST(EligibilityTest, AnEmptyTableLeavesEveryTestedTypeToAnOperator) {
  v1::Eligibility verdict =
      EvaluateEligibility(ReferralOf(v1::CASE_TYPE_OTHER, {0}), {},
                          "350212000000", absl::UnixEpoch());
  EXPECT_FALSE(verdict.eligible());
  EXPECT_TRUE(verdict.region().empty());
  EXPECT_NE(verdict.reason().find("an operator must decide"),
            std::string::npos);
}

}  // namespace
}  // namespace caselink::server
