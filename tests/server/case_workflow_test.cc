// Case workflows between real nodes in two provinces: a group unpaid-wages
// referral from a Fujian county to a Sichuan county through every state,
// with a supplement and an evidence request on the way, the origin's copy
// following the handler's at every step; refusals of illegal steps; and
// time limits that pass, green channel first.
#include <set>

#include "caselink/v1/audit.grpc.pb.h"
#include "caselink/v1/cases.pb.h"
#include "core/strings.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/testing/network.h"

namespace caselink::testing {
namespace {

using google::protobuf::util::MessageDifferencer;

constexpr char kFujian[] = "350000000000";
constexpr char kXiamen[] = "350200000000";
constexpr char kTongan[] = "350212000000";
constexpr char kSichuan[] = "510000000000";
constexpr char kChengdu[] = "510100000000";
constexpr char kJinjiang[] = "510104000000";

// Short limits so that a test sees them pass: green-channel cases get two
// seconds for a decision, ordinary ones six.
constexpr char kShortLimits[] =
    "  time_limits:\n"
    "    ordinary: {decision: 6s, assignment: 30s, materials: 30s,"
    " evidence: 30s}\n"
    "    green_channel: {decision: 2s, assignment: 20s, materials: 20s,"
    " evidence: 20s}\n"
    "  check_interval: 1s\n";

constexpr char kPoolAndAllowances[] =
    "  lawyers:\n"
    "    - id: L-001\n"
    "      name: Li Na\n"
    "      case_types: [labour_contract]\n"
    "    - id: L-002\n"
    "      name: Wang Fang\n"
    "      case_types: [unpaid_wages, work_injury]\n"
    "  minimum_living_allowance:\n"
    "    - region: \"51\"\n"
    "      yuan: \"800\"\n"
    "    - region: \"35\"\n"
    "      yuan: \"900\"\n";

NodeSpec Spec(const char* code, const char* name, const char* parent,
              std::vector<std::string> links, bool short_limits) {
  std::vector<std::string> peers;
  if (parent[0] != '\0') peers.push_back(parent);
  for (const std::string& link : links) peers.push_back(link);
  NodeSpec spec(code, name, peers,
                Cat(kFastRetry, "workflow:\n", short_limits ? kShortLimits : "",
                    kPoolAndAllowances));
  spec.parent = parent;
  spec.links = std::move(links);
  return spec;
}

v1::Applicant Applicant(int n, int64_t income_fen) {
  v1::Applicant applicant;
  applicant.set_name(Cat("Worker ", n));
  applicant.set_id_number(Cat("35021219900101", 1000 + n));
  applicant.set_phone(Cat("1380000", 1000 + n));
  applicant.set_home_region("510104");
  applicant.set_workplace_region("350212");
  applicant.set_income_per_head_fen(income_fen);
  return applicant;
}

v1::Referral GroupWagesReferral() {
  v1::Referral referral;
  for (int n = 1; n <= 3; ++n) *referral.add_applicants() = Applicant(n, 90000);
  referral.set_case_type(v1::CASE_TYPE_UNPAID_WAGES);
  referral.set_employer("Xiamen Harbour Construction Co.");
  referral.set_facts("Wages for March to June were not paid.");
  referral.set_amount_claimed_fen(12000000);
  return referral;
}

v1::Referral OrdinaryReferral() {
  v1::Referral referral;
  *referral.add_applicants() = Applicant(7, 90000);
  referral.set_case_type(v1::CASE_TYPE_LABOUR_CONTRACT);
  referral.set_employer("Tong'an Textile Works");
  referral.set_facts("Dismissed without notice.");
  return referral;
}

class CaseWorkflowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NetworkOptions options;
    options.directories = true;
    const bool s = short_limits_;
    auto network = TestNetwork::Create(
        {Spec(kFujian, "Fujian Provincial Department of Justice", "",
              {kSichuan}, s),
         Spec(kXiamen, "Xiamen City Justice Bureau", kFujian, {}, s),
         Spec(kTongan, "Tong'an County Justice Bureau", kXiamen, {}, s),
         Spec(kSichuan, "Sichuan Provincial Department of Justice", "",
              {kFujian}, s),
         Spec(kChengdu, "Chengdu City Justice Bureau", kSichuan, {}, s),
         Spec(kJinjiang, "Jinjiang District Justice Bureau", kChengdu, {}, s)},
        options);
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = std::move(*network);
    ASSERT_TRUE(network_->StartAll().ok());
    ASSERT_TRUE(WaitForDirectories());
    origin_ = Client(kTongan);
    handler_ = Client(kJinjiang);
    ASSERT_NE(origin_, nullptr);
    ASSERT_NE(handler_, nullptr);
  }

  std::unique_ptr<client::NodeClient> Client(const std::string& code) {
    auto client = network_->OperatorClient(code);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  // Every node holds both provinces' directories and has its links up.
  bool WaitForDirectories() {
    return WaitFor(
        [&] {
          for (const std::string& code : network_->Codes()) {
            auto client = network_->OperatorClient(code);
            if (!client.ok()) return false;
            auto status = (*client)->GetStatus(absl::Seconds(2));
            if (!status.ok() || status->directory_versions().size() < 2) {
              return false;
            }
            for (const auto& peer : status->peers()) {
              if (peer.state() != v1::LINK_STATE_CONNECTED) return false;
            }
          }
          return true;
        },
        absl::Seconds(60));
  }

  // The case as `client`'s node holds it; its evidence ids are local.
  v1::CaseView View(client::NodeClient& client, const std::string& case_id) {
    auto got = client.GetCase(case_id);
    if (!got.ok()) return v1::CaseView();
    v1::CaseView view = got->case_view();
    view.clear_evidence_ids();
    return view;
  }

  // Waits until both sides hold the same view of the case, at `state`, and
  // returns it.
  v1::CaseView Converged(const std::string& case_id, v1::ReferralState state) {
    v1::CaseView handler_view;
    bool same = WaitFor(
        [&] {
          handler_view = View(*handler_, case_id);
          v1::CaseView origin_view = View(*origin_, case_id);
          return handler_view.state() == state &&
                 MessageDifferencer::Equals(handler_view, origin_view);
        },
        absl::Seconds(20));
    EXPECT_TRUE(same) << "state " << v1::ReferralState_Name(state)
                      << "\nhandler: " << handler_view.DebugString()
                      << "\norigin: " << View(*origin_, case_id).DebugString();
    return handler_view;
  }

  v1::EvidenceView Evidence(client::NodeClient& client, const std::string& id) {
    auto got = client.GetEvidence(id);
    return got.ok() ? got->evidence() : v1::EvidenceView();
  }

  v1::EvidenceView EvidenceConverged(const std::string& id,
                                     v1::EvidenceState state) {
    v1::EvidenceView collector_view;
    bool same = WaitFor(
        [&] {
          collector_view = Evidence(*origin_, id);
          return collector_view.state() == state &&
                 MessageDifferencer::Equals(collector_view,
                                            Evidence(*handler_, id));
        },
        absl::Seconds(20));
    EXPECT_TRUE(same) << "state " << v1::EvidenceState_Name(state)
                      << "\ncollector: " << collector_view.DebugString()
                      << "\nrequester: "
                      << Evidence(*handler_, id).DebugString();
    return collector_view;
  }

  absl::StatusOr<v1::CaseResponse> Step(client::NodeClient& client,
                                        const std::string& case_id,
                                        const v1::ReferralStep& step) {
    return client.StepReferral(case_id, step);
  }

  // Days-long limits by default, seconds for the time-limit tests.
  bool short_limits_ = false;
  std::unique_ptr<TestNetwork> network_;
  std::unique_ptr<client::NodeClient> origin_;
  std::unique_ptr<client::NodeClient> handler_;
};

TEST_F(CaseWorkflowTest, GroupWagesReferralWalksEveryStateOnBothSides) {
  v1::CreateReferralRequest create;
  create.set_handler("510104");
  *create.mutable_referral() = GroupWagesReferral();
  auto created = origin_->CreateReferral(create);
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string case_id = created->case_view().case_id();
  EXPECT_EQ(created->case_view().state(), v1::REFERRAL_STATE_SUBMITTED);
  // A group wage claim is green channel and needs no hardship test.
  EXPECT_EQ(created->case_view().priority(), v1::PRIORITY_GREEN_CHANNEL);
  EXPECT_TRUE(created->case_view().eligibility().exempt());

  v1::CaseView view = Converged(case_id, v1::REFERRAL_STATE_RECEIVED);
  EXPECT_EQ(view.version(), 2u);
  EXPECT_EQ(view.handler(), kJinjiang);
  EXPECT_EQ(view.applicant_count(), 3u);
  ASSERT_EQ(view.deadlines_size(), 1);
  EXPECT_EQ(view.deadlines(0).stage(), "decision");

  // The handler asks for materials; the origin supplies them.
  v1::ReferralStep materials;
  materials.mutable_request_materials()->set_what("pay slips for March");
  ASSERT_TRUE(Step(*handler_, case_id, materials).ok());
  view = Converged(case_id, v1::REFERRAL_STATE_MATERIALS_REQUESTED);
  EXPECT_EQ(view.reason(), "pay slips for March");
  ASSERT_EQ(view.deadlines_size(), 1);
  EXPECT_EQ(view.deadlines(0).stage(), "materials");
  EXPECT_EQ(view.deadlines(0).owner(), kTongan);

  v1::ReferralStep supplement;
  supplement.mutable_supplement()->set_note("pay slips attached");
  ASSERT_TRUE(Step(*origin_, case_id, supplement).ok());
  view = Converged(case_id, v1::REFERRAL_STATE_RECEIVED);
  EXPECT_EQ(view.events().rbegin()->name(), "supplemented");

  // The handler asks the origin's bureau, where the employer is, to
  // collect evidence; every evidence step shows on both sides.
  v1::RequestEvidenceRequest ask;
  ask.set_case_id(case_id);
  ask.set_collector("350212");
  ask.mutable_request()->set_what("attendance records, March to June");
  ask.mutable_request()->set_from_whom("site office");
  ask.mutable_request()->set_where("Tong'an industrial park");
  auto requested = handler_->RequestEvidence(ask);
  ASSERT_TRUE(requested.ok()) << requested.status();
  const std::string evidence_id = requested->evidence().evidence_id();
  EvidenceConverged(evidence_id, v1::EVIDENCE_STATE_REQUESTED);
  v1::EvidenceStep evidence_step;
  evidence_step.mutable_accept();
  ASSERT_TRUE(origin_->StepEvidence(evidence_id, evidence_step).ok());
  EvidenceConverged(evidence_id, v1::EVIDENCE_STATE_ACCEPTED);
  evidence_step.mutable_progress()->set_note("visited the site office");
  ASSERT_TRUE(origin_->StepEvidence(evidence_id, evidence_step).ok());
  EvidenceConverged(evidence_id, v1::EVIDENCE_STATE_IN_PROGRESS);
  evidence_step.mutable_result()->set_findings("records show 96 days worked");
  ASSERT_TRUE(origin_->StepEvidence(evidence_id, evidence_step).ok());
  v1::EvidenceView evidence =
      EvidenceConverged(evidence_id, v1::EVIDENCE_STATE_RESULT_SENT);
  EXPECT_EQ(evidence.findings(), "records show 96 days worked");
  evidence_step.mutable_confirm()->set_note("received");
  ASSERT_TRUE(handler_->StepEvidence(evidence_id, evidence_step).ok());
  EvidenceConverged(evidence_id, v1::EVIDENCE_STATE_CONFIRMED);

  v1::ReferralStep accept;
  accept.mutable_accept();
  ASSERT_TRUE(Step(*handler_, case_id, accept).ok());
  view = Converged(case_id, v1::REFERRAL_STATE_ACCEPTED);
  ASSERT_EQ(view.deadlines_size(), 1);
  EXPECT_EQ(view.deadlines(0).stage(), "assignment");

  // The pool's wage lawyer is chosen by case type.
  v1::ReferralStep assign;
  assign.mutable_assign();
  ASSERT_TRUE(Step(*handler_, case_id, assign).ok());
  view = Converged(case_id, v1::REFERRAL_STATE_ASSIGNED);
  EXPECT_EQ(view.lawyer_id(), "L-002");
  EXPECT_EQ(view.deadlines_size(), 0);

  v1::ReferralStep close;
  close.mutable_close()->set_outcome(v1::CASE_OUTCOME_MEDIATED);
  close.mutable_close()->set_note("employer paid in full");
  ASSERT_TRUE(Step(*handler_, case_id, close).ok());
  view = Converged(case_id, v1::REFERRAL_STATE_CLOSED);
  EXPECT_EQ(view.outcome(), v1::CASE_OUTCOME_MEDIATED);

  std::vector<std::string> names;
  for (const v1::CaseEvent& event : view.events()) {
    names.push_back(event.name());
  }
  EXPECT_EQ(names, (std::vector<std::string>{
                       "submitted", "received", "materials_requested",
                       "supplemented", "accepted", "assigned", "closed"}));

  // The handler holds the referral in clear; both sides list the evidence.
  auto full = handler_->GetCase(case_id);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->referral().applicants_size(), 3);
  EXPECT_EQ(full->case_view().evidence_ids_size(), 1);
}

TEST_F(CaseWorkflowTest, IllegalStepsAreRefusedNamingTheStateOrField) {
  v1::CreateReferralRequest create;
  create.set_handler("510104");
  *create.mutable_referral() = GroupWagesReferral();
  create.mutable_referral()->mutable_applicants(1)->set_id_number("12345");
  auto refused = origin_->CreateReferral(create);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("referral.applicants[2].id_number"),
            std::string::npos)
      << refused.status();

  *create.mutable_referral() = GroupWagesReferral();
  create.mutable_referral()->clear_employer();
  refused = origin_->CreateReferral(create);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("referral.employer"),
            std::string::npos);

  *create.mutable_referral() = GroupWagesReferral();
  auto created = origin_->CreateReferral(create);
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string case_id = created->case_view().case_id();
  Converged(case_id, v1::REFERRAL_STATE_RECEIVED);

  // Assigning before acceptance names the state.
  v1::ReferralStep assign;
  assign.mutable_assign();
  auto step = Step(*handler_, case_id, assign);
  ASSERT_EQ(step.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(step.status().message().find("state received"), std::string::npos)
      << step.status();

  // The origin cannot decide for the handler.
  v1::ReferralStep accept;
  accept.mutable_accept();
  step = Step(*origin_, case_id, accept);
  ASSERT_EQ(step.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(step.status().message().find("handler"), std::string::npos)
      << step.status();

  // A rejection needs its reason.
  v1::ReferralStep reject;
  reject.mutable_reject();
  step = Step(*handler_, case_id, reject);
  ASSERT_EQ(step.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(step.status().message().find("step.reject.reason"),
            std::string::npos)
      << step.status();

  // A supplement nobody asked for.
  v1::ReferralStep supplement;
  supplement.mutable_supplement()->set_note("more");
  step = Step(*origin_, case_id, supplement);
  ASSERT_EQ(step.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(step.status().message().find("state received"), std::string::npos)
      << step.status();

  // After all of that, the case is where it was, on both sides.
  v1::CaseView view = Converged(case_id, v1::REFERRAL_STATE_RECEIVED);
  EXPECT_EQ(view.version(), 2u);

  // Each refusal is an event in the refusing node's audit log.
  auto auditor = network_->AuditorClient(kJinjiang);
  ASSERT_TRUE(auditor.ok()) << auditor.status();
  auto audit = v1::AuditService::NewStub((*auditor)->channel());
  std::vector<std::string> refusals;
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext context;
        v1::GetCaseHistoryRequest request;
        request.set_case_id(case_id);
        v1::AuditAnswer answer;
        if (!audit->GetCaseHistory(&context, request, &answer).ok()) {
          return false;
        }
        refusals.clear();
        for (const v1::AuditEntry& entry : answer.entries()) {
          v1::AuditEvent event;
          if (event.ParseFromString(entry.event()) &&
              event.kind() == v1::AUDIT_EVENT_KIND_REFUSAL) {
            refusals.push_back(event.detail());
          }
        }
        return refusals.size() == 2;
      },
      absl::Seconds(10)));
  EXPECT_NE(refusals[0].find("operator step assign"), std::string::npos)
      << refusals[0];
  EXPECT_NE(refusals[1].find("operator step reject"), std::string::npos)
      << refusals[1];
}

TEST_F(CaseWorkflowTest, JurisdictionQuestionGoesToTheSuperiorWhichRoutesIt) {
  v1::CreateReferralRequest create;
  create.set_handler("510104");
  *create.mutable_referral() = GroupWagesReferral();
  auto created = origin_->CreateReferral(create);
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string case_id = created->case_view().case_id();
  Converged(case_id, v1::REFERRAL_STATE_RECEIVED);

  // Jinjiang cannot take it. Across provinces no node stands above both
  // bureaus, so Sichuan, the handler's province, decides.
  v1::ReferralStep escalate;
  escalate.mutable_escalate()->set_reason("employer registered in Chengdu");
  auto asked = handler_->StepReferral(case_id, escalate);
  ASSERT_TRUE(asked.ok()) << asked.status();
  EXPECT_EQ(asked->case_view().arbiter(), kSichuan);
  Converged(case_id, v1::REFERRAL_STATE_JURISDICTION_QUESTION);
  auto province = Client(kSichuan);
  ASSERT_NE(province, nullptr);
  ASSERT_TRUE(WaitFor(
      [&] {
        return View(*province, case_id).state() ==
               v1::REFERRAL_STATE_JURISDICTION_QUESTION;
      },
      absl::Seconds(20)));

  // Jinjiang may not decide the question itself.
  v1::ReferralStep route;
  route.mutable_route()->set_to("5101");
  route.mutable_route()->set_reason("the employer is in Chengdu proper");
  EXPECT_EQ(handler_->StepReferral(case_id, route).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(province->StepReferral(case_id, route).ok());

  // Chengdu now handles it; the origin follows Chengdu, and Jinjiang's copy
  // says where the case went.
  auto chengdu = Client(kChengdu);
  ASSERT_NE(chengdu, nullptr);
  v1::CaseView view;
  ASSERT_TRUE(WaitFor(
      [&] {
        view = View(*chengdu, case_id);
        return view.state() == v1::REFERRAL_STATE_RECEIVED &&
               MessageDifferencer::Equals(view, View(*origin_, case_id));
      },
      absl::Seconds(20)))
      << view.DebugString() << View(*origin_, case_id).DebugString();
  EXPECT_EQ(view.handler(), kChengdu);
  ASSERT_TRUE(WaitFor(
      [&] {
        return View(*handler_, case_id).state() ==
               v1::REFERRAL_STATE_TRANSFERRED;
      },
      absl::Seconds(20)));
  EXPECT_EQ(View(*handler_, case_id).handler(), kChengdu);

  v1::ReferralStep accept;
  accept.mutable_accept();
  ASSERT_TRUE(chengdu->StepReferral(case_id, accept).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        return View(*origin_, case_id).state() == v1::REFERRAL_STATE_ACCEPTED;
      },
      absl::Seconds(20)));
}

class TimeLimitTest : public CaseWorkflowTest {
 protected:
  TimeLimitTest() { short_limits_ = true; }
};

TEST_F(TimeLimitTest, OverdueItemsAppearOnTimeGreenChannelFirst) {
  v1::CreateReferralRequest create;
  create.set_handler("510104");
  *create.mutable_referral() = OrdinaryReferral();
  auto ordinary = origin_->CreateReferral(create);
  ASSERT_TRUE(ordinary.ok()) << ordinary.status();
  *create.mutable_referral() = GroupWagesReferral();
  auto green = origin_->CreateReferral(create);
  ASSERT_TRUE(green.ok()) << green.status();
  const std::string ordinary_id = ordinary->case_view().case_id();
  const std::string green_id = green->case_view().case_id();
  Converged(ordinary_id, v1::REFERRAL_STATE_RECEIVED);
  Converged(green_id, v1::REFERRAL_STATE_RECEIVED);
  const absl::Time received = absl::Now();

  auto overdue = [&](client::NodeClient& client, bool subtree) {
    std::set<std::string> ids;
    auto due = client.ListDue(absl::Seconds(1), subtree);
    if (!due.ok()) return ids;
    for (const v1::DueItem& item : due->items()) {
      if (item.overdue()) ids.insert(item.id());
    }
    return ids;
  };

  // The green case's two seconds pass first: it is overdue while the
  // ordinary one is not.
  ASSERT_TRUE(WaitFor([&] { return overdue(*handler_, false).count(green_id); },
                      absl::Seconds(10)));
  EXPECT_FALSE(overdue(*handler_, false).count(ordinary_id));
  EXPECT_LT(absl::Now() - received, absl::Seconds(6));

  // The province sees it too, for its whole subtree.
  auto province = Client(kSichuan);
  ASSERT_NE(province, nullptr);
  EXPECT_TRUE(overdue(*province, true).count(green_id));
  EXPECT_FALSE(overdue(*province, false).count(green_id));

  // Passing the limit is an event in the case, and the origin sees it.
  ASSERT_TRUE(WaitFor(
      [&] {
        const v1::CaseView view = View(*origin_, green_id);
        for (const v1::CaseEvent& event : view.events()) {
          if (event.name() == "time_limit_passed") return true;
        }
        return false;
      },
      absl::Seconds(10)));

  // Then the ordinary case's six seconds pass as well.
  ASSERT_TRUE(
      WaitFor([&] { return overdue(*handler_, false).count(ordinary_id); },
              absl::Seconds(15)));
  EXPECT_GE(absl::Now() - received, absl::Seconds(5));
}

}  // namespace
}  // namespace caselink::testing
