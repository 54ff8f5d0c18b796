// The audit log of real nodes: a case's history comes with proofs that an
// auditor can check against a signed head, also gathered along the case's
// whole path; only auditors may read it and they may change nothing; an
// event changed, removed or moved in a node's RocksDB no longer verifies;
// and a node that rewrites its log is caught by its peers.
#include <set>

#include "absl/strings/str_join.h"
#include "caselink/v1/audit.grpc.pb.h"
#include "caselink/v1/cases.pb.h"
#include "caselink/v1/operator.grpc.pb.h"
#include "client/client_config.h"
#include "core/crypto.h"
#include "core/merkle.h"
#include "core/strings.h"
#include "core/tree_head.h"
#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/testing/network.h"

namespace caselink::testing {
namespace {

constexpr char kXiamen[] = "350200000000";
constexpr char kTongan[] = "350212000000";
constexpr char kSiming[] = "350203000000";

constexpr char kConfig[] =
    "delivery:\n  retry_initial_ms: 50\n  retry_max_ms: 500\n"
    "audit:\n  head_interval_seconds: 1\n"
    "workflow:\n"
    "  lawyers:\n"
    "    - {id: L-1, name: Lin Tao, case_types: [unpaid_wages]}\n";

NodeSpec Spec(const char* code, const char* name, const char* parent) {
  std::vector<std::string> peers;
  if (parent[0] != '\0') peers.push_back(parent);
  NodeSpec spec(code, name, peers, kConfig);
  spec.parent = parent;
  return spec;
}

v1::Referral Referral() {
  v1::Referral referral;
  v1::Applicant* applicant = referral.add_applicants();
  applicant->set_name("Worker One");
  applicant->set_id_number("350212199001011234");
  applicant->set_phone("13800001234");
  applicant->set_home_region("350212");
  applicant->set_workplace_region("350203");
  referral.set_case_type(v1::CASE_TYPE_UNPAID_WAGES);
  referral.set_employer("Siming Shipyard");
  referral.set_facts("Wages unpaid since May.");
  return referral;
}

// What an auditor checks of an answer: the head's signature by the
// certificate it names, and each entry's inclusion in that head. Returns
// one line per problem, naming the entry.
std::vector<std::string> Problems(const v1::AuditAnswer& answer) {
  std::vector<std::string> problems;
  auto certificate = Certificate::FromPem(answer.signing_certificate_pem());
  if (!certificate.ok()) return {"certificate does not parse"};
  auto key = certificate->public_key();
  if (!key.ok()) return {"certificate has no usable key"};
  absl::Status signed_ok = VerifyTreeHead(answer.head(), *key);
  if (!signed_ok.ok()) problems.push_back(signed_ok.ToString());
  const HashAlgorithm hash = HashAlgorithmOf(key->scheme());
  uint64_t last = 0;
  for (const v1::AuditEntry& entry : answer.entries()) {
    const std::string name = Cat("entry ", entry.index());
    v1::AuditEvent event;
    if (!event.ParseFromString(entry.event())) {
      problems.push_back(Cat(name, ": does not parse"));
      continue;
    }
    if (event.index() != entry.index()) {
      problems.push_back(
          Cat(name, ": holds the event of index ", event.index()));
    }
    if (&entry != &answer.entries(0) && entry.index() <= last) {
      problems.push_back(Cat(name, ": out of order"));
    }
    last = entry.index();
    auto leaf = LeafHash(hash, entry.event());
    std::vector<std::string> path(entry.inclusion_path().begin(),
                                  entry.inclusion_path().end());
    if (!leaf.ok() ||
        !VerifyInclusion(hash, entry.index(), answer.head().tree_size(), *leaf,
                         path, answer.head().root_hash())
             .ok()) {
      problems.push_back(Cat(name, ": not included in the signed head"));
    }
    // A case's history is a chain; a gap is a removed event.
    if (event.previous_in_case() != 0) {
      bool found = false;
      for (const v1::AuditEntry& other : answer.entries()) {
        if (other.index() + 1 == event.previous_in_case()) found = true;
      }
      if (!found) {
        problems.push_back(Cat("entry ", event.previous_in_case() - 1,
                               ": missing before ", name));
      }
    }
  }
  return problems;
}

class AuditNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NetworkOptions options;
    options.directories = true;
    auto network = TestNetwork::Create(
        {Spec("350000000000", "Fujian Provincial Department of Justice", ""),
         Spec(kXiamen, "Xiamen City Justice Bureau", "350000000000"),
         Spec(kTongan, "Tong'an County Justice Bureau", kXiamen),
         Spec(kSiming, "Siming District Justice Bureau", kXiamen)},
        options);
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = std::move(*network);
    ASSERT_TRUE(network_->StartAll().ok());
    ASSERT_TRUE(WaitFor(
        [&] {
          for (const std::string& code : network_->Codes()) {
            auto client = network_->OperatorClient(code);
            if (!client.ok()) return false;
            auto status = (*client)->GetStatus(absl::Seconds(2));
            if (!status.ok() || status->directory_versions().empty()) {
              return false;
            }
            for (const auto& peer : status->peers()) {
              if (peer.state() != v1::LINK_STATE_CONNECTED) return false;
            }
          }
          return true;
        },
        absl::Seconds(60)));
  }

  std::unique_ptr<v1::AuditService::Stub> Auditor(const std::string& code) {
    auto client = network_->AuditorClient(code);
    EXPECT_TRUE(client.ok()) << client.status();
    auditors_.push_back(std::move(*client));
    return v1::AuditService::NewStub(auditors_.back()->channel());
  }

  // Opens a referral from Tong'an to Siming and has Siming accept it;
  // returns the case id once Tong'an holds the receipt of the acceptance.
  std::string AcceptedCase() {
    auto origin = network_->OperatorClient(kTongan);
    auto handler = network_->OperatorClient(kSiming);
    EXPECT_TRUE(origin.ok() && handler.ok());
    v1::CreateReferralRequest create;
    create.set_handler(kSiming);
    *create.mutable_referral() = Referral();
    auto created = (*origin)->CreateReferral(create);
    EXPECT_TRUE(created.ok()) << created.status();
    const std::string id = created->case_view().case_id();
    EXPECT_TRUE(WaitFor(
        [&] {
          auto got = (*handler)->GetCase(id);
          return got.ok() &&
                 got->case_view().state() == v1::REFERRAL_STATE_RECEIVED;
        },
        absl::Seconds(20)));
    v1::ReferralStep accept;
    accept.mutable_accept();
    EXPECT_TRUE((*handler)->StepReferral(id, accept).ok());
    EXPECT_TRUE(WaitFor(
        [&] {
          auto got = (*origin)->GetCase(id);
          return got.ok() &&
                 got->case_view().state() == v1::REFERRAL_STATE_ACCEPTED;
        },
        absl::Seconds(20)));
    return id;
  }

  v1::AuditAnswer History(v1::AuditService::Stub& auditor,
                          const std::string& case_id) {
    grpc::ClientContext context;
    v1::GetCaseHistoryRequest request;
    request.set_case_id(case_id);
    request.set_page_size(1000);
    v1::AuditAnswer answer;
    grpc::Status status = auditor.GetCaseHistory(&context, request, &answer);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return answer;
  }

  std::set<int> Kinds(const v1::AuditAnswer& answer) {
    std::set<int> kinds;
    for (const v1::AuditEntry& entry : answer.entries()) {
      v1::AuditEvent event;
      if (event.ParseFromString(entry.event())) kinds.insert(event.kind());
    }
    return kinds;
  }

  std::unique_ptr<TestNetwork> network_;
  std::vector<std::unique_ptr<client::NodeClient>> auditors_;
};

TEST_F(AuditNodeTest, CaseHistoryAndPathVerifyAgainstSignedHeads) {
  const std::string case_id = AcceptedCase();
  auto auditor = Auditor(kTongan);
  v1::AuditAnswer answer = History(*auditor, case_id);
  EXPECT_TRUE(Problems(answer).empty())
      << absl::StrJoin(Problems(answer), "\n");
  std::set<int> kinds = Kinds(answer);
  EXPECT_TRUE(kinds.count(v1::AUDIT_EVENT_KIND_SUBMITTED));
  EXPECT_TRUE(kinds.count(v1::AUDIT_EVENT_KIND_ACKNOWLEDGED));
  EXPECT_TRUE(kinds.count(v1::AUDIT_EVENT_KIND_STATE_CHANGE));
  EXPECT_TRUE(kinds.count(v1::AUDIT_EVENT_KIND_RECEIVED));
  EXPECT_EQ(answer.head().code(), kTongan);
  // No personal data in the log.
  for (const v1::AuditEntry& entry : answer.entries()) {
    EXPECT_EQ(entry.event().find("Worker One"), std::string::npos);
    EXPECT_EQ(entry.event().find("350212199001011234"), std::string::npos);
  }

  // One question to Tong'an brings the history at every node the case
  // passed through, each part with its own head.
  grpc::ClientContext context;
  v1::GetCasePathRequest request;
  request.set_case_id(case_id);
  v1::GetCasePathResponse path;
  ASSERT_TRUE(auditor->GetCasePath(&context, request, &path).ok());
  std::set<std::string> nodes;
  for (const v1::NodeHistory& node : path.nodes()) {
    EXPECT_TRUE(node.error().empty()) << node.code() << ": " << node.error();
    EXPECT_EQ(node.answer().head().code(), node.code());
    EXPECT_TRUE(Problems(node.answer()).empty()) << node.code();
    if (!node.answer().entries().empty()) nodes.insert(node.code());
  }
  EXPECT_EQ(nodes, (std::set<std::string>{kTongan, kXiamen, kSiming}));
  // Xiamen relayed it; Siming received it and changed its state.
  for (const v1::NodeHistory& node : path.nodes()) {
    if (node.code() == kXiamen) {
      // It logs passing each message on and the next hop's acknowledgement.
      EXPECT_TRUE(Kinds(node.answer()).count(v1::AUDIT_EVENT_KIND_RELAYED));
      EXPECT_TRUE(
          Kinds(node.answer()).count(v1::AUDIT_EVENT_KIND_ACKNOWLEDGED));
    }
    if (node.code() == kSiming) {
      EXPECT_TRUE(
          Kinds(node.answer()).count(v1::AUDIT_EVENT_KIND_STATE_CHANGE));
    }
  }
}

TEST_F(AuditNodeTest, OnlyAuditorsReadAndAuditorsChangeNothing) {
  // An operator certificate cannot reach the audit service.
  auto operator_client = network_->OperatorClient(kTongan);
  ASSERT_TRUE(operator_client.ok());
  auto as_operator = v1::AuditService::NewStub((*operator_client)->channel());
  grpc::ClientContext context;
  v1::GetTreeHeadResponse head;
  grpc::Status status =
      as_operator->GetTreeHead(&context, v1::GetTreeHeadRequest(), &head);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // An auditor certificate can read, but neither submit nor open a case.
  auto auditor = network_->AuditorClient(kTongan);
  ASSERT_TRUE(auditor.ok());
  v1::CreateReferralRequest create;
  create.set_handler(kSiming);
  *create.mutable_referral() = Referral();
  EXPECT_EQ((*auditor)->CreateReferral(create).status().code(),
            absl::StatusCode::kPermissionDenied);
  v1::SubmitMessageRequest submit;
  submit.set_recipient(kSiming);
  submit.set_kind(v1::MESSAGE_KIND_REFERRAL);
  EXPECT_EQ((*auditor)->Submit(submit).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto stub = v1::AuditService::NewStub((*auditor)->channel());
  grpc::ClientContext read;
  EXPECT_TRUE(stub->GetTreeHead(&read, v1::GetTreeHeadRequest(), &head).ok());

  // An auditor of Siming may not read Tong'an's log.
  auto config = client::LoadClientConfig(network_->AuditorConfigPath(kSiming));
  ASSERT_TRUE(config.ok());
  config->node_code = kTongan;
  config->address = Cat("127.0.0.1:", network_->Port(kTongan));
  auto other = client::NodeClient::Connect(*config);
  ASSERT_TRUE(other.ok());
  auto foreign = v1::AuditService::NewStub((*other)->channel());
  grpc::ClientContext refused;
  EXPECT_EQ(foreign->GetTreeHead(&refused, v1::GetTreeHeadRequest(), &head)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

// Each way of tampering with one stored event, and what it does to the
// history an auditor reads.
TEST_F(AuditNodeTest, TamperedEventsFailVerificationNamingTheEntry) {
  const std::string case_id = AcceptedCase();
  v1::AuditAnswer before = History(*Auditor(kTongan), case_id);
  ASSERT_TRUE(Problems(before).empty());
  ASSERT_GE(before.entries_size(), 3);
  const uint64_t changed = before.entries(1).index();
  const uint64_t first = before.entries(0).index();
  const uint64_t second = before.entries(2).index();
  auto leaf_key = [](uint64_t index) {
    std::string key = "l/";
    storage::AppendUint64BE(&key, index);
    return key;
  };

  // Change one event's bytes, and swap two others, with the node stopped.
  ASSERT_EQ(network_->Stop(kTongan), 0);
  {
    auto store = storage::Store::Open(network_->DataDir(kTongan));
    ASSERT_TRUE(store.ok()) << store.status();
    auto read = [&](uint64_t index) {
      auto value = (*store)->Get(storage::Family::kAudit, leaf_key(index));
      return value.ok() && value->has_value() ? **value : std::string();
    };
    std::string bytes = read(changed);
    v1::AuditEvent event;
    ASSERT_TRUE(event.ParseFromString(bytes));
    event.set_detail(event.detail() + " (edited)");
    std::string a = read(first);
    std::string b = read(second);
    storage::Batch batch = (*store)->NewBatch();
    batch.Put(storage::Family::kAudit, leaf_key(changed),
              event.SerializeAsString());
    batch.Put(storage::Family::kAudit, leaf_key(first), b);
    batch.Put(storage::Family::kAudit, leaf_key(second), a);
    ASSERT_TRUE((*store)->Commit(batch).ok());
  }
  ASSERT_TRUE(network_->Start(kTongan).ok());

  v1::AuditAnswer after = History(*Auditor(kTongan), case_id);
  std::vector<std::string> problems = Problems(after);
  std::string all = absl::StrJoin(problems, "\n");
  EXPECT_NE(all.find(Cat("entry ", changed, ": not included")),
            std::string::npos)
      << all;
  EXPECT_NE(
      all.find(Cat("entry ", first, ": holds the event of index ", second)),
      std::string::npos)
      << all;
  EXPECT_NE(
      all.find(Cat("entry ", second, ": holds the event of index ", first)),
      std::string::npos)
      << all;
}

TEST_F(AuditNodeTest, RemovedEventLeavesAGapInTheCaseChain) {
  const std::string case_id = AcceptedCase();
  v1::AuditAnswer before = History(*Auditor(kTongan), case_id);
  ASSERT_GE(before.entries_size(), 3);
  const uint64_t removed = before.entries(1).index();
  v1::AuditEvent event;
  ASSERT_TRUE(event.ParseFromString(before.entries(1).event()));

  // A careful forger removes the event and its index entry.
  ASSERT_EQ(network_->Stop(kTongan), 0);
  {
    auto store = storage::Store::Open(network_->DataDir(kTongan));
    ASSERT_TRUE(store.ok()) << store.status();
    std::string index_key = Cat("x/c/", case_id, std::string(1, '\0'));
    storage::AppendUint64BE(&index_key, removed);
    std::string leaf = "l/";
    storage::AppendUint64BE(&leaf, removed);
    storage::Batch batch = (*store)->NewBatch();
    batch.Delete(storage::Family::kAudit, index_key);
    batch.Delete(storage::Family::kAudit, leaf);
    ASSERT_TRUE((*store)->Commit(batch).ok());
  }
  ASSERT_TRUE(network_->Start(kTongan).ok());
  v1::AuditAnswer after = History(*Auditor(kTongan), case_id);
  ASSERT_EQ(after.entries_size(), before.entries_size() - 1);
  std::string all = absl::StrJoin(Problems(after), "\n");
  EXPECT_NE(all.find(Cat("entry ", removed, ": missing")), std::string::npos)
      << all;
}

TEST_F(AuditNodeTest, PeersCatchANodeThatRewritesItsLog) {
  AcceptedCase();
  auto xiamen = network_->OperatorClient(kXiamen);
  ASSERT_TRUE(xiamen.ok());
  auto xiamen_auditor = Auditor(kXiamen);
  // Xiamen holds a head of Tong'an's log.
  auto held_size = [&]() -> uint64_t {
    grpc::ClientContext context;
    v1::GetWitnessedHeadsResponse heads;
    if (!xiamen_auditor
             ->GetWitnessedHeads(&context, v1::GetWitnessedHeadsRequest(),
                                 &heads)
             .ok()) {
      return 0;
    }
    for (const v1::WitnessedHead& head : heads.heads()) {
      if (head.peer() == kTongan && head.inconsistency().empty()) {
        return head.head().tree_size();
      }
    }
    return 0;
  };
  ASSERT_TRUE(WaitFor([&] { return held_size() > 3; }, absl::Seconds(20)));

  // Tong'an starts its log over, as a node hiding its past would.
  ASSERT_EQ(network_->Stop(kTongan), 0);
  {
    auto store = storage::Store::Open(network_->DataDir(kTongan));
    ASSERT_TRUE(store.ok()) << store.status();
    storage::Batch batch = (*store)->NewBatch();
    absl::Status scanned =
        (*store)->Scan(storage::Family::kAudit, "",
                       [&](std::string_view key, std::string_view) {
                         if (!key.starts_with("w")) {
                           batch.Delete(storage::Family::kAudit, key);
                         }
                         return true;
                       });
    ASSERT_TRUE(scanned.ok());
    ASSERT_TRUE((*store)->Commit(batch).ok());
  }
  ASSERT_TRUE(network_->Start(kTongan).ok());

  ASSERT_TRUE(WaitFor(
      [&] {
        auto status = (*xiamen)->GetStatus(absl::Seconds(2));
        return status.ok() &&
               status->counters().count("inconsistent_tree_heads") > 0;
      },
      absl::Seconds(20)));
  grpc::ClientContext context;
  v1::GetWitnessedHeadsResponse heads;
  ASSERT_TRUE(
      xiamen_auditor
          ->GetWitnessedHeads(&context, v1::GetWitnessedHeadsRequest(), &heads)
          .ok());
  bool evidence = false;
  for (const v1::WitnessedHead& head : heads.heads()) {
    if (head.peer() == kTongan && !head.inconsistency().empty()) {
      evidence = true;
      EXPECT_GT(head.previous().tree_size(), head.head().tree_size());
    }
  }
  EXPECT_TRUE(evidence);
  // The alarm is an event in Xiamen's own log.
  grpc::ClientContext query;
  v1::QueryEventsRequest request;
  request.set_kind(v1::AUDIT_EVENT_KIND_INCONSISTENT_TREE_HEAD);
  v1::AuditAnswer alarms;
  ASSERT_TRUE(xiamen_auditor->QueryEvents(&query, request, &alarms).ok());
  EXPECT_GE(alarms.entries_size(), 1);
  EXPECT_TRUE(Problems(alarms).empty());
}

}  // namespace
}  // namespace caselink::testing
