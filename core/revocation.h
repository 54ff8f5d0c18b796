// Certificate revocation lists: which certificates their CAs have revoked.
#ifndef CASELINK_CORE_REVOCATION_H_
#define CASELINK_CORE_REVOCATION_H_

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/crypto.h"

namespace caselink {

// An immutable set of revoked certificates, each named by its issuer and
// serial number. Thread-safe.
class RevocationList {
 public:
  // An empty list.
  RevocationList() = default;

  // Reads every CRL in the PEM file at `path`. Each must be signed by one
  // of `cas` and be within its validity period; otherwise the whole file
  // is refused with InvalidArgument naming the CRL's issuer and why.
  [[nodiscard]] static absl::StatusOr<RevocationList> LoadPemFile(
      const std::string& path, const std::vector<Certificate>& cas);

  // True if `certificate` is on the list.
  bool IsRevoked(const Certificate& certificate) const;

  size_t size() const { return revoked_.size(); }

 private:
  // (DER issuer name, DER serial number).
  std::set<std::pair<std::string, std::string>> revoked_;
};

}  // namespace caselink

#endif  // CASELINK_CORE_REVOCATION_H_
