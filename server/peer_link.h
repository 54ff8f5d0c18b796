// This node's outbound link to one peer. It dials the peer over mutual
// TLS, checks that it answers as the node it should be, learns its signing
// certificates, and then streams the peer's outbox to it: many envelopes
// in flight, in key order (green channel first, then by age), each kept in
// the outbox until the peer acknowledges it. A broken stream is retried
// with exponential backoff and jitter; what was in flight is sent again
// and the peer drops the duplicates.
#ifndef CASELINK_SERVER_PEER_LINK_H_
#define CASELINK_SERVER_PEER_LINK_H_

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "caselink/v1/operator.pb.h"
#include "caselink/v1/peer.grpc.pb.h"
#include "core/log.h"
#include "core/tls.h"
#include "server/committer.h"
#include "server/config.h"
#include "server/counters.h"
#include "server/directory.h"
#include "server/intake.h"
#include "server/key_ring.h"
#include "server/node_identity.h"
#include "server/revocations.h"
#include "storage/store.h"

namespace caselink::server {

struct PeerLinkSnapshot {
  std::string code;
  std::string name;
  std::string address;
  v1::LinkState state = v1::LINK_STATE_CONNECTING;
  std::string last_error;
  uint64_t queued = 0;
};

struct PeerLinkDeps {
  const CurrentIdentity* self = nullptr;
  storage::Store* store = nullptr;
  Committer* committer = nullptr;
  KeyRing* keys = nullptr;
  Directory* directory = nullptr;
  const Revocations* revocations = nullptr;
  Logger* log = nullptr;
  // Checks the receipts that come on acks.
  Intake* intake = nullptr;
  Counters* counters = nullptr;
};

// Thread-safe. Start() launches the link's threads, Stop() joins them.
class PeerLink {
 public:
  // Dials with the TLS identity deps.self holds at the time.
  PeerLink(PeerConfig peer, const DeliveryConfig& delivery, PeerLinkDeps deps);
  ~PeerLink();

  PeerLink(const PeerLink&) = delete;
  PeerLink& operator=(const PeerLink&) = delete;

  // Counts what is already queued, then starts.
  [[nodiscard]] absl::Status Start();
  // Idempotent; returns once the threads have ended.
  void Stop();

  // New entries from `first_key` on are durable in this peer's outbox.
  void OnQueued(const std::string& first_key, uint64_t count);

  // Asks the peer for the signed directories newer than `known`.
  [[nodiscard]] absl::StatusOr<std::vector<v1::SignedDirectory>> FetchDirectory(
      const std::map<std::string, uint64_t>& known);

  // Asks the peer for the time limits due in its subtree.
  [[nodiscard]] absl::StatusOr<v1::ListDueResponse> ListDue(
      const v1::ListDueRequest& request, absl::Duration timeout);

  // The peer's latest signed tree head, and a proof that its tree of
  // `second` leaves extends that of `first`.
  [[nodiscard]] absl::StatusOr<v1::GetTreeHeadResponse> TreeHead(
      absl::Duration timeout);
  [[nodiscard]] absl::StatusOr<v1::GetConsistencyProofResponse> Consistency(
      uint64_t first, uint64_t second, absl::Duration timeout);

  // Asks the peer for the certificate of signing key `key_id`; NotFound if
  // it knows no such key.
  [[nodiscard]] absl::StatusOr<v1::GetSigningCertificateResponse>
  SigningCertificate(std::string_view key_id, absl::Duration timeout);

  // Cuts the current stream if the peer's TLS certificate has been revoked
  // since it was opened; the next probe then refuses to reconnect.
  void CutIfRevoked();

  // This node's identity changed: ends the current stream and reconnects at
  // once over a new channel, with the new TLS certificate, saying hello
  // with the new signing and sealing certificates. What was in flight is
  // sent again. A stream also ends by itself before it would carry an
  // envelope signed after its hello.
  void Renew();

  PeerLinkSnapshot Snapshot() const;
  // True while `message_id` is written to the stream and not acknowledged.
  bool InFlight(const std::string& message_id) const;
  const std::string& code() const { return peer_.code; }

 private:
  struct Flight {
    std::string outbox_key;
    bool originated_here = false;
    bool relayed = false;
    v1::MessageKind message_kind = v1::MESSAGE_KIND_UNSPECIFIED;
    std::string case_id;
  };

  void Run();
  // Reaches the peer and learns its keys; the state says how it went.
  absl::Status Probe();
  // One stream, until it breaks or the link stops. True if the peer
  // acknowledged anything.
  bool Session(grpc::ClientContext* context);
  // Writes outbox entries until the window is full or the outbox is
  // drained; false once the stream has broken.
  bool Fill(grpc::ClientReaderWriter<v1::ExchangeRequest, v1::ExchangeResponse>*
                stream);
  void ReadAcks(grpc::ClientReaderWriter<v1::ExchangeRequest,
                                         v1::ExchangeResponse>* stream);
  // The receipt on `ack` if it is the peer's valid receipt for the message
  // acknowledged; nullopt, logged, otherwise.
  std::optional<AckedReceipt> CheckReceipt(const v1::Ack& ack);
  void SetState(v1::LinkState state, std::string error);
  // What counts against the window: envelopes on the stream and those
  // acknowledged whose verdicts the committer has not yet written, so that
  // a committer slower than the peer holds the link back instead of
  // gathering verdicts (and the receipts on them) without bound.
  size_t Outstanding() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_.size() + settling_.size();
  }
  // The stub of a channel made with the current TLS identity.
  std::shared_ptr<v1::PeerService::Stub> Stub();

  const PeerConfig peer_;
  const DeliveryConfig delivery_;
  const PeerLinkDeps deps_;

  mutable absl::Mutex mu_;
  std::shared_ptr<v1::PeerService::Stub> stub_ ABSL_GUARDED_BY(mu_);
  // The identity generations the stub dials with and the current stream's
  // hello carried.
  uint64_t stub_generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t hello_generation_ ABSL_GUARDED_BY(mu_) = 0;
  // The current stream ends for a new identity, not for a fault.
  bool renewing_ ABSL_GUARDED_BY(mu_) = false;
  v1::LinkState state_ ABSL_GUARDED_BY(mu_) = v1::LINK_STATE_CONNECTING;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  std::string name_ ABSL_GUARDED_BY(mu_);
  // Written to the current stream and not acknowledged, by message id.
  absl::flat_hash_map<std::string, Flight> in_flight_ ABSL_GUARDED_BY(mu_);
  // Acknowledged, but the committer has not yet removed them from the
  // outbox; never sent again meanwhile.
  absl::flat_hash_set<std::string> settling_ ABSL_GUARDED_BY(mu_);
  // The first outbox key the next fill must look at.
  std::string next_key_ ABSL_GUARDED_BY(mu_);
  bool more_queued_ ABSL_GUARDED_BY(mu_) = true;
  bool stream_broken_ ABSL_GUARDED_BY(mu_) = false;
  bool acked_any_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  // The TLS certificate the peer presented at the last probe.
  std::string peer_certificate_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> queued_{0};
  std::thread thread_;
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_PEER_LINK_H_
