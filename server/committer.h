// The one writer of delivery state. Everything that changes what a node
// holds (a message an operator submits, an envelope a peer hands over, a
// next hop's acknowledgements) is queued here; a single thread takes what
// has gathered, signs the new bodies of the group with one signature, and
// writes the whole group as one synced RocksDB batch before anyone is told
// that it succeeded. Group commit and batch signing amortise the fsync and
// the signature over many messages.
#ifndef CASELINK_SERVER_COMMITTER_H_
#define CASELINK_SERVER_COMMITTER_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "caselink/store/v1/records.pb.h"
#include "caselink/v1/audit.pb.h"
#include "caselink/v1/envelope.pb.h"
#include "caselink/v1/peer.pb.h"
#include "core/crypto.h"
#include "core/log.h"
#include "server/audit_log.h"
#include "server/counters.h"
#include "server/router.h"
#include "storage/store.h"

namespace caselink::server {

// Told about new outbox entries, after they are durable.
class OutboxListener {
 public:
  virtual ~OutboxListener() = default;
  // `count` entries were added for `peer`; `first_key` is the smallest.
  virtual void OnQueued(const std::string& peer, const std::string& first_key,
                        uint64_t count) = 0;
};

// What application state (cases, evidence requests) may do within one
// commit group, on the committer's thread. What one change or one arrival
// hook stages counts only if it returns OK; then it is written in the same
// synced batch as the rest of the group.
class GroupWriter {
 public:
  virtual ~GroupWriter() = default;
  // `key` as this group leaves it: what was staged first, then the store.
  [[nodiscard]] virtual absl::StatusOr<std::optional<std::string>> Get(
      storage::Family family, const std::string& key) = 0;
  virtual void Put(storage::Family family, const std::string& key,
                   std::string value) = 0;
  // Stages `body` to be signed with the group and queued toward its
  // recipient, and followed like an operator's submission. The id,
  // recipient, kind, priority and payload must be set; the sender and the
  // creation time are filled in. NotFound-like errors of the router
  // (no route) come back here.
  [[nodiscard]] virtual absl::Status Send(v1::Body body) = 0;
  // Stages an event for this node's audit log; its index, node and time
  // are filled in when the group is written.
  virtual void Audit(v1::AuditEvent event) = 0;
  // The time this group is stamped with.
  virtual absl::Time now() const = 0;
};

// A change of application state, run on the committer's thread.
using Change = std::function<absl::Status(GroupWriter& writer)>;

// Runs for every message addressed to this node other than receipts and
// undeliverable reports, before it is stored in the inbox. An error refuses
// the message and its sender hears the reason (Unavailable makes it retry).
// True means the hook dealt with the message, which is then stored as
// already handled.
using ArrivalHook =
    std::function<absl::StatusOr<bool>(const v1::Body& body, GroupWriter&)>;

// A message an operator hands over. The committer fills in the sender, the
// creation time and, unless it is set, the id.
struct Submission {
  v1::Body body;
  std::function<void(absl::StatusOr<std::string> message_id)> done;
};

// An envelope a peer handed over that passed every check of Intake.
struct Arrival {
  v1::Envelope envelope;
  v1::Body body;
  std::string from_peer;
  // The peer takes receipts on acks (Hello.receipts_on_acks): a receipt for
  // a message it wrote to this node goes back on the ack, not through the
  // outbox.
  bool receipt_on_ack = false;
  std::function<void(v1::Ack ack)> done;
};

// A receipt that came on a next hop's ack, checked as Intake checks any
// envelope from that peer.
struct AckedReceipt {
  v1::Envelope envelope;
  v1::Body body;
};

// What a next hop said about one envelope.
struct HopVerdict {
  std::string peer;
  std::string outbox_key;
  std::string message_id;
  bool originated_here = false;
  int code = 0;  // google.rpc.Code; 0 is OK.
  std::string reason;
  // For an envelope this node relayed: what its audit log records of it.
  bool relayed = false;
  v1::MessageKind message_kind = v1::MESSAGE_KIND_UNSPECIFIED;
  std::string case_id;
  // The next hop was the recipient and sent its receipt with the ack.
  std::optional<AckedReceipt> receipt;
};

// Verdicts of one stream read, applied together.
struct VerdictBatch {
  std::vector<HopVerdict> verdicts;
  std::function<void(const absl::Status&)> done;
};

struct CommitterOptions {
  std::string self;  // 12-digit code.
  // The key to sign with now; each group signs with the one it gets. Keys
  // may change while the node runs, all of one hash algorithm.
  std::function<std::shared_ptr<const PrivateKey>()> signing_key;
  const Router* router = nullptr;
  storage::Store* store = nullptr;
  Logger* log = nullptr;
  Counters* counters = nullptr;
  OutboxListener* listener = nullptr;
  // Optional.
  ArrivalHook arrival_hook;
  // Optional: where every event the committer writes is logged, in the
  // same batch.
  AuditLog* audit_log = nullptr;
  absl::Duration dedup_retention = absl::Hours(24 * 30);
  uint32_t hop_limit = 16;
  // Most items taken into one group.
  size_t max_group = 2048;
};

// Thread-safe. Callbacks run on the committer's thread after the write
// (or its failure); they must be quick and must not call back in.
class Committer {
 public:
  explicit Committer(CommitterOptions options);
  ~Committer();

  // Reads the sequence counters from the store and starts the thread.
  [[nodiscard]] absl::Status Start();
  // Finishes what is queued, then stops. Idempotent.
  void Stop();

  void Submit(Submission submission);
  // Submits each, in order, as Submit does.
  void SubmitAll(std::vector<Submission> submissions);
  void Deliver(Arrival arrival);
  // `done` runs once the verdicts are applied, or failed to be.
  void Record(std::vector<HopVerdict> verdicts,
              std::function<void(const absl::Status&)> done);
  // Runs `change` in the next group; `done` has the change's own error, or
  // the outcome of the write.
  void Apply(Change change, std::function<void(const absl::Status&)> done);
  // Logs `event` in the next group, for events that change nothing else
  // (an envelope refused at intake, say).
  void AuditOnly(v1::AuditEvent event);

 private:
  struct Group;
  class StagedWriter;
  struct PendingChange {
    Change change;
    std::function<void(const absl::Status&)> done;
  };

  void Run();
  void Process(std::vector<Submission> submissions,
               std::vector<Arrival> arrivals,
               std::vector<VerdictBatch> verdicts,
               std::vector<PendingChange> changes);
  // Whether an arrival needs a duplicate-detection entry.
  bool Deduplicated(const Arrival& arrival) const;
  // For each arrival that needs one, whether its entry is there already;
  // read for all of them at once.
  std::vector<absl::StatusOr<bool>> SeenBefore(
      const std::vector<Arrival>& arrivals) const;
  // `seen_before` is what SeenBefore said of it.
  void TakeArrival(Group& group, Arrival& arrival,
                   const absl::StatusOr<bool>& seen_before);
  // Reads the sent states that `verdicts` need and that LoadSent would
  // otherwise read one by one, in one read, into the group. Leaves the
  // reading, and reporting its error, to LoadSent if that read fails.
  void FetchSent(Group& group, const std::vector<VerdictBatch>& verdicts);
  // Logs and counts a refusal after intake; returns `verdict`.
  absl::Status RefuseArrival(Group& group, const Arrival& arrival,
                             absl::Status verdict);
  // Marks the message `receipt` answers delivered, keeping the receipt,
  // which it moves out of `envelope` when it does; `detail` goes into the
  // audit event.
  absl::Status TakeReceipt(Group& group, v1::Envelope& envelope,
                           const v1::Body& receipt, std::string_view detail);
  absl::Status TakeUndeliverable(Group& group, const Arrival& arrival);
  // Queues a signed report to `original`'s sender that this node gave up
  // on it, and why.
  void ReportUndeliverable(Group& group, const v1::Body& original,
                           std::string reason);
  // Takes the receipt out of `verdict` if it keeps it.
  void TakeVerdict(Group& group, HopVerdict& verdict);
  // The next hop's verdict on a message this node wrote, still queued.
  void RecordHopVerdict(Group& group, const HopVerdict& verdict,
                        store::v1::SentState& sent);
  absl::Status SignAndQueue(Group& group);
  // Stages an audit event about `body`.
  void Audit(Group& group, v1::AuditEventKind kind, const v1::Body& body,
             std::string peer, std::string detail = "");
  // Appends the group's audit events to the log, in its batch.
  absl::Status AppendAudit(Group& group);
  // Adds `entry` to the outbox of `peer`; returns its key.
  std::string Queue(Group& group, const std::string& peer,
                    v1::Priority priority, store::v1::OutboxEntry entry);
  absl::StatusOr<store::v1::SentState*> LoadSent(Group& group,
                                                 const std::string& id);

  const CommitterOptions options_;

  absl::Mutex mu_;
  std::vector<Submission> submissions_ ABSL_GUARDED_BY(mu_);
  std::vector<Arrival> arrivals_ ABSL_GUARDED_BY(mu_);
  std::vector<VerdictBatch> verdicts_ ABSL_GUARDED_BY(mu_);
  std::vector<PendingChange> changes_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Keeps `group`'s sent states for the groups that follow, once it is
  // written; a state that is final (delivered or rejected) is dropped.
  void RememberSent(Group& group);

  // Owned by the committer thread.
  uint64_t outbox_seq_ = 0;
  uint64_t inbox_seq_ = 0;
  // The committed sent states of recent messages still waiting for their
  // acknowledgement or receipt, serialized as stored, so that those need no
  // read of the store. At most kRecentSent (some 300 bytes each: a few
  // seconds of full-speed submissions ahead of delivery); the oldest go
  // first, and `recent_order_` may still name some that are gone.
  static constexpr size_t kRecentSent = 32768;
  std::unordered_map<std::string, std::string> recent_sent_;
  std::deque<std::string> recent_order_;
  std::thread thread_;
};

// Deletes the duplicate-detection entries that expire before `now_micros`,
// committing every `batch_limit` deletions, so that a sweep holds a bounded
// batch however many entries expire at once. Stops between entries once
// `go_on` returns false; what it deleted until then stays deleted. An entry
// whose expiry does not parse is kept. Returns how many were deleted.
[[nodiscard]] absl::StatusOr<uint64_t> SweepDuplicateEntries(
    storage::Store& store, uint64_t now_micros,
    const std::function<bool()>& go_on, size_t batch_limit = 4096);

}  // namespace caselink::server

#endif  // CASELINK_SERVER_COMMITTER_H_
