// caselinkd refuses to start on each kind of bad setup with one clear line
// and a non-zero exit, and a clean stop and restart keep its store.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "core/strings.h"
#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/testing/network.h"

namespace caselink::testing {
namespace {

std::string ReplaceAll(std::string text, std::string_view from,
                       std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

class StartupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto network = TestNetwork::Create(
        {{"350212", "Tong'an County Justice Bureau", {"3502"}, ""},
         {"3502", "Xiamen City Justice Bureau", {"350212"}, ""}});
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = std::move(*network);
    std::ifstream in(network_->ConfigPath("350212"));
    std::stringstream text;
    text << in.rdbuf();
    base_config_ = text.str();
  }

  // Writes a variant of Tong'an's config and runs caselinkd on it, which
  // must exit by itself.
  CommandResult RunWith(const std::string& config_text) {
    std::string path = network_->root() + "/variant.yaml";
    std::ofstream(path) << config_text;
    return RunCommand({CaselinkdPath(), "--config", path}, absl::Seconds(30));
  }

  std::string Replace(std::string_view from, std::string_view to) {
    std::string text = ReplaceAll(base_config_, from, to);
    EXPECT_NE(text, base_config_) << "nothing to replace: " << from;
    return text;
  }

  // The one line caselinkd printed, which must name `what`.
  static void ExpectOneLineNaming(const CommandResult& result,
                                  const std::string& what) {
    EXPECT_NE(result.exit_code, 0) << result.output;
    EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1)
        << result.output;
    EXPECT_EQ(result.output.rfind("caselinkd: ", 0), 0u) << result.output;
    EXPECT_NE(result.output.find(what), std::string::npos)
        << "wanted \"" << what << "\" in: " << result.output;
  }

  std::string NodeFile(const std::string& name) {
    return Cat(network_->PkiDir(), "/nodes/350212000000/", name);
  }

  std::unique_ptr<TestNetwork> network_;
  std::string base_config_;
};

TEST_F(StartupTest, MalformedConfigStopsStartup) {
  CommandResult result = RunWith("node: {code: \"350212\"\nlisten: [\n");
  ExpectOneLineNaming(result, "not valid YAML");
}

TEST_F(StartupTest, UnknownSettingStopsStartup) {
  CommandResult result = RunWith(base_config_ + "pears: []\n");
  ExpectOneLineNaming(result, "pears: unknown setting");
}

TEST_F(StartupTest, MissingConfigFileStopsStartup) {
  CommandResult result = RunCommand(
      {CaselinkdPath(), "--config", network_->root() + "/absent.yaml"});
  ExpectOneLineNaming(result, "absent.yaml: no such file");
}

TEST_F(StartupTest, MissingCertificateStopsStartup) {
  std::string missing = network_->root() + "/nowhere.pem";
  CommandResult result = RunWith(Replace(NodeFile("tls-chain.pem"), missing));
  ExpectOneLineNaming(result, missing);
}

TEST_F(StartupTest, UnreadableCertificateStopsStartup) {
  std::string garbage = network_->root() + "/garbage.pem";
  std::ofstream(garbage) << "this is not a certificate\n";
  CommandResult result = RunWith(Replace(NodeFile("tls-chain.pem"), garbage));
  ExpectOneLineNaming(result, garbage);
}

TEST_F(StartupTest, UnusableCrlBundleStopsStartup) {
  std::string garbage = network_->root() + "/garbage-crl.pem";
  std::ofstream(garbage) << "-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n"
                            "-----END X509 CRL-----\n";
  CommandResult result =
      RunWith(Replace(network_->PkiDir() + "/crl-bundle.pem", garbage));
  ExpectOneLineNaming(result, garbage);
}

TEST_F(StartupTest, KeyReadableByOthersStopsStartup) {
  std::string loose = network_->root() + "/loose.key";
  std::filesystem::copy_file(NodeFile("tls.key"), loose);
  chmod(loose.c_str(), 0644);
  CommandResult result = RunWith(Replace(NodeFile("tls.key"), loose));
  ExpectOneLineNaming(result, loose);
  EXPECT_NE(result.output.find("readable by other users"), std::string::npos)
      << result.output;
}

TEST_F(StartupTest, CertificateOfAnotherNodeStopsStartup) {
  std::string xiamen = Cat(network_->PkiDir(), "/nodes/350200000000/");
  std::string text =
      Replace(NodeFile("tls-chain.pem"), xiamen + "tls-chain.pem");
  text = ReplaceAll(text, NodeFile("tls.key"), xiamen + "tls.key");
  CommandResult result = RunWith(text);
  ExpectOneLineNaming(result, "does not name node 350212000000");
}

TEST_F(StartupTest, LockedDataDirectoryStopsSecondNode) {
  ASSERT_TRUE(network_->Start("350212").ok());
  // Same data directory, another port.
  std::string text = Replace(Cat("127.0.0.1:", network_->Port("350212"), "\""),
                             Cat("127.0.0.1:", PickFreePort(), "\""));
  CommandResult result = RunWith(text);
  ExpectOneLineNaming(result, network_->DataDir("350212"));
  EXPECT_NE(result.output.find("lock"), std::string::npos) << result.output;
  EXPECT_TRUE(network_->Process("350212").Running());
}

TEST_F(StartupTest, PortInUseStopsSecondNode) {
  ASSERT_TRUE(network_->Start("3502").ok());
  std::string text = Replace(Cat("127.0.0.1:", network_->Port("350212"), "\""),
                             Cat("127.0.0.1:", network_->Port("3502"), "\""));
  CommandResult result = RunWith(text);
  ExpectOneLineNaming(result, "cannot listen on 127.0.0.1:");
}

TEST_F(StartupTest, DataDirectoryOfAnotherNodeStopsStartup) {
  ASSERT_TRUE(network_->Start("3502").ok());
  ASSERT_EQ(network_->Stop("3502"), 0);
  CommandResult result =
      RunWith(Replace(network_->DataDir("350212"), network_->DataDir("3502")));
  ExpectOneLineNaming(result, "belongs to node 350200000000");
}

TEST_F(StartupTest, NewerSchemaStopsStartupAndLeavesStoreAlone) {
  ASSERT_TRUE(network_->Start("350212").ok());
  ASSERT_EQ(network_->Stop("350212"), 0);
  {
    auto store = storage::Store::Open(network_->DataDir("350212"));
    ASSERT_TRUE(store.ok()) << store.status();
    storage::Batch batch = (*store)->NewBatch();
    batch.Put(storage::Family::kMeta, storage::kSchemaVersionKey, "2");
    ASSERT_TRUE((*store)->Commit(batch).ok());
  }
  CommandResult result = RunWith(base_config_);
  ExpectOneLineNaming(result, network_->DataDir("350212"));
  EXPECT_NE(result.output.find("schema version 2"), std::string::npos)
      << result.output;

  // The refusal changed nothing: the version is still the one written.
  storage::StoreOptions options;
  auto reopened = storage::Store::Open(network_->DataDir("350212"), options);
  EXPECT_FALSE(reopened.ok());
}

TEST_F(StartupTest, SigtermStopsCleanlyAndRestartFindsStore) {
  ASSERT_TRUE(network_->Start("350212").ok());
  ASSERT_EQ(network_->Stop("350212"), 0) << network_->Process("350212").Log();
  std::string log = network_->Process("350212").Log();
  EXPECT_NE(log.find("event=node_stopped"), std::string::npos) << log;

  ASSERT_TRUE(network_->Start("350212").ok());
  auto client = network_->OperatorClient("350212");
  ASSERT_TRUE(client.ok()) << client.status();
  auto status = (*client)->GetStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->code(), "350212000000");
  // Both runs logged to the same file: the first made the store, the
  // second found it.
  log = network_->Process("350212").Log();
  size_t created = log.find("store=created");
  ASSERT_NE(created, std::string::npos) << log;
  EXPECT_EQ(log.find("store=created", created + 1), std::string::npos) << log;
  EXPECT_NE(log.find("store=opened", created), std::string::npos) << log;
}

}  // namespace
}  // namespace caselink::testing
