#include "core/merkle.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/crypto.h"
#include "gtest/gtest.h"

namespace caselink {
namespace {

template <typename T>
T Unwrap(absl::StatusOr<T> value) {
  if (!value.ok()) {
    ADD_FAILURE() << value.status();
    std::abort();
  }
  return *std::move(value);
}

std::string Hex(std::string_view hex) { return Unwrap(HexDecode(hex)); }

std::vector<std::string_view> Views(const std::vector<std::string>& data) {
  return std::vector<std::string_view>(data.begin(), data.end());
}

// Leaves of varied length, one of them empty.
std::vector<std::string> MakeLeaves(size_t n) {
  std::vector<std::string> leaves;
  for (size_t i = 0; i < n; ++i) {
    leaves.push_back(i == 3 ? "" : "body " + std::to_string(i * 7919));
  }
  return leaves;
}

// ---------------------------------------------------------------------------
// RFC 6962 written out as its recursive definitions, to check the
// library's bottom-up construction against.

uint64_t LargestPowerOfTwoBelow(uint64_t n) {
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

std::string ReferenceRoot(HashAlgorithm algorithm,
                          const std::vector<std::string>& d, size_t begin,
                          size_t end) {
  size_t n = end - begin;
  if (n == 0) return Unwrap(Digest(algorithm, ""));
  if (n == 1) return Unwrap(LeafHash(algorithm, d[begin]));
  size_t k = LargestPowerOfTwoBelow(n);
  return Unwrap(NodeHash(algorithm,
                         ReferenceRoot(algorithm, d, begin, begin + k),
                         ReferenceRoot(algorithm, d, begin + k, end)));
}

std::vector<std::string> ReferencePath(HashAlgorithm algorithm, size_t m,
                                       const std::vector<std::string>& d,
                                       size_t begin, size_t end) {
  size_t n = end - begin;
  if (n == 1) return {};
  size_t k = LargestPowerOfTwoBelow(n);
  std::vector<std::string> path;
  if (m < k) {
    path = ReferencePath(algorithm, m, d, begin, begin + k);
    path.push_back(ReferenceRoot(algorithm, d, begin + k, end));
  } else {
    path = ReferencePath(algorithm, m - k, d, begin + k, end);
    path.push_back(ReferenceRoot(algorithm, d, begin, begin + k));
  }
  return path;
}

std::vector<std::string> ReferenceSubproof(HashAlgorithm algorithm, size_t m,
                                           const std::vector<std::string>& d,
                                           size_t begin, size_t end,
                                           bool complete) {
  size_t n = end - begin;
  if (m == n) {
    if (complete) return {};
    return {ReferenceRoot(algorithm, d, begin, end)};
  }
  size_t k = LargestPowerOfTwoBelow(n);
  std::vector<std::string> proof;
  if (m <= k) {
    proof = ReferenceSubproof(algorithm, m, d, begin, begin + k, complete);
    proof.push_back(ReferenceRoot(algorithm, d, begin + k, end));
  } else {
    proof = ReferenceSubproof(algorithm, m - k, d, begin + k, end, false);
    proof.push_back(ReferenceRoot(algorithm, d, begin, begin + k));
  }
  return proof;
}

std::string Tamper(std::string hash) {
  hash[hash.size() / 2] = static_cast<char>(hash[hash.size() / 2] ^ 0x40);
  return hash;
}

// ---------------------------------------------------------------------------
// Published vectors

// The Certificate Transparency reference leaves and the roots of their
// first 1..8 (RFC 6962 tree hashing, SHA-256).
std::vector<std::string> CtLeaves() {
  return {"",
          Hex("00"),
          Hex("10"),
          Hex("2021"),
          Hex("3031"),
          Hex("40414243"),
          Hex("5051525354555657"),
          Hex("606162636465666768696a6b6c6d6e6f")};
}

const char* const kCtRoots[] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

std::vector<std::string> Hexes(std::vector<const char*> hexes) {
  std::vector<std::string> out;
  for (const char* hex : hexes) out.push_back(Hex(hex));
  return out;
}

TEST(MerkleTest, EmptyTreeRootIsHashOfEmptyString) {
  EXPECT_EQ(HexEncode(Unwrap(RootOf(HashAlgorithm::kSha256, {}))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Unwrap(RootOf(HashAlgorithm::kSm3, {})),
            Unwrap(Digest(HashAlgorithm::kSm3, "")));
  BatchTree empty = Unwrap(BatchTree::Build(HashAlgorithm::kSha256, {}));
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.root(), Unwrap(RootOf(HashAlgorithm::kSha256, {})));
  EXPECT_EQ(empty.AuditPath(0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MerkleTest, LeafAndNodeHashesUseRfc6962Prefixes) {
  EXPECT_EQ(HexEncode(Unwrap(LeafHash(HashAlgorithm::kSha256, ""))),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  EXPECT_EQ(Unwrap(LeafHash(HashAlgorithm::kSm3, "x")),
            Unwrap(Digest(HashAlgorithm::kSm3, std::string("\x00x", 2))));
  EXPECT_EQ(Unwrap(NodeHash(HashAlgorithm::kSm3, "l", "r")),
            Unwrap(Digest(HashAlgorithm::kSm3, "\x01lr")));
}

TEST(MerkleTest, RootsMatchCertificateTransparencyVectors) {
  std::vector<std::string> leaves = CtLeaves();
  for (size_t n = 1; n <= leaves.size(); ++n) {
    std::vector<std::string> prefix(leaves.begin(), leaves.begin() + n);
    EXPECT_EQ(HexEncode(Unwrap(RootOf(HashAlgorithm::kSha256, Views(prefix)))),
              kCtRoots[n - 1])
        << n;
  }
}

TEST(MerkleTest, AuditPathsMatchCertificateTransparencyVectors) {
  std::vector<std::string> leaves = CtLeaves();
  EXPECT_EQ(
      Unwrap(AuditPath(HashAlgorithm::kSha256, Views(leaves), 0)),
      Hexes({"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e"
             "4"}));
  EXPECT_EQ(
      Unwrap(AuditPath(HashAlgorithm::kSha256, Views(leaves), 5)),
      Hexes({"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b"
             "7"}));
}

TEST(MerkleTest, ConsistencyProofsMatchCertificateTransparencyVectors) {
  std::vector<std::string> leaves = CtLeaves();
  std::vector<std::string> five(leaves.begin(), leaves.begin() + 5);
  EXPECT_EQ(
      Unwrap(ConsistencyProof(HashAlgorithm::kSha256, Views(leaves), 2)),
      Hexes({"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e"
             "4"}));
  EXPECT_EQ(
      Unwrap(ConsistencyProof(HashAlgorithm::kSha256, Views(leaves), 6)),
      Hexes({"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b"
             "7"}));
  EXPECT_EQ(
      Unwrap(ConsistencyProof(HashAlgorithm::kSha256, Views(five), 2)),
      Hexes({"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6"
             "b"}));
}

// ---------------------------------------------------------------------------
// Inclusion

class MerkleAlgorithmTest : public ::testing::TestWithParam<HashAlgorithm> {};

TEST_P(MerkleAlgorithmTest, PathVerifiesForEveryLeafOfTreesUpTo70) {
  HashAlgorithm algorithm = GetParam();
  for (size_t n = 1; n <= 70; ++n) {
    std::vector<std::string> leaves = MakeLeaves(n);
    std::string root = Unwrap(RootOf(algorithm, Views(leaves)));
    ASSERT_EQ(root, ReferenceRoot(algorithm, leaves, 0, n)) << n;
    for (size_t i = 0; i < n; ++i) {
      std::vector<std::string> path =
          Unwrap(AuditPath(algorithm, Views(leaves), i));
      ASSERT_EQ(path, ReferencePath(algorithm, i, leaves, 0, n))
          << n << " " << i;
      std::string leaf_hash = Unwrap(LeafHash(algorithm, leaves[i]));
      EXPECT_EQ(Unwrap(RootFromAuditPath(algorithm, i, n, leaf_hash, path)),
                root)
          << n << " " << i;
      EXPECT_TRUE(VerifyInclusion(algorithm, i, n, leaf_hash, path, root).ok());
    }
  }
}

TEST_P(MerkleAlgorithmTest, BatchTreeMatchesRootOfAndAuditPath) {
  HashAlgorithm algorithm = GetParam();
  for (size_t n = 0; n <= 70; ++n) {
    std::vector<std::string> leaves = MakeLeaves(n);
    BatchTree tree = Unwrap(BatchTree::Build(algorithm, Views(leaves)));
    EXPECT_EQ(tree.size(), n);
    EXPECT_EQ(tree.algorithm(), algorithm);
    ASSERT_EQ(tree.root(), Unwrap(RootOf(algorithm, Views(leaves)))) << n;
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(Unwrap(tree.LeafHashAt(i)),
                Unwrap(LeafHash(algorithm, leaves[i])));
      ASSERT_EQ(Unwrap(tree.AuditPath(i)),
                Unwrap(AuditPath(algorithm, Views(leaves), i)))
          << n << " " << i;
    }
    EXPECT_EQ(tree.AuditPath(n).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST_P(MerkleAlgorithmTest, TamperedLeafOrPathFails) {
  HashAlgorithm algorithm = GetParam();
  for (size_t n = 1; n <= 70; ++n) {
    std::vector<std::string> leaves = MakeLeaves(n);
    BatchTree tree = Unwrap(BatchTree::Build(algorithm, Views(leaves)));
    for (size_t i = 0; i < n; ++i) {
      std::vector<std::string> path = Unwrap(tree.AuditPath(i));
      std::string leaf_hash = Unwrap(tree.LeafHashAt(i));
      std::string other_leaf = Unwrap(LeafHash(algorithm, leaves[i] + "!"));
      EXPECT_EQ(VerifyInclusion(algorithm, i, n, other_leaf, path, tree.root())
                    .code(),
                absl::StatusCode::kUnauthenticated)
          << n << " " << i;
      for (size_t j = 0; j < path.size(); ++j) {
        std::vector<std::string> bad = path;
        bad[j] = Tamper(bad[j]);
        EXPECT_EQ(VerifyInclusion(algorithm, i, n, leaf_hash, bad, tree.root())
                      .code(),
                  absl::StatusCode::kUnauthenticated)
            << n << " " << i << " " << j;
      }
    }
  }
}

TEST_P(MerkleAlgorithmTest, WrongIndexSizeOrPathLengthFails) {
  HashAlgorithm algorithm = GetParam();
  for (size_t n = 1; n <= 40; ++n) {
    std::vector<std::string> leaves = MakeLeaves(n);
    BatchTree tree = Unwrap(BatchTree::Build(algorithm, Views(leaves)));
    for (size_t i = 0; i < n; ++i) {
      std::vector<std::string> path = Unwrap(tree.AuditPath(i));
      std::string leaf_hash = Unwrap(tree.LeafHashAt(i));
      EXPECT_EQ(
          RootFromAuditPath(algorithm, n, n, leaf_hash, path).status().code(),
          absl::StatusCode::kInvalidArgument);
      std::vector<std::string> longer = path;
      longer.push_back(tree.root());
      EXPECT_EQ(
          RootFromAuditPath(algorithm, i, n, leaf_hash, longer).status().code(),
          absl::StatusCode::kInvalidArgument);
      if (!path.empty()) {
        std::vector<std::string> shorter(path.begin(), path.end() - 1);
        EXPECT_EQ(RootFromAuditPath(algorithm, i, n, leaf_hash, shorter)
                      .status()
                      .code(),
                  absl::StatusCode::kInvalidArgument);
      }
      // The same path claimed for another position or tree size never
      // reaches the root.
      for (size_t other = 0; other < n; ++other) {
        if (other == i) continue;
        EXPECT_FALSE(
            VerifyInclusion(algorithm, other, n, leaf_hash, path, tree.root())
                .ok());
      }
    }
  }
}

// The root does not commit to the tree size: where two sizes give a leaf
// paths of the same shape, one path verifies under both. Whoever needs the
// size or index authenticated must sign them along with the root.
TEST_P(MerkleAlgorithmTest, RootDoesNotBindTreeSize) {
  HashAlgorithm algorithm = GetParam();
  std::vector<std::string> leaves = MakeLeaves(5);
  BatchTree tree = Unwrap(BatchTree::Build(algorithm, Views(leaves)));
  std::vector<std::string> path = Unwrap(tree.AuditPath(0));
  std::string leaf_hash = Unwrap(tree.LeafHashAt(0));
  EXPECT_TRUE(
      VerifyInclusion(algorithm, 0, 6, leaf_hash, path, tree.root()).ok());
}

TEST_P(MerkleAlgorithmTest, HashesOfWrongLengthAreInvalidArgument) {
  HashAlgorithm algorithm = GetParam();
  std::vector<std::string> leaves = MakeLeaves(5);
  BatchTree tree = Unwrap(BatchTree::Build(algorithm, Views(leaves)));
  std::vector<std::string> path = Unwrap(tree.AuditPath(1));
  std::string leaf_hash = Unwrap(tree.LeafHashAt(1));
  EXPECT_EQ(RootFromAuditPath(algorithm, 1, 5, "short", path).status().code(),
            absl::StatusCode::kInvalidArgument);
  path[0] += "x";
  EXPECT_EQ(RootFromAuditPath(algorithm, 1, 5, leaf_hash, path).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyInclusion(algorithm, 1, 5, leaf_hash,
                            Unwrap(tree.AuditPath(1)), "short")
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Consistency

TEST_P(MerkleAlgorithmTest, ConsistencyProofsVerifyForAllSizesUpTo40) {
  HashAlgorithm algorithm = GetParam();
  std::vector<std::string> all = MakeLeaves(40);
  for (size_t n = 1; n <= 40; ++n) {
    std::vector<std::string> leaves(all.begin(), all.begin() + n);
    std::string new_root = Unwrap(RootOf(algorithm, Views(leaves)));
    for (size_t m = 1; m <= n; ++m) {
      std::vector<std::string> old_leaves(all.begin(), all.begin() + m);
      std::string old_root = Unwrap(RootOf(algorithm, Views(old_leaves)));
      std::vector<std::string> proof =
          Unwrap(ConsistencyProof(algorithm, Views(leaves), m));
      ASSERT_EQ(proof, ReferenceSubproof(algorithm, m, leaves, 0, n, true))
          << m << " " << n;
      absl::Status status =
          VerifyConsistency(algorithm, m, n, old_root, new_root, proof);
      EXPECT_TRUE(status.ok()) << m << " " << n << ": " << status;
    }
  }
}

TEST_P(MerkleAlgorithmTest, TamperedConsistencyProofFails) {
  HashAlgorithm algorithm = GetParam();
  std::vector<std::string> all = MakeLeaves(40);
  for (size_t n = 1; n <= 40; ++n) {
    std::vector<std::string> leaves(all.begin(), all.begin() + n);
    std::string new_root = Unwrap(RootOf(algorithm, Views(leaves)));
    for (size_t m = 1; m <= n; ++m) {
      std::vector<std::string> old_leaves(all.begin(), all.begin() + m);
      std::string old_root = Unwrap(RootOf(algorithm, Views(old_leaves)));
      std::vector<std::string> proof =
          Unwrap(ConsistencyProof(algorithm, Views(leaves), m));
      for (size_t j = 0; j < proof.size(); ++j) {
        std::vector<std::string> bad = proof;
        bad[j] = Tamper(bad[j]);
        EXPECT_FALSE(
            VerifyConsistency(algorithm, m, n, old_root, new_root, bad).ok())
            << m << " " << n << " " << j;
      }
      EXPECT_FALSE(
          VerifyConsistency(algorithm, m, n, Tamper(old_root), new_root, proof)
              .ok())
          << m << " " << n;
      EXPECT_FALSE(
          VerifyConsistency(algorithm, m, n, old_root, Tamper(new_root), proof)
              .ok())
          << m << " " << n;
      std::vector<std::string> longer = proof;
      longer.push_back(new_root);
      EXPECT_FALSE(
          VerifyConsistency(algorithm, m, n, old_root, new_root, longer).ok());
      if (!proof.empty()) {
        std::vector<std::string> shorter(proof.begin(), proof.end() - 1);
        EXPECT_FALSE(
            VerifyConsistency(algorithm, m, n, old_root, new_root, shorter)
                .ok());
      }
      // A proof for one old size does not serve another.
      if (m > 1 && !proof.empty()) {
        EXPECT_FALSE(
            VerifyConsistency(algorithm, m - 1, n, old_root, new_root, proof)
                .ok());
      }
    }
  }
}

TEST_P(MerkleAlgorithmTest, ConsistencyRejectsImpossibleSizes) {
  HashAlgorithm algorithm = GetParam();
  std::vector<std::string> leaves = MakeLeaves(6);
  std::string root = Unwrap(RootOf(algorithm, Views(leaves)));
  EXPECT_EQ(ConsistencyProof(algorithm, Views(leaves), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConsistencyProof(algorithm, Views(leaves), 7).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyConsistency(algorithm, 0, 6, root, root, {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyConsistency(algorithm, 7, 6, root, root, {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(VerifyConsistency(algorithm, 6, 6, root, root, {}).ok());
  EXPECT_EQ(VerifyConsistency(algorithm, 6, 6, root, Tamper(root), {}).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyConsistency(algorithm, 3, 6, root, root, {}).code(),
            absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(
    BothHashes, MerkleAlgorithmTest,
    ::testing::Values(HashAlgorithm::kSha256, HashAlgorithm::kSm3),
    [](const ::testing::TestParamInfo<HashAlgorithm>& instance) {
      return instance.param == HashAlgorithm::kSm3 ? std::string("Sm3")
                                                   : std::string("Sha256");
    });

TEST(MerkleTest, Sm3AndSha256TreesDiffer) {
  std::vector<std::string> leaves = MakeLeaves(9);
  EXPECT_NE(Unwrap(RootOf(HashAlgorithm::kSha256, Views(leaves))),
            Unwrap(RootOf(HashAlgorithm::kSm3, Views(leaves))));
}

// ---------------------------------------------------------------------------
// The use the batch proof exists for

TEST(MerkleTest, OneSignatureOverBatchRootCoversEveryMessage) {
  for (SignatureScheme scheme :
       {SignatureScheme::kEcdsaP256Sha256, SignatureScheme::kEd25519,
        SignatureScheme::kSm2Sm3}) {
    HashAlgorithm algorithm = HashAlgorithmOf(scheme);
    PrivateKey key = Unwrap(PrivateKey::Generate(scheme));
    std::vector<std::string> bodies = MakeLeaves(256);
    BatchTree tree = Unwrap(BatchTree::Build(algorithm, Views(bodies)));
    const std::string prefix("caselink/v1/batch\0", 18);
    std::string signature = Unwrap(key.Sign(prefix + tree.root()));

    // What a receiver does with one message of the batch.
    for (size_t i = 0; i < bodies.size(); ++i) {
      std::vector<std::string> path = Unwrap(tree.AuditPath(i));
      EXPECT_LE(path.size(), 8u);
      std::string root = Unwrap(
          RootFromAuditPath(algorithm, i, bodies.size(),
                            Unwrap(LeafHash(algorithm, bodies[i])), path));
      EXPECT_TRUE(key.public_key().Verify(prefix + root, signature).ok());
      std::string forged_root = Unwrap(RootFromAuditPath(
          algorithm, i, bodies.size(),
          Unwrap(LeafHash(algorithm, bodies[i] + " altered")), path));
      EXPECT_EQ(key.public_key().Verify(prefix + forged_root, signature).code(),
                absl::StatusCode::kUnauthenticated);
    }
  }
}

}  // namespace
}  // namespace caselink
