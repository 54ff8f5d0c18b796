#include "core/merkle.h"

#include <bit>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace caselink {
namespace {

constexpr std::string_view kLeafPrefix("\x00", 1);
constexpr std::string_view kNodePrefix("\x01", 1);

// Leaf and node hashing over one reused OpenSSL context.
class TreeHasher {
 public:
  static absl::StatusOr<TreeHasher> Create(HashAlgorithm algorithm) {
    CASELINK_ASSIGN_OR_RETURN(Hasher hasher, Hasher::Create(algorithm));
    return TreeHasher(std::move(hasher));
  }

  absl::StatusOr<std::string> Leaf(std::string_view data) {
    hasher_.Update(kLeafPrefix);
    hasher_.Update(data);
    return hasher_.Finish();
  }

  absl::StatusOr<std::string> Node(std::string_view left,
                                   std::string_view right) {
    hasher_.Update(kNodePrefix);
    hasher_.Update(left);
    hasher_.Update(right);
    return hasher_.Finish();
  }

 private:
  explicit TreeHasher(Hasher hasher) : hasher_(std::move(hasher)) {}

  Hasher hasher_;
};

// The i-th hash of a level stored as concatenated hashes.
std::string_view HashAt(std::string_view level, uint64_t i) {
  return level.substr(i * kDigestSize, kDigestSize);
}

uint64_t HashCount(std::string_view level) {
  return level.size() / kDigestSize;
}

absl::StatusOr<std::string> LeafHashes(
    TreeHasher& hasher, const std::vector<std::string_view>& leaves) {
  std::string hashes;
  hashes.reserve(leaves.size() * kDigestSize);
  for (std::string_view leaf : leaves) {
    CASELINK_ASSIGN_OR_RETURN(std::string hash, hasher.Leaf(leaf));
    hashes += hash;
  }
  return hashes;
}

// The level above `level`: adjacent pairs hashed together, an odd last node
// passed up as it is.
absl::StatusOr<std::string> ParentLevel(TreeHasher& hasher,
                                        std::string_view level) {
  uint64_t count = HashCount(level);
  std::string parents;
  parents.reserve((count + 1) / 2 * kDigestSize);
  for (uint64_t i = 0; i + 1 < count; i += 2) {
    CASELINK_ASSIGN_OR_RETURN(
        std::string node, hasher.Node(HashAt(level, i), HashAt(level, i + 1)));
    parents += node;
  }
  if (count % 2 == 1) parents += HashAt(level, count - 1);
  return parents;
}

// MTH of the leaves whose hashes are `leaf_hashes[begin, end)`, begin < end.
absl::StatusOr<std::string> RangeRoot(TreeHasher& hasher,
                                      std::string_view leaf_hashes,
                                      uint64_t begin, uint64_t end) {
  std::string level(
      leaf_hashes.substr(begin * kDigestSize, (end - begin) * kDigestSize));
  while (HashCount(level) > 1) {
    CASELINK_ASSIGN_OR_RETURN(level, ParentLevel(hasher, level));
  }
  return level;
}

// The largest power of two strictly below n, for n >= 2: RFC 6962's k.
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

// RFC 6962 SUBPROOF(m, D[begin:end], complete), appended to `proof`.
absl::Status SubProof(TreeHasher& hasher, std::string_view leaf_hashes,
                      uint64_t m, uint64_t begin, uint64_t end, bool complete,
                      std::vector<std::string>& proof) {
  uint64_t n = end - begin;
  if (m == n) {
    if (!complete) {
      CASELINK_ASSIGN_OR_RETURN(std::string root,
                                RangeRoot(hasher, leaf_hashes, begin, end));
      proof.push_back(std::move(root));
    }
    return absl::OkStatus();
  }
  uint64_t k = SplitPoint(n);
  if (m <= k) {
    CASELINK_RETURN_IF_ERROR(
        SubProof(hasher, leaf_hashes, m, begin, begin + k, complete, proof));
    CASELINK_ASSIGN_OR_RETURN(std::string right,
                              RangeRoot(hasher, leaf_hashes, begin + k, end));
    proof.push_back(std::move(right));
  } else {
    CASELINK_RETURN_IF_ERROR(
        SubProof(hasher, leaf_hashes, m - k, begin + k, end, false, proof));
    CASELINK_ASSIGN_OR_RETURN(std::string left,
                              RangeRoot(hasher, leaf_hashes, begin, begin + k));
    proof.push_back(std::move(left));
  }
  return absl::OkStatus();
}

absl::Status CheckHashSize(std::string_view hash, absl::string_view what) {
  if (hash.size() == kDigestSize) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " is ", hash.size(), " bytes, not ", kDigestSize));
}

absl::Status CheckProofHashes(std::span<const std::string> proof,
                              absl::string_view what) {
  for (size_t i = 0; i < proof.size(); ++i) {
    CASELINK_RETURN_IF_ERROR(
        CheckHashSize(proof[i], absl::StrCat(what, " hash ", i)));
  }
  return absl::OkStatus();
}

// Right-shifts fn and sn together until fn is odd or zero.
void ShiftToOddOrZero(uint64_t& fn, uint64_t& sn) {
  while (fn != 0 && (fn & 1) == 0) {
    fn >>= 1;
    sn >>= 1;
  }
}

}  // namespace

absl::StatusOr<std::string> LeafHash(HashAlgorithm algorithm,
                                     std::string_view leaf) {
  CASELINK_ASSIGN_OR_RETURN(TreeHasher hasher, TreeHasher::Create(algorithm));
  return hasher.Leaf(leaf);
}

absl::StatusOr<std::string> NodeHash(HashAlgorithm algorithm,
                                     std::string_view left,
                                     std::string_view right) {
  CASELINK_ASSIGN_OR_RETURN(TreeHasher hasher, TreeHasher::Create(algorithm));
  return hasher.Node(left, right);
}

absl::StatusOr<std::string> RootOf(
    HashAlgorithm algorithm, const std::vector<std::string_view>& leaves) {
  if (leaves.empty()) return Digest(algorithm, "");
  CASELINK_ASSIGN_OR_RETURN(TreeHasher hasher, TreeHasher::Create(algorithm));
  CASELINK_ASSIGN_OR_RETURN(std::string hashes, LeafHashes(hasher, leaves));
  return RangeRoot(hasher, hashes, 0, leaves.size());
}

absl::StatusOr<std::vector<std::string>> AuditPath(
    HashAlgorithm algorithm, const std::vector<std::string_view>& leaves,
    uint64_t index) {
  CASELINK_ASSIGN_OR_RETURN(BatchTree tree,
                            BatchTree::Build(algorithm, leaves));
  return tree.AuditPath(index);
}

absl::StatusOr<std::string> RootFromAuditPath(
    HashAlgorithm algorithm, uint64_t leaf_index, uint64_t tree_size,
    std::string_view leaf_hash, std::span<const std::string> path) {
  if (leaf_index >= tree_size) {
    return absl::InvalidArgumentError(absl::StrCat("leaf index ", leaf_index,
                                                   " is outside a tree of ",
                                                   tree_size, " leaves"));
  }
  CASELINK_RETURN_IF_ERROR(CheckHashSize(leaf_hash, "leaf hash"));
  CASELINK_RETURN_IF_ERROR(CheckProofHashes(path, "audit path"));
  CASELINK_ASSIGN_OR_RETURN(TreeHasher hasher, TreeHasher::Create(algorithm));

  // RFC 9162 section 2.1.3.2: fn walks the leaf's position up the tree and
  // sn the last node's; where they meet on a level, the leaf's node is a
  // right edge with no sibling and rises unchanged.
  uint64_t fn = leaf_index;
  uint64_t sn = tree_size - 1;
  std::string r(leaf_hash);
  for (const std::string& p : path) {
    if (sn == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "audit path of ", path.size(), " hashes is too long for leaf ",
          leaf_index, " of a tree of ", tree_size));
    }
    if ((fn & 1) == 1 || fn == sn) {
      CASELINK_ASSIGN_OR_RETURN(r, hasher.Node(p, r));
      ShiftToOddOrZero(fn, sn);
    } else {
      CASELINK_ASSIGN_OR_RETURN(r, hasher.Node(r, p));
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "audit path of ", path.size(), " hashes is too short for leaf ",
        leaf_index, " of a tree of ", tree_size));
  }
  return r;
}

absl::Status VerifyInclusion(HashAlgorithm algorithm, uint64_t leaf_index,
                             uint64_t tree_size, std::string_view leaf_hash,
                             std::span<const std::string> path,
                             std::string_view root) {
  CASELINK_RETURN_IF_ERROR(CheckHashSize(root, "root"));
  CASELINK_ASSIGN_OR_RETURN(
      std::string computed,
      RootFromAuditPath(algorithm, leaf_index, tree_size, leaf_hash, path));
  if (computed == root) return absl::OkStatus();
  return absl::UnauthenticatedError(
      absl::StrCat("audit path of leaf ", leaf_index, " of a tree of ",
                   tree_size, " leaves does not lead to the expected root"));
}

absl::StatusOr<std::vector<std::string>> ConsistencyProof(
    HashAlgorithm algorithm, const std::vector<std::string_view>& leaves,
    uint64_t old_size) {
  if (old_size == 0 || old_size > leaves.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no consistency proof from ", old_size, " to ", leaves.size(),
        " leaves; the old size must be 1 to ", leaves.size()));
  }
  CASELINK_ASSIGN_OR_RETURN(TreeHasher hasher, TreeHasher::Create(algorithm));
  CASELINK_ASSIGN_OR_RETURN(std::string hashes, LeafHashes(hasher, leaves));
  std::vector<std::string> proof;
  CASELINK_RETURN_IF_ERROR(SubProof(hasher, hashes, old_size, 0, leaves.size(),
                                    /*complete=*/true, proof));
  return proof;
}

absl::Status VerifyConsistency(HashAlgorithm algorithm, uint64_t old_size,
                               uint64_t new_size, std::string_view old_root,
                               std::string_view new_root,
                               std::span<const std::string> proof) {
  if (old_size == 0 || old_size > new_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("no consistency between trees of ", old_size, " and ",
                     new_size, " leaves; need 1 <= old size <= new size"));
  }
  CASELINK_RETURN_IF_ERROR(CheckHashSize(old_root, "old root"));
  CASELINK_RETURN_IF_ERROR(CheckHashSize(new_root, "new root"));
  CASELINK_RETURN_IF_ERROR(CheckProofHashes(proof, "consistency proof"));
  std::string sizes =
      absl::StrCat("trees of ", old_size, " and ", new_size, " leaves");
  if (old_size == new_size) {
    if (!proof.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "consistency proof between equal ", sizes, " must be empty"));
    }
    if (old_root == new_root) return absl::OkStatus();
    return absl::UnauthenticatedError(
        absl::StrCat("different roots for equal ", sizes));
  }
  if (proof.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("empty consistency proof between ", sizes));
  }
  CASELINK_ASSIGN_OR_RETURN(TreeHasher hasher, TreeHasher::Create(algorithm));

  // RFC 9162 section 2.1.4.2. When the old tree is a complete subtree the
  // proof leaves out its root, which the verifier already has.
  bool old_is_complete = std::has_single_bit(old_size);
  std::string fr(old_is_complete ? old_root : std::string_view(proof[0]));
  std::string sr = fr;
  uint64_t fn = old_size - 1;
  uint64_t sn = new_size - 1;
  while ((fn & 1) == 1) {
    fn >>= 1;
    sn >>= 1;
  }
  for (size_t i = old_is_complete ? 0 : 1; i < proof.size(); ++i) {
    const std::string& c = proof[i];
    if (sn == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("consistency proof of ", proof.size(),
                       " hashes is too long for ", sizes));
    }
    if ((fn & 1) == 1 || fn == sn) {
      CASELINK_ASSIGN_OR_RETURN(fr, hasher.Node(c, fr));
      CASELINK_ASSIGN_OR_RETURN(sr, hasher.Node(c, sr));
      ShiftToOddOrZero(fn, sn);
    } else {
      CASELINK_ASSIGN_OR_RETURN(sr, hasher.Node(sr, c));
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("consistency proof of ", proof.size(),
                     " hashes is too short for ", sizes));
  }
  if (fr != old_root || sr != new_root) {
    return absl::UnauthenticatedError(
        absl::StrCat("consistency proof between ", sizes,
                     " does not lead to the expected roots"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// BatchTree

BatchTree::BatchTree(HashAlgorithm algorithm, uint64_t size,
                     std::vector<std::string> levels, std::string root)
    : algorithm_(algorithm),
      size_(size),
      levels_(std::move(levels)),
      root_(std::move(root)) {}

absl::StatusOr<BatchTree> BatchTree::Build(
    HashAlgorithm algorithm, const std::vector<std::string_view>& leaves) {
  if (leaves.empty()) {
    CASELINK_ASSIGN_OR_RETURN(std::string empty_root, Digest(algorithm, ""));
    return BatchTree(algorithm, 0, {}, std::move(empty_root));
  }
  CASELINK_ASSIGN_OR_RETURN(TreeHasher hasher, TreeHasher::Create(algorithm));
  std::vector<std::string> levels;
  CASELINK_ASSIGN_OR_RETURN(std::string leaf_hashes,
                            LeafHashes(hasher, leaves));
  levels.push_back(std::move(leaf_hashes));
  while (HashCount(levels.back()) > 1) {
    CASELINK_ASSIGN_OR_RETURN(std::string parents,
                              ParentLevel(hasher, levels.back()));
    levels.push_back(std::move(parents));
  }
  std::string root = levels.back();
  return BatchTree(algorithm, leaves.size(), std::move(levels),
                   std::move(root));
}

absl::StatusOr<std::string> BatchTree::LeafHashAt(uint64_t index) const {
  if (index >= size_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leaf index ", index, " is outside a batch of ", size_, " leaves"));
  }
  return std::string(HashAt(levels_[0], index));
}

absl::StatusOr<std::vector<std::string>> BatchTree::AuditPath(
    uint64_t index) const {
  if (index >= size_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leaf index ", index, " is outside a batch of ", size_, " leaves"));
  }
  // Bottom-up, so the path starts at the leaf's sibling as RFC 6962 wants.
  // A node without a sibling on its level is passed up and adds nothing.
  std::vector<std::string> path;
  uint64_t position = index;
  for (size_t level = 0; level + 1 < levels_.size(); ++level) {
    uint64_t sibling = position ^ 1;
    if (sibling < HashCount(levels_[level])) {
      path.emplace_back(HashAt(levels_[level], sibling));
    }
    position >>= 1;
  }
  return path;
}

}  // namespace caselink
