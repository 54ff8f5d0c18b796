// The caselink CLI driven as an operator would, against two real nodes:
// Tong'an County (350212) and its parent, Xiamen City (3502).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/strings.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/network.h"

namespace caselink::testing {
namespace {

constexpr char kCounty[] = "350212";
constexpr char kCity[] = "3502";
// A message id no node ever made.
constexpr char kUnknownId[] = "00000000000000000000000000000000";

bool Contains(const std::string& text, std::string_view piece) {
  return text.find(piece) != std::string::npos;
}

// The lines of `text` that contain `piece`.
std::vector<std::string> LinesWith(const std::string& text,
                                   std::string_view piece) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (Contains(line, piece)) lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

// Parses one JSON object, as the CLI prints it with --json.
bool ParseJson(const std::string& text, google::protobuf::Struct* out) {
  return google::protobuf::util::JsonStringToMessage(text, out).ok();
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto network = TestNetwork::Create(
        {{kCounty, "Tong'an County Justice Bureau", {kCity}, ""},
         {kCity, "Xiamen City Justice Bureau", {kCounty}, ""}});
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = network->release();
    absl::Status started = network_->StartAll();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_TRUE(network_->WaitForPeersConnected(kCounty));
    ASSERT_TRUE(network_->WaitForPeersConnected(kCity));
  }

  static void TearDownTestSuite() {
    delete network_;
    network_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(network_, nullptr) << "the test network did not start";
  }

  // Runs `caselink --config <operator config of code> args...`.
  static CommandResult Cli(const std::string& code,
                           std::vector<std::string> args) {
    std::vector<std::string> argv = {CaselinkCliPath(), "--config",
                                     network_->ClientConfigPath(code)};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  // Sends a referral from Tong'an to Xiamen and returns its id in hex, or
  // an empty string after recording a failure.
  static std::string SendToCity(const std::string& payload,
                                std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"send",      "--to",      "350200",
                                     "--kind",    "referral",  "--case",
                                     "TA-2025-7", "--payload", payload};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult result = Cli(kCounty, args);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    if (result.exit_code != 0 || result.output.size() != 33 ||
        result.output.back() != '\n') {
      ADD_FAILURE() << "send printed: " << result.output;
      return "";
    }
    return result.output.substr(0, 32);
  }

  static void ExpectDelivered(const std::string& id) {
    CommandResult wait =
        Cli(kCounty, {"sent", "--wait", id, "--timeout", "30"});
    EXPECT_EQ(wait.exit_code, 0) << wait.output;
    EXPECT_EQ(wait.output, "delivered\n");
  }

  static TestNetwork* network_;
};

TestNetwork* CliTest::network_ = nullptr;

TEST_F(CliTest, SendThenReadAtRecipient) {
  const std::string payload = "Referral of wage arrears case: 12 workers";
  const std::string id = SendToCity(payload);
  ASSERT_FALSE(id.empty());
  ExpectDelivered(id);

  CommandResult details = Cli(kCounty, {"sent", id});
  ASSERT_EQ(details.exit_code, 0) << details.output;
  EXPECT_TRUE(Contains(details.output, "delivered")) << details.output;
  EXPECT_TRUE(Contains(details.output, "350212000000 -> 350200000000"))
      << details.output;
  EXPECT_TRUE(Contains(details.output, "held, signed by key "))
      << details.output;
  EXPECT_TRUE(Contains(details.output, ", received ")) << details.output;

  CommandResult inbox = Cli(kCity, {"inbox"});
  ASSERT_EQ(inbox.exit_code, 0) << inbox.output;
  std::vector<std::string> rows = LinesWith(inbox.output, id);
  ASSERT_EQ(rows.size(), 1u) << inbox.output;
  EXPECT_TRUE(Contains(rows[0], "350212000000")) << rows[0];
  EXPECT_TRUE(Contains(rows[0], "referral")) << rows[0];
  EXPECT_TRUE(Contains(rows[0], "TA-2025-7")) << rows[0];

  CommandResult raw = Cli(kCity, {"read", id, "--payload-only"});
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  EXPECT_EQ(raw.output, payload);

  CommandResult read = Cli(kCity, {"read", id});
  ASSERT_EQ(read.exit_code, 0) << read.output;
  EXPECT_TRUE(Contains(read.output, "from        350212000000")) << read.output;
  EXPECT_TRUE(Contains(read.output, "\n" + payload + "\n")) << read.output;

  CommandResult handled = Cli(kCity, {"handled", id});
  ASSERT_EQ(handled.exit_code, 0) << handled.output;
  CommandResult unhandled = Cli(kCity, {"inbox", "--unhandled"});
  ASSERT_EQ(unhandled.exit_code, 0) << unhandled.output;
  EXPECT_FALSE(Contains(unhandled.output, id)) << unhandled.output;
  inbox = Cli(kCity, {"inbox"});
  rows = LinesWith(inbox.output, id);
  ASSERT_EQ(rows.size(), 1u) << inbox.output;
  EXPECT_TRUE(Contains(rows[0], "yes")) << rows[0];
}

TEST_F(CliTest, JsonOutputParses) {
  CommandResult send =
      Cli(kCounty, {"--json", "send", "--to", "350200", "--kind", "status",
                    "--payload", "status update"});
  ASSERT_EQ(send.exit_code, 0) << send.output;
  google::protobuf::Struct sent;
  ASSERT_TRUE(ParseJson(send.output, &sent)) << send.output;
  ASSERT_TRUE(sent.fields().contains("message_id")) << send.output;
  const std::string id = sent.fields().at("message_id").string_value();
  ASSERT_EQ(id.size(), 32u) << send.output;
  ExpectDelivered(id);

  struct Case {
    std::string code;
    std::vector<std::string> args;
    std::string key;
  };
  const std::vector<Case> cases = {
      {kCounty, {"--json", "sent"}, "messages"},
      {kCounty, {"--json", "sent", id}, "message"},
      {kCounty, {"sent", "--json", "--wait", id}, "message"},
      {kCity, {"--json", "inbox"}, "messages"},
      {kCity, {"--json", "inbox", "--unhandled"}, "messages"},
      {kCity, {"--json", "read", id}, "payload"},
      {kCity, {"--json", "handled", id}, ""},
      {kCounty, {"--json", "status"}, "peers"},
  };
  for (const Case& c : cases) {
    CommandResult result = Cli(c.code, c.args);
    ASSERT_EQ(result.exit_code, 0) << c.args[1] << ": " << result.output;
    google::protobuf::Struct json;
    ASSERT_TRUE(ParseJson(result.output, &json)) << result.output;
    if (!c.key.empty()) {
      EXPECT_TRUE(json.fields().contains(c.key)) << result.output;
    }
    if (c.args[1] != "status" && c.args[1] != "handled") {
      // Ids are shown as the CLI accepts them, in hex.
      EXPECT_TRUE(Contains(result.output, Cat("\"message_id\":\"", id, "\"")))
          << result.output;
    }
  }
}

TEST_F(CliTest, GreenChannelShowsAsGreen) {
  const std::string green = SendToCity("urgent: work injury", {"--green"});
  const std::string ordinary = SendToCity("routine supplement");
  ASSERT_FALSE(green.empty());
  ASSERT_FALSE(ordinary.empty());

  CommandResult sent = Cli(kCounty, {"sent"});
  ASSERT_EQ(sent.exit_code, 0) << sent.output;
  EXPECT_TRUE(Contains(sent.output, "PRIORITY")) << sent.output;
  std::vector<std::string> rows = LinesWith(sent.output, green);
  ASSERT_EQ(rows.size(), 1u) << sent.output;
  EXPECT_TRUE(Contains(rows[0], " green ")) << rows[0];
  rows = LinesWith(sent.output, ordinary);
  ASSERT_EQ(rows.size(), 1u) << sent.output;
  EXPECT_TRUE(Contains(rows[0], " ordinary ")) << rows[0];

  // Oldest first.
  EXPECT_LT(sent.output.find(green), sent.output.find(ordinary));
}

TEST_F(CliTest, ListingsNeverShowPayloads) {
  const std::string payload = "Zhang San, ID 350212199001011234";
  const std::string id = SendToCity(payload);
  ASSERT_FALSE(id.empty());
  ExpectDelivered(id);
  for (const auto& [code, args] :
       std::vector<std::pair<std::string, std::vector<std::string>>>{
           {kCounty, {"sent"}},
           {kCounty, {"sent", id}},
           {kCounty, {"--json", "sent"}},
           {kCity, {"inbox"}},
           {kCity, {"--json", "inbox"}}}) {
    CommandResult result = Cli(code, args);
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_FALSE(Contains(result.output, "350212199001011234"))
        << result.output;
  }
}

TEST_F(CliTest, BinaryPayloadFromFileIsNotPrintedAsText) {
  const std::string path = network_->root() + "/scan.bin";
  const std::string payload("\x1b[2J\x00\xff\xfe binary", 13);
  std::ofstream(path, std::ios::binary) << payload;
  CommandResult send =
      Cli(kCounty, {"send", "--to", "350200", "--kind", "evidence-result",
                    "--payload-file", path});
  ASSERT_EQ(send.exit_code, 0) << send.output;
  const std::string id = send.output.substr(0, 32);
  ExpectDelivered(id);

  CommandResult read = Cli(kCity, {"read", id});
  ASSERT_EQ(read.exit_code, 0) << read.output;
  EXPECT_TRUE(Contains(read.output, "13 bytes, not plain text")) << read.output;
  EXPECT_FALSE(Contains(read.output, "\x1b[2J")) << read.output;
  EXPECT_TRUE(Contains(read.output, "1b 5b 32 4a 00 ff fe")) << read.output;

  CommandResult raw = Cli(kCity, {"read", id, "--payload-only"});
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  EXPECT_EQ(raw.output, payload);
}

TEST_F(CliTest, ReplyAndDeadlineReachTheRecipient) {
  const std::string first = SendToCity("original referral");
  ASSERT_FALSE(first.empty());
  CommandResult reply =
      Cli(kCounty,
          {"send", "--to", "3502", "--kind", "supplement", "--reply-to", first,
           "--deadline", "2031-06-30T17:00:00+08:00", "--payload", "more"});
  ASSERT_EQ(reply.exit_code, 0) << reply.output;
  const std::string id = reply.output.substr(0, 32);
  ExpectDelivered(id);

  CommandResult header = Cli(kCity, {"read", id});
  ASSERT_EQ(header.exit_code, 0) << header.output;
  EXPECT_TRUE(Contains(header.output, Cat("in reply to ", first)))
      << header.output;
  EXPECT_TRUE(Contains(header.output, "deadline    2031-06-30"))
      << header.output;
  EXPECT_TRUE(Contains(header.output, "supplement")) << header.output;
}

TEST_F(CliTest, BadInputsAreRefusedWithTheReason) {
  struct Case {
    std::string code;
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {kCounty,
       {"send", "--to", "3502x", "--kind", "referral", "--payload", "x"},
       "caselink: --to: division code \"3502x\" is not"},
      {kCounty,
       {"send", "--to", "3502", "--kind", "gossip", "--payload", "x"},
       "caselink: --kind: \"gossip\" is not a message kind; use one of "
       "referral, decision"},
      {kCounty,
       {"send", "--to", "3502", "--kind", "referral", "--reply-to", "abc",
        "--payload", "x"},
       "caselink: --reply-to: message id \"abc\" is not 32 hex digits"},
      {kCounty,
       {"send", "--to", "3502", "--kind", "referral", "--deadline", "tomorrow",
        "--payload", "x"},
       "caselink: --deadline: \"tomorrow\" is not an RFC 3339 time"},
      {kCounty,
       {"send", "--to", "350212", "--kind", "referral", "--payload", "x"},
       "caselink: INVALID_ARGUMENT: recipient: a node does not send"},
      {kCounty,
       {"send", "--to", "3502", "--kind", "referral", "--payload-file",
        "/nonexistent/scan.pdf"},
       "caselink: --payload-file: cannot open \"/nonexistent/scan.pdf\""},
      {kCity, {"read", "zz"}, "caselink: message id \"zz\" is not 32 hex"},
      {kCity, {"handled", "zz"}, "caselink: message id \"zz\" is not 32 hex"},
      {kCounty, {"sent", "zz"}, "caselink: message id \"zz\" is not 32 hex"},
      {kCity, {"read", kUnknownId}, "caselink: NOT_FOUND: no message "},
      {kCity, {"handled", kUnknownId}, "caselink: NOT_FOUND: no message "},
      {kCounty, {"sent", kUnknownId}, "caselink: NOT_FOUND: no message "},
  };
  for (const Case& c : cases) {
    CommandResult result = Cli(c.code, c.args);
    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_TRUE(Contains(result.output, c.message))
        << "want: " << c.message << "\ngot: " << result.output;
    EXPECT_EQ(LinesWith(result.output, "").size(), 1u) << result.output;
  }
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {"send", "--to", "3502", "--kind", "referral"},
      {"send", "--to", "3502", "--kind", "referral", "--payload", "x",
       "--payload-file", "/dev/null"},
      {"send", "--kind", "referral", "--payload", "x"},
      {"read"},
      {"sent", "--wait"},
      {"sent", "--wait", kUnknownId, "--timeout", "-3"},
      {"frobnicate"},
  };
  for (const auto& args : cases) {
    CommandResult result = Cli(kCounty, args);
    EXPECT_EQ(result.exit_code, 2) << args[0] << ": " << result.output;
    EXPECT_TRUE(Contains(result.output, "caselink: ")) << result.output;
  }
}

TEST_F(CliTest, SendToNodeWithUnknownSealingKeyIsRefused) {
  // Tong'an knows no key to seal a payload for Sichuan (51) to: it is in
  // no directory Tong'an holds and has never linked with it.
  CommandResult send = Cli(
      kCounty, {"send", "--to", "51", "--kind", "referral", "--payload", "x"});
  EXPECT_EQ(send.exit_code, 1) << send.output;
  EXPECT_TRUE(Contains(send.output, "no sealing key known for 510000000000"))
      << send.output;
  CommandResult sent = Cli(kCounty, {"sent"});
  EXPECT_TRUE(LinesWith(sent.output, "510000000000").empty()) << sent.output;
}

TEST_F(CliTest, WaitTimesOutWhileUndelivered) {
  // With Xiamen down the message stays in Tong'an's outbox.
  ASSERT_EQ(network_->Stop(kCity), 0);
  CommandResult send = Cli(kCounty, {"send", "--to", "3502", "--kind",
                                     "referral", "--payload", "x"});
  ASSERT_EQ(send.exit_code, 0) << send.output;
  const std::string id = send.output.substr(0, 32);
  CommandResult wait = Cli(kCounty, {"sent", "--wait", id, "--timeout", "1"});
  EXPECT_EQ(wait.exit_code, 1) << wait.output;
  EXPECT_TRUE(Contains(
      wait.output, Cat("caselink: message ", id, " is still queued after 1s")))
      << wait.output;

  // Once Xiamen is back, the message goes through.
  ASSERT_TRUE(network_->Start(kCity).ok());
  ExpectDelivered(id);
}

}  // namespace
}  // namespace caselink::testing
