// Every connection is mutual TLS: nodes reach each other both ways, and a
// client without a certificate, with one from an unknown CA, or with the
// wrong role or node, is refused.
#include <fstream>

#include "caselink/v1/operator.grpc.pb.h"
#include "caselink/v1/peer.grpc.pb.h"
#include "core/identity.h"
#include "core/strings.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/network.h"

namespace caselink::testing {
namespace {

class MutualTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto network = TestNetwork::Create(
        {{"350212", "Tong'an County Justice Bureau", {"3502"}, ""},
         {"3502", "Xiamen City Justice Bureau", {"350212"}, ""}});
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = network->release();
    ASSERT_TRUE(network_->StartAll().ok());
  }

  static void TearDownTestSuite() {
    delete network_;
    network_ = nullptr;
  }

  // A channel to Tong'an presenting the given client identity.
  static std::shared_ptr<grpc::Channel> ChannelWith(
      const std::string& roots, const std::string& cert_pem,
      const std::string& key_pem) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = roots;
    options.pem_cert_chain = cert_pem;
    options.pem_private_key = key_pem;
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride(NodeTlsName("350212000000"));
    return grpc::CreateCustomChannel(
        Cat("127.0.0.1:", network_->Port("350212")),
        grpc::SslCredentials(options), args);
  }

  static grpc::Status CallStatus(std::shared_ptr<grpc::Channel> channel) {
    auto stub = v1::OperatorService::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    v1::GetStatusResponse response;
    return stub->GetStatus(&context, v1::GetStatusRequest(), &response);
  }

  static std::string Pki(const std::string& rest) {
    return network_->PkiDir() + "/" + rest;
  }

  static TestNetwork* network_;
};

TestNetwork* MutualTlsTest::network_ = nullptr;

TEST_F(MutualTlsTest, PeersReachEachOtherBothWays) {
  for (const char* code : {"350212", "3502"}) {
    ASSERT_TRUE(network_->WaitForPeersConnected(code)) << code;
    auto client = network_->OperatorClient(code);
    ASSERT_TRUE(client.ok()) << client.status();
    auto status = (*client)->GetStatus();
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_EQ(status->peers_size(), 1);
    EXPECT_EQ(status->peers(0).state(), v1::LINK_STATE_CONNECTED);
  }
  auto client = network_->OperatorClient("350212");
  auto status = (*client)->GetStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->name(), "Tong'an County Justice Bureau");
  EXPECT_EQ(status->peers(0).code(), "350200000000");
  EXPECT_EQ(status->peers(0).name(), "Xiamen City Justice Bureau");
}

TEST_F(MutualTlsTest, ClientWithoutCertificateIsRefused) {
  grpc::Status status =
      CallStatus(ChannelWith(ReadFile(Pki("ca-bundle.pem")), "", ""));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_TRUE(network_->Process("350212").Running());
}

TEST_F(MutualTlsTest, ClientFromUnknownCaIsRefused) {
  TempDir other;
  ASSERT_TRUE(MakeDevPki(other.path(), {"--operator", "350212:op"}).ok());
  std::string dir = other.path() + "/clients/operator-350212000000-op/";
  grpc::Status status = CallStatus(ChannelWith(ReadFile(Pki("ca-bundle.pem")),
                                               ReadFile(dir + "client.crt"),
                                               ReadFile(dir + "client.key")));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_TRUE(network_->Process("350212").Running());
}

TEST_F(MutualTlsTest, PlaintextClientIsRefused) {
  auto channel =
      grpc::CreateChannel(Cat("127.0.0.1:", network_->Port("350212")),
                          grpc::InsecureChannelCredentials());
  grpc::Status status = CallStatus(channel);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(MutualTlsTest, OperatorOfAnotherNodeIsPermissionDenied) {
  std::string dir = Pki("clients/operator-350200000000-op/");
  grpc::Status status = CallStatus(ChannelWith(ReadFile(Pki("ca-bundle.pem")),
                                               ReadFile(dir + "client.crt"),
                                               ReadFile(dir + "client.key")));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(status.error_message().find("belongs to 350200000000"),
            std::string::npos)
      << status.error_message();
}

TEST_F(MutualTlsTest, AuditorCannotUseOperatorService) {
  std::string dir = Pki("clients/auditor-350212000000-audit/");
  grpc::Status status = CallStatus(ChannelWith(ReadFile(Pki("ca-bundle.pem")),
                                               ReadFile(dir + "client.crt"),
                                               ReadFile(dir + "client.key")));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(status.error_message().find("needs a operator certificate"),
            std::string::npos)
      << status.error_message();
}

TEST_F(MutualTlsTest, NodeCertificateCannotUseOperatorService) {
  std::string dir = Pki("nodes/350200000000/");
  grpc::Status status = CallStatus(ChannelWith(ReadFile(Pki("ca-bundle.pem")),
                                               ReadFile(dir + "tls-chain.pem"),
                                               ReadFile(dir + "tls.key")));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(MutualTlsTest, OperatorCannotCallPeerService) {
  std::string dir = Pki("clients/operator-350212000000-op/");
  auto stub = v1::PeerService::NewStub(
      ChannelWith(ReadFile(Pki("ca-bundle.pem")), ReadFile(dir + "client.crt"),
                  ReadFile(dir + "client.key")));
  grpc::ClientContext context;
  v1::GetNodeInfoResponse response;
  grpc::Status status =
      stub->GetNodeInfo(&context, v1::GetNodeInfoRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(MutualTlsTest, CliStatusPrintsPeersConnected) {
  ASSERT_TRUE(network_->WaitForPeersConnected("350212"));
  CommandResult result =
      RunCommand({CaselinkCliPath(), "--config",
                  network_->ClientConfigPath("350212"), "status"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("node 350212000000  Tong'an County Justice"),
            std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("350200000000  connected"), std::string::npos)
      << result.output;

  result =
      RunCommand({CaselinkCliPath(), "--config",
                  network_->ClientConfigPath("350212"), "--json", "status"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("\"state\":\"LINK_STATE_CONNECTED\""),
            std::string::npos)
      << result.output;
}

TEST_F(MutualTlsTest, CliReportsUnreachableNode) {
  std::string path = network_->root() + "/unreachable.yaml";
  std::string text = ReadFile(network_->ClientConfigPath("350212"));
  std::string from = Cat(":", network_->Port("350212"), "\"");
  text.replace(text.find(from), from.size(), Cat(":", PickFreePort(), "\""));
  std::ofstream(path) << text;
  CommandResult result =
      RunCommand({CaselinkCliPath(), "--config", path, "status"});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("UNAVAILABLE"), std::string::npos)
      << result.output;
}

}  // namespace
}  // namespace caselink::testing
