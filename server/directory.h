// The directory this node holds: for each province, the latest signed
// document its province node published (see proto/caselink/v1/
// directory.proto). Documents are checked before they are taken: signed by
// the province node, by a certificate that chains to a trusted CA, newer
// than the one held, and naming only nodes of that province. Taking one
// teaches the key ring the nodes' signing keys and this directory their
// sealing keys, and may give this node new links.
//
// A province node also publishes: it reads the list of its province's
// nodes from a file and signs a new version whenever the list changes.
#ifndef CASELINK_SERVER_DIRECTORY_H_
#define CASELINK_SERVER_DIRECTORY_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "caselink/v1/directory.pb.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/seal.h"
#include "server/key_ring.h"
#include "storage/store.h"

namespace caselink::server {

// A node this node should keep a link with, by the directory's account.
struct DirectoryLink {
  std::string code;
  std::string address;
};

// Thread-safe.
class Directory {
 public:
  // Does not take ownership; all must outlive the directory.
  Directory(std::string self, const TrustStore* trust, KeyRing* keys,
            storage::Store* store, Logger* log)
      : self_(std::move(self)),
        trust_(trust),
        keys_(keys),
        store_(store),
        log_(log) {}

  // Loads the documents and sealing keys taken before.
  [[nodiscard]] absl::Status Load();

  // Checks `signed_directory` and takes it if it is newer than the one
  // held for its province. Returns true if it was taken. An older or equal
  // version is not an error; a bad one is, saying why.
  [[nodiscard]] absl::StatusOr<bool> Take(
      const v1::SignedDirectory& signed_directory);

  // Reads the province's node list from `path` (a province node only) and,
  // if it differs from the last version published, signs and takes the
  // next version. Returns true if a new version was published.
  [[nodiscard]] absl::StatusOr<bool> Publish(const std::string& path,
                                             const PrivateKey& key,
                                             const std::string& signer_pem);

  // Every document held whose version is newer than `known` says (absent
  // means none held).
  std::vector<v1::SignedDirectory> NewerThan(
      const std::map<std::string, uint64_t>& known) const;
  std::map<std::string, uint64_t> Versions() const;

  // Remembers a sealing certificate a peer presented for itself; it must
  // chain to a trusted CA and name `code`.
  [[nodiscard]] absl::Status LearnSealingKey(std::string_view code,
                                             std::string_view pem);
  // The key to seal payloads for `code` to, or NotFound.
  [[nodiscard]] absl::StatusOr<SealingPublicKey> SealingKeyOf(
      const std::string& code) const;

  // The address the directory gives for node `code`, or NotFound.
  [[nodiscard]] absl::StatusOr<std::string> AddressOf(
      const std::string& code) const;

  // The links the directory gives this node: its parent, its children,
  // and nodes either side names as a direct link.
  std::vector<DirectoryLink> LinksOf(const std::string& code) const;

 private:
  absl::Status Check(const v1::SignedDirectory& signed_directory,
                     v1::Directory* directory) const;
  absl::Status Apply(const v1::Directory& directory);
  absl::Status StoreSealingKey(const std::string& code, const std::string& pem);

  const std::string self_;
  const TrustStore* const trust_;
  KeyRing* const keys_;
  storage::Store* const store_;
  Logger* const log_;

  mutable absl::Mutex mu_;
  std::map<std::string, v1::SignedDirectory> signed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::Directory> parsed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, SealingPublicKey> sealing_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_DIRECTORY_H_
