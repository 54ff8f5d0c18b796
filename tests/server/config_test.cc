#include "server/config.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace caselink::server {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    // Each test runs in its own process, perhaps beside the others.
    std::string path =
        ::testing::TempDir() + "/config_test_" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
        std::to_string(counter_++) + ".yaml";
    std::ofstream(path) << text;
    return path;
  }

  static constexpr const char* kValid =
      "node:\n  code: \"350212\"\n  name: Tong'an\n"
      "listen: 127.0.0.1:7001\ndata_dir: data\n"
      "tls:\n  cert: tls.crt\n  key: tls.key\n  ca_bundle: /pki/ca.pem\n"
      "peers:\n  - code: \"3502\"\n    address: 127.0.0.1:7002\n";

  int counter_ = 0;
};

TEST_F(ConfigTest, ValidConfigIsReadWithPaddedCodesAndResolvedPaths) {
  std::string path = Write(kValid);
  auto config = LoadNodeConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->code, "350212000000");
  EXPECT_EQ(config->name, "Tong'an");
  ASSERT_EQ(config->peers.size(), 1u);
  EXPECT_EQ(config->peers[0].code, "350200000000");
  EXPECT_EQ(config->data_dir,
            std::filesystem::path(::testing::TempDir() + "/data")
                .lexically_normal()
                .string());
  EXPECT_EQ(config->ca_bundle, "/pki/ca.pem");
  // Without a signing section the node signs with its TLS key.
  EXPECT_EQ(config->signing_key, config->tls_key);
}

TEST_F(ConfigTest, PreviousKeysAreListedAfterARotation) {
  std::string path =
      Write(std::string(kValid) +
            "signing:\n  cert: sign.crt\n  key: sign.key\n"
            "  previous: [sign.prev-1.crt, /old/sign.prev-2.crt]\n"
            "sealing:\n  cert: seal.crt\n  key: seal.key\n"
            "  previous: [seal.prev-3.key]\n");
  auto config = LoadNodeConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  // Reloads read the same file again.
  EXPECT_EQ(config->path, path);
  const std::string dir = ::testing::TempDir();
  auto resolved = [&](const std::string& name) {
    return std::filesystem::path(dir + "/" + name).lexically_normal().string();
  };
  EXPECT_EQ(config->previous_signing_certs,
            (std::vector<std::string>{resolved("sign.prev-1.crt"),
                                      "/old/sign.prev-2.crt"}));
  EXPECT_EQ(config->previous_sealing_keys,
            std::vector<std::string>{resolved("seal.prev-3.key")});
}

TEST_F(ConfigTest, EachMistakeIsReportedWithLineAndSetting) {
  struct Case {
    std::string text;
    std::string expected;
  };
  std::string valid = kValid;
  std::vector<Case> cases = {
      {"node: [1, 2\n", "not valid YAML"},
      {"- a\n- b\n", "top level must be a mapping"},
      {valid + "colour: blue\n", "line 13: colour: unknown setting"},
      {"listen: x\n", "node: missing"},
      {"node:\n  code: \"3502x\"\n", "line 2: node.code: division code"},
      {valid + "  - code: \"3502\"\n    address: 127.0.0.1:7003\n",
       "peers[1].code: peer 350200000000 is listed more than once"},
      {valid + "  - code: \"350212\"\n    address: 127.0.0.1:7003\n",
       "peers[1].code: a node cannot be its own peer"},
      {valid + "  - code: \"35\"\n", "peers[1].address: missing"},
      {valid + "delivery:\n  window: lots\n",
       "delivery.window: \"lots\" is not a whole number"},
      {valid + "log_level: loud\n", "log_level: \"loud\" is not debug"},
  };
  for (const Case& c : cases) {
    std::string path = Write(c.text);
    auto config = LoadNodeConfig(path);
    ASSERT_FALSE(config.ok()) << c.text;
    std::string message(config.status().message());
    EXPECT_NE(message.find(c.expected), std::string::npos)
        << "got: " << message << "\nwanted: " << c.expected;
    EXPECT_NE(message.find(path), std::string::npos) << message;
  }
}

TEST_F(ConfigTest, ShippedExampleConfigIsValid) {
  auto config = LoadNodeConfig(std::string(CASELINK_SOURCE_DIR) +
                               "/deploy/node.example.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->code, "350212000000");
  EXPECT_EQ(config->peers.size(), 1u);
  EXPECT_EQ(config->delivery.window, 1024u);
}

TEST_F(ConfigTest, WorkflowSectionIsReadFully) {
  std::string path = Write(std::string(kValid) +
                           "workflow:\n"
                           "  time_limits:\n"
                           "    ordinary: {decision: 5d, materials: 36h}\n"
                           "    green_channel: {decision: 90m, assignment: "
                           "45s,\n"
                           "                    materials: 2d, evidence: 1d}\n"
                           "  due_soon: 36h\n"
                           "  check_interval: 45s\n"
                           "  max_attachment_bytes: 4294967296\n"
                           "  lawyers:\n"
                           "    - id: \"L-001\"\n"
                           "      name: \"Chen Jing\"\n"
                           "      case_types: [unpaid_wages, work_injury]\n"
                           "    - id: \"L-002\"\n"
                           "      name: \"Lin Wei\"\n"
                           "      case_types: [other]\n"
                           "  minimum_living_allowance:\n"
                           "    - region: \"35\"\n"
                           "      yuan: \"800\"\n"
                           "    - region: \"350212\"\n"
                           "      yuan: \"900.50\"\n"
                           "    - region: \"3502\"\n"
                           "      yuan: 850.5\n");
  auto config = LoadNodeConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  const WorkflowConfig& workflow = config->workflow;

  // Stages a section leaves out keep their defaults.
  EXPECT_EQ(workflow.ordinary.decision, absl::Hours(5 * 24));
  EXPECT_EQ(workflow.ordinary.assignment, absl::Hours(3 * 24));
  EXPECT_EQ(workflow.ordinary.materials, absl::Hours(36));
  EXPECT_EQ(workflow.ordinary.evidence, absl::Hours(15 * 24));
  EXPECT_EQ(workflow.green_channel.decision, absl::Minutes(90));
  EXPECT_EQ(workflow.green_channel.assignment, absl::Seconds(45));
  EXPECT_EQ(workflow.green_channel.materials, absl::Hours(2 * 24));
  EXPECT_EQ(workflow.green_channel.evidence, absl::Hours(24));
  EXPECT_EQ(workflow.due_soon, absl::Hours(36));
  EXPECT_EQ(workflow.check_interval, absl::Seconds(45));
  EXPECT_EQ(workflow.max_attachment_bytes, uint64_t{4} << 30);

  ASSERT_EQ(workflow.lawyers.size(), 2u);
  EXPECT_EQ(workflow.lawyers[0].id, "L-001");
  EXPECT_EQ(workflow.lawyers[0].name, "Chen Jing");
  EXPECT_EQ(workflow.lawyers[0].case_types,
            (std::vector<v1::CaseType>{v1::CASE_TYPE_UNPAID_WAGES,
                                       v1::CASE_TYPE_WORK_INJURY}));
  EXPECT_EQ(workflow.lawyers[1].id, "L-002");
  EXPECT_EQ(workflow.lawyers[1].case_types,
            std::vector<v1::CaseType>{v1::CASE_TYPE_OTHER});

  ASSERT_EQ(workflow.allowances.size(), 3u);
  EXPECT_EQ(workflow.allowances[0].region, "350000000000");
  EXPECT_EQ(workflow.allowances[0].monthly_fen, 80000);
  EXPECT_EQ(workflow.allowances[1].region, "350212000000");
  EXPECT_EQ(workflow.allowances[1].monthly_fen, 90050);
  EXPECT_EQ(workflow.allowances[2].region, "350200000000");
  EXPECT_EQ(workflow.allowances[2].monthly_fen, 85050);
}

TEST_F(ConfigTest, WithoutWorkflowSectionTheLegalDefaultsApply) {
  auto config = LoadNodeConfig(Write(kValid));
  ASSERT_TRUE(config.ok()) << config.status();
  const WorkflowConfig& workflow = config->workflow;
  EXPECT_EQ(workflow.ordinary.decision, absl::Hours(7 * 24));
  EXPECT_EQ(workflow.ordinary.assignment, absl::Hours(3 * 24));
  EXPECT_EQ(workflow.green_channel.decision, absl::Hours(3 * 24));
  EXPECT_EQ(workflow.due_soon, absl::Hours(24));
  EXPECT_EQ(workflow.check_interval, absl::Seconds(60));
  EXPECT_EQ(workflow.max_attachment_bytes, uint64_t{64} << 20);
  EXPECT_TRUE(workflow.lawyers.empty());
  EXPECT_TRUE(workflow.allowances.empty());
}

TEST_F(ConfigTest, EachWorkflowMistakeNamesItsSetting) {
  struct Case {
    std::string text;  // Follows "workflow:\n".
    std::string expected;
  };
  const std::string lawyer =
      "  lawyers:\n    - id: L-1\n      name: Chen\n"
      "      case_types: [other]\n";
  const std::string allowance =
      "  minimum_living_allowance:\n    - region: \"35\"\n      yuan: "
      "\"800\"\n";
  const std::vector<Case> cases = {
      {"  colour: blue\n", "line 14: workflow.colour: unknown setting"},
      {"  time_limits:\n    express: {decision: 1d}\n",
       "workflow.time_limits.express: unknown setting"},
      {"  time_limits:\n    ordinary: {review: 1d}\n",
       "workflow.time_limits.ordinary.review: unknown setting"},
      {"  time_limits:\n    ordinary: 7d\n",
       "workflow.time_limits.ordinary: must be a mapping"},
      {"  time_limits:\n    ordinary: {decision: 7}\n",
       "workflow.time_limits.ordinary.decision: \"7\" is not a duration"},
      {"  time_limits:\n    green_channel: {evidence: 2w}\n",
       "workflow.time_limits.green_channel.evidence: \"2w\" is not a "
       "duration"},
      {"  time_limits:\n    ordinary: {assignment: 1.5h}\n",
       "workflow.time_limits.ordinary.assignment: \"1.5h\" is not a duration"},
      {"  time_limits:\n    ordinary: {materials: -1d}\n",
       "workflow.time_limits.ordinary.materials: \"-1d\" is not a duration"},
      {"  time_limits:\n    ordinary: {decision: 0d}\n",
       "workflow.time_limits.ordinary.decision: \"0d\" must be longer than "
       "zero"},
      {"  time_limits:\n    ordinary: {decision: 3651d}\n",
       "workflow.time_limits.ordinary.decision: \"3651d\" is longer than "
       "3650 days"},
      {"  due_soon: 99999999999999999999999s\n",
       "workflow.due_soon: \"99999999999999999999999s\" is longer than"},
      {"  due_soon: soon\n", "line 14: workflow.due_soon: \"soon\" is not a"},
      {"  check_interval: 0s\n",
       "workflow.check_interval: \"0s\" must be longer than zero"},
      {"  check_interval: [60s]\n",
       "workflow.check_interval: must be a single value"},
      {"  max_attachment_bytes: 0\n",
       "workflow.max_attachment_bytes: must be at least 1"},
      {"  max_attachment_bytes: 4294967297\n",
       "workflow.max_attachment_bytes: 4294967297 is larger than 4294967296"},
      {"  max_attachment_bytes: 64MB\n",
       "workflow.max_attachment_bytes: \"64MB\" is not a whole number"},
      {"  lawyers:\n    - name: Chen\n      case_types: [other]\n",
       "workflow.lawyers[0].id: missing"},
      {"  lawyers:\n    - id: L-1\n      case_types: [other]\n",
       "workflow.lawyers[0].name: missing"},
      {lawyer + "    - id: L-1\n      name: Lin\n      case_types: [other]\n",
       "workflow.lawyers[1].id: lawyer L-1 is listed more than once"},
      {"  lawyers:\n    - id: L-1\n      name: Chen\n",
       "workflow.lawyers[0].case_types: must name at least one case type"},
      {"  lawyers:\n    - id: L-1\n      name: Chen\n      case_types: []\n",
       "workflow.lawyers[0].case_types: must name at least one case type"},
      {"  lawyers:\n    - id: L-1\n      name: Chen\n"
       "      case_types: [other, wages]\n",
       "workflow.lawyers[0].case_types: case type \"wages\" is not "
       "unpaid_wages"},
      {"  lawyers:\n    - id: L-1\n      name: Chen\n"
       "      case_types: [other, other]\n",
       "workflow.lawyers[0].case_types: other is listed more than once"},
      {lawyer + "      phone: \"13800138000\"\n",
       "workflow.lawyers[0].phone: unknown setting"},
      {"  lawyers: L-1\n", "workflow.lawyers: must be a list"},
      {"  minimum_living_allowance:\n    - region: \"3x\"\n      yuan: 800\n",
       "workflow.minimum_living_allowance[0].region: division code \"3x\""},
      {"  minimum_living_allowance:\n    - yuan: 800\n",
       "workflow.minimum_living_allowance[0].region: missing"},
      {allowance + "    - region: \"350000000000\"\n      yuan: \"700\"\n",
       "workflow.minimum_living_allowance[1].region: region 350000000000 is "
       "listed more than once"},
      {"  minimum_living_allowance:\n    - region: \"35\"\n",
       "workflow.minimum_living_allowance[0].yuan: missing"},
      {allowance + "      monthly: true\n",
       "workflow.minimum_living_allowance[0].monthly: unknown setting"},
  };
  for (const Case& c : cases) {
    std::string path = Write(std::string(kValid) + "workflow:\n" + c.text);
    auto config = LoadNodeConfig(path);
    ASSERT_FALSE(config.ok()) << c.text;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    std::string message(config.status().message());
    EXPECT_NE(message.find(c.expected), std::string::npos)
        << "got: " << message << "\nwanted: " << c.expected;
    EXPECT_NE(message.find(path), std::string::npos) << message;
  }
}

TEST_F(ConfigTest, YuanMustBePositiveWithAtMostTwoDecimals) {
  const std::vector<std::string> refused = {
      "9.005", "-800",          "800.", ".5",   "8 00",  "eight",
      "1e3",   "1234567890123", "0",    "0.00", "900,50"};
  for (const std::string& yuan : refused) {
    std::string path = Write(std::string(kValid) +
                             "workflow:\n  minimum_living_allowance:\n"
                             "    - region: \"35\"\n      yuan: \"" +
                             yuan + "\"\n");
    auto config = LoadNodeConfig(path);
    ASSERT_FALSE(config.ok()) << yuan;
    std::string message(config.status().message());
    EXPECT_NE(message.find("line 16: workflow.minimum_living_allowance[0]."
                           "yuan: \"" +
                           yuan + "\""),
              std::string::npos)
        << message;
  }

  struct Accepted {
    std::string yuan;
    int64_t fen;
  };
  for (const Accepted& a :
       std::vector<Accepted>{{"800", 80000},
                             {"900.5", 90050},
                             {"900.50", 90050},
                             {"0.01", 1},
                             {"123456789012.99", 12345678901299}}) {
    auto config =
        LoadNodeConfig(Write(std::string(kValid) +
                             "workflow:\n  minimum_living_allowance:"
                             "\n    - region: \"35\"\n      yuan: \"" +
                             a.yuan + "\"\n"));
    ASSERT_TRUE(config.ok()) << a.yuan << ": " << config.status();
    ASSERT_EQ(config->workflow.allowances.size(), 1u);
    EXPECT_EQ(config->workflow.allowances[0].monthly_fen, a.fen) << a.yuan;
  }
}

TEST_F(ConfigTest, MissingFileIsNotFound) {
  auto config = LoadNodeConfig("/nonexistent/caselink.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(config.status().message().find("/nonexistent/caselink.yaml"),
            std::string::npos);
}

}  // namespace
}  // namespace caselink::server
