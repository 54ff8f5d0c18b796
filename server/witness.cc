#include "server/witness.h"

#include "absl/time/clock.h"
#include "core/crypto.h"
#include "core/merkle.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "core/tree_head.h"
#include "google/protobuf/util/time_util.h"

namespace caselink::server {
namespace {

using storage::Family;

constexpr absl::Duration kCallTimeout = absl::Seconds(5);

std::string HeldKey(std::string_view peer) { return Cat("w/", peer); }
std::string EvidenceKey(std::string_view peer, int64_t micros) {
  std::string key = Cat("w!/", peer, "/");
  storage::AppendUint64BE(&key, static_cast<uint64_t>(micros));
  return key;
}

}  // namespace

absl::StatusOr<std::optional<v1::WitnessedHead>> Witness::Check(
    PeerLink& link) {
  const std::string& peer = link.code();
  CASELINK_ASSIGN_OR_RETURN(v1::GetTreeHeadResponse fetched,
                            link.TreeHead(kCallTimeout));
  const v1::SignedTreeHead& head = fetched.head();
  if (head.code() != peer) {
    return absl::InvalidArgumentError(
        Cat("peer ", peer, " sent the tree head of ", head.code()));
  }
  auto known = deps_.keys->Find(head.key_id());
  if (!known.ok() && !fetched.signing_certificate_pem().empty()) {
    CASELINK_RETURN_IF_ERROR(
        deps_.keys->Learn(peer, fetched.signing_certificate_pem()));
    known = deps_.keys->Find(head.key_id());
  }
  CASELINK_ASSIGN_OR_RETURN(KnownSigner signer, std::move(known));
  if (signer.code != peer) {
    return absl::InvalidArgumentError(
        Cat("tree head of ", peer, " is signed by a key of ", signer.code));
  }
  CASELINK_RETURN_IF_ERROR(VerifyTreeHead(head, signer.key));

  v1::WitnessedHead witnessed;
  witnessed.set_peer(peer);
  *witnessed.mutable_head() = head;
  *witnessed.mutable_fetched_at() =
      google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
          absl::ToUnixMicros(absl::Now()));

  CASELINK_ASSIGN_OR_RETURN(std::optional<std::string> value,
                            deps_.store->Get(Family::kAudit, HeldKey(peer)));
  if (!value.has_value()) return witnessed;
  v1::WitnessedHead held;
  if (!held.ParseFromString(*value)) {
    return absl::DataLossError(Cat("the head held for ", peer, " is corrupt"));
  }
  const v1::SignedTreeHead& last = held.head();
  if (last.tree_size() == head.tree_size() &&
      last.root_hash() == head.root_hash()) {
    return std::nullopt;
  }
  std::string problem;
  if (head.tree_size() < last.tree_size()) {
    problem = Cat("the log shrank from ", last.tree_size(), " to ",
                  head.tree_size(), " entries");
  } else if (last.tree_size() == 0) {
    return witnessed;
  } else {
    auto proof =
        link.Consistency(last.tree_size(), head.tree_size(), kCallTimeout);
    if (!proof.ok()) return proof.status();
    std::vector<std::string> path(proof->path().begin(), proof->path().end());
    absl::Status consistent = VerifyConsistency(
        HashAlgorithmOf(signer.key.scheme()), last.tree_size(),
        head.tree_size(), last.root_hash(), head.root_hash(), path);
    if (!consistent.ok()) problem = std::string(View(consistent.message()));
  }
  if (problem.empty()) return witnessed;
  witnessed.set_inconsistency(problem);
  *witnessed.mutable_previous() = last;
  return witnessed;
}

void Witness::CheckAll() {
  for (PeerLink* link : deps_.links->All()) {
    if (link->Snapshot().state != v1::LINK_STATE_CONNECTED) continue;
    auto checked = Check(*link);
    if (!checked.ok()) {
      deps_.log->Debug("tree_head_not_checked",
                       {{"peer", link->code()},
                        {"error", checked.status().ToString()},
                        {"next", "trying again next round"}});
      continue;
    }
    if (!checked->has_value()) continue;
    v1::WitnessedHead witnessed = std::move(**checked);
    const bool inconsistent = !witnessed.inconsistency().empty();
    // The alarm is raised once the evidence and its audit event are
    // written, so that whoever sees the counter or the log line can read
    // both; a write that fails is tried again next round.
    auto raise = [counters = deps_.counters, log = deps_.log, inconsistent,
                  peer = witnessed.peer(),
                  held_size = witnessed.previous().tree_size(),
                  new_size = witnessed.head().tree_size(),
                  problem =
                      witnessed.inconsistency()](const absl::Status& written) {
      if (!inconsistent || !written.ok()) return;
      counters->Add("inconsistent_tree_heads");
      log->Error(
          "tree_head_inconsistent",
          {{"peer", peer},
           {"held_size", Cat(held_size)},
           {"new_size", Cat(new_size)},
           {"problem", problem},
           {"next", "keeping both heads as evidence; the held head stays"}});
    };
    deps_.committer->Apply(
        [witnessed, inconsistent](GroupWriter& writer) {
          const std::string& peer = witnessed.peer();
          if (inconsistent) {
            writer.Put(Family::kAudit,
                       EvidenceKey(peer, absl::ToUnixMicros(writer.now())),
                       witnessed.SerializeAsString());
            v1::AuditEvent event;
            event.set_kind(v1::AUDIT_EVENT_KIND_INCONSISTENT_TREE_HEAD);
            event.set_peer(peer);
            event.set_detail(witnessed.inconsistency());
            writer.Audit(std::move(event));
          } else {
            writer.Put(Family::kAudit, HeldKey(peer),
                       witnessed.SerializeAsString());
          }
          return absl::OkStatus();
        },
        std::move(raise));
  }
}

absl::StatusOr<std::vector<v1::WitnessedHead>> Witness::Held() const {
  std::vector<v1::WitnessedHead> heads;
  absl::Status parsed = absl::OkStatus();
  for (std::string_view prefix : {"w/", "w!/"}) {
    CASELINK_RETURN_IF_ERROR(deps_.store->Scan(
        Family::kAudit, prefix, [&](std::string_view, std::string_view value) {
          v1::WitnessedHead head;
          if (!head.ParseFromArray(value.data(),
                                   static_cast<int>(value.size()))) {
            parsed = absl::DataLossError("a witnessed head is corrupt");
            return false;
          }
          heads.push_back(std::move(head));
          return true;
        }));
  }
  CASELINK_RETURN_IF_ERROR(parsed);
  return heads;
}

}  // namespace caselink::server
