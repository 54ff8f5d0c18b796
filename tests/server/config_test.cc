#include "server/config.h"

#include <filesystem>
#include <fstream>
#include <string>

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

TEST_F(ConfigTest, MissingFileIsNotFound) {
  auto config = LoadNodeConfig("/nonexistent/caselink.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(config.status().message().find("/nonexistent/caselink.yaml"),
            std::string::npos);
}

}  // namespace
}  // namespace caselink::server
