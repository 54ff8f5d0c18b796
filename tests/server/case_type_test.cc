#include "server/case_type.h"

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace caselink::server {
namespace {

TEST(CaseTypeTest, EveryNamedTypeRoundTrips) {
  for (v1::CaseType type :
       {v1::CASE_TYPE_UNPAID_WAGES, v1::CASE_TYPE_WORK_INJURY,
        v1::CASE_TYPE_LABOUR_CONTRACT, v1::CASE_TYPE_SOCIAL_INSURANCE,
        v1::CASE_TYPE_OTHER}) {
    auto parsed = ParseCaseTypeName(CaseTypeName(type));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, type);
  }
  EXPECT_EQ(CaseTypeName(v1::CASE_TYPE_UNPAID_WAGES), "unpaid_wages");
  EXPECT_EQ(CaseTypeName(v1::CASE_TYPE_LABOUR_CONTRACT), "labour_contract");
}

TEST(CaseTypeTest, UnspecifiedAndUnknownValuesAreNamedUnspecified) {
  EXPECT_EQ(CaseTypeName(v1::CASE_TYPE_UNSPECIFIED), "unspecified");
  EXPECT_EQ(CaseTypeName(static_cast<v1::CaseType>(77)), "unspecified");
}

TEST(CaseTypeTest, OtherTextIsRefusedWithTheAcceptedNames) {
  for (const char* text :
       {"unspecified", "Unpaid_Wages", " other", "wages", ""}) {
    auto parsed = ParseCaseTypeName(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("social_insurance"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace caselink::server
