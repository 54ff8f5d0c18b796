#include "server/intake.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "core/division_code.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"

namespace caselink::server {
namespace {

std::string_view CounterFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kResourceExhausted:
      return "refused_oversized";
    case absl::StatusCode::kInvalidArgument:
      return "refused_malformed";
    case absl::StatusCode::kPermissionDenied:
      return "refused_wrong_link";
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnavailable:
      return "refused_unknown_sender";
    case absl::StatusCode::kUnauthenticated:
      return "refused_bad_signature";
    case absl::StatusCode::kOutOfRange:
      return "refused_clock_skew";
    case absl::StatusCode::kAborted:
      return "refused_hop_limit";
    default:
      return "refused_other";
  }
}

// How long a key id a peer said it does not know is not asked of it again.
constexpr absl::Duration kUnfoundRetry = absl::Seconds(30);
constexpr size_t kMaxUnfound = 4096;

bool IsFullCode(const std::string& code) {
  auto normalized = NormalizeDivisionCode(code);
  return code.size() == 12 && normalized.ok();
}

}  // namespace

absl::Status Intake::Check(const v1::Envelope& envelope,
                           const std::string& tls_peer, v1::Body* body) {
  absl::Status status = CheckUnlogged(envelope, tls_peer, body);
  if (!status.ok()) {
    counters_->Add(CounterFor(status.code()));
    log_->Warning("envelope_refused",
                  {{"message", MessageIdText(body->message_id())},
                   {"peer", tls_peer},
                   {"code", absl::StatusCodeToString(status.code())},
                   {"reason", std::string(View(status.message()))}});
    if (committer_ != nullptr) {
      // The body was not verified: only its id is kept, beside the peer
      // that handed it over.
      v1::AuditEvent event;
      event.set_kind(v1::AUDIT_EVENT_KIND_REFUSAL);
      event.set_message_id(body->message_id().substr(0, 16));
      event.set_peer(tls_peer);
      event.set_detail(
          Cat(absl::StatusCodeToString(status.code()), " at intake"));
      committer_->AuditOnly(std::move(event));
    }
  }
  return status;
}

absl::Status Intake::CheckUnlogged(const v1::Envelope& envelope,
                                   const std::string& tls_peer,
                                   v1::Body* body) {
  // The body is parsed even when the envelope is too large, so that the
  // refusal can name the message; gRPC bounds what arrives at all.
  if (!body->ParseFromString(envelope.body())) {
    body->Clear();
    return absl::InvalidArgumentError(
        "envelope body does not parse as caselink.v1.Body");
  }
  const size_t size = envelope.ByteSizeLong();
  if (size > delivery_.max_envelope_bytes) {
    return absl::ResourceExhaustedError(Cat("envelope of ", size,
                                            " bytes is over the limit of ",
                                            delivery_.max_envelope_bytes));
  }
  if (body->message_id().size() != kMessageIdSize) {
    return absl::InvalidArgumentError(
        Cat("message id must be ", kMessageIdSize, " bytes"));
  }
  if (!IsFullCode(body->sender()) || !IsFullCode(body->recipient())) {
    return absl::InvalidArgumentError(
        "sender and recipient must be 12-digit division codes");
  }
  if (body->kind() == v1::MESSAGE_KIND_UNSPECIFIED ||
      (body->kind() == v1::MESSAGE_KIND_RECEIPT && !body->has_receipt())) {
    return absl::InvalidArgumentError("message kind is missing or empty");
  }

  // The link must be the hop the envelope names as its last.
  const auto& hops = envelope.routing().hops();
  const std::string& claimed = hops.empty() ? body->sender() : *hops.rbegin();
  if (claimed != tls_peer) {
    return absl::PermissionDeniedError(
        Cat("envelope claims to come from ", claimed,
            " but arrived over the link of ", tls_peer));
  }
  if (std::find(hops.begin(), hops.end(), self_) != hops.end()) {
    return absl::AbortedError(
        Cat("routing loop: ", self_, " is already on the hop list"));
  }
  if (body->recipient() != self_ && envelope.routing().hop_limit() == 0) {
    return absl::AbortedError("hop limit spent");
  }

  const absl::Time created = absl::FromUnixMicros(
      google::protobuf::util::TimeUtil::TimestampToMicroseconds(
          body->created_at()));
  // Only a creation time ahead of this clock is refused: an envelope that
  // waited in a queue while a peer was down is old, not forged.
  if (created - absl::Now() > delivery_.max_clock_skew) {
    return absl::OutOfRangeError(
        Cat("creation time ", absl::FormatTime(created),
            " is further ahead of this node's clock than ",
            absl::FormatDuration(delivery_.max_clock_skew)));
  }

  const std::string& key_id = envelope.signature().key_id();
  auto signer = keys_->Find(key_id);
  if (!signer.ok()) {
    // A key rotated lately reaches relays and recipients before any
    // directory lists it; the peer that passed the envelope on knows it.
    absl::Status fetched = FetchSigner(tls_peer, body->sender(), key_id);
    if (fetched.ok()) signer = keys_->Find(key_id);
    if (!signer.ok()) {
      std::string reason = Cat("unknown sender ", body->sender(), ": ",
                               View(signer.status().message()), "; ", tls_peer,
                               " did not give it: ", View(fetched.message()));
      // A peer that could not be asked may well know the key: the envelope
      // stays with it, to be handed over again later.
      if (fetched.code() == absl::StatusCode::kUnavailable ||
          fetched.code() == absl::StatusCode::kDeadlineExceeded) {
        return absl::UnavailableError(std::move(reason));
      }
      return absl::FailedPreconditionError(std::move(reason));
    }
  }
  if (revocations_->IsRevoked(signer->certificate)) {
    return absl::UnauthenticatedError(
        Cat("the signing certificate of ", signer->code, " is revoked"));
  }
  if (signer->code != body->sender()) {
    return absl::UnauthenticatedError(Cat("signed with a key of ", signer->code,
                                          ", not of the sender ",
                                          body->sender()));
  }
  absl::Status verified = checker_.Verify(envelope, signer->key);
  if (!verified.ok()) {
    return absl::UnauthenticatedError(
        Cat("signature of ", body->sender(),
            " does not verify: ", View(verified.message())));
  }
  return absl::OkStatus();
}

absl::Status Intake::FetchSigner(const std::string& tls_peer,
                                 const std::string& signer,
                                 const std::string& key_id) {
  if (fetch_ == nullptr) {
    return absl::UnimplementedError("this node does not ask for keys");
  }
  const absl::Time now = absl::Now();
  const std::string asked = Cat(tls_peer, "/", key_id);
  {
    absl::MutexLock lock(&mu_);
    auto it = unfound_.find(asked);
    if (it != unfound_.end() && now < it->second) {
      return absl::NotFoundError("it said lately that it does not know it");
    }
  }
  absl::Status learned = fetch_(tls_peer, signer, key_id);
  if (learned.ok()) {
    log_->Info("signing_key_learned", {{"node", signer},
                                       {"key", HexEncode(key_id).substr(0, 16)},
                                       {"from", tls_peer}});
    return learned;
  }
  if (learned.code() == absl::StatusCode::kNotFound) {
    absl::MutexLock lock(&mu_);
    if (unfound_.size() >= kMaxUnfound) unfound_.clear();
    unfound_[asked] = now + kUnfoundRetry;
  }
  return learned;
}

}  // namespace caselink::server
