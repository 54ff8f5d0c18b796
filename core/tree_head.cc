#include "core/tree_head.h"

#include "core/strings.h"
#include "google/protobuf/util/time_util.h"

namespace caselink {
namespace {

constexpr std::string_view kDomain("caselink/v1/tree-head\0", 22);
constexpr size_t kCodeLength = 12;

void AppendBigEndian(std::string* out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

}  // namespace

std::string TreeHeadSigningInput(std::string_view code, uint64_t tree_size,
                                 std::string_view root_hash,
                                 int64_t signed_at_micros) {
  std::string input(kDomain);
  input.append(code);
  AppendBigEndian(&input, tree_size);
  input.append(root_hash);
  AppendBigEndian(&input, static_cast<uint64_t>(signed_at_micros));
  return input;
}

absl::StatusOr<v1::SignedTreeHead> SignTreeHead(const PrivateKey& key,
                                                std::string_view code,
                                                uint64_t tree_size,
                                                std::string_view root_hash,
                                                absl::Time signed_at) {
  if (code.size() != kCodeLength) {
    return absl::InvalidArgumentError(
        Cat("tree head code must be 12 digits, not ", code));
  }
  const int64_t micros = absl::ToUnixMicros(signed_at);
  auto signature =
      key.Sign(TreeHeadSigningInput(code, tree_size, root_hash, micros));
  if (!signature.ok()) return signature.status();
  v1::SignedTreeHead head;
  head.set_code(std::string(code));
  head.set_tree_size(tree_size);
  head.set_root_hash(std::string(root_hash));
  *head.mutable_signed_at() =
      google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(micros);
  head.set_signature(std::move(*signature));
  head.set_key_id(key.KeyId());
  head.set_algorithm(static_cast<v1::SignatureAlgorithm>(
      SignatureSchemeToProto(key.scheme())));
  return head;
}

absl::Status VerifyTreeHead(const v1::SignedTreeHead& head,
                            const PublicKey& key) {
  if (head.code().size() != kCodeLength) {
    return absl::InvalidArgumentError(
        Cat("tree head code \"", head.code(), "\" is not 12 digits"));
  }
  if (head.key_id() != key.KeyId()) {
    return absl::InvalidArgumentError(
        Cat("tree head of ", head.code(), " names key ",
            HexEncode(head.key_id()), ", not ", HexEncode(key.KeyId())));
  }
  if (head.algorithm() != SignatureSchemeToProto(key.scheme())) {
    return absl::InvalidArgumentError(Cat("tree head of ", head.code(),
                                          " names another algorithm than ",
                                          SignatureSchemeName(key.scheme())));
  }
  const int64_t micros =
      google::protobuf::util::TimeUtil::TimestampToMicroseconds(
          head.signed_at());
  absl::Status verified =
      key.Verify(TreeHeadSigningInput(head.code(), head.tree_size(),
                                      head.root_hash(), micros),
                 head.signature());
  if (!verified.ok()) {
    return absl::UnauthenticatedError(
        Cat("tree head of ", head.code(), " at size ", head.tree_size(),
            " does not verify: ", View(verified.message())));
  }
  return absl::OkStatus();
}

}  // namespace caselink
