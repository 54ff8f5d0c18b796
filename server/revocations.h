// The revocation lists a node enforces, reloaded while it runs when the
// file changes. A revoked certificate's holder is refused on every call,
// its links are cut, and envelopes its signing key signed are refused.
#ifndef CASELINK_SERVER_REVOCATIONS_H_
#define CASELINK_SERVER_REVOCATIONS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/revocation.h"

namespace caselink::server {

// Thread-safe.
class Revocations {
 public:
  // `path` may be empty: nothing is then revoked.
  Revocations(std::string path, std::vector<Certificate> cas, Logger* log)
      : path_(std::move(path)), cas_(std::move(cas)), log_(log) {}

  // Reads the file if it changed since the last read. A file that cannot
  // be used is reported and the list in force is kept.
  [[nodiscard]] absl::Status Reload();

  bool IsRevoked(const Certificate& certificate) const;
  // The same for a PEM certificate, as gRPC reports a TLS peer's.
  bool IsRevokedPem(const std::string& pem) const;

 private:
  const std::string path_;
  const std::vector<Certificate> cas_;
  Logger* const log_;

  mutable absl::Mutex mu_;
  RevocationList list_ ABSL_GUARDED_BY(mu_);
  std::string stamp_ ABSL_GUARDED_BY(mu_);
  // Verdicts on PEM certificates under the list in force.
  mutable absl::flat_hash_map<std::string, bool> verdicts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_REVOCATIONS_H_
