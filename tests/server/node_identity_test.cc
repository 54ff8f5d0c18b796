// Loading a node's identity, and the identity that replaces it while the
// node runs: checked as at start-up, keeping what the old keys are needed
// for, and refused where a running node cannot follow.
#include "server/node_identity.h"

#include "core/seal.h"
#include "core/strings.h"
#include "gtest/gtest.h"
#include "tests/testing/network.h"

namespace caselink::server {
namespace {

using ::caselink::testing::MakeDevPki;
using ::caselink::testing::TempDir;

constexpr char kTongan[] = "350212000000";

class NodeIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDevPki(pki(), {"--node", "350212", "--node", "3502"}).ok());
    auto trust = TrustStore::LoadPemFile(pki() + "/ca-bundle.pem");
    ASSERT_TRUE(trust.ok()) << trust.status();
    trust_ = std::make_unique<TrustStore>(std::move(*trust));
  }

  std::string pki() const { return dir_.path() + "/pki"; }

  // The config of node `code` naming its files as make-dev-pki.sh leaves
  // them, without previous lists.
  NodeConfig ConfigOf(const std::string& code) const {
    const std::string node = Cat(pki(), "/nodes/", code, "/");
    NodeConfig config;
    config.code = kTongan;
    config.name = "Tong'an";
    config.tls_cert = node + "tls-chain.pem";
    config.tls_key = node + "tls.key";
    config.ca_bundle = pki() + "/ca-bundle.pem";
    config.signing_cert = node + "sign.crt";
    config.signing_key = node + "sign.key";
    config.sealing_cert = node + "seal.crt";
    config.sealing_key = node + "seal.key";
    return config;
  }

  absl::Status Rotate(const std::string& sign_alg = "ecdsa-p256") {
    return MakeDevPki(pki(), {"--sign-alg", sign_alg, "--rotate", "350212"});
  }

  TempDir dir_;
  std::unique_ptr<TrustStore> trust_;
};

TEST_F(NodeIdentityTest, ReplacementKeepsWhatTheOldKeysAreNeededFor) {
  auto first = LoadNodeIdentity(ConfigOf(kTongan), *trust_);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_NE(first->sealing_key, nullptr);
  const std::string associated = SealAssociatedData("id", "350200", kTongan);
  auto sealed =
      Seal(first->sealing_key->public_key(), "sealed before", associated);
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  // The config does not list the old files: the replacement keeps them.
  ASSERT_TRUE(Rotate().ok());
  auto next = LoadReplacementIdentity(ConfigOf(kTongan), *trust_, *first);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_FALSE(SameKeys(*next, *first));
  EXPECT_NE(next->tls.cert_chain_pem, first->tls.cert_chain_pem);
  EXPECT_NE(next->signing_key.KeyId(), first->signing_key.KeyId());
  EXPECT_EQ(next->previous_signing_pems,
            std::vector<std::string>{first->signing_cert_pem});
  ASSERT_EQ(next->previous_sealing_keys.size(), 1u);
  EXPECT_EQ(next->previous_sealing_keys[0]->KeyId(),
            first->sealing_key->KeyId());
  auto opened = next->OpenSealed(*sealed, associated);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "sealed before");
  auto fresh =
      Seal(next->sealing_key->public_key(), "sealed after", associated);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(*next->OpenSealed(*fresh, associated), "sealed after");

  // Read again with nothing changed, it is the same identity.
  auto again = LoadReplacementIdentity(ConfigOf(kTongan), *trust_, *next);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(SameKeys(*again, *next));
}

TEST_F(NodeIdentityTest, PreviousSealingKeysComeFromTheConfig) {
  auto first = LoadNodeIdentity(ConfigOf(kTongan), *trust_);
  ASSERT_TRUE(first.ok()) << first.status();
  NodeConfig config = ConfigOf(kTongan);
  // Listed twice over, as the current key and a previous one: held once.
  config.previous_sealing_keys = {config.sealing_key};
  auto same = LoadNodeIdentity(config, *trust_);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_TRUE(same->previous_sealing_keys.empty());

  config.previous_sealing_keys = {pki() + "/nowhere.key"};
  auto missing = LoadNodeIdentity(config, *trust_);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(pki() + "/nowhere.key"),
            std::string::npos)
      << missing.status();
}

TEST_F(NodeIdentityTest, ReplacementARunningNodeCannotFollowIsRefused) {
  auto first = LoadNodeIdentity(ConfigOf(kTongan), *trust_);
  ASSERT_TRUE(first.ok()) << first.status();

  // Another node's files, or another node's code.
  NodeConfig other = ConfigOf("350200000000");
  auto refused = LoadReplacementIdentity(other, *trust_, *first);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("does not name node 350212000000"),
            std::string::npos)
      << refused.status();
  other.code = "350200000000";
  refused = LoadReplacementIdentity(other, *trust_, *first);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find(
                "names node 350200000000 but this node runs as 350212000000"),
            std::string::npos)
      << refused.status();

  // SM2 hashes with SM3; the audit log was built with SHA-256.
  ASSERT_TRUE(Rotate("sm2").ok());
  refused = LoadReplacementIdentity(ConfigOf(kTongan), *trust_, *first);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find(
                "hashes with sm3 but this node's audit log and receipts hash "
                "with sha256"),
            std::string::npos)
      << refused.status();

  // Ed25519 hashes with SHA-256 as ECDSA does.
  ASSERT_TRUE(Rotate("ed25519").ok());
  auto taken = LoadReplacementIdentity(ConfigOf(kTongan), *trust_, *first);
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->signing_key.scheme(), SignatureScheme::kEd25519);
}

TEST_F(NodeIdentityTest, WithoutSealingKeyNothingOpens) {
  NodeConfig config = ConfigOf(kTongan);
  config.sealing_cert.clear();
  config.sealing_key.clear();
  auto identity = LoadNodeIdentity(config, *trust_);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_FALSE(identity->HasSealingKey());
  EXPECT_EQ(identity->OpenSealed(v1::SealedPayload(), "").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace caselink::server
