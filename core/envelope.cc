#include "core/envelope.h"

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/merkle.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink {
namespace {

constexpr std::string_view kBodyContext("caselink/v1/body\0", 17);
constexpr std::string_view kBatchContext("caselink/v1/batch\0", 18);

// The batch signature covers the tree size as well as the root, so that a
// path cannot be presented as belonging to a tree of another shape.
std::string BatchSignedMessage(uint64_t tree_size, std::string_view root) {
  std::string message(kBatchContext);
  for (int shift = 56; shift >= 0; shift -= 8) {
    message.push_back(static_cast<char>((tree_size >> shift) & 0xff));
  }
  message.append(root);
  return message;
}

}  // namespace

std::string NewMessageId() {
  // Random bytes for 256 ids at a time: each RAND_bytes call costs far more
  // in locking and checks than the bytes it would give.
  constexpr size_t kRandomSize = kMessageIdSize - kMessageIdTimeSize;
  constexpr size_t kPoolSize = 256 * kRandomSize;
  thread_local std::string pool;
  thread_local size_t used = 0;
  if (used == pool.size()) {
    pool = RandomBytes(kPoolSize);
    used = 0;
  }
  const uint64_t micros =
      static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  std::string id;
  id.reserve(kMessageIdSize);
  for (int shift = 8 * (kMessageIdTimeSize - 1); shift >= 0; shift -= 8) {
    id.push_back(static_cast<char>((micros >> shift) & 0xff));
  }
  id.append(pool, used, kRandomSize);
  used += kRandomSize;
  return id;
}

std::string MessageIdText(std::string_view id) { return HexEncode(id); }

absl::StatusOr<std::vector<v1::Envelope>> SignBodies(
    const PrivateKey& key, std::span<const std::string> bodies) {
  std::vector<v1::Envelope> envelopes(bodies.size());
  if (bodies.empty()) return envelopes;
  const int algorithm = SignatureSchemeToProto(key.scheme());

  if (bodies.size() == 1) {
    CASELINK_ASSIGN_OR_RETURN(std::string value,
                              key.Sign(Cat(kBodyContext, bodies[0])));
    v1::Signature* signature = envelopes[0].mutable_signature();
    signature->set_algorithm(static_cast<v1::SignatureAlgorithm>(algorithm));
    signature->set_key_id(key.KeyId());
    signature->set_value(std::move(value));
    envelopes[0].set_body(bodies[0]);
    return envelopes;
  }

  std::vector<std::string_view> leaves(bodies.begin(), bodies.end());
  CASELINK_ASSIGN_OR_RETURN(
      BatchTree tree, BatchTree::Build(HashAlgorithmOf(key.scheme()), leaves));
  CASELINK_ASSIGN_OR_RETURN(
      std::string value,
      key.Sign(BatchSignedMessage(bodies.size(), tree.root())));
  for (size_t i = 0; i < bodies.size(); ++i) {
    v1::Signature* signature = envelopes[i].mutable_signature();
    signature->set_algorithm(static_cast<v1::SignatureAlgorithm>(algorithm));
    signature->set_key_id(key.KeyId());
    signature->set_value(value);
    v1::BatchProof* batch = signature->mutable_batch();
    batch->set_leaf_index(i);
    batch->set_tree_size(bodies.size());
    CASELINK_ASSIGN_OR_RETURN(std::vector<std::string> path, tree.AuditPath(i));
    for (std::string& hash : path) batch->add_path(std::move(hash));
    envelopes[i].set_body(bodies[i]);
  }
  return envelopes;
}

absl::StatusOr<std::string> BodyDigest(SignatureScheme scheme,
                                       std::string_view body) {
  return Digest(HashAlgorithmOf(scheme), body);
}

absl::Status SignatureChecker::Verify(const v1::Envelope& envelope,
                                      const PublicKey& key) {
  const v1::Signature& signature = envelope.signature();
  if (signature.algorithm() != SignatureSchemeToProto(key.scheme())) {
    return absl::InvalidArgumentError(
        Cat("signature algorithm ", static_cast<int>(signature.algorithm()),
            " does not match the signer's ", SignatureSchemeName(key.scheme()),
            " key"));
  }
  if (!signature.has_batch()) {
    return key.Verify(Cat(kBodyContext, envelope.body()), signature.value());
  }

  // A batch member: recompute the root from the path, then check the
  // signature over the root unless that exact root was verified before.
  const v1::BatchProof& batch = signature.batch();
  const HashAlgorithm hash = HashAlgorithmOf(key.scheme());
  CASELINK_ASSIGN_OR_RETURN(std::string leaf, LeafHash(hash, envelope.body()));
  std::vector<std::string> path(batch.path().begin(), batch.path().end());
  auto root = RootFromAuditPath(hash, batch.leaf_index(), batch.tree_size(),
                                leaf, path);
  if (!root.ok()) {
    return absl::InvalidArgumentError(
        Cat("batch proof: ", View(root.status().message())));
  }
  std::string remembered =
      Cat(key.KeyId(), BatchSignedMessage(batch.tree_size(), *root),
          signature.value());
  {
    absl::MutexLock lock(&mu_);
    if (verified_.contains(remembered)) return absl::OkStatus();
  }
  CASELINK_RETURN_IF_ERROR(key.Verify(
      BatchSignedMessage(batch.tree_size(), *root), signature.value()));
  absl::MutexLock lock(&mu_);
  if (verified_.size() >= kMaxRemembered) verified_.clear();
  verified_.insert(std::move(remembered));
  return absl::OkStatus();
}

}  // namespace caselink
