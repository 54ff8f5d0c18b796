#include "server/peer_link.h"

#include <random>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "caselink/store/v1/records.pb.h"
#include "core/envelope.h"
#include "core/grpc_status.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::server {
namespace {

using Stream =
    grpc::ClientReaderWriter<v1::ExchangeRequest, v1::ExchangeResponse>;

constexpr absl::Duration kProbeTimeout = absl::Seconds(3);

// The most envelopes, and bytes of them, written as one frame of the
// stream: enough to spare gRPC most of its work per message, and far below
// what a receiver accepts in one frame (its envelope limit and 1 MiB).
constexpr int kFrameEnvelopes = 64;
constexpr size_t kFrameBytes = size_t{256} << 10;

std::string ErrorText(const grpc::Status& status) {
  return Cat(absl::StatusCodeToString(
                 static_cast<absl::StatusCode>(status.error_code())),
             ": ", status.error_message());
}

// A delay drawn uniformly from [base/2, base], so that links that failed
// together do not retry together.
absl::Duration Jittered(absl::Duration base) {
  thread_local std::mt19937_64 random(std::random_device{}());
  std::uniform_real_distribution<double> factor(0.5, 1.0);
  return base * factor(random);
}

}  // namespace

PeerLink::PeerLink(PeerConfig peer, const DeliveryConfig& delivery,
                   PeerLinkDeps deps)
    : peer_(std::move(peer)), delivery_(delivery), deps_(deps) {}

PeerLink::~PeerLink() { Stop(); }

absl::Status PeerLink::Start() {
  CASELINK_ASSIGN_OR_RETURN(
      uint64_t queued,
      deps_.store->CountPrefix(storage::Family::kOutbox, peer_.code));
  queued_ = queued;
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void PeerLink::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (active_ != nullptr) active_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void PeerLink::OnQueued(const std::string& first_key, uint64_t count) {
  queued_ += count;
  absl::MutexLock lock(&mu_);
  if (first_key < next_key_) next_key_ = first_key;
  more_queued_ = true;
}

void PeerLink::CutIfRevoked() {
  absl::MutexLock lock(&mu_);
  if (active_ == nullptr ||
      !deps_.revocations->IsRevokedPem(peer_certificate_)) {
    return;
  }
  deps_.log->Warning("peer_link_cut",
                     {{"peer", peer_.code}, {"reason", "certificate revoked"}});
  active_->TryCancel();
}

void PeerLink::Renew() {
  absl::MutexLock lock(&mu_);
  if (active_ == nullptr) return;
  renewing_ = true;
  active_->TryCancel();
}

std::shared_ptr<v1::PeerService::Stub> PeerLink::Stub() {
  std::shared_ptr<const NodeIdentity> self = deps_.self->Get();
  absl::MutexLock lock(&mu_);
  if (stub_ == nullptr || stub_generation_ != self->generation) {
    stub_ = v1::PeerService::NewStub(
        MutualTlsChannel(peer_.address, peer_.code, self->tls));
    stub_generation_ = self->generation;
  }
  return stub_;
}

PeerLinkSnapshot PeerLink::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return PeerLinkSnapshot{peer_.code, name_,       peer_.address,
                          state_,     last_error_, queued_.load()};
}

bool PeerLink::InFlight(const std::string& message_id) const {
  absl::MutexLock lock(&mu_);
  return in_flight_.contains(message_id);
}

void PeerLink::SetState(v1::LinkState state, std::string error) {
  v1::LinkState before;
  {
    absl::MutexLock lock(&mu_);
    before = state_;
    state_ = state;
    last_error_ = error;
  }
  if (before == state) return;
  if (state == v1::LINK_STATE_CONNECTED) {
    deps_.log->Info("peer_connected", {{"peer", peer_.code},
                                       {"address", peer_.address},
                                       {"queued", Cat(queued_.load())}});
  } else {
    deps_.log->Warning("peer_unreachable", {{"peer", peer_.code},
                                            {"address", peer_.address},
                                            {"error", error},
                                            {"queued", Cat(queued_.load())},
                                            {"next", "retrying with backoff"}});
  }
}

absl::Status PeerLink::Probe() {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kProbeTimeout));
  v1::GetNodeInfoResponse info;
  grpc::Status status =
      Stub()->GetNodeInfo(&context, v1::GetNodeInfoRequest(), &info);
  if (!status.ok()) return absl::UnavailableError(ErrorText(status));
  std::string certificate;
  for (const auto& value :
       context.auth_context()->FindPropertyValues("x509_pem_cert")) {
    certificate.assign(value.data(), value.size());
  }
  if (deps_.revocations->IsRevokedPem(certificate)) {
    return absl::PermissionDeniedError(
        Cat("the TLS certificate of ", peer_.code, " is revoked"));
  }
  {
    absl::MutexLock lock(&mu_);
    peer_certificate_ = certificate;
  }
  if (info.code() != peer_.code) {
    return absl::PermissionDeniedError(
        Cat("peer at ", peer_.address, " answered as ", info.code()));
  }
  for (const std::string& pem : info.signing_certificates()) {
    absl::Status learned = deps_.keys->Learn(peer_.code, pem);
    if (!learned.ok()) {
      return absl::PermissionDeniedError(Cat("signing certificate of ",
                                             peer_.code, ": ",
                                             View(learned.message())));
    }
  }
  if (!info.sealing_certificate().empty()) {
    absl::Status learned = deps_.directory->LearnSealingKey(
        peer_.code, info.sealing_certificate());
    if (!learned.ok()) {
      return absl::PermissionDeniedError(Cat("sealing certificate of ",
                                             peer_.code, ": ",
                                             View(learned.message())));
    }
  }
  absl::MutexLock lock(&mu_);
  name_ = info.name();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::SignedDirectory>> PeerLink::FetchDirectory(
    const std::map<std::string, uint64_t>& known) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kProbeTimeout));
  v1::GetDirectoryRequest request;
  for (const auto& [province, version] : known) {
    (*request.mutable_known_versions())[province] = version;
  }
  v1::GetDirectoryResponse response;
  grpc::Status status = Stub()->GetDirectory(&context, request, &response);
  if (!status.ok()) return absl::UnavailableError(ErrorText(status));
  return std::vector<v1::SignedDirectory>(response.directories().begin(),
                                          response.directories().end());
}

absl::StatusOr<v1::ListDueResponse> PeerLink::ListDue(
    const v1::ListDueRequest& request, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::ListDueResponse response;
  grpc::Status status = Stub()->ListDue(&context, request, &response);
  if (!status.ok()) return absl::UnavailableError(ErrorText(status));
  return response;
}

absl::StatusOr<v1::GetTreeHeadResponse> PeerLink::TreeHead(
    absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::GetTreeHeadRequest request;
  request.set_fresh(true);
  v1::GetTreeHeadResponse response;
  grpc::Status status = Stub()->GetTreeHead(&context, request, &response);
  if (!status.ok()) return absl::UnavailableError(ErrorText(status));
  return response;
}

absl::StatusOr<v1::GetConsistencyProofResponse> PeerLink::Consistency(
    uint64_t first, uint64_t second, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::GetConsistencyProofRequest request;
  request.set_first_tree_size(first);
  request.set_second_tree_size(second);
  v1::GetConsistencyProofResponse response;
  grpc::Status status =
      Stub()->GetConsistencyProof(&context, request, &response);
  if (!status.ok()) return absl::UnavailableError(ErrorText(status));
  return response;
}

absl::StatusOr<v1::GetSigningCertificateResponse> PeerLink::SigningCertificate(
    std::string_view key_id, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::GetSigningCertificateRequest request;
  request.set_key_id(std::string(key_id));
  v1::GetSigningCertificateResponse response;
  grpc::Status status =
      Stub()->GetSigningCertificate(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

void PeerLink::Run() {
  absl::Duration backoff = delivery_.retry_initial;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    absl::Status probed = Probe();
    bool progressed = false;
    if (probed.ok()) {
      grpc::ClientContext context;
      progressed = Session(&context);
    } else {
      SetState(v1::LINK_STATE_UNREACHABLE, std::string(View(probed.message())));
    }
    if (progressed) backoff = delivery_.retry_initial;
    absl::MutexLock lock(&mu_);
    if (renewing_) {
      renewing_ = false;
      continue;
    }
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_;
    };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), Jittered(backoff))) {
      return;
    }
    backoff = std::min(backoff * 2, delivery_.retry_max);
  }
}

bool PeerLink::Session(grpc::ClientContext* context) {
  std::shared_ptr<const NodeIdentity> self = deps_.self->Get();
  std::shared_ptr<v1::PeerService::Stub> stub = Stub();
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    active_ = context;
    hello_generation_ = self->generation;
    in_flight_.clear();
    next_key_.clear();
    more_queued_ = true;
    stream_broken_ = false;
    acked_any_ = false;
  }
  std::unique_ptr<Stream> stream = stub->Exchange(context);
  v1::ExchangeRequest hello;
  hello.mutable_hello()->set_code(self->code);
  hello.mutable_hello()->add_signing_certificates(self->signing_cert_pem);
  for (const std::string& pem : self->previous_signing_pems) {
    hello.mutable_hello()->add_signing_certificates(pem);
  }
  hello.mutable_hello()->set_sealing_certificate(self->sealing_cert_pem);
  hello.mutable_hello()->set_receipts_on_acks(deps_.intake != nullptr);
  bool ok = stream->Write(hello);
  if (ok) SetState(v1::LINK_STATE_CONNECTED, "");

  std::thread reader([this, &stream] { ReadAcks(stream.get()); });
  while (ok) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || stream_broken_ ||
               (more_queued_ && Outstanding() < delivery_.window);
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_ || stream_broken_) break;
    }
    ok = Fill(stream.get());
  }

  context->TryCancel();
  reader.join();
  grpc::Status status = stream->Finish();
  absl::MutexLock lock(&mu_);
  active_ = nullptr;
  in_flight_.clear();
  if (renewing_ && !stopping_) {
    deps_.log->Info(
        "peer_stream_renewed",
        {{"peer", peer_.code}, {"next", "reconnecting with the new identity"}});
  } else if (!stopping_) {
    state_ = v1::LINK_STATE_UNREACHABLE;
    last_error_ = status.ok() ? "stream closed" : ErrorText(status);
    deps_.log->Warning("peer_stream_closed",
                       {{"peer", peer_.code},
                        {"error", last_error_},
                        {"queued", Cat(queued_.load())},
                        {"next", "reconnecting with backoff"}});
  }
  return acked_any_;
}

bool PeerLink::Fill(Stream* stream) {
  // Collect what fits in the window under the lock, then write without it.
  std::vector<store::v1::OutboxEntry> batch;
  {
    absl::MutexLock lock(&mu_);
    size_t room =
        delivery_.window - std::min<size_t>(delivery_.window, Outstanding());
    storage::Cursor cursor =
        deps_.store->NewCursor(storage::Family::kOutbox, peer_.code, next_key_);
    std::string last_key;
    for (; cursor.Valid() && batch.size() < room; cursor.Next()) {
      store::v1::OutboxEntry entry;
      if (!entry.ParseFromArray(cursor.value().data(),
                                static_cast<int>(cursor.value().size()))) {
        deps_.log->Error(
            "outbox_entry_corrupt",
            {{"peer", peer_.code}, {"next", "skipping it; it stays on disk"}});
        continue;
      }
      const std::string& id = entry.message_id();
      if (in_flight_.contains(id) || settling_.contains(id)) continue;
      in_flight_[id] =
          Flight{std::string(cursor.key()), entry.originated_here(),
                 entry.relayed(), entry.message_kind(), entry.case_id()};
      last_key = std::string(cursor.key());
      batch.push_back(std::move(entry));
    }
    if (!cursor.Valid()) more_queued_ = false;
    if (!last_key.empty()) {
      // Resume just after the last entry taken.
      last_key.push_back('\0');
      next_key_ = std::move(last_key);
    }
    // What was signed after this stream's hello may need a certificate the
    // hello did not carry: end the stream and say hello again.
    if (!batch.empty() && deps_.self->generation() != hello_generation_) {
      renewing_ = true;
      return false;
    }
  }

  // Runs of small envelopes go as one frame each; a large one goes alone.
  v1::ExchangeRequest request;
  size_t i = 0;
  while (i < batch.size()) {
    request.Clear();
    v1::Envelope& first = *batch[i].mutable_envelope();
    if (first.ByteSizeLong() >= kFrameBytes) {
      *request.mutable_envelope() = std::move(first);
      ++i;
    } else {
      v1::EnvelopeBatch* frame = request.mutable_batch();
      size_t bytes = 0;
      while (i < batch.size() && frame->envelopes_size() < kFrameEnvelopes) {
        v1::Envelope& next = *batch[i].mutable_envelope();
        const size_t size = next.ByteSizeLong();
        if (size >= kFrameBytes || bytes + size > kFrameBytes) break;
        bytes += size;
        *frame->add_envelopes() = std::move(next);
        ++i;
      }
    }
    grpc::WriteOptions options;
    if (i < batch.size()) options.set_buffer_hint();
    if (!stream->Write(request, options)) return false;
  }
  return true;
}

void PeerLink::ReadAcks(Stream* stream) {
  v1::ExchangeResponse response;
  while (stream->Read(&response)) {
    std::vector<HopVerdict> verdicts;
    // The ack of each verdict.
    std::vector<const v1::Ack*> verdict_acks;
    std::vector<std::string> ids;
    bool retry_later = false;
    {
      absl::MutexLock lock(&mu_);
      for (const v1::Ack& ack : response.acks()) {
        auto it = in_flight_.find(ack.message_id());
        if (it == in_flight_.end()) continue;
        const Flight& flight = it->second;
        HopVerdict verdict{peer_.code,       flight.outbox_key,
                           ack.message_id(), flight.originated_here,
                           ack.code(),       ack.reason(),
                           flight.relayed,   flight.message_kind,
                           flight.case_id,   std::nullopt};
        in_flight_.erase(it);
        if (ack.code() == static_cast<int>(absl::StatusCode::kUnavailable)) {
          // The peer could not store it for now: keep it queued and try
          // again on a new stream after a pause.
          retry_later = true;
          continue;
        }
        settling_.insert(ack.message_id());
        ids.push_back(ack.message_id());
        verdicts.push_back(std::move(verdict));
        verdict_acks.push_back(&ack);
        acked_any_ = true;
      }
      if (retry_later) stream_broken_ = true;
    }
    if (!verdicts.empty()) {
      // Receipts are checked outside the lock: a signature takes a while.
      for (size_t i = 0; i < verdicts.size(); ++i) {
        if (verdicts[i].code == 0 && verdict_acks[i]->has_receipt()) {
          verdicts[i].receipt = CheckReceipt(*verdict_acks[i]);
        }
      }
      for (const HopVerdict& verdict : verdicts) {
        if (verdict.code != 0) {
          deps_.log->Warning(
              "envelope_refused_by_peer",
              {{"message", MessageIdText(verdict.message_id)},
               {"peer", peer_.code},
               {"code", absl::StatusCodeToString(
                            static_cast<absl::StatusCode>(verdict.code))},
               {"reason", verdict.reason}});
        }
      }
      uint64_t settled = verdicts.size();
      deps_.committer->Record(
          std::move(verdicts),
          [this, ids = std::move(ids), settled](const absl::Status& status) {
            if (status.ok()) queued_ -= std::min(settled, queued_.load());
            absl::MutexLock lock(&mu_);
            for (const std::string& id : ids) settling_.erase(id);
            // Entries whose verdict was not recorded are still queued.
            if (!status.ok()) {
              more_queued_ = true;
              next_key_.clear();
            }
          });
    }
    if (retry_later) break;
  }
  absl::MutexLock lock(&mu_);
  stream_broken_ = true;
}

std::optional<AckedReceipt> PeerLink::CheckReceipt(const v1::Ack& ack) {
  AckedReceipt receipt;
  // Intake logs, counts and audits what it refuses.
  if (!deps_.intake->Check(ack.receipt(), peer_.code, &receipt.body).ok()) {
    return std::nullopt;
  }
  const v1::Body& body = receipt.body;
  std::string problem;
  if (body.kind() != v1::MESSAGE_KIND_RECEIPT) {
    problem = "the envelope on the ack is not a receipt";
  } else if (body.sender() != peer_.code ||
             body.recipient() != deps_.self->code()) {
    problem = Cat("the receipt on the ack is from ", body.sender(), " to ",
                  body.recipient());
  } else if (body.receipt().message_id() != ack.message_id()) {
    problem = Cat("the receipt on the ack answers message ",
                  MessageIdText(body.receipt().message_id()));
  }
  if (!problem.empty()) {
    if (deps_.counters != nullptr) deps_.counters->Add("receipts_refused");
    deps_.log->Warning("receipt_refused",
                       {{"message", MessageIdText(ack.message_id())},
                        {"peer", peer_.code},
                        {"reason", problem}});
    return std::nullopt;
  }
  receipt.envelope = ack.receipt();
  return receipt;
}

}  // namespace caselink::server
