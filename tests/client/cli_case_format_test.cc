// What the case commands read from an operator and print back, without a
// node: referral files, --within durations, digests, names and views.
#include "client/cli_case_format.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/strings.h"
#include "gtest/gtest.h"

namespace caselink::cli {
namespace {

bool Contains(std::string_view text, std::string_view piece) {
  return text.find(piece) != std::string_view::npos;
}

google::protobuf::Timestamp At(absl::Time time) {
  google::protobuf::Timestamp stamp;
  stamp.set_seconds(absl::ToUnixSeconds(time));
  return stamp;
}

constexpr char kGoodReferral[] = R"json({
  "applicants": [{"name": "Zhang San", "id_number": "350212199001011234",
                  "home_region": "350212000000",
                  "income_per_head_fen": "180000"}],
  "case_type": "CASE_TYPE_UNPAID_WAGES",
  "employer": "Xiamen Example Construction Co.",
  "facts": "Wages for March to May unpaid.",
  "amount_claimed_fen": "2400000",
  "urgent": true
})json";

TEST(ReferralFileTest, ParsesProtobufJson) {
  absl::StatusOr<v1::Referral> referral =
      ParseReferralJson(kGoodReferral, "referral.json");
  ASSERT_TRUE(referral.ok()) << referral.status();
  ASSERT_EQ(referral->applicants_size(), 1);
  EXPECT_EQ(referral->applicants(0).name(), "Zhang San");
  EXPECT_EQ(referral->applicants(0).income_per_head_fen(), 180000);
  EXPECT_EQ(referral->case_type(), v1::CASE_TYPE_UNPAID_WAGES);
  EXPECT_EQ(referral->amount_claimed_fen(), 2400000);
  EXPECT_TRUE(referral->urgent());
}

TEST(ReferralFileTest, AcceptsCamelCaseNames) {
  absl::StatusOr<v1::Referral> referral = ParseReferralJson(
      R"({"applicants": [{"idNumber": "350212199001011234"}],
          "caseType": "CASE_TYPE_WORK_INJURY"})",
      "r.json");
  ASSERT_TRUE(referral.ok()) << referral.status();
  EXPECT_EQ(referral->applicants(0).id_number(), "350212199001011234");
}

// Each bad file must be refused with the file's name and the words that
// say what is wrong.
TEST(ReferralFileTest, ErrorsNameTheFileAndTheProblem) {
  struct Case {
    std::string json;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"", {"is empty"}},
      {"  \n", {"is empty"}},
      {"{\"applicants\": [", {"not valid JSON", "line 1, column 17"}},
      {"{\n  \"urgent\": true,\n}", {"not valid JSON", "line 3"}},
      {"[1, 2]", {"not a Referral"}},
      {R"({"applicant": [{"name": "Li Si"}],
           "case_type": "CASE_TYPE_OTHER"})",
       {"applicant"}},
      {R"({"applicants": [{"name": "Li Si"}], "case_type": "WAGES"})",
       {"case_type", "WAGES"}},
      {R"({"applicants": [{"name": "Li Si",
                            "income_per_head_fen": "lots"}],
           "case_type": "CASE_TYPE_OTHER"})",
       {"income_per_head_fen"}},
      {R"({"applicants": [{"name": "Li Si"}]})",
       {"case_type is missing", "CASE_TYPE_UNPAID_WAGES"}},
      {R"({"case_type": "CASE_TYPE_OTHER"})", {"applicants is empty"}},
  };
  for (const Case& c : cases) {
    absl::StatusOr<v1::Referral> referral =
        ParseReferralJson(c.json, "cases/referral-7.json");
    ASSERT_FALSE(referral.ok()) << c.json;
    EXPECT_EQ(referral.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string_view message = View(referral.status().message());
    EXPECT_EQ(message.substr(0, 23), "cases/referral-7.json: ") << message;
    for (const std::string& piece : c.expected) {
      EXPECT_TRUE(Contains(message, piece))
          << "\"" << piece << "\" missing from: " << message;
    }
  }
}

class ReferralFileOnDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cli_case_format_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::remove(Cat(dir_, "/referral.json").c_str());
    rmdir(dir_.c_str());
  }

  std::string dir_;
};

TEST_F(ReferralFileOnDiskTest, ReadsAFileAndNamesItInErrors) {
  const std::string path = Cat(dir_, "/referral.json");
  absl::StatusOr<v1::Referral> missing = ReadReferralFile(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Contains(View(missing.status().message()), path))
      << missing.status();

  std::FILE* file = std::fopen(path.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fputs(kGoodReferral, file);
  std::fclose(file);
  absl::StatusOr<v1::Referral> referral = ReadReferralFile(path);
  ASSERT_TRUE(referral.ok()) << referral.status();
  EXPECT_EQ(referral->employer(), "Xiamen Example Construction Co.");
}

TEST(WithinTest, ParsesUnitsAndSums) {
  struct Case {
    std::string text;
    absl::Duration expected;
  };
  const std::vector<Case> cases = {
      {"2d", absl::Hours(48)},
      {"36h", absl::Hours(36)},
      {"90m", absl::Minutes(90)},
      {"45s", absl::Seconds(45)},
      {"1d12h", absl::Hours(36)},
      {"1h30m15s", absl::Hours(1) + absl::Minutes(30) + absl::Seconds(15)},
      {"366d", absl::Hours(366 * 24)},
  };
  for (const Case& c : cases) {
    absl::StatusOr<absl::Duration> within = ParseWithin(c.text);
    ASSERT_TRUE(within.ok()) << c.text << ": " << within.status();
    EXPECT_EQ(*within, c.expected) << c.text;
  }
}

TEST(WithinTest, RefusesWhatIsNotAPositiveDuration) {
  for (const std::string text :
       {"", "2", "d", "2w", "-1d", "1.5d", "0d", "0h0m", "367d", "2d ", " 2d",
        "99999999999999999999s", "1d-1h"}) {
    absl::StatusOr<absl::Duration> within = ParseWithin(text);
    ASSERT_FALSE(within.ok()) << "\"" << text << "\" gave " << *within;
    EXPECT_EQ(within.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(
        Contains(View(within.status().message()), Cat("\"", text, "\"")))
        << within.status();
  }
}

TEST(DigestTest, DecodesSixtyFourHexDigits) {
  const std::string hex(64, 'A');
  absl::StatusOr<std::string> digest = ParseDigest(hex);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(*digest, std::string(32, '\xaa'));
  EXPECT_FALSE(ParseDigest(std::string(62, 'a')).ok());
  EXPECT_FALSE(ParseDigest(std::string(63, 'a') + "g").ok());
}

TEST(NamesTest, LowerCaseWithoutPrefix) {
  EXPECT_EQ(ReferralStateName(v1::REFERRAL_STATE_MATERIALS_REQUESTED),
            "materials_requested");
  EXPECT_EQ(ReferralStateName(v1::REFERRAL_STATE_JURISDICTION_QUESTION),
            "jurisdiction_question");
  EXPECT_EQ(EvidenceStateName(v1::EVIDENCE_STATE_RESULT_SENT), "result_sent");
  EXPECT_EQ(CaseTypeName(v1::CASE_TYPE_UNPAID_WAGES), "unpaid_wages");
  EXPECT_EQ(OutcomeName(v1::CASE_OUTCOME_ARBITRATED), "arbitrated");
  EXPECT_EQ(ReferralStateName(static_cast<v1::ReferralState>(99)), "unknown");
}

TEST(NamesTest, OutcomesRoundTrip) {
  EXPECT_EQ(OutcomeNames(),
            (std::vector<std::string>{"mediated", "arbitrated", "judged",
                                      "withdrawn", "other"}));
  for (const std::string& name : OutcomeNames()) {
    absl::StatusOr<v1::CaseOutcome> outcome = ParseOutcome(name);
    ASSERT_TRUE(outcome.ok()) << name;
    EXPECT_EQ(OutcomeName(*outcome), name);
  }
  EXPECT_FALSE(ParseOutcome("unspecified").ok());
  EXPECT_FALSE(ParseOutcome("MEDIATED").ok());
}

TEST(FormatTest, TimesAreRfc3339Utc) {
  EXPECT_EQ(FormatUtcTime(At(absl::FromUnixSeconds(1751274000))),
            "2025-06-30T09:00:00Z");
  EXPECT_EQ(FormatUtcTime(google::protobuf::Timestamp()), "-");
}

TEST(FormatTest, CaseViewShowsStateDeadlinesAndEvents) {
  const absl::Time now = absl::FromUnixSeconds(1751274000);
  v1::GetCaseResponse response;
  v1::CaseView& view = *response.mutable_case_view();
  view.set_case_id("TA-2025-7");
  view.set_version(3);
  view.set_state(v1::REFERRAL_STATE_MATERIALS_REQUESTED);
  view.set_origin("350212000000");
  view.set_handler("350200000000");
  view.set_priority(v1::PRIORITY_GREEN_CHANNEL);
  view.set_case_type(v1::CASE_TYPE_WORK_INJURY);
  view.mutable_eligibility()->set_exempt(true);
  view.mutable_eligibility()->set_reason("work injury needs no test");
  v1::Deadline& past = *view.add_deadlines();
  past.set_stage("decision");
  *past.mutable_due() = At(now - absl::Hours(1));
  v1::Deadline& future = *view.add_deadlines();
  future.set_stage("materials");
  *future.mutable_due() = At(now + absl::Hours(1));
  v1::CaseEvent& event = *view.add_events();
  event.set_name("materials_requested");
  event.set_detail("payslips\x1b[2J");
  response.mutable_referral()->add_applicants()->set_name("Zhang San");

  const std::string text = CaseViewText(response, now);
  for (std::string_view piece :
       {"state        materials_requested", "version      3",
        "priority     green", "case type    work_injury",
        "exempt from the test: work injury needs no test",
        "2025-06-30T08:00:00Z", "payslips\\x1b[2J"}) {
    EXPECT_TRUE(Contains(text, piece)) << piece << " missing from:\n" << text;
  }
  EXPECT_FALSE(Contains(text, "Zhang San")) << text;

  // Only the deadline that has passed is marked.
  size_t decision = text.find("decision");
  size_t materials = text.find("materials  ");
  ASSERT_NE(decision, std::string::npos);
  ASSERT_NE(materials, std::string::npos);
  EXPECT_TRUE(Contains(
      text.substr(decision, text.find('\n', decision) - decision), "overdue"))
      << text;
  EXPECT_FALSE(
      Contains(text.substr(materials, text.find('\n', materials) - materials),
               "overdue"))
      << text;
}

TEST(FormatTest, DueTableMarksOverdueAndSortsByDue) {
  const absl::Time now = absl::FromUnixSeconds(1751274000);
  v1::ListDueResponse due;
  v1::DueItem& later = *due.add_items();
  later.set_id("EV-1");
  later.set_evidence(true);
  later.set_case_id("TA-2025-7");
  later.set_stage("evidence");
  *later.mutable_due() = At(now + absl::Hours(5));
  later.set_state("EVIDENCE_STATE_IN_PROGRESS");
  v1::DueItem& overdue = *due.add_items();
  overdue.set_id("TA-2025-8");
  overdue.set_case_id("TA-2025-8");
  overdue.set_stage("decision");
  *overdue.mutable_due() = At(now - absl::Hours(5));
  overdue.set_overdue(true);
  overdue.set_state("received");

  const std::string text = DueTableText(due);
  const size_t overdue_row = text.find("overdue");
  const size_t soon_row = text.find("soon");
  ASSERT_NE(overdue_row, std::string::npos) << text;
  ASSERT_NE(soon_row, std::string::npos) << text;
  EXPECT_LT(overdue_row, soon_row) << text;
  EXPECT_TRUE(Contains(text, "in_progress")) << text;
  EXPECT_TRUE(Contains(text, " evidence ")) << text;
  // Header and two rows.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3) << text;
}

}  // namespace
}  // namespace caselink::cli
