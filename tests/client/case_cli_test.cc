// The caselink case commands driven as an operator would, against four real
// nodes of one province: Tong'an County (350212) refers cases to Siming
// District (350203); both sit under Xiamen City (3502), which sits under
// Fujian Province (35). Referral payloads are sealed, so the province
// publishes a directory of the four nodes' keys.
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "caselink/v1/audit.pb.h"
#include "caselink/v1/cases.pb.h"
#include "core/strings.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/testing/network.h"

namespace caselink::testing {
namespace {

constexpr char kProvince[] = "350000000000";
constexpr char kCity[] = "350200000000";
constexpr char kOrigin[] = "350212000000";
constexpr char kHandler[] = "350203000000";

// Default time limits: seven days for an ordinary decision, so `due`
// needs a window longer than that to show one coming up.
constexpr char kWorkflow[] =
    "workflow:\n"
    "  lawyers:\n"
    "    - id: L-001\n"
    "      name: Li Na\n"
    "      case_types: [labour_contract]\n"
    "    - id: L-002\n"
    "      name: Wang Fang\n"
    "      case_types: [unpaid_wages, work_injury]\n"
    "  minimum_living_allowance:\n"
    "    - region: \"35\"\n"
    "      yuan: \"900\"\n";

// An ordinary labour-contract case of one worker, whose 500 yuan a month
// per head passes the hardship test against Fujian's 900.
constexpr char kReferralJson[] = R"({
  "applicants": [{
    "name": "Chen Wei",
    "id_number": "350212199003041234",
    "phone": "13800001234",
    "home_region": "350212",
    "workplace_region": "350203",
    "income_per_head_fen": 50000
  }],
  "case_type": "CASE_TYPE_LABOUR_CONTRACT",
  "employer": "Siming Garment Factory",
  "facts": "Dismissed without notice after eight years.",
  "amount_claimed_fen": 4800000
})";

bool Contains(std::string_view text, std::string_view piece) {
  return text.find(piece) != std::string_view::npos;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// The lines of `text` that contain `piece`.
std::vector<std::string> LinesWith(const std::string& text,
                                   std::string_view piece) {
  std::vector<std::string> found;
  for (std::string& line : Lines(text)) {
    if (Contains(line, piece)) found.push_back(std::move(line));
  }
  return found;
}

// The cells of a table row: the text between runs of two or more spaces.
std::vector<std::string> Cells(const std::string& row) {
  std::vector<std::string> cells;
  size_t start = 0;
  while (start < row.size()) {
    size_t end = row.find("  ", start);
    if (end == std::string::npos) end = row.size();
    cells.push_back(row.substr(start, end - start));
    start = row.find_first_not_of(' ', end);
    if (start == std::string::npos) break;
  }
  return cells;
}

// The rows of a `caselink due` table whose ID column is `id`, as cells.
std::vector<std::vector<std::string>> DueRows(const std::string& table,
                                              std::string_view id) {
  std::vector<std::vector<std::string>> rows;
  for (const std::string& line : Lines(table)) {
    std::vector<std::string> cells = Cells(line);
    if (cells.size() == 10 && cells[3] == id) rows.push_back(cells);
  }
  return rows;
}

// The value of the detail-view field `label` ("state", "case type", ...),
// or nullopt if no line holds it.
std::optional<std::string> Field(const std::string& text,
                                 std::string_view label) {
  for (const std::string& line : Lines(text)) {
    if (line.size() > label.size() && line.starts_with(label) &&
        line[label.size()] == ' ') {
      const size_t value = line.find_first_not_of(' ', label.size());
      return value == std::string::npos ? "" : line.substr(value);
    }
  }
  return std::nullopt;
}

// The EVENT column of the events table of `referral show`, in order.
std::vector<std::string> EventNames(const std::string& show) {
  std::vector<std::string> names;
  bool in_events = false;
  for (const std::string& line : Lines(show)) {
    std::vector<std::string> cells = Cells(line);
    if (!cells.empty() && cells[0] == "AT") {
      in_events = true;
    } else if (in_events && cells.size() >= 3) {
      names.push_back(cells[2]);
    }
  }
  return names;
}

// Parses the one line of JSON a --json command prints.
template <typename Message>
std::optional<Message> ParseJson(const std::string& text) {
  Message message;
  if (!google::protobuf::util::JsonStringToMessage(text, &message).ok()) {
    return std::nullopt;
  }
  return message;
}

NodeSpec Spec(const char* code, const char* name, const char* parent,
              std::vector<std::string> children) {
  std::vector<std::string> peers = children;
  if (parent[0] != '\0') peers.insert(peers.begin(), parent);
  NodeSpec spec(code, name, peers, Cat(kFastRetry, kWorkflow));
  spec.parent = parent;
  return spec;
}

class CaseCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    NetworkOptions options;
    options.directories = true;
    auto network = TestNetwork::Create(
        {Spec(kProvince, "Fujian Provincial Department of Justice", "",
              {kCity}),
         Spec(kCity, "Xiamen City Justice Bureau", kProvince,
              {kOrigin, kHandler}),
         Spec(kOrigin, "Tong'an County Justice Bureau", kCity, {}),
         Spec(kHandler, "Siming District Justice Bureau", kCity, {})},
        options);
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = network->release();
    absl::Status started = network_->StartAll();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_TRUE(WaitForDirectories());
  }

  static void TearDownTestSuite() {
    delete network_;
    network_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(network_, nullptr) << "the test network did not start";
  }

  // Every node holds the province's directory and has its links up, so
  // that payloads can be sealed to any of them.
  static bool WaitForDirectories() {
    return WaitFor(
        [] {
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
        absl::Seconds(30));
  }

  // Runs `caselink --config <operator config of code> args...`.
  static CommandResult Cli(const std::string& code,
                           std::vector<std::string> args) {
    std::vector<std::string> argv = {CaselinkCliPath(), "--config",
                                     network_->ClientConfigPath(code)};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  // Runs `caselink` with the auditor's config of `code`.
  static CommandResult AuditorCli(const std::string& code,
                                  std::vector<std::string> args) {
    std::vector<std::string> argv = {CaselinkCliPath(), "--config",
                                     network_->AuditorConfigPath(code)};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  // Writes `text` to a file under the network's directory; returns its path.
  static std::string WriteFile(const std::string& name,
                               const std::string& text) {
    const std::string path = Cat(network_->root(), "/", name);
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // `referral create` at the origin from kReferralJson; returns the case
  // id, or an empty string after recording a failure.
  static std::string CreateCase() {
    const std::string file = WriteFile("referral.json", kReferralJson);
    CommandResult created =
        Cli(kOrigin, {"referral", "create", "--to", "350203", "--file", file});
    EXPECT_EQ(created.exit_code, 0) << created.output;
    std::vector<std::string> lines = Lines(created.output);
    if (created.exit_code != 0 || lines.size() != 1 || lines[0].empty()) {
      ADD_FAILURE() << "referral create printed: " << created.output;
      return "";
    }
    return lines[0];
  }

  // The case as `code` holds it, from `--json referral show`.
  static std::optional<v1::GetCaseResponse> ShowCase(const std::string& code,
                                                     const std::string& id) {
    CommandResult shown = Cli(code, {"--json", "referral", "show", id});
    if (shown.exit_code != 0) return std::nullopt;
    return ParseJson<v1::GetCaseResponse>(shown.output);
  }

  // How many cases `referral list` shows at `code`; -1 if it fails.
  static int CaseCount(const std::string& code) {
    CommandResult listed = Cli(code, {"--json", "referral", "list"});
    auto cases = ParseJson<v1::ListCasesResponse>(listed.output);
    if (listed.exit_code != 0 || !cases.has_value()) return -1;
    return cases->cases_size();
  }

  // Waits until node `code` holds case `id` at `state` and `version`.
  static bool WaitForCase(const std::string& code, const std::string& id,
                          v1::ReferralState state, uint64_t version) {
    std::optional<v1::GetCaseResponse> last;
    const bool reached = WaitFor(
        [&] {
          last = ShowCase(code, id);
          return last.has_value() && last->case_view().state() == state &&
                 last->case_view().version() == version;
        },
        absl::Seconds(20));
    EXPECT_TRUE(reached) << code << " never held case " << id << " at "
                         << v1::ReferralState_Name(state) << " version "
                         << version << "; last: "
                         << (last ? last->DebugString() : "nothing");
    return reached;
  }

  // Both sides hold the case at `state` and `version`.
  static bool WaitForBoth(const std::string& id, v1::ReferralState state,
                          uint64_t version) {
    return WaitForCase(kHandler, id, state, version) &&
           WaitForCase(kOrigin, id, state, version);
  }

  // Waits until node `code` holds evidence request `id` at `state`.
  static bool WaitForEvidence(const std::string& code, const std::string& id,
                              v1::EvidenceState state) {
    std::string last;
    const bool reached = WaitFor(
        [&] {
          CommandResult shown = Cli(code, {"--json", "evidence", "show", id});
          last = shown.output;
          auto response = ParseJson<v1::EvidenceResponse>(shown.output);
          return shown.exit_code == 0 && response.has_value() &&
                 response->evidence().state() == state;
        },
        absl::Seconds(20));
    EXPECT_TRUE(reached) << code << " never held evidence " << id << " at "
                         << v1::EvidenceState_Name(state) << "; last: " << last;
    return reached;
  }

  // Runs a step command at `code` and checks the line it prints:
  // "<id>  <state>  version <n>".
  static void ExpectStep(const std::string& code, std::vector<std::string> args,
                         const std::string& id, std::string_view state,
                         uint64_t version) {
    CommandResult step = Cli(code, args);
    ASSERT_EQ(step.exit_code, 0)
        << args[0] << " " << args[1] << ": " << step.output;
    EXPECT_EQ(step.output, Cat(id, "  ", state, "  version ", version, "\n"));
  }

  static TestNetwork* network_;
};

TestNetwork* CaseCliTest::network_ = nullptr;

TEST_F(CaseCliTest, ReferralWalksToClosedInTablesAndJson) {
  const std::string id = CreateCase();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForBoth(id, v1::REFERRAL_STATE_RECEIVED, 2));

  CommandResult shown = Cli(kHandler, {"referral", "show", id});
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_EQ(Field(shown.output, "state"), "received") << shown.output;
  EXPECT_EQ(Field(shown.output, "origin"), kOrigin) << shown.output;
  EXPECT_EQ(Field(shown.output, "handler"), kHandler) << shown.output;
  EXPECT_EQ(Field(shown.output, "case type"), "labour_contract");
  EXPECT_EQ(Field(shown.output, "applicants"), "1") << shown.output;
  // The detail view leaves out the applicants' personal data.
  EXPECT_FALSE(Contains(shown.output, "Chen Wei")) << shown.output;
  EXPECT_FALSE(Contains(shown.output, "350212199003041234")) << shown.output;

  // The handler asks for materials: the decision waits for the origin.
  ExpectStep(
      kHandler,
      {"referral", "request-materials", id, "--what", "the labour contract"},
      id, "materials_requested", 3);
  ASSERT_TRUE(
      WaitForCase(kOrigin, id, v1::REFERRAL_STATE_MATERIALS_REQUESTED, 3));
  shown = Cli(kOrigin, {"referral", "show", id});
  EXPECT_EQ(Field(shown.output, "reason"), "the labour contract")
      << shown.output;
  std::vector<std::string> rows = LinesWith(shown.output, "materials  ");
  ASSERT_EQ(rows.size(), 1u) << shown.output;
  EXPECT_TRUE(Contains(rows[0], kOrigin)) << rows[0];

  // The origin's supplement counts once the handler applies it; until then
  // the command shows the case as it stands.
  ExpectStep(kOrigin,
             {"referral", "supplement", id, "--note", "contract scanned"}, id,
             "materials_requested", 3);
  ASSERT_TRUE(WaitForBoth(id, v1::REFERRAL_STATE_RECEIVED, 4));

  ExpectStep(kHandler, {"referral", "accept", id}, id, "accepted", 5);
  ExpectStep(kHandler, {"referral", "assign", id}, id, "assigned", 6);
  ExpectStep(kHandler,
             {"referral", "close", id, "--outcome", "mediated", "--note",
              "employer paid 48000 yuan"},
             id, "closed", 7);
  ASSERT_TRUE(WaitForBoth(id, v1::REFERRAL_STATE_CLOSED, 7));

  // Both sides show the same closed case; the pool's labour lawyer was
  // chosen by case type.
  for (const char* code : {kHandler, kOrigin}) {
    shown = Cli(code, {"referral", "show", id});
    ASSERT_EQ(shown.exit_code, 0) << shown.output;
    EXPECT_EQ(Field(shown.output, "state"), "closed") << shown.output;
    EXPECT_EQ(Field(shown.output, "version"), "7") << shown.output;
    EXPECT_EQ(Field(shown.output, "lawyer"), "L-001  Li Na") << shown.output;
    EXPECT_EQ(Field(shown.output, "outcome"),
              "mediated: employer paid 48000 yuan")
        << shown.output;
    EXPECT_EQ(EventNames(shown.output),
              (std::vector<std::string>{"submitted", "received",
                                        "materials_requested", "supplemented",
                                        "accepted", "assigned", "closed"}))
        << shown.output;

    CommandResult listed = Cli(code, {"referral", "list"});
    ASSERT_EQ(listed.exit_code, 0) << listed.output;
    ASSERT_TRUE(listed.output.starts_with("CASE ")) << listed.output;
    rows = LinesWith(listed.output, id);
    ASSERT_EQ(rows.size(), 1u) << listed.output;
    EXPECT_EQ(Cells(rows[0]).at(1), "closed") << rows[0];
    EXPECT_EQ(Cells(rows[0]).at(2), "7") << rows[0];
  }

  // The handler's JSON carries the referral in clear for scripts.
  std::optional<v1::GetCaseResponse> json = ShowCase(kHandler, id);
  ASSERT_TRUE(json.has_value());
  EXPECT_EQ(json->case_view().outcome(), v1::CASE_OUTCOME_MEDIATED);
  EXPECT_EQ(json->case_view().lawyer_id(), "L-001");
  ASSERT_EQ(json->referral().applicants_size(), 1);
  EXPECT_EQ(json->referral().applicants(0).name(), "Chen Wei");
  EXPECT_EQ(json->referral().amount_claimed_fen(), 4800000);

  CommandResult listed = Cli(kOrigin, {"--json", "referral", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  auto cases = ParseJson<v1::ListCasesResponse>(listed.output);
  ASSERT_TRUE(cases.has_value()) << listed.output;
  bool found = false;
  for (const v1::CaseView& view : cases->cases()) {
    if (view.case_id() != id) continue;
    found = true;
    EXPECT_EQ(view.state(), v1::REFERRAL_STATE_CLOSED);
    EXPECT_EQ(view.handler(), kHandler);
  }
  EXPECT_TRUE(found) << listed.output;
}

TEST_F(CaseCliTest, StepJsonIsTheCaseResponse) {
  const std::string id = CreateCase();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForCase(kHandler, id, v1::REFERRAL_STATE_RECEIVED, 2));

  CommandResult accepted = Cli(kHandler, {"--json", "referral", "accept", id});
  ASSERT_EQ(accepted.exit_code, 0) << accepted.output;
  auto response = ParseJson<v1::CaseResponse>(accepted.output);
  ASSERT_TRUE(response.has_value()) << accepted.output;
  EXPECT_EQ(response->case_view().case_id(), id);
  EXPECT_EQ(response->case_view().state(), v1::REFERRAL_STATE_ACCEPTED);
  EXPECT_EQ(response->case_view().version(), 3u);
  ASSERT_EQ(response->case_view().deadlines_size(), 1);
  EXPECT_EQ(response->case_view().deadlines(0).stage(), "assignment");
  EXPECT_EQ(response->case_view().deadlines(0).owner(), kHandler);
}

TEST_F(CaseCliTest, BadReferralFileIsRefusedNamingFileAndField) {
  const int cases_before = CaseCount(kOrigin);
  ASSERT_GE(cases_before, 0);
  struct Case {
    std::string name;
    std::string json;
    // Besides the file's path, the message holds these.
    std::vector<std::string> pieces;
  };
  std::string misspelt = kReferralJson;
  misspelt.replace(misspelt.find("\"employer\""), 10, "\"employr\"");
  std::string bad_enum = kReferralJson;
  bad_enum.replace(bad_enum.find("CASE_TYPE_LABOUR_CONTRACT"), 25,
                   "CASE_TYPE_DIVORCE");
  std::string bad_number = kReferralJson;
  bad_number.replace(bad_number.find("4800000"), 7, "\"a lot\"");
  const std::vector<Case> cases = {
      {"misspelt.json", misspelt, {"employr"}},
      {"enum.json", bad_enum, {"case_type", "CASE_TYPE_DIVORCE"}},
      {"number.json", bad_number, {"amount_claimed_fen"}},
      {"syntax.json",
       "{\"case_type\": \"CASE_TYPE_OTHER\",,}",
       {"is not valid JSON", "line 1, column 33"}},
      {"empty.json", "  \n", {"is empty"}},
      {"applicants.json",
       "{\"case_type\": \"CASE_TYPE_OTHER\"}",
       {"applicants is empty"}},
  };
  for (const Case& c : cases) {
    const std::string path = WriteFile(c.name, c.json);
    CommandResult created =
        Cli(kOrigin, {"referral", "create", "--to", "350203", "--file", path});
    EXPECT_EQ(created.exit_code, 1) << c.name << ": " << created.output;
    EXPECT_TRUE(created.output.starts_with(Cat("caselink: ", path, ": ")))
        << c.name << ": " << created.output;
    for (const std::string& piece : c.pieces) {
      EXPECT_TRUE(Contains(created.output, piece))
          << c.name << ": want " << piece << "\ngot: " << created.output;
    }
    EXPECT_EQ(Lines(created.output).size(), 1u) << created.output;
  }
  const std::string missing = Cat(network_->root(), "/no-such-referral.json");
  CommandResult created =
      Cli(kOrigin, {"referral", "create", "--to", "350203", "--file", missing});
  EXPECT_EQ(created.exit_code, 1) << created.output;
  EXPECT_TRUE(Contains(created.output, Cat(missing, ": cannot open")))
      << created.output;

  // A file that parses but that the node refuses: the node names the
  // field, counting applicants from 1.
  std::string short_id = kReferralJson;
  short_id.replace(short_id.find("350212199003041234"), 18, "12345");
  created = Cli(kOrigin, {"referral", "create", "--to", "350203", "--file",
                          WriteFile("short-id.json", short_id)});
  EXPECT_EQ(created.exit_code, 1) << created.output;
  EXPECT_TRUE(
      Contains(created.output,
               "caselink: INVALID_ARGUMENT: referral.applicants[1].id_number"))
      << created.output;

  // None of these opened a case.
  EXPECT_EQ(CaseCount(kOrigin), cases_before);
}

TEST_F(CaseCliTest, IllegalStepExitsNonZeroNamingTheState) {
  const std::string id = CreateCase();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForBoth(id, v1::REFERRAL_STATE_RECEIVED, 2));

  struct Case {
    std::string code;
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {kHandler,
       {"referral", "assign", id},
       "caselink: FAILED_PRECONDITION: step assign is not allowed in state "
       "received"},
      {kHandler,
       {"referral", "close", id, "--outcome", "judged"},
       "caselink: FAILED_PRECONDITION: step close is not allowed in state "
       "received"},
      {kOrigin,
       {"referral", "supplement", id, "--note", "unasked"},
       "caselink: FAILED_PRECONDITION: step supplement is not allowed in "
       "state received"},
      {kOrigin,
       {"referral", "accept", id},
       Cat("caselink: FAILED_PRECONDITION: step accept is for the handler of "
           "case ",
           id)},
      {kCity,
       {"referral", "show", id},
       Cat("caselink: NOT_FOUND: no case ", id, " here")},
  };
  for (const Case& c : cases) {
    CommandResult result = Cli(c.code, c.args);
    EXPECT_EQ(result.exit_code, 1) << c.args[1] << ": " << result.output;
    EXPECT_TRUE(result.output.starts_with(c.message))
        << "want: " << c.message << "\ngot: " << result.output;
    EXPECT_EQ(Lines(result.output).size(), 1u) << result.output;
  }

  // Nothing moved, on either side.
  ASSERT_TRUE(WaitForBoth(id, v1::REFERRAL_STATE_RECEIVED, 2));
}

TEST_F(CaseCliTest, EvidenceRequestedCollectedAndConfirmed) {
  const std::string case_id = CreateCase();
  ASSERT_FALSE(case_id.empty());
  ASSERT_TRUE(WaitForCase(kHandler, case_id, v1::REFERRAL_STATE_RECEIVED, 2));

  // The handler asks the origin, where the worker lives, to collect.
  CommandResult requested =
      Cli(kHandler,
          {"evidence", "request", "--case", case_id, "--to", "350212", "--what",
           "attendance records", "--from", "the factory's office", "--where",
           "Tong'an", "--due-by", "2031-06-30T17:00:00+08:00"});
  ASSERT_EQ(requested.exit_code, 0) << requested.output;
  std::vector<std::string> lines = Lines(requested.output);
  ASSERT_EQ(lines.size(), 1u) << requested.output;
  const std::string id = lines[0];
  ASSERT_TRUE(WaitForEvidence(kOrigin, id, v1::EVIDENCE_STATE_REQUESTED));

  // The collector numbers the request it took in as version 2.
  CommandResult shown = Cli(kOrigin, {"evidence", "show", id});
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_EQ(Field(shown.output, "version"), "2") << shown.output;
  EXPECT_EQ(Field(shown.output, "case"), case_id) << shown.output;
  EXPECT_EQ(Field(shown.output, "state"), "requested") << shown.output;
  EXPECT_EQ(Field(shown.output, "requester"), kHandler) << shown.output;
  EXPECT_EQ(Field(shown.output, "collector"), kOrigin) << shown.output;
  EXPECT_EQ(Field(shown.output, "what"), "attendance records");
  EXPECT_EQ(Field(shown.output, "due by"), "2031-06-30T09:00:00Z");

  ExpectStep(kOrigin, {"evidence", "accept", id}, id, "accepted", 3);
  ExpectStep(kOrigin,
             {"evidence", "result", id, "--findings", "worked 2016 to 2024"},
             id, "result_sent", 4);
  ASSERT_TRUE(WaitForEvidence(kHandler, id, v1::EVIDENCE_STATE_RESULT_SENT));

  // The requester's confirmation counts once the collector applies it.
  ExpectStep(kHandler, {"evidence", "confirm", id, "--note", "thank you"}, id,
             "result_sent", 4);
  ASSERT_TRUE(WaitForEvidence(kOrigin, id, v1::EVIDENCE_STATE_CONFIRMED));
  ASSERT_TRUE(WaitForEvidence(kHandler, id, v1::EVIDENCE_STATE_CONFIRMED));

  shown = Cli(kHandler, {"evidence", "show", id});
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_EQ(Field(shown.output, "state"), "confirmed") << shown.output;
  EXPECT_EQ(Field(shown.output, "findings"), "worked 2016 to 2024");

  for (const char* code : {kHandler, kOrigin}) {
    CommandResult listed = Cli(code, {"evidence", "list"});
    ASSERT_EQ(listed.exit_code, 0) << listed.output;
    std::vector<std::string> rows = LinesWith(listed.output, id);
    ASSERT_EQ(rows.size(), 1u) << listed.output;
    std::vector<std::string> cells = Cells(rows[0]);
    ASSERT_GE(cells.size(), 5u) << rows[0];
    EXPECT_EQ(cells[1], case_id) << rows[0];
    EXPECT_EQ(cells[2], "confirmed") << rows[0];
    EXPECT_EQ(cells[3], kHandler) << rows[0];
    EXPECT_EQ(cells[4], kOrigin) << rows[0];
  }

  // A confirmed request takes no more findings.
  CommandResult again =
      Cli(kOrigin, {"evidence", "result", id, "--findings", "more"});
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_TRUE(Contains(again.output, "FAILED_PRECONDITION")) << again.output;
  EXPECT_TRUE(Contains(again.output, "confirmed")) << again.output;

  // The case lists its evidence request at the handler.
  std::optional<v1::GetCaseResponse> json = ShowCase(kHandler, case_id);
  ASSERT_TRUE(json.has_value());
  ASSERT_EQ(json->case_view().evidence_ids_size(), 1);
  EXPECT_EQ(json->case_view().evidence_ids(0), id);
}

TEST_F(CaseCliTest, DueListsTheDecisionHereAndInSuperiorsSubtrees) {
  const std::string id = CreateCase();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForCase(kHandler, id, v1::REFERRAL_STATE_RECEIVED, 2));

  // The decision is due in seven days: outside the default day, inside
  // eight.
  CommandResult due = Cli(kHandler, {"due"});
  ASSERT_EQ(due.exit_code, 0) << due.output;
  EXPECT_TRUE(DueRows(due.output, id).empty()) << due.output;

  due = Cli(kHandler, {"due", "--within", "8d"});
  ASSERT_EQ(due.exit_code, 0) << due.output;
  std::vector<std::vector<std::string>> rows = DueRows(due.output, id);
  ASSERT_EQ(rows.size(), 1u) << due.output;
  EXPECT_EQ(rows[0], (std::vector<std::string>{"soon", rows[0][1], "case", id,
                                               id, "decision", "received",
                                               "ordinary", kHandler, kHandler}))
      << due.output;

  // The city holds no case itself; its subtree does, and so does the
  // province's, through the city.
  due = Cli(kCity, {"due", "--within", "8d"});
  ASSERT_EQ(due.exit_code, 0) << due.output;
  EXPECT_TRUE(DueRows(due.output, id).empty()) << due.output;
  for (const char* code : {kCity, kProvince}) {
    due = Cli(code, {"due", "--within", "8d", "--subtree"});
    ASSERT_EQ(due.exit_code, 0) << due.output;
    EXPECT_FALSE(Contains(due.output, "no answer from")) << due.output;
    rows = DueRows(due.output, id);
    ASSERT_EQ(rows.size(), 1u) << code << ": " << due.output;
    EXPECT_EQ(rows[0][5], "decision") << due.output;

    CommandResult json =
        Cli(code, {"--json", "due", "--within", "8d", "--subtree"});
    ASSERT_EQ(json.exit_code, 0) << json.output;
    auto response = ParseJson<v1::ListDueResponse>(json.output);
    ASSERT_TRUE(response.has_value()) << json.output;
    EXPECT_TRUE(response->unreachable().empty()) << json.output;
    int found = 0;
    for (const v1::DueItem& item : response->items()) {
      if (item.id() != id) continue;
      ++found;
      EXPECT_FALSE(item.evidence());
      EXPECT_FALSE(item.overdue());
      EXPECT_EQ(item.stage(), "decision");
      EXPECT_EQ(item.owner(), kHandler);
      EXPECT_EQ(item.reported_by(), kHandler);
    }
    EXPECT_EQ(found, 1) << json.output;
  }

  // Once accepted, the decision is no longer due.
  ExpectStep(kHandler, {"referral", "accept", id}, id, "accepted", 3);
  due = Cli(kHandler, {"due", "--within", "8d"});
  ASSERT_EQ(due.exit_code, 0) << due.output;
  rows = DueRows(due.output, id);
  ASSERT_EQ(rows.size(), 1u) << due.output;
  EXPECT_EQ(rows[0][5], "assignment") << due.output;
}

TEST_F(CaseCliTest, DueSubtreeNamesAChildThatDoesNotAnswer) {
  const std::string id = CreateCase();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForBoth(id, v1::REFERRAL_STATE_RECEIVED, 2));

  // With the handler down the city still lists the decision, as the
  // origin's copy reports it, and says on stderr whose items are missing.
  ASSERT_EQ(network_->Stop(kHandler), 0);
  CommandResult due = Cli(kCity, {"due", "--within", "8d", "--subtree"});
  EXPECT_EQ(due.exit_code, 0) << due.output;
  EXPECT_EQ(LinesWith(due.output, "caselink: no answer from ").size(), 1u)
      << due.output;
  EXPECT_TRUE(Contains(
      due.output, Cat("caselink: no answer from ", kHandler, ": UNAVAILABLE")))
      << due.output;
  EXPECT_TRUE(Contains(due.output, "; its items are missing")) << due.output;
  std::vector<std::vector<std::string>> rows = DueRows(due.output, id);
  ASSERT_EQ(rows.size(), 1u) << due.output;
  EXPECT_EQ(rows[0][8], kHandler) << due.output;
  EXPECT_EQ(rows[0][9], kOrigin) << due.output;

  CommandResult json =
      Cli(kProvince, {"--json", "due", "--within", "8d", "--subtree"});
  EXPECT_EQ(json.exit_code, 0) << json.output;
  auto response = ParseJson<v1::ListDueResponse>(json.output);
  ASSERT_TRUE(response.has_value()) << json.output;
  ASSERT_EQ(response->unreachable_size(), 1) << json.output;
  EXPECT_TRUE(response->unreachable(0).starts_with(Cat(kHandler, ": ")))
      << json.output;

  // Back up, the handler answers for its own item again.
  ASSERT_TRUE(network_->Start(kHandler).ok());
  ASSERT_TRUE(network_->WaitForPeersConnected(kHandler));
  ASSERT_TRUE(network_->WaitForPeersConnected(kCity));
  due = Cli(kCity, {"due", "--within", "8d", "--subtree"});
  EXPECT_EQ(due.exit_code, 0) << due.output;
  EXPECT_FALSE(Contains(due.output, "no answer from")) << due.output;
  rows = DueRows(due.output, id);
  ASSERT_EQ(rows.size(), 1u) << due.output;
  EXPECT_EQ(rows[0][9], kHandler) << due.output;
}

TEST_F(CaseCliTest, UsageErrorsExitTwo) {
  const std::string file = WriteFile("usage.json", kReferralJson);
  const std::string id = "00000000000000000000000000000000";
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"referral"}, "A subcommand is required"},
      {{"referral", "create", "--file", file}, "--to is required"},
      {{"referral", "create", "--to", "350203"}, "--file is required"},
      {{"referral", "create", "--to", "35x", "--file", file}, "35x"},
      {{"referral", "show"}, "case is required"},
      {{"referral", "reject", id}, "--reason is required"},
      {{"referral", "close", id}, "--outcome is required"},
      {{"referral", "close", id, "--outcome", "won"},
       "\"won\" is not an outcome; use one of mediated, arbitrated"},
      {{"referral", "route", id, "--to", "99999x"}, "99999x"},
      {{"evidence", "request", "--case", id, "--to", "350212", "--what", "w",
        "--from", "f"},
       "--where is required"},
      {{"evidence", "request", "--case", id, "--to", "350212", "--what", "w",
        "--from", "f", "--where", "p", "--due-by", "tomorrow"},
       "tomorrow"},
      {{"evidence", "decline", id}, "--reason is required"},
      {{"evidence", "frobnicate"}, "A subcommand is required"},
      {{"due", "--within", "0d"}, "\"0d\" is not more than zero"},
      {{"due", "--within", "2w"}, "\"2w\" has a unit other than d, h, m or s"},
      {{"due", "--within", "400d"}, "is longer than 366 days"},
  };
  for (const Case& c : cases) {
    CommandResult result = Cli(kOrigin, c.args);
    EXPECT_EQ(result.exit_code, 2) << c.args[0] << ": " << result.output;
    EXPECT_TRUE(result.output.starts_with("caselink: ")) << result.output;
    EXPECT_TRUE(Contains(result.output, c.message))
        << "want: " << c.message << "\ngot: " << result.output;
  }
}

TEST_F(CaseCliTest, AuditCommandsVerifyAndNameATamperedEntry) {
  const std::string id = CreateCase();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitForBoth(id, v1::REFERRAL_STATE_RECEIVED, 2));

  // A fetched history is verified before it is shown.
  CommandResult history = AuditorCli(kOrigin, {"audit", "history", id});
  ASSERT_EQ(history.exit_code, 0) << history.output;
  EXPECT_NE(history.output.find("verified:"), std::string::npos)
      << history.output;

  // An export verifies offline, and stops verifying once one entry in it
  // is edited.
  const std::string jsonl = Cat(network_->root(), "/history.jsonl");
  CommandResult exported = AuditorCli(
      kOrigin,
      {"audit", "export", "--case", id, "--format", "jsonl", "--out", jsonl});
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  CommandResult verified = AuditorCli(kOrigin, {"audit", "verify", jsonl});
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  std::ifstream in(jsonl);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_GE(lines.size(), 3u);
  // The second entry: flip one hex digit of its event bytes.
  std::string& entry = lines[2];
  size_t at = entry.find("\"event\":\"");
  ASSERT_NE(at, std::string::npos) << entry;
  at += 12;
  entry[at] = entry[at] == '0' ? '1' : '0';
  const std::string edited = WriteFile("edited.jsonl", [&] {
    std::string text;
    for (const std::string& line : lines) text += line + "\n";
    return text;
  }());
  CommandResult refused = AuditorCli(kOrigin, {"audit", "verify", edited});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("entry "), std::string::npos) << refused.output;

  const std::string csv = Cat(network_->root(), "/log.csv");
  CommandResult table =
      AuditorCli(kOrigin, {"audit", "export", "--format", "csv", "--out", csv});
  ASSERT_EQ(table.exit_code, 0) << table.output;
  std::ifstream csv_in(csv);
  std::string header;
  std::getline(csv_in, header);
  EXPECT_NE(header.find("index"), std::string::npos) << header;

  // Change one stored event in the origin's RocksDB: the fetched history
  // no longer verifies, and the error names the entry.
  CommandResult before = AuditorCli(kOrigin, {"audit", "history", id});
  ASSERT_EQ(before.exit_code, 0);
  ASSERT_EQ(network_->Stop(kOrigin), 0);
  uint64_t changed = 0;
  {
    auto store = storage::Store::Open(network_->DataDir(kOrigin));
    ASSERT_TRUE(store.ok()) << store.status();
    // The first event of the case, found through the case index.
    std::string index_key;
    ASSERT_TRUE((*store)
                    ->Scan(storage::Family::kAudit, Cat("x/c/", id),
                           [&](std::string_view key, std::string_view) {
                             index_key = std::string(key);
                             return false;
                           })
                    .ok());
    ASSERT_FALSE(index_key.empty());
    std::string_view tail =
        std::string_view(index_key).substr(index_key.size() - 8);
    changed = *storage::ReadUint64BE(&tail);
    std::string leaf = "l/";
    storage::AppendUint64BE(&leaf, changed);
    auto value = (*store)->Get(storage::Family::kAudit, leaf);
    ASSERT_TRUE(value.ok() && value->has_value());
    std::string bytes = **value;
    bytes.back() ^= 0x01;
    storage::Batch batch = (*store)->NewBatch();
    batch.Put(storage::Family::kAudit, leaf, bytes);
    ASSERT_TRUE((*store)->Commit(batch).ok());
  }
  ASSERT_TRUE(network_->Start(kOrigin).ok());
  ASSERT_TRUE(WaitForDirectories());
  CommandResult after = AuditorCli(kOrigin, {"audit", "history", id});
  EXPECT_EQ(after.exit_code, 1) << after.output;
  EXPECT_NE(after.output.find(Cat("entry ", changed)), std::string::npos)
      << after.output;
}

TEST_F(CaseCliTest, AuditAndCaseCommandsKeepToTheirRoles) {
  CommandResult as_operator = Cli(kOrigin, {"audit", "head"});
  EXPECT_EQ(as_operator.exit_code, 1);
  EXPECT_NE(as_operator.output.find("PERMISSION_DENIED"), std::string::npos)
      << as_operator.output;
  CommandResult head = AuditorCli(kOrigin, {"audit", "head", "--fresh"});
  EXPECT_EQ(head.exit_code, 0) << head.output;
  CommandResult as_auditor = AuditorCli(kOrigin, {"referral", "list"});
  EXPECT_EQ(as_auditor.exit_code, 1);
  EXPECT_NE(as_auditor.output.find("PERMISSION_DENIED"), std::string::npos)
      << as_auditor.output;
  const std::string file = WriteFile("auditor-referral.json", kReferralJson);
  CommandResult create = AuditorCli(
      kOrigin, {"referral", "create", "--to", "350203", "--file", file});
  EXPECT_EQ(create.exit_code, 1);
  EXPECT_NE(create.output.find("PERMISSION_DENIED"), std::string::npos)
      << create.output;
}

}  // namespace
}  // namespace caselink::testing
