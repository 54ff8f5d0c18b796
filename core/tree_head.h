// Signed tree heads of a node's audit log: what exactly is signed, and how
// a head is signed and checked. Shared by the node, which signs, and by
// peers and auditors, which check.
#ifndef CASELINK_CORE_TREE_HEAD_H_
#define CASELINK_CORE_TREE_HEAD_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "caselink/v1/audit.pb.h"
#include "core/crypto.h"

namespace caselink {

// "caselink/v1/tree-head" 0x00, the 12-byte code, the tree size as 8
// big-endian bytes, the root hash, and the signing time in Unix
// microseconds as 8 big-endian bytes. Fixed-width fields but the root,
// which comes last but one and has the length of its hash, so no two heads
// give the same bytes.
std::string TreeHeadSigningInput(std::string_view code, uint64_t tree_size,
                                 std::string_view root_hash,
                                 int64_t signed_at_micros);

// Signs the head of a log of `tree_size` leaves with root `root_hash`.
[[nodiscard]] absl::StatusOr<v1::SignedTreeHead> SignTreeHead(
    const PrivateKey& key, std::string_view code, uint64_t tree_size,
    std::string_view root_hash, absl::Time signed_at);

// Checks `head`'s signature with `key`: kInvalidArgument for a head that
// is malformed (code not 12 digits, key id or algorithm not `key`'s),
// kUnauthenticated for a signature that does not verify.
[[nodiscard]] absl::Status VerifyTreeHead(const v1::SignedTreeHead& head,
                                          const PublicKey& key);

}  // namespace caselink

#endif  // CASELINK_CORE_TREE_HEAD_H_
