#include "core/identity.h"

#include "gtest/gtest.h"

namespace caselink {
namespace {

TEST(IdentityTest, ParsesEachRole) {
  auto node = ParseIdentityUri("urn:caselink:node:350212000000");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->role, Role::kNode);
  EXPECT_EQ(node->code, "350212000000");
  EXPECT_TRUE(node->user.empty());

  auto op = ParseIdentityUri("urn:caselink:operator:350212000000:alice");
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(op->role, Role::kOperator);
  EXPECT_EQ(op->user, "alice");

  auto auditor = ParseIdentityUri("urn:caselink:auditor:350000000000:audra");
  ASSERT_TRUE(auditor.ok()) << auditor.status();
  EXPECT_EQ(auditor->role, Role::kAuditor);
}

TEST(IdentityTest, RefusesMalformedIdentities) {
  for (const char* bad :
       {"urn:caselink:node:3502", "urn:caselink:node:350212000000:x",
        "urn:caselink:operator:350212000000", "urn:caselink:king:35",
        "urn:caselink:operator:350212000000:Alice",
        "https://example.invalid/"}) {
    EXPECT_FALSE(ParseIdentityUri(bad).ok()) << bad;
  }
}

TEST(IdentityTest, ExactlyOneCaselinkUriIsRequired) {
  EXPECT_FALSE(IdentityFromUris({}).ok());
  EXPECT_FALSE(IdentityFromUris({"urn:caselink:node:350212000000",
                                 "urn:caselink:node:350200000000"})
                   .ok());
  auto one = IdentityFromUris(
      {"spiffe://other/thing", "urn:caselink:node:350212000000"});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->code, "350212000000");
}

}  // namespace
}  // namespace caselink
