// Merkle tree hashing as in RFC 6962 (Certificate Transparency) and its
// successor RFC 9162, with SHA-256 or SM3 as the hash.
//
// A batch of messages is signed once: the sender builds a BatchTree over the
// exact body bytes, signs its root, and gives each message its leaf index,
// the tree size and its audit path (caselink.v1.BatchProof). A receiver
// recomputes the root with RootFromAuditPath and checks the signature over
// it. The audit log uses consistency proofs to show that a later tree head
// extends an earlier one.
//
// Hashes are raw kDigestSize-byte strings. Every function is pure and
// thread-safe. Errors: kInvalidArgument for requests that make no sense
// (an index outside the tree, a hash of the wrong length, a proof of the
// wrong length for its sizes); kUnauthenticated when well-formed proof data
// does not match the roots it is checked against; kInternal only if OpenSSL
// cannot hash.
#ifndef CASELINK_CORE_MERKLE_H_
#define CASELINK_CORE_MERKLE_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/crypto.h"

namespace caselink {

// H(0x00 || leaf): the hash of one leaf's data.
[[nodiscard]] absl::StatusOr<std::string> LeafHash(HashAlgorithm algorithm,
                                                   std::string_view leaf);

// H(0x01 || left || right): the hash of an interior node.
[[nodiscard]] absl::StatusOr<std::string> NodeHash(HashAlgorithm algorithm,
                                                   std::string_view left,
                                                   std::string_view right);

// The Merkle Tree Hash of `leaves` (RFC 6962 section 2.1); the hash of the
// empty string for no leaves. O(n).
[[nodiscard]] absl::StatusOr<std::string> RootOf(
    HashAlgorithm algorithm, const std::vector<std::string_view>& leaves);

// The audit path of leaf `index` (RFC 6962 section 2.1.1, PATH(m, D[n])):
// sibling hashes from the leaf up to the root. O(n); use BatchTree for the
// paths of many leaves of one tree.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> AuditPath(
    HashAlgorithm algorithm, const std::vector<std::string_view>& leaves,
    uint64_t index);

// Recomputes a tree's root from one leaf's hash and its audit path (RFC 9162
// section 2.1.3.2). The caller compares the result with a signed root.
// kInvalidArgument if `leaf_index >= tree_size`, if a hash is not
// kDigestSize bytes, or if the path is not exactly as long as the tree's
// shape requires.
[[nodiscard]] absl::StatusOr<std::string> RootFromAuditPath(
    HashAlgorithm algorithm, uint64_t leaf_index, uint64_t tree_size,
    std::string_view leaf_hash, std::span<const std::string> path);

// RootFromAuditPath, then a comparison with `root`: kUnauthenticated if the
// path leads elsewhere.
[[nodiscard]] absl::Status VerifyInclusion(HashAlgorithm algorithm,
                                           uint64_t leaf_index,
                                           uint64_t tree_size,
                                           std::string_view leaf_hash,
                                           std::span<const std::string> path,
                                           std::string_view root);

// The consistency proof between the tree of the first `old_size` leaves
// and the tree of all of them (RFC 6962 section 2.1.2, PROOF(m, D[n])).
// Empty when `old_size` equals the number of leaves. kInvalidArgument
// unless 1 <= old_size <= leaves.size(). O(n).
[[nodiscard]] absl::StatusOr<std::vector<std::string>> ConsistencyProof(
    HashAlgorithm algorithm, const std::vector<std::string_view>& leaves,
    uint64_t old_size);

// Checks that the tree of `new_size` leaves with root `new_root` extends
// the tree of `old_size` leaves with root `old_root` (RFC 9162 section
// 2.1.4.2). Equal sizes need an empty proof and equal roots.
// kInvalidArgument unless 1 <= old_size <= new_size, for hashes of the
// wrong length, and for a proof of the wrong length; kUnauthenticated if
// the proof does not lead to both roots.
[[nodiscard]] absl::Status VerifyConsistency(
    HashAlgorithm algorithm, uint64_t old_size, uint64_t new_size,
    std::string_view old_root, std::string_view new_root,
    std::span<const std::string> proof);

// A Merkle tree over a batch of leaves, hashed once, from which the root and
// every leaf's audit path come without further hashing: O(n) to build,
// O(log n) per path. Holds about 2n hashes and no copy of the leaves.
// Immutable after Build, so const calls are thread-safe.
class BatchTree {
 public:
  // Hashes `leaves`, which may be empty (the root is then the hash of the
  // empty string and there are no paths).
  [[nodiscard]] static absl::StatusOr<BatchTree> Build(
      HashAlgorithm algorithm, const std::vector<std::string_view>& leaves);

  HashAlgorithm algorithm() const { return algorithm_; }
  uint64_t size() const { return size_; }
  const std::string& root() const { return root_; }

  // The hash of leaf `index`; kInvalidArgument if index >= size().
  [[nodiscard]] absl::StatusOr<std::string> LeafHashAt(uint64_t index) const;

  // The audit path of leaf `index`, the same as the free AuditPath;
  // kInvalidArgument if index >= size().
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> AuditPath(
      uint64_t index) const;

 private:
  BatchTree(HashAlgorithm algorithm, uint64_t size,
            std::vector<std::string> levels, std::string root);

  HashAlgorithm algorithm_;
  uint64_t size_;
  // levels_[0] holds the leaf hashes, levels_[k] the nodes k steps up,
  // each level as concatenated kDigestSize-byte hashes. A level of odd
  // length passes its last node up unchanged, which yields exactly the
  // RFC 6962 tree with its split at the largest power of two.
  std::vector<std::string> levels_;
  std::string root_;
};

}  // namespace caselink

#endif  // CASELINK_CORE_MERKLE_H_
