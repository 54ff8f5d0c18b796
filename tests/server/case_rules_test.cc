// The rules of the case workflows, with the clock in the test's hands:
// which step may follow which state, what each step leaves behind, and
// when time limits run, stop and pass.
#include "server/case_rules.h"

#include <set>

#include "core/strings.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace caselink::server {
namespace {

using google::protobuf::util::TimeUtil;
using store::v1::CaseRecord;
using store::v1::EvidenceRecord;

constexpr char kOrigin[] = "350212000000";
constexpr char kHandler[] = "510104000000";
constexpr char kCollector[] = "350203000000";

const absl::Time kStart = absl::FromUnixSeconds(1800000000);
const absl::Duration kDay = absl::Hours(24);

v1::Referral MakeReferral(v1::CaseType type, int applicants, bool urgent) {
  v1::Referral referral;
  for (int i = 0; i < applicants; ++i) referral.add_applicants();
  referral.set_case_type(type);
  referral.set_urgent(urgent);
  return referral;
}

v1::Eligibility Eligible(bool eligible) {
  v1::Eligibility eligibility;
  eligibility.set_eligible(eligible);
  eligibility.set_reason(eligible ? "under the line" : "over the line");
  return eligibility;
}

class CaseRulesTest : public ::testing::Test {
 protected:
  StepContext At(absl::Time now, const std::string& self = kHandler) {
    StepContext context;
    context.now = now;
    context.self = self;
    context.config = &config_;
    return context;
  }

  // A case as the handler holds it once received at `at`.
  CaseRecord Received(v1::CaseType type, int applicants, bool urgent,
                      absl::Time at, bool eligible = true) {
    CaseRecord record = OpenCase("C-1", kOrigin, kHandler,
                                 MakeReferral(type, applicants, urgent),
                                 Eligible(eligible), at);
    ReceiveReferral(record, Eligible(eligible), At(at));
    return record;
  }

  absl::Status Apply(CaseRecord& record, const v1::ReferralStep& step,
                     absl::Time at, const std::string& actor = kHandler) {
    StepContext context = At(at);
    context.lawyer = &lawyer_;
    context.arbiter = "510000000000";
    return ApplyReferralStep(record, step, actor, context);
  }

  static std::optional<absl::Time> Due(const v1::CaseView& view,
                                       std::string_view stage) {
    for (const v1::Deadline& deadline : view.deadlines()) {
      if (deadline.stage() == stage) {
        return absl::FromUnixMicros(
            TimeUtil::TimestampToMicroseconds(deadline.due()));
      }
    }
    return std::nullopt;
  }

  static std::set<std::string> Overdue(const v1::CaseView& view,
                                       absl::Time now) {
    std::vector<v1::DueItem> items;
    CollectDue(view, now, absl::ZeroDuration(), kHandler, &items);
    std::set<std::string> stages;
    for (const v1::DueItem& item : items) {
      if (item.overdue()) stages.insert(item.stage());
    }
    return stages;
  }

  WorkflowConfig config_;
  Lawyer lawyer_{"L-1", "Chen Jing", {v1::CASE_TYPE_UNPAID_WAGES}};
};

v1::ReferralStep StepNamed(std::string_view name) {
  v1::ReferralStep step;
  if (name == "accept") step.mutable_accept();
  if (name == "reject") step.mutable_reject()->set_reason("out of scope");
  if (name == "request_materials") {
    step.mutable_request_materials()->set_what("contract");
  }
  if (name == "supplement") step.mutable_supplement()->set_note("attached");
  if (name == "assign") step.mutable_assign();
  if (name == "close") {
    step.mutable_close()->set_outcome(v1::CASE_OUTCOME_MEDIATED);
  }
  if (name == "withdraw") step.mutable_withdraw()->set_reason("settled");
  if (name == "escalate") step.mutable_escalate()->set_reason("not ours");
  if (name == "route") step.mutable_route()->set_to("510105000000");
  return step;
}

TEST(PriorityTest, GreenChannelForWagesInjuryUrgentAndGroups) {
  struct Row {
    v1::CaseType type;
    int applicants;
    bool urgent;
    v1::Priority expected;
  };
  const Row rows[] = {
      {v1::CASE_TYPE_UNPAID_WAGES, 1, false, v1::PRIORITY_GREEN_CHANNEL},
      {v1::CASE_TYPE_WORK_INJURY, 1, false, v1::PRIORITY_GREEN_CHANNEL},
      {v1::CASE_TYPE_LABOUR_CONTRACT, 1, true, v1::PRIORITY_GREEN_CHANNEL},
      {v1::CASE_TYPE_SOCIAL_INSURANCE, 4, false, v1::PRIORITY_GREEN_CHANNEL},
      {v1::CASE_TYPE_LABOUR_CONTRACT, 1, false, v1::PRIORITY_ORDINARY},
      {v1::CASE_TYPE_OTHER, 1, false, v1::PRIORITY_ORDINARY},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(PriorityOf(MakeReferral(row.type, row.applicants, row.urgent)),
              row.expected)
        << v1::CaseType_Name(row.type) << " x" << row.applicants;
  }
}

TEST(DivisionTreeTest, LowestCommonSuperior) {
  struct Row {
    const char* a;
    const char* b;
    const char* expected;
  };
  const Row rows[] = {
      {"350212000000", "350203000000", "350200000000"},
      {"350212000000", "350102000000", "350000000000"},
      {"350212101000", "350212102000", "350212000000"},
      {"350200000000", "350212000000", "350200000000"},
      {"350212000000", "510104000000", ""},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(LowestCommonSuperior(row.a, row.b), row.expected)
        << row.a << " " << row.b;
  }
  EXPECT_EQ(SuperiorsOf("350212101000"),
            (std::vector<std::string>{"350212000000", "350200000000",
                                      "350000000000"}));
  EXPECT_TRUE(SuperiorsOf("350000000000").empty());
}

TEST_F(CaseRulesTest, EachStateAllowsOnlyItsSteps) {
  // Which steps each state allows, for the side that may take them.
  const std::vector<std::string> steps = {
      "accept", "reject", "request_materials", "supplement",
      "assign", "close",  "withdraw",          "escalate"};
  struct Row {
    std::vector<std::string> path;  // Steps that lead to the state.
    std::set<std::string> allowed;
  };
  const Row rows[] = {
      {{}, {"accept", "reject", "request_materials", "withdraw", "escalate"}},
      {{"request_materials"}, {"reject", "supplement", "withdraw"}},
      {{"accept"}, {"assign", "withdraw"}},
      {{"accept", "assign"}, {"close", "withdraw"}},
      {{"accept", "assign", "close"}, {}},
      {{"reject"}, {}},
      {{"withdraw"}, {}},
      {{"escalate"}, {}},
  };
  for (const Row& row : rows) {
    for (const std::string& name : steps) {
      CaseRecord record =
          Received(v1::CASE_TYPE_UNPAID_WAGES, 1, false, kStart);
      for (const std::string& previous : row.path) {
        ASSERT_TRUE(Apply(record, StepNamed(previous), kStart,
                          previous == "withdraw" ? kOrigin : kHandler)
                        .ok())
            << previous;
      }
      const std::string state = ReferralStateName(record.view().state());
      const uint64_t version = record.view().version();
      v1::ReferralStep step = StepNamed(name);
      const std::string actor = IsOriginStep(step) ? kOrigin : kHandler;
      absl::Status status = Apply(record, step, kStart, actor);
      if (row.allowed.count(name)) {
        EXPECT_TRUE(status.ok()) << name << " in " << state << ": " << status;
        EXPECT_EQ(record.view().version(), version + 1);
      } else {
        EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition)
            << name << " in " << state;
        EXPECT_NE(status.message().find(Cat("state ", state)),
                  std::string::npos)
            << status;
        EXPECT_EQ(record.view().version(), version) << "record changed";
      }
    }
  }
}

TEST_F(CaseRulesTest, StepsBelongToTheirSide) {
  CaseRecord record = Received(v1::CASE_TYPE_UNPAID_WAGES, 1, false, kStart);
  absl::Status status = Apply(record, StepNamed("accept"), kStart, kOrigin);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("the handler"), std::string::npos) << status;
  status = Apply(record, StepNamed("withdraw"), kStart, kHandler);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("the origin"), std::string::npos) << status;
  EXPECT_EQ(record.view().state(), v1::REFERRAL_STATE_RECEIVED);
}

TEST_F(CaseRulesTest, MissingFieldsAreNamed) {
  CaseRecord record = Received(v1::CASE_TYPE_UNPAID_WAGES, 1, false, kStart);
  v1::ReferralStep step;
  step.mutable_reject();
  absl::Status status = Apply(record, step, kStart);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "step.reject.reason: required");
  step.mutable_request_materials();
  EXPECT_EQ(Apply(record, step, kStart).message(),
            "step.request_materials.what: required");
  step.Clear();
  EXPECT_EQ(Apply(record, step, kStart).message(), "step: none given");
}

TEST_F(CaseRulesTest, HardshipFailureNeedsAnOverrideToAccept) {
  CaseRecord record =
      Received(v1::CASE_TYPE_LABOUR_CONTRACT, 1, false, kStart, false);
  absl::Status status = Apply(record, StepNamed("accept"), kStart);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("override_reason"), std::string::npos);
  v1::ReferralStep accept;
  accept.mutable_accept()->set_override_reason("household hit by illness");
  EXPECT_TRUE(Apply(record, accept, kStart).ok());
}

TEST_F(CaseRulesTest, OnlyGreenChannelCasesMayHaveMaterialsFollow) {
  v1::ReferralStep accept;
  accept.mutable_accept()->set_materials_to_follow(true);
  CaseRecord ordinary =
      Received(v1::CASE_TYPE_LABOUR_CONTRACT, 1, false, kStart);
  EXPECT_EQ(Apply(ordinary, accept, kStart).code(),
            absl::StatusCode::kFailedPrecondition);

  CaseRecord urgent = Received(v1::CASE_TYPE_LABOUR_CONTRACT, 1, true, kStart);
  ASSERT_TRUE(Apply(urgent, accept, kStart).ok());
  EXPECT_TRUE(urgent.view().materials_to_follow());
  EXPECT_EQ(Due(urgent.view(), kMaterialsStage),
            kStart + config_.green_channel.materials);
  EXPECT_EQ(Due(urgent.view(), kAssignmentStage),
            kStart + config_.green_channel.assignment);

  // The supplement that follows settles the materials limit.
  ASSERT_TRUE(
      Apply(urgent, StepNamed("supplement"), kStart + kDay, kOrigin).ok());
  EXPECT_FALSE(urgent.view().materials_to_follow());
  EXPECT_FALSE(Due(urgent.view(), kMaterialsStage).has_value());
  EXPECT_EQ(urgent.view().state(), v1::REFERRAL_STATE_ACCEPTED);
}

TEST_F(CaseRulesTest, DecisionLimitFollowsTheLawByPriority) {
  CaseRecord ordinary =
      Received(v1::CASE_TYPE_LABOUR_CONTRACT, 1, false, kStart);
  CaseRecord green = Received(v1::CASE_TYPE_WORK_INJURY, 1, false, kStart);
  EXPECT_EQ(Due(ordinary.view(), kDecisionStage), kStart + 7 * kDay);
  EXPECT_EQ(Due(green.view(), kDecisionStage), kStart + 3 * kDay);

  // A lawyer within 3 days of the decision.
  ASSERT_TRUE(Apply(ordinary, StepNamed("accept"), kStart + 2 * kDay).ok());
  EXPECT_FALSE(Due(ordinary.view(), kDecisionStage).has_value());
  EXPECT_EQ(Due(ordinary.view(), kAssignmentStage), kStart + 5 * kDay);
}

TEST_F(CaseRulesTest, WaitingForMaterialsDoesNotCountAgainstTheDecision) {
  CaseRecord record = Received(v1::CASE_TYPE_LABOUR_CONTRACT, 1, false, kStart);
  ASSERT_TRUE(
      Apply(record, StepNamed("request_materials"), kStart + 2 * kDay).ok());
  EXPECT_FALSE(Due(record.view(), kDecisionStage).has_value());
  EXPECT_EQ(Due(record.view(), kMaterialsStage),
            kStart + 2 * kDay + config_.ordinary.materials);
  // Ten days on, the decision is not overdue: its clock is stopped.
  EXPECT_FALSE(Overdue(record.view(), kStart + 10 * kDay).count("decision"));

  // Materials in after three days: the decision limit moves by three.
  ASSERT_TRUE(
      Apply(record, StepNamed("supplement"), kStart + 5 * kDay, kOrigin).ok());
  EXPECT_EQ(record.view().state(), v1::REFERRAL_STATE_RECEIVED);
  EXPECT_EQ(Due(record.view(), kDecisionStage), kStart + 10 * kDay);
  EXPECT_FALSE(Due(record.view(), kMaterialsStage).has_value());
}

TEST_F(CaseRulesTest, OverdueAppearsOnTimeAndGreenChannelSooner) {
  CaseRecord ordinary =
      Received(v1::CASE_TYPE_LABOUR_CONTRACT, 1, false, kStart);
  CaseRecord green = Received(v1::CASE_TYPE_UNPAID_WAGES, 5, false, kStart);
  const absl::Time green_due = kStart + 3 * kDay;
  const absl::Time ordinary_due = kStart + 7 * kDay;
  const absl::Duration second = absl::Seconds(1);

  EXPECT_TRUE(Overdue(green.view(), green_due - second).empty());
  EXPECT_EQ(Overdue(green.view(), green_due),
            std::set<std::string>{"decision"});
  EXPECT_TRUE(Overdue(ordinary.view(), green_due).empty());
  EXPECT_TRUE(Overdue(ordinary.view(), ordinary_due - second).empty());
  EXPECT_EQ(Overdue(ordinary.view(), ordinary_due),
            std::set<std::string>{"decision"});

  // Due soon: within the window, not yet overdue.
  std::vector<v1::DueItem> soon;
  CollectDue(ordinary.view(), ordinary_due - kDay, kDay, kHandler, &soon);
  ASSERT_EQ(soon.size(), 1u);
  EXPECT_FALSE(soon[0].overdue());
  EXPECT_EQ(soon[0].owner(), kHandler);
  soon.clear();
  CollectDue(ordinary.view(), ordinary_due - kDay - second, kDay, kHandler,
             &soon);
  EXPECT_TRUE(soon.empty());
}

TEST_F(CaseRulesTest, PassingALimitIsRecordedOnce) {
  CaseRecord record = Received(v1::CASE_TYPE_UNPAID_WAGES, 1, false, kStart);
  EXPECT_FALSE(RecordPassedLimits(record, kStart + kDay, kHandler));
  const uint64_t version = record.view().version();
  EXPECT_TRUE(RecordPassedLimits(record, kStart + 3 * kDay, kHandler));
  EXPECT_FALSE(RecordPassedLimits(record, kStart + 4 * kDay, kHandler));
  EXPECT_EQ(record.view().version(), version + 1);
  const v1::CaseEvent& event = *record.view().events().rbegin();
  EXPECT_EQ(event.name(), "time_limit_passed");
  EXPECT_NE(event.detail().find("decision"), std::string::npos);

  // A later stage is recorded in its turn.
  ASSERT_TRUE(Apply(record, StepNamed("accept"), kStart + 4 * kDay).ok());
  EXPECT_FALSE(RecordPassedLimits(record, kStart + 4 * kDay, kHandler));
  EXPECT_TRUE(RecordPassedLimits(record, kStart + 5 * kDay, kHandler));
}

TEST_F(CaseRulesTest, RouteGivesTheCaseToTheNamedBureau) {
  CaseRecord record = Received(v1::CASE_TYPE_UNPAID_WAGES, 1, false, kStart);
  ASSERT_TRUE(Apply(record, StepNamed("escalate"), kStart).ok());
  EXPECT_EQ(record.view().state(), v1::REFERRAL_STATE_JURISDICTION_QUESTION);
  EXPECT_EQ(OwnerOf(record.view()), "510000000000");
  // Only the superior node routes it.
  EXPECT_EQ(Apply(record, StepNamed("route"), kStart, kHandler).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Apply(record, StepNamed("route"), kStart, "510000000000").ok());
  EXPECT_EQ(record.view().handler(), "510105000000");
  EXPECT_EQ(record.view().state(), v1::REFERRAL_STATE_SUBMITTED);
}

TEST_F(CaseRulesTest, EvidenceStepsFollowTheirLifecycle) {
  v1::EvidenceRequest request;
  request.set_what("attendance records");
  request.set_where("site office");
  EvidenceRecord record =
      OpenEvidence("E-1", "C-1", kHandler, kCollector,
                   v1::PRIORITY_GREEN_CHANNEL, request, kStart);
  ReceiveEvidence(record, At(kStart, kCollector));
  EXPECT_EQ(record.view().deadlines_size(), 1);

  auto apply = [&](v1::EvidenceStep step, const std::string& actor) {
    return ApplyEvidenceStep(record, step, actor, At(kStart, kCollector));
  };
  v1::EvidenceStep result;
  result.mutable_result()->set_findings("96 days");
  EXPECT_EQ(apply(result, kCollector).code(),
            absl::StatusCode::kFailedPrecondition);
  v1::EvidenceStep accept;
  accept.mutable_accept();
  EXPECT_EQ(apply(accept, kHandler).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(apply(accept, kCollector).ok());
  v1::EvidenceStep progress;
  progress.mutable_progress();
  EXPECT_EQ(apply(progress, kCollector).message(),
            "step.progress.note: required");
  ASSERT_TRUE(apply(result, kCollector).ok());
  EXPECT_EQ(record.view().deadlines_size(), 0);
  v1::EvidenceStep confirm;
  confirm.mutable_confirm();
  EXPECT_EQ(apply(confirm, kCollector).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(apply(confirm, kHandler).ok());
  EXPECT_EQ(record.view().state(), v1::EVIDENCE_STATE_CONFIRMED);
  EXPECT_EQ(record.view().version(), 5u);
}

}  // namespace
}  // namespace caselink::server
