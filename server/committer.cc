#include "server/committer.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "core/envelope.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"
#include "server/store_keys.h"

namespace caselink::server {

using storage::Family;
using store::v1::OutboxEntry;
using store::v1::SentState;

namespace {

v1::Ack MakeAck(const std::string& id, absl::StatusCode code,
                std::string reason) {
  v1::Ack ack;
  ack.set_message_id(id);
  ack.set_code(static_cast<int>(code));
  ack.set_reason(std::move(reason));
  return ack;
}

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

// How long a small group waits for more items, and how many make it large
// enough not to wait.
constexpr absl::Duration kLinger = absl::Milliseconds(1);
constexpr size_t kLingerUntil = 128;

absl::StatusOr<uint64_t> ReadCounter(storage::Store* store,
                                     std::string_view key) {
  CASELINK_ASSIGN_OR_RETURN(std::optional<std::string> value,
                            store->Get(Family::kMeta, key));
  if (!value.has_value()) return 0;
  std::string_view rest = *value;
  std::optional<uint64_t> n = storage::ReadUint64BE(&rest);
  if (!n.has_value()) {
    return absl::DataLossError(Cat("meta key ", key, " is corrupt"));
  }
  return *n;
}

}  // namespace

// The writes and replies of one group, built up before the commit.
struct Committer::Group {
  explicit Group(storage::Batch b) : batch(std::move(b)) {}

  // A new body to be signed with the group, and where it goes.
  struct Unsigned {
    v1::Body body;
    std::string serialized;
    std::string next_hop;
    // Set for operator submissions, whose sent state this node follows.
    bool track = false;
    // Set for a receipt that goes back on the ack instead of through the
    // outbox: the inbox record of the message it answers, which keeps the
    // signed receipt and is written once that is signed.
    std::shared_ptr<store::v1::InboxRecord> inbox_record;
  };

  storage::Batch batch;
  // What changes and arrival hooks wrote, so that later ones in the group
  // read it.
  std::map<std::pair<Family, std::string>, std::string> staged;
  absl::Time now = absl::Now();
  absl::flat_hash_set<std::string> arrival_ids;
  // Sent states read or changed in this group, by message id, and the ids
  // of those changed, each written once when the group is.
  absl::node_hash_map<std::string, SentState> sent;
  // Serialized sent states read ahead from the store by FetchSent, by
  // message id, for LoadSent to take.
  absl::flat_hash_map<std::string, std::string> fetched_sent;
  absl::flat_hash_set<std::string> sent_changed;
  // What was put for each changed one: id and serialized state.
  std::vector<std::pair<std::string, std::string>> sent_written;
  // Inbox records of this group whose receipts go on acks, by message id,
  // for a second copy of the message in the same group.
  absl::flat_hash_map<std::string, std::shared_ptr<store::v1::InboxRecord>>
      acked_receipts;
  std::vector<Unsigned> unsigned_bodies;
  std::vector<v1::AuditEvent> audit;
  // Called with the commit's outcome, in order.
  std::vector<std::function<void(const absl::Status&)>> finish;
  // Per next hop: the smallest outbox key added and how many were.
  struct Added {
    std::string key;
    uint64_t count = 0;
  };
  std::map<std::string, Added> first_key;
};

// Holds what one change or arrival hook writes until it has succeeded.
class Committer::StagedWriter final : public GroupWriter {
 public:
  StagedWriter(Committer& committer, Group& group)
      : committer_(committer), group_(group) {}

  absl::StatusOr<std::optional<std::string>> Get(
      Family family, const std::string& key) override {
    for (auto it = puts_.rbegin(); it != puts_.rend(); ++it) {
      if (it->family == family && it->key == key) return it->value;
    }
    auto staged = group_.staged.find({family, key});
    if (staged != group_.staged.end()) return staged->second;
    return committer_.options_.store->Get(family, key);
  }

  void Put(Family family, const std::string& key, std::string value) override {
    puts_.push_back({family, key, std::move(value)});
  }

  absl::Status Send(v1::Body body) override {
    body.set_sender(committer_.options_.self);
    *body.mutable_created_at() =
        google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
            absl::ToUnixMicros(group_.now));
    CASELINK_ASSIGN_OR_RETURN(
        std::string hop, committer_.options_.router->NextHop(body.recipient()));
    bodies_.push_back(
        {std::move(body), "", std::move(hop), /*track=*/true, nullptr});
    return absl::OkStatus();
  }

  void Audit(v1::AuditEvent event) override {
    audit_.push_back(std::move(event));
  }

  absl::Time now() const override { return group_.now; }

  // Moves what was staged into the group.
  void Keep() {
    for (StagedPut& put : puts_) {
      group_.batch.Put(put.family, put.key, put.value);
      group_.staged[{put.family, put.key}] = std::move(put.value);
    }
    for (Group::Unsigned& body : bodies_) {
      group_.unsigned_bodies.push_back(std::move(body));
    }
    for (v1::AuditEvent& event : audit_) {
      group_.audit.push_back(std::move(event));
    }
    puts_.clear();
    bodies_.clear();
    audit_.clear();
  }

 private:
  struct StagedPut {
    Family family;
    std::string key;
    std::string value;
  };
  Committer& committer_;
  Group& group_;
  std::vector<StagedPut> puts_;
  std::vector<Group::Unsigned> bodies_;
  std::vector<v1::AuditEvent> audit_;
};

Committer::Committer(CommitterOptions options) : options_(std::move(options)) {}

Committer::~Committer() { Stop(); }

absl::Status Committer::Start() {
  CASELINK_ASSIGN_OR_RETURN(outbox_seq_,
                            ReadCounter(options_.store, kOutboxSeqKey));
  CASELINK_ASSIGN_OR_RETURN(inbox_seq_,
                            ReadCounter(options_.store, kInboxSeqKey));
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void Committer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Committer::Submit(Submission submission) {
  absl::MutexLock lock(&mu_);
  submissions_.push_back(std::move(submission));
}

void Committer::SubmitAll(std::vector<Submission> submissions) {
  absl::MutexLock lock(&mu_);
  for (Submission& submission : submissions) {
    submissions_.push_back(std::move(submission));
  }
}

void Committer::Deliver(Arrival arrival) {
  absl::MutexLock lock(&mu_);
  arrivals_.push_back(std::move(arrival));
}

void Committer::Record(std::vector<HopVerdict> verdicts,
                       std::function<void(const absl::Status&)> done) {
  absl::MutexLock lock(&mu_);
  verdicts_.push_back({std::move(verdicts), std::move(done)});
}

void Committer::Apply(Change change,
                      std::function<void(const absl::Status&)> done) {
  absl::MutexLock lock(&mu_);
  changes_.push_back({std::move(change), std::move(done)});
}

void Committer::AuditOnly(v1::AuditEvent event) {
  Apply(
      [event = std::move(event)](GroupWriter& writer) {
        writer.Audit(event);
        return absl::OkStatus();
      },
      [](const absl::Status&) {});
}

void Committer::Run() {
  while (true) {
    std::vector<Submission> submissions;
    std::vector<Arrival> arrivals;
    std::vector<VerdictBatch> verdicts;
    std::vector<PendingChange> changes;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !submissions_.empty() || !arrivals_.empty() ||
               !verdicts_.empty() || !changes_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      // A group that is still small waits a moment for company: one
      // signature and one fsync then serve many messages, which at middling
      // rates costs far less than the wait.
      auto full = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || submissions_.size() + arrivals_.size() +
                                    verdicts_.size() + changes_.size() >=
                                kLingerUntil;
      };
      if (!full()) mu_.AwaitWithTimeout(absl::Condition(&full), kLinger);
      if (stopping_ && submissions_.empty() && arrivals_.empty() &&
          verdicts_.empty() && changes_.empty()) {
        return;
      }
      // Take at most max_group of each kind; the rest waits its turn.
      auto take = [this](auto& from, auto& to) {
        size_t n = std::min(from.size(), options_.max_group);
        to.assign(std::make_move_iterator(from.begin()),
                  std::make_move_iterator(from.begin() + n));
        from.erase(from.begin(), from.begin() + n);
      };
      take(submissions_, submissions);
      take(arrivals_, arrivals);
      take(verdicts_, verdicts);
      take(changes_, changes);
    }
    Process(std::move(submissions), std::move(arrivals), std::move(verdicts),
            std::move(changes));
  }
}

void Committer::Process(std::vector<Submission> submissions,
                        std::vector<Arrival> arrivals,
                        std::vector<VerdictBatch> verdicts,
                        std::vector<PendingChange> changes) {
  Group group(options_.store->NewBatch());

  // Verdicts first, so that a receipt in the same group finds the state
  // they leave.
  FetchSent(group, verdicts);
  for (VerdictBatch& batch : verdicts) {
    for (HopVerdict& verdict : batch.verdicts) {
      TakeVerdict(group, verdict);
    }
    group.finish.push_back(std::move(batch.done));
  }
  const std::vector<absl::StatusOr<bool>> seen = SeenBefore(arrivals);
  for (size_t i = 0; i < arrivals.size(); ++i) {
    TakeArrival(group, arrivals[i], seen[i]);
  }

  const int64_t now = NowMicros();
  for (Submission& submission : submissions) {
    v1::Body& body = submission.body;
    if (body.message_id().empty()) body.set_message_id(NewMessageId());
    body.set_sender(options_.self);
    *body.mutable_created_at() =
        google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(now);
    auto hop = options_.router->NextHop(body.recipient());
    if (!hop.ok()) {
      submission.done(hop.status());
      continue;
    }
    std::string id = body.message_id();
    group.unsigned_bodies.push_back(
        {std::move(body), "", *hop, /*track=*/true, nullptr});
    group.finish.push_back(
        [done = std::move(submission.done), id](const absl::Status& status) {
          if (status.ok()) {
            done(id);
          } else {
            done(status);
          }
        });
  }

  for (PendingChange& pending : changes) {
    StagedWriter writer(*this, group);
    absl::Status changed = pending.change(writer);
    if (changed.ok()) writer.Keep();
    group.finish.push_back(
        [done = std::move(pending.done), changed](const absl::Status& status) {
          done(changed.ok() ? status : changed);
        });
  }

  absl::Status status = SignAndQueue(group);
  if (status.ok()) status = AppendAudit(group);
  if (status.ok()) {
    group.sent_written.reserve(group.sent_changed.size());
    for (const std::string& id : group.sent_changed) {
      std::string bytes = group.sent.at(id).SerializeAsString();
      group.batch.Put(Family::kMessages, SentKey(id), bytes);
      group.sent_written.emplace_back(id, std::move(bytes));
    }
    group.batch.Put(Family::kMeta, kOutboxSeqKey, SeqKey(outbox_seq_));
    group.batch.Put(Family::kMeta, kInboxSeqKey, SeqKey(inbox_seq_));
    status = options_.store->Commit(group.batch);
  }
  if (options_.audit_log != nullptr) {
    if (status.ok()) {
      options_.audit_log->Committed();
    } else {
      options_.audit_log->Discard();
    }
  }
  if (!status.ok()) {
    options_.log->Error("store_write_failed",
                        {{"error", status.ToString()},
                         {"items", Cat(group.finish.size())},
                         {"next", "refusing this group; senders will retry"}});
    status = absl::UnavailableError(
        Cat("this node could not store the message: ", View(status.message())));
  }
  if (status.ok()) RememberSent(group);
  // The links hear of the new entries before anyone is answered, so that
  // a submitter that asks next sees its message counted as queued.
  if (status.ok() && options_.listener != nullptr) {
    for (const auto& [peer, first] : group.first_key) {
      options_.listener->OnQueued(peer, first.key, first.count);
    }
  }
  for (auto& finish : group.finish) finish(status);
}

void Committer::RememberSent(Group& group) {
  for (auto& [id, bytes] : group.sent_written) {
    const v1::DeliveryState state = group.sent.at(id).state();
    if (state == v1::DELIVERY_STATE_DELIVERED ||
        state == v1::DELIVERY_STATE_REJECTED) {
      recent_sent_.erase(id);
      continue;
    }
    auto [it, added] = recent_sent_.insert_or_assign(id, std::move(bytes));
    if (added) recent_order_.push_back(id);
  }
  while (recent_sent_.size() > kRecentSent ||
         recent_order_.size() > 2 * kRecentSent) {
    recent_sent_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
}

bool Committer::Deduplicated(const Arrival& arrival) const {
  // Receipts and undeliverable reports for this node change a sent state
  // only while it is still open, so a second copy has no effect and needs
  // no duplicate-detection entry: that saves a read and a write for every
  // message this node sends.
  const v1::Body& body = arrival.body;
  return body.recipient() != options_.self ||
         (body.kind() != v1::MESSAGE_KIND_RECEIPT &&
          body.kind() != v1::MESSAGE_KIND_UNDELIVERABLE);
}

std::vector<absl::StatusOr<bool>> Committer::SeenBefore(
    const std::vector<Arrival>& arrivals) const {
  std::vector<absl::StatusOr<bool>> seen(arrivals.size(), false);
  std::vector<std::string> keys;
  std::vector<size_t> positions;
  for (size_t i = 0; i < arrivals.size(); ++i) {
    if (!Deduplicated(arrivals[i])) continue;
    keys.push_back(arrivals[i].body.message_id());
    positions.push_back(i);
  }
  if (keys.empty()) return seen;
  auto entries = options_.store->GetAll(Family::kDedup, keys);
  for (size_t k = 0; k < positions.size(); ++k) {
    if (entries.ok()) {
      seen[positions[k]] = (*entries)[k].has_value();
    } else {
      seen[positions[k]] = entries.status();
    }
  }
  return seen;
}

void Committer::TakeArrival(Group& group, Arrival& arrival,
                            const absl::StatusOr<bool>& seen_before) {
  const v1::Body& body = arrival.body;
  const std::string& id = body.message_id();
  // `record`, when given, holds the receipt that goes on the ack.
  auto reply = [&group, done = std::move(arrival.done), id](
                   absl::Status verdict,
                   std::shared_ptr<const store::v1::InboxRecord> record =
                       nullptr) {
    group.finish.push_back(
        [done, id, verdict, record](const absl::Status& status) {
          const absl::Status& outcome = status.ok() ? verdict : status;
          v1::Ack ack =
              MakeAck(id, outcome.code(), std::string(View(outcome.message())));
          if (outcome.ok() && record != nullptr && record->has_receipt()) {
            *ack.mutable_receipt() = record->receipt();
          }
          done(std::move(ack));
        });
  };
  // The peer wrote this message and takes its receipt on the ack.
  const bool receipt_on_ack = arrival.receipt_on_ack &&
                              body.recipient() == options_.self &&
                              body.sender() == arrival.from_peer;

  // A retried envelope, or a second copy within this group: acknowledge it
  // again without storing anything.
  if (!group.arrival_ids.insert(id).second) {
    std::shared_ptr<const store::v1::InboxRecord> record;
    if (receipt_on_ack) {
      auto it = group.acked_receipts.find(id);
      if (it != group.acked_receipts.end()) record = it->second;
    }
    reply(absl::OkStatus(), std::move(record));
    options_.counters->Add("duplicates_dropped");
    return;
  }
  const bool idempotent = !Deduplicated(arrival);
  if (!idempotent) {
    if (!seen_before.ok()) {
      reply(seen_before.status());
      return;
    }
    if (*seen_before) {
      // The first ack may have been lost: this one carries the same
      // receipt, if the first did.
      std::shared_ptr<store::v1::InboxRecord> record;
      if (receipt_on_ack) {
        auto stored =
            options_.store->Get(Family::kMessages, InboxRecordKey(id));
        if (!stored.ok()) {
          reply(stored.status());
          return;
        }
        if (stored->has_value()) {
          record = std::make_shared<store::v1::InboxRecord>();
          if (!record->ParseFromString(**stored)) {
            reply(absl::DataLossError(
                Cat("inbox record of ", MessageIdText(id), " is corrupt")));
            return;
          }
        }
      }
      reply(absl::OkStatus(), std::move(record));
      options_.counters->Add("duplicates_dropped");
      return;
    }
  }
  std::string expiry;
  storage::AppendUint64BE(
      &expiry, static_cast<uint64_t>(
                   absl::ToUnixMicros(absl::Now() + options_.dedup_retention)));

  absl::Status verdict = absl::OkStatus();
  std::shared_ptr<const store::v1::InboxRecord> on_ack;
  if (body.recipient() != options_.self) {
    // Not for this node: pass the same bytes on toward the recipient.
    auto hop = options_.router->NextHop(body.recipient());
    if (!hop.ok()) {
      // This node gives up on it and says so to the sender, signed.
      ReportUndeliverable(group, body,
                          std::string(View(hop.status().message())));
    } else {
      OutboxEntry entry;
      entry.set_message_id(id);
      entry.set_relayed(true);
      entry.set_message_kind(body.kind());
      entry.set_case_id(body.case_id());
      *entry.mutable_envelope() = std::move(arrival.envelope);
      v1::Routing* routing = entry.mutable_envelope()->mutable_routing();
      routing->add_hops(options_.self);
      routing->set_hop_limit(routing->hop_limit() - 1);
      Queue(group, *hop, body.priority(), std::move(entry));
      options_.counters->Add("relayed");
      Audit(group, v1::AUDIT_EVENT_KIND_RELAYED, body, *hop,
            Cat("from ", arrival.from_peer));
    }
  } else if (body.kind() == v1::MESSAGE_KIND_RECEIPT) {
    verdict = TakeReceipt(group, arrival.envelope, body, "receipt verified");
  } else if (body.kind() == v1::MESSAGE_KIND_UNDELIVERABLE) {
    verdict = TakeUndeliverable(group, arrival);
  } else {
    bool handled = false;
    if (options_.arrival_hook) {
      StagedWriter writer(*this, group);
      absl::StatusOr<bool> taken = options_.arrival_hook(body, writer);
      if (!taken.ok()) {
        reply(RefuseArrival(group, arrival, taken.status()));
        return;
      }
      writer.Keep();
      handled = *taken;
    }
    // For this node: keep it, and answer with a signed receipt.
    auto record = std::make_shared<store::v1::InboxRecord>();
    record->set_handled(handled);
    std::string inbox_key = SeqKey(++inbox_seq_);
    record->set_received_unix_micros(NowMicros());
    record->set_from_peer(arrival.from_peer);
    record->set_inbox_key(inbox_key);
    auto digest =
        BodyDigest(options_.signing_key()->scheme(), arrival.envelope.body());
    *record->mutable_envelope() = std::move(arrival.envelope);
    // A receipt that goes on the ack is kept in the record, which is
    // written once the receipt is signed.
    if (!receipt_on_ack) {
      group.batch.Put(Family::kMessages, InboxRecordKey(id),
                      record->SerializeAsString());
    }
    group.batch.Put(Family::kInbox, inbox_key, id);

    v1::Body receipt;
    receipt.set_message_id(NewMessageId());
    receipt.set_sender(options_.self);
    receipt.set_recipient(body.sender());
    *receipt.mutable_created_at() =
        google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(NowMicros());
    receipt.set_kind(v1::MESSAGE_KIND_RECEIPT);
    receipt.set_case_id(body.case_id());
    receipt.set_in_reply_to(id);
    receipt.set_priority(body.priority());
    v1::Receipt* content = receipt.mutable_receipt();
    content->set_message_id(id);
    if (digest.ok()) content->set_body_digest(*digest);
    *content->mutable_received_at() = receipt.created_at();
    for (const std::string& hop : record->envelope().routing().hops()) {
      content->add_route(hop);
    }
    if (receipt_on_ack) {
      group.unsigned_bodies.push_back(
          {std::move(receipt), "", arrival.from_peer, /*track=*/false, record});
      group.acked_receipts[id] = record;
      on_ack = std::move(record);
    } else if (auto hop = options_.router->NextHop(body.sender()); hop.ok()) {
      group.unsigned_bodies.push_back(
          {std::move(receipt), "", *hop, /*track=*/false, nullptr});
    } else {
      options_.log->Warning("receipt_unroutable",
                            {{"message", MessageIdText(id)},
                             {"sender", body.sender()},
                             {"error", hop.status().ToString()}});
    }
    options_.counters->Add("received");
    Audit(group, v1::AUDIT_EVENT_KIND_RECEIVED, body, body.sender(),
          Cat("from ", arrival.from_peer));
  }
  if (verdict.ok()) {
    if (!idempotent) group.batch.Put(Family::kDedup, id, expiry);
  } else {
    verdict = RefuseArrival(group, arrival, verdict);
  }
  reply(verdict, std::move(on_ack));
}

absl::Status Committer::RefuseArrival(Group& group, const Arrival& arrival,
                                      absl::Status verdict) {
  options_.counters->Add("refused_after_intake");
  Audit(group, v1::AUDIT_EVENT_KIND_REFUSAL, arrival.body, arrival.from_peer,
        Cat(absl::StatusCodeToString(verdict.code()), ": ",
            View(verdict.message())));
  options_.log->Warning("envelope_refused",
                        {{"message", MessageIdText(arrival.body.message_id())},
                         {"peer", arrival.from_peer},
                         {"code", absl::StatusCodeToString(verdict.code())},
                         {"reason", std::string(View(verdict.message()))}});
  return verdict;
}

absl::Status Committer::TakeReceipt(Group& group, v1::Envelope& envelope,
                                    const v1::Body& body,
                                    std::string_view detail) {
  const v1::Receipt& receipt = body.receipt();
  CASELINK_ASSIGN_OR_RETURN(SentState * state,
                            LoadSent(group, receipt.message_id()));
  if (state == nullptr) {
    return absl::NotFoundError(Cat("receipt for unknown message ",
                                   MessageIdText(receipt.message_id())));
  }
  if (state->recipient() != body.sender() ||
      state->body_digest() != receipt.body_digest()) {
    return absl::FailedPreconditionError(
        Cat("receipt from ", body.sender(), " does not match message ",
            MessageIdText(receipt.message_id())));
  }
  if (state->state() == v1::DELIVERY_STATE_DELIVERED) return absl::OkStatus();
  state->set_state(v1::DELIVERY_STATE_DELIVERED);
  state->set_updated_unix_micros(NowMicros());
  // The route the recipient saw, which it signed, replaces the guess.
  if (receipt.route_size() > 0) {
    state->clear_route();
    for (const std::string& hop : receipt.route()) state->add_route(hop);
    state->add_route(body.sender());
  }
  *state->mutable_receipt() = std::move(envelope);
  group.sent_changed.insert(receipt.message_id());
  options_.counters->Add("delivered");
  v1::Body delivered;
  delivered.set_message_id(receipt.message_id());
  delivered.set_kind(state->kind());
  delivered.set_case_id(state->case_id());
  Audit(group, v1::AUDIT_EVENT_KIND_RECEIPT, delivered, body.sender(),
        std::string(detail));
  return absl::OkStatus();
}

absl::Status Committer::TakeUndeliverable(Group& group,
                                          const Arrival& arrival) {
  const v1::Undeliverable& report = arrival.body.undeliverable();
  CASELINK_ASSIGN_OR_RETURN(SentState * state,
                            LoadSent(group, report.message_id()));
  if (state == nullptr) {
    return absl::NotFoundError(Cat("undeliverable report for unknown message ",
                                   MessageIdText(report.message_id())));
  }
  if (state->state() == v1::DELIVERY_STATE_DELIVERED ||
      state->state() == v1::DELIVERY_STATE_REJECTED) {
    return absl::OkStatus();
  }
  state->set_state(v1::DELIVERY_STATE_REJECTED);
  state->set_reason(Cat("undeliverable, reported by ", arrival.body.sender(),
                        ": ", report.reason()));
  state->set_updated_unix_micros(NowMicros());
  group.sent_changed.insert(report.message_id());
  options_.counters->Add("undeliverable");
  v1::Body given_up;
  given_up.set_message_id(report.message_id());
  given_up.set_kind(state->kind());
  given_up.set_case_id(state->case_id());
  Audit(group, v1::AUDIT_EVENT_KIND_UNDELIVERABLE, given_up,
        arrival.body.sender(), report.reason());
  return absl::OkStatus();
}

void Committer::ReportUndeliverable(Group& group, const v1::Body& original,
                                    std::string reason) {
  // Reports and receipts are never reported on, so that no loop of reports
  // can start.
  if (original.kind() == v1::MESSAGE_KIND_RECEIPT ||
      original.kind() == v1::MESSAGE_KIND_UNDELIVERABLE ||
      original.sender() == options_.self) {
    return;
  }
  options_.log->Warning("undeliverable",
                        {{"message", MessageIdText(original.message_id())},
                         {"sender", original.sender()},
                         {"recipient", original.recipient()},
                         {"reason", reason},
                         {"next", "reporting it to the sender"}});
  auto hop = options_.router->NextHop(original.sender());
  if (!hop.ok()) return;
  v1::Body report;
  report.set_message_id(NewMessageId());
  report.set_sender(options_.self);
  report.set_recipient(original.sender());
  *report.mutable_created_at() =
      google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(NowMicros());
  report.set_kind(v1::MESSAGE_KIND_UNDELIVERABLE);
  report.set_case_id(original.case_id());
  report.set_in_reply_to(original.message_id());
  report.set_priority(original.priority());
  v1::Undeliverable* content = report.mutable_undeliverable();
  content->set_message_id(original.message_id());
  content->set_reported_by(options_.self);
  content->set_reason(std::move(reason));
  Audit(group, v1::AUDIT_EVENT_KIND_UNDELIVERABLE, original, original.sender(),
        report.undeliverable().reason());
  group.unsigned_bodies.push_back(
      {std::move(report), "", *hop, false, nullptr});
  options_.counters->Add("undeliverable_reported");
}

void Committer::TakeVerdict(Group& group, HopVerdict& verdict) {
  // A refusal for lack of capacity is retried; every other verdict is final.
  if (verdict.code == static_cast<int>(absl::StatusCode::kUnavailable)) {
    return;
  }
  if (!verdict.originated_here && verdict.code != 0) {
    // A relayed envelope the next hop refused: its sender must hear of it.
    auto entry = options_.store->Get(Family::kOutbox, verdict.outbox_key);
    OutboxEntry relayed;
    v1::Body body;
    if (entry.ok() && entry->has_value() && relayed.ParseFromString(**entry) &&
        body.ParseFromString(relayed.envelope().body())) {
      ReportUndeliverable(
          group, body, Cat("refused by ", verdict.peer, ": ", verdict.reason));
    }
  }
  if (verdict.relayed && verdict.code == 0) {
    v1::Body relayed;
    relayed.set_message_id(verdict.message_id);
    relayed.set_kind(verdict.message_kind);
    relayed.set_case_id(verdict.case_id);
    Audit(group, v1::AUDIT_EVENT_KIND_ACKNOWLEDGED, relayed, verdict.peer,
          "relayed");
  }
  // Outbox keys carry a sequence number that is never reused.
  group.batch.DeleteWrittenOnce(Family::kOutbox, verdict.outbox_key);
  if (!verdict.originated_here) return;
  auto state = LoadSent(group, verdict.message_id);
  if (!state.ok() || *state == nullptr) return;
  SentState* sent = *state;
  if (verdict.receipt.has_value() && verdict.code == 0) {
    // The recipient acknowledged it with its receipt: one event, of the
    // receipt, records both.
    absl::Status taken =
        TakeReceipt(group, verdict.receipt->envelope, verdict.receipt->body,
                    "receipt verified; it came with the acknowledgement");
    if (taken.ok()) return;
    options_.counters->Add("receipts_refused");
    options_.log->Warning("receipt_refused",
                          {{"message", MessageIdText(verdict.message_id)},
                           {"peer", verdict.peer},
                           {"reason", std::string(View(taken.message()))}});
  }
  if (sent->state() == v1::DELIVERY_STATE_QUEUED) {
    RecordHopVerdict(group, verdict, *sent);
  }
}

void Committer::RecordHopVerdict(Group& group, const HopVerdict& verdict,
                                 SentState& sent) {
  v1::Body acknowledged;
  acknowledged.set_message_id(verdict.message_id);
  acknowledged.set_kind(sent.kind());
  acknowledged.set_case_id(sent.case_id());
  if (verdict.code == 0) {
    sent.set_state(v1::DELIVERY_STATE_ACKNOWLEDGED);
    Audit(group, v1::AUDIT_EVENT_KIND_ACKNOWLEDGED, acknowledged, verdict.peer);
  } else {
    sent.set_state(v1::DELIVERY_STATE_REJECTED);
    sent.set_reason(verdict.reason);
    options_.counters->Add("rejected_by_next_hop");
    Audit(group, v1::AUDIT_EVENT_KIND_REFUSAL, acknowledged, verdict.peer,
          Cat("refused by the next hop: ", verdict.reason));
  }
  sent.set_updated_unix_micros(NowMicros());
  group.sent_changed.insert(verdict.message_id);
}

void Committer::FetchSent(Group& group,
                          const std::vector<VerdictBatch>& verdicts) {
  std::vector<std::string> ids;
  std::vector<std::string> keys;
  for (const VerdictBatch& batch : verdicts) {
    for (const HopVerdict& verdict : batch.verdicts) {
      const std::string& id = verdict.message_id;
      if (!verdict.originated_here || recent_sent_.contains(id) ||
          verdict.code == static_cast<int>(absl::StatusCode::kUnavailable)) {
        continue;
      }
      ids.push_back(id);
      keys.push_back(SentKey(id));
    }
  }
  if (keys.empty()) return;
  auto values = options_.store->GetAll(Family::kMessages, keys);
  if (!values.ok()) return;
  for (size_t i = 0; i < ids.size(); ++i) {
    if ((*values)[i].has_value()) {
      group.fetched_sent.try_emplace(ids[i], *std::move((*values)[i]));
    }
  }
}

absl::StatusOr<SentState*> Committer::LoadSent(Group& group,
                                               const std::string& id) {
  auto it = group.sent.find(id);
  if (it != group.sent.end()) return &it->second;
  std::optional<std::string> stored;
  const std::string* bytes = nullptr;
  if (auto recent = recent_sent_.find(id); recent != recent_sent_.end()) {
    bytes = &recent->second;
  } else if (auto fetched = group.fetched_sent.find(id);
             fetched != group.fetched_sent.end()) {
    bytes = &fetched->second;
  } else {
    CASELINK_ASSIGN_OR_RETURN(
        stored, options_.store->Get(Family::kMessages, SentKey(id)));
    if (!stored.has_value()) return nullptr;
    bytes = &*stored;
  }
  SentState state;
  if (!state.ParseFromString(*bytes)) {
    return absl::DataLossError(
        Cat("sent state of ", MessageIdText(id), " is corrupt"));
  }
  return &group.sent.emplace(id, std::move(state)).first->second;
}

absl::Status Committer::SignAndQueue(Group& group) {
  if (group.unsigned_bodies.empty()) return absl::OkStatus();
  std::vector<std::string> serialized;
  serialized.reserve(group.unsigned_bodies.size());
  for (auto& item : group.unsigned_bodies) {
    serialized.push_back(item.body.SerializeAsString());
  }
  const std::shared_ptr<const PrivateKey> signing_key = options_.signing_key();
  CASELINK_ASSIGN_OR_RETURN(std::vector<v1::Envelope> envelopes,
                            SignBodies(*signing_key, serialized));
  const int64_t now = NowMicros();
  for (size_t i = 0; i < envelopes.size(); ++i) {
    auto& item = group.unsigned_bodies[i];
    const std::string& id = item.body.message_id();
    v1::Routing* routing = envelopes[i].mutable_routing();
    routing->add_hops(options_.self);
    routing->set_hop_limit(options_.hop_limit);
    if (item.inbox_record != nullptr) {
      *item.inbox_record->mutable_receipt() = std::move(envelopes[i]);
      group.batch.Put(Family::kMessages,
                      InboxRecordKey(item.body.receipt().message_id()),
                      item.inbox_record->SerializeAsString());
      continue;
    }
    OutboxEntry entry;
    entry.set_message_id(id);
    entry.set_originated_here(item.track);
    *entry.mutable_envelope() = std::move(envelopes[i]);
    std::string key =
        Queue(group, item.next_hop, item.body.priority(), std::move(entry));
    if (item.track) {
      SentState state;
      state.set_state(v1::DELIVERY_STATE_QUEUED);
      state.set_recipient(item.body.recipient());
      state.set_kind(item.body.kind());
      state.set_case_id(item.body.case_id());
      state.set_priority(item.body.priority());
      state.set_created_unix_micros(now);
      state.set_updated_unix_micros(now);
      state.set_next_hop(item.next_hop);
      state.add_route(options_.self);
      state.add_route(item.next_hop);
      state.set_outbox_key(key);
      CASELINK_ASSIGN_OR_RETURN(
          std::string digest, BodyDigest(signing_key->scheme(), serialized[i]));
      state.set_body_digest(std::move(digest));
      group.batch.Put(Family::kMessages, SentIndexKey(now, id), "");
      group.sent.insert_or_assign(id, std::move(state));
      group.sent_changed.insert(id);
      Audit(group, v1::AUDIT_EVENT_KIND_SUBMITTED, item.body,
            item.body.recipient(), Cat("queued for ", item.next_hop));
    }
  }
  return absl::OkStatus();
}

void Committer::Audit(Group& group, v1::AuditEventKind kind,
                      const v1::Body& body, std::string peer,
                      std::string detail) {
  if (options_.audit_log == nullptr) return;
  v1::AuditEvent event;
  event.set_kind(kind);
  event.set_message_id(body.message_id());
  event.set_message_kind(body.kind());
  event.set_case_id(body.case_id());
  event.set_peer(std::move(peer));
  event.set_detail(std::move(detail));
  group.audit.push_back(std::move(event));
}

absl::Status Committer::AppendAudit(Group& group) {
  if (options_.audit_log == nullptr) return absl::OkStatus();
  const auto at = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
      absl::ToUnixMicros(group.now));
  for (v1::AuditEvent& event : group.audit) {
    if (!event.has_at()) *event.mutable_at() = at;
  }
  return options_.audit_log->AppendAll(group.batch, std::move(group.audit));
}

std::string Committer::Queue(Group& group, const std::string& peer,
                             v1::Priority priority, OutboxEntry entry) {
  std::string key = OutboxKey(peer, priority, ++outbox_seq_);
  group.batch.Put(Family::kOutbox, key, entry.SerializeAsString());
  auto it = group.first_key.try_emplace(peer, Group::Added{key, 0}).first;
  if (key < it->second.key) it->second.key = key;
  ++it->second.count;
  return key;
}

absl::StatusOr<uint64_t> SweepDuplicateEntries(
    storage::Store& store, uint64_t now_micros,
    const std::function<bool()>& go_on, size_t batch_limit) {
  uint64_t deleted = 0;
  storage::Batch batch = store.NewBatch();
  auto commit = [&]() -> absl::Status {
    const size_t size = batch.size();
    if (size == 0) return absl::OkStatus();
    CASELINK_RETURN_IF_ERROR(store.Commit(batch));
    deleted += size;
    return absl::OkStatus();
  };
  absl::Status committed = absl::OkStatus();
  absl::Status scanned = store.Scan(
      Family::kDedup, "", [&](std::string_view key, std::string_view value) {
        std::optional<uint64_t> expiry = storage::ReadUint64BE(&value);
        if (expiry.has_value() && *expiry < now_micros) {
          batch.Delete(Family::kDedup, key);
        }
        if (batch.size() >= batch_limit) {
          committed = commit();
          if (!committed.ok()) return false;
        }
        return go_on();
      });
  CASELINK_RETURN_IF_ERROR(committed);
  CASELINK_RETURN_IF_ERROR(scanned);
  CASELINK_RETURN_IF_ERROR(commit());
  return deleted;
}

}  // namespace caselink::server
