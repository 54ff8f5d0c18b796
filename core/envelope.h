// Signing and checking envelopes (see proto/caselink/v1/envelope.proto).
//
// A batch of bodies signed together carries one signature over the Merkle
// root of the batch, and each envelope carries its own audit path, so that
// every envelope stays verifiable on its own while the batch costs one
// signature to make and, with SignatureChecker's cache, one to check.
#ifndef CASELINK_CORE_ENVELOPE_H_
#define CASELINK_CORE_ENVELOPE_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "caselink/v1/envelope.pb.h"
#include "core/crypto.h"

namespace caselink {

// Size of a message id in bytes.
inline constexpr size_t kMessageIdSize = 16;
// Leading bytes of an id made by NewMessageId that hold its creation time.
inline constexpr size_t kMessageIdTimeSize = 8;

// A fresh message id: the creation time in microseconds since the Unix
// epoch, as kMessageIdTimeSize big-endian bytes, then random bytes (64
// bits). Ids made later sort after those made earlier, so that the keys a
// store holds by message id are written in nearly ascending order and its
// compactions can move whole files instead of rewriting them. Nothing
// relies on the order for correctness: an id from a peer may be any 16
// bytes.
std::string NewMessageId();

// Lower-case hex of a message id, for logs and the CLI.
std::string MessageIdText(std::string_view id);

// Signs serialized bodies with `key`. Returns one envelope per body, in
// order, each with an empty routing section for the caller to fill. A
// single body gets a plain signature; two or more share one signature over
// their batch root.
[[nodiscard]] absl::StatusOr<std::vector<v1::Envelope>> SignBodies(
    const PrivateKey& key, std::span<const std::string> bodies);

// The digest of a body, with the hash family of `scheme`; receipts carry
// it.
[[nodiscard]] absl::StatusOr<std::string> BodyDigest(SignatureScheme scheme,
                                                     std::string_view body);

// Checks envelope signatures. Thread-safe. Remembers the batch roots it has
// verified (a bounded number), so that the other envelopes of a batch cost
// only the hashing of their paths.
class SignatureChecker {
 public:
  // OK if `envelope`'s signature is valid under `key`. InvalidArgument if
  // the signature section is malformed (algorithm does not match the key,
  // bad path), Unauthenticated if it does not verify.
  [[nodiscard]] absl::Status Verify(const v1::Envelope& envelope,
                                    const PublicKey& key);

 private:
  static constexpr size_t kMaxRemembered = 8192;

  absl::Mutex mu_;
  // Key id, root and signature value of each batch that verified.
  absl::flat_hash_set<std::string> verified_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caselink

#endif  // CASELINK_CORE_ENVELOPE_H_
