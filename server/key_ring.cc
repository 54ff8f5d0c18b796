#include "server/key_ring.h"

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "caselink/store/v1/records.pb.h"
#include "core/identity.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::server {
namespace {

constexpr std::string_view kKeyPrefix = "k/";

}  // namespace

absl::Status KeyRing::Load() {
  absl::Status parse_error;
  CASELINK_RETURN_IF_ERROR(store_->Scan(
      storage::Family::kMeta, kKeyPrefix,
      [&](std::string_view /*key*/, std::string_view value) {
        store::v1::KnownKey record;
        if (!record.ParseFromArray(value.data(),
                                   static_cast<int>(value.size()))) {
          parse_error = absl::DataLossError("a stored signing key is corrupt");
          return false;
        }
        auto cert = Certificate::FromPem(record.certificate_pem());
        if (!cert.ok()) {
          parse_error = cert.status();
          return false;
        }
        auto key = cert->public_key();
        if (!key.ok()) {
          parse_error = key.status();
          return false;
        }
        absl::MutexLock lock(&mu_);
        signers_.insert_or_assign(key->KeyId(),
                                  KnownSigner{record.code(), *key, *cert});
        return true;
      }));
  return parse_error;
}

absl::Status KeyRing::Learn(std::string_view code,
                            std::string_view certificate_pem) {
  CASELINK_ASSIGN_OR_RETURN(Certificate cert,
                            Certificate::FromPem(certificate_pem));
  CASELINK_ASSIGN_OR_RETURN(PublicKey key, cert.public_key());
  {
    absl::MutexLock lock(&mu_);
    auto it = signers_.find(key.KeyId());
    if (it != signers_.end() && it->second.code == code) {
      return absl::OkStatus();
    }
  }
  auto identity = IdentityFromUris(cert.uri_sans());
  if (!identity.ok() || identity->role != Role::kNode ||
      identity->code != code) {
    return absl::PermissionDeniedError(Cat(
        "signing certificate ", cert.subject(), " does not name node ", code));
  }
  // A certificate that has since expired still vouches for what it signed
  // while it was valid, so the chain is checked at the start of its life.
  CASELINK_RETURN_IF_ERROR(trust_->VerifyChain(cert, cert.not_before()));

  store::v1::KnownKey record;
  record.set_code(std::string(code));
  record.set_certificate_pem(std::string(certificate_pem));
  record.set_learned_unix_micros(absl::ToUnixMicros(absl::Now()));
  storage::Batch batch = store_->NewBatch();
  batch.Put(storage::Family::kMeta, Cat(kKeyPrefix, key.KeyId()),
            record.SerializeAsString());
  CASELINK_RETURN_IF_ERROR(store_->Commit(batch));
  absl::MutexLock lock(&mu_);
  signers_.insert_or_assign(key.KeyId(),
                            KnownSigner{std::string(code), key, cert});
  return absl::OkStatus();
}

absl::StatusOr<KnownSigner> KeyRing::Find(std::string_view key_id) const {
  absl::MutexLock lock(&mu_);
  auto it = signers_.find(std::string(key_id));
  if (it == signers_.end()) {
    return absl::NotFoundError(
        Cat("no signing certificate known for key ", HexEncode(key_id)));
  }
  return it->second;
}

}  // namespace caselink::server
