// Signed tree heads: a head verifies with its signer's key, and any change
// to what it states makes it fail.
#include "core/tree_head.h"

#include "gtest/gtest.h"

namespace caselink {
namespace {

constexpr char kCode[] = "350212000000";

class TreeHeadTest : public ::testing::TestWithParam<SignatureScheme> {};

TEST_P(TreeHeadTest, VerifiesAndRefusesAnyChange) {
  auto key = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string root(32, '\x5a');
  auto head =
      SignTreeHead(*key, kCode, 1000, root, absl::FromUnixSeconds(1800000000));
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_TRUE(VerifyTreeHead(*head, key->public_key()).ok());

  v1::SignedTreeHead changed = *head;
  changed.set_tree_size(999);
  EXPECT_EQ(VerifyTreeHead(changed, key->public_key()).code(),
            absl::StatusCode::kUnauthenticated);
  changed = *head;
  changed.mutable_root_hash()->back() ^= 1;
  EXPECT_EQ(VerifyTreeHead(changed, key->public_key()).code(),
            absl::StatusCode::kUnauthenticated);
  changed = *head;
  changed.mutable_signed_at()->set_seconds(head->signed_at().seconds() + 1);
  EXPECT_EQ(VerifyTreeHead(changed, key->public_key()).code(),
            absl::StatusCode::kUnauthenticated);
  changed = *head;
  changed.set_code("350200000000");
  EXPECT_EQ(VerifyTreeHead(changed, key->public_key()).code(),
            absl::StatusCode::kUnauthenticated);

  auto other = PrivateKey::Generate(GetParam());
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(VerifyTreeHead(*head, other->public_key()).code(),
            absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, TreeHeadTest,
                         ::testing::Values(SignatureScheme::kEcdsaP256Sha256,
                                           SignatureScheme::kEd25519,
                                           SignatureScheme::kSm2Sm3));

}  // namespace
}  // namespace caselink
