#include "server/lawyer_pool.h"

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace caselink::server {
namespace {

std::vector<Lawyer> Pool() {
  return {
      {"L-001",
       "Chen Jing",
       {v1::CASE_TYPE_UNPAID_WAGES, v1::CASE_TYPE_WORK_INJURY}},
      {"L-002", "Lin Wei", {v1::CASE_TYPE_UNPAID_WAGES}},
      {"L-003",
       "Huang Min",
       {v1::CASE_TYPE_LABOUR_CONTRACT, v1::CASE_TYPE_UNPAID_WAGES}},
  };
}

struct Case {
  std::string name;
  v1::CaseType type;
  std::string requested_id;
  absl::flat_hash_map<std::string, int> open_cases;
  absl::StatusCode code;
  std::string chosen_id;  // When code is kOk.
  std::string message;    // When code is not kOk.
};

TEST(LawyerPoolTest, ChoosesByLoadOrRequestAndExplainsRefusals) {
  const std::vector<Case> cases = {
      {"the lawyer with fewest open cases is chosen",
       v1::CASE_TYPE_UNPAID_WAGES,
       "",
       {{"L-001", 4}, {"L-002", 1}, {"L-003", 2}},
       absl::StatusCode::kOk,
       "L-002",
       ""},
      {"of equal loads the first in the pool is chosen",
       v1::CASE_TYPE_UNPAID_WAGES,
       "",
       {{"L-001", 3}, {"L-002", 2}, {"L-003", 2}},
       absl::StatusCode::kOk,
       "L-002",
       ""},
      {"a lawyer missing from the counts holds no cases",
       v1::CASE_TYPE_UNPAID_WAGES,
       "",
       {{"L-001", 1}, {"L-002", 1}},
       absl::StatusCode::kOk,
       "L-003",
       ""},
      {"with no counts at all the first in the pool is chosen",
       v1::CASE_TYPE_UNPAID_WAGES,
       "",
       {},
       absl::StatusCode::kOk,
       "L-001",
       ""},
      {"lawyers who do not take the type are passed over, however idle",
       v1::CASE_TYPE_WORK_INJURY,
       "",
       {{"L-001", 9}},
       absl::StatusCode::kOk,
       "L-001",
       ""},
      {"no lawyer taking the type is a failed precondition",
       v1::CASE_TYPE_SOCIAL_INSURANCE,
       "",
       {},
       absl::StatusCode::kFailedPrecondition,
       "",
       "no lawyer in this node's pool takes social_insurance cases"},
      {"a requested lawyer is chosen whatever the load",
       v1::CASE_TYPE_UNPAID_WAGES,
       "L-003",
       {{"L-001", 0}, {"L-003", 20}},
       absl::StatusCode::kOk,
       "L-003",
       ""},
      {"a requested id outside the pool is not found",
       v1::CASE_TYPE_UNPAID_WAGES,
       "L-404",
       {},
       absl::StatusCode::kNotFound,
       "",
       "lawyer L-404 is not in this node's pool"},
      {"a requested lawyer who does not take the type is refused",
       v1::CASE_TYPE_LABOUR_CONTRACT,
       "L-002",
       {},
       absl::StatusCode::kFailedPrecondition,
       "",
       "lawyer L-002 does not take labour_contract cases"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto lawyer = ChooseLawyer(Pool(), c.type, c.requested_id, c.open_cases);
    ASSERT_EQ(lawyer.status().code(), c.code) << lawyer.status();
    if (c.code == absl::StatusCode::kOk) {
      EXPECT_EQ(lawyer->id, c.chosen_id);
    } else {
      EXPECT_EQ(lawyer.status().message(), c.message);
    }
  }
}

TEST(LawyerPoolTest, AnEmptyPoolHasNoLawyerForAnyType) {
  auto lawyer = ChooseLawyer({}, v1::CASE_TYPE_UNPAID_WAGES, "", {});
  EXPECT_EQ(lawyer.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(LawyerPoolTest, TheChosenLawyerIsACompleteCopy) {
  auto lawyer = ChooseLawyer(Pool(), v1::CASE_TYPE_WORK_INJURY, "", {});
  ASSERT_TRUE(lawyer.ok()) << lawyer.status();
  EXPECT_EQ(lawyer->name, "Chen Jing");
  EXPECT_EQ(lawyer->case_types, Pool()[0].case_types);
}

}  // namespace
}  // namespace caselink::server
