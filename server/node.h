// A running caselinkd node: its store, its gRPC server, the committer that
// writes delivery state, and its peer links.
//
// The node may roll to new keys and certificates while it runs. On
// ReloadIdentity (SIGHUP), and when the config file or a file its identity
// entries name changes (checked every directory refresh, and taken once it
// has stayed the same for one more), it reads the config file's tls (cert
// and key), signing and sealing entries again, with their previous lists.
// The new identity is checked as at start-up; only then is its signing
// certificate learned, then it replaces the old one whole: later groups,
// tree heads, receipts and directories are signed with the new key, new TLS
// handshakes present the new certificate, and every peer link reconnects
// with it and says hello with the new signing and sealing certificates.
// Keys the node held before stay on until it restarts. Other settings, and
// tls.ca_bundle, are read at start only.
#ifndef CASELINK_SERVER_NODE_H_
#define CASELINK_SERVER_NODE_H_

#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/tls.h"
#include "grpcpp/grpcpp.h"
#include "server/attachments.h"
#include "server/audit_log.h"
#include "server/audit_service.h"
#include "server/case_ledger.h"
#include "server/case_service.h"
#include "server/committer.h"
#include "server/config.h"
#include "server/counters.h"
#include "server/directory.h"
#include "server/intake.h"
#include "server/key_ring.h"
#include "server/link_set.h"
#include "server/node_identity.h"
#include "server/operator_service.h"
#include "server/peer_link.h"
#include "server/peer_service.h"
#include "server/revocations.h"
#include "server/router.h"
#include "storage/store.h"

namespace caselink::server {

class Node final : public OutboxListener {
 public:
  // Checks every file the config names, opens the store, starts serving
  // and starts dialing peers. Each error says what failed and where; on
  // error nothing is left running and the store is closed.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Node>> Start(
      const NodeConfig& config, Logger* log);

  ~Node() override;

  // Stops taking calls, lets calls in progress finish (streams are cut
  // after `grace`), stops the peer links, finishes every queued write and
  // closes the store cleanly. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(1));

  // The port the server listens on (useful with port 0).
  int port() const { return port_; }

  // Reloads the node's identity as described above. Any error (a file
  // missing or unreadable, a key that does not match its certificate, a
  // certificate of another node) is logged naming the file, and the node
  // keeps the identity in force. `trigger` says what asked, for the log.
  // Thread-safe.
  void ReloadIdentity(std::string_view trigger);

  void OnQueued(const std::string& peer, const std::string& first_key,
                uint64_t count) override;

 private:
  Node(NodeConfig config, Logger* log)
      : config_(std::move(config)), log_(log) {}

  absl::Status Open();
  // Stamps a new store with this node's code, or checks the stamp of an
  // existing one, so that one node's data is never served as another's.
  absl::Status ClaimStore();
  absl::Status Serve();
  // Deletes duplicate-detection entries past their retention, hourly.
  void SweepDedup();
  // Publishes (on a province node) and fetches the directory, and adds the
  // links it gives, every directory_refresh.
  void RefreshDirectory();
  void RefreshDirectoryOnce();
  // Reloads the identity if its files changed and have been still since
  // the last look.
  void WatchIdentityFiles();
  void ReloadIdentityLocked(std::string_view trigger)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(reload_mu_);
  // Teaches the key ring and the directory the certificates of `next`,
  // before it is used.
  absl::Status LearnOwnCertificates(const NodeIdentity& next);
  // Asks `peer` for the certificate of signing key `key_id`, met on an
  // envelope of `signer` it handed over, and learns it.
  absl::Status LearnSigner(const std::string& peer, const std::string& signer,
                           const std::string& key_id);
  // Records passed time limits, every workflow check_interval.
  void WatchTimeLimits();
  // Signs a tree head and witnesses the peers' logs, every audit
  // head_interval.
  void WatchAuditLogs();
  // Every minute: switches the cleaning of blob files by their garbage,
  // and gives back the disk space of queued envelopes once every queue has
  // drained.
  void KeepStore();

  const NodeConfig config_;
  Logger* const log_;
  std::unique_ptr<TrustStore> trust_;
  std::unique_ptr<CurrentIdentity> identity_;
  // Outlives the server, which asks it for the TLS identity.
  std::unique_ptr<RenewableServerTls> server_tls_;
  std::unique_ptr<storage::Store> store_;
  Counters counters_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<KeyRing> keys_;
  std::unique_ptr<Committer> committer_;
  std::unique_ptr<Revocations> revocations_;
  std::unique_ptr<Intake> intake_;
  std::unique_ptr<Directory> directory_;
  std::unique_ptr<LinkSet> links_;
  std::unique_ptr<PeerServiceImpl> peer_service_;
  std::unique_ptr<OperatorServiceImpl> operator_service_;
  std::unique_ptr<AttachmentStore> attachments_;
  std::unique_ptr<CaseLedger> ledger_;
  std::unique_ptr<AuditLog> audit_log_;
  std::unique_ptr<TreeHeads> tree_heads_;
  std::unique_ptr<AuditReader> audit_reader_;
  std::unique_ptr<Witness> witness_;
  std::unique_ptr<AuditServiceImpl> audit_service_;
  std::unique_ptr<CaseServiceImpl> case_service_;
  std::unique_ptr<grpc::Server> server_;

  absl::Mutex reload_mu_;
  // The config whose identity files are watched, the digest of those files
  // at the last reload (or start), and one seen since that is waiting to
  // stay the same for one more look.
  NodeConfig watched_config_ ABSL_GUARDED_BY(reload_mu_);
  std::string watched_digest_ ABSL_GUARDED_BY(reload_mu_);
  std::string changed_digest_ ABSL_GUARDED_BY(reload_mu_);

  absl::Notification stopping_;
  std::thread sweeper_;
  std::thread refresher_;
  std::thread limit_watcher_;
  std::thread audit_watcher_;
  std::thread store_keeper_;
  int port_ = 0;
  // "created" or "opened", for the start-up log line.
  std::string store_state_;
  bool shut_down_ = false;
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_NODE_H_
