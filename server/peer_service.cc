#include "server/peer_service.h"

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/division_code.h"
#include "core/grpc_status.h"
#include "core/strings.h"
#include "server/caller.h"
#include "server/due_report.h"

namespace caselink::server {
namespace {

using ExchangeReactorBase =
    grpc::ServerBidiReactor<v1::ExchangeRequest, v1::ExchangeResponse>;

// One inbound Exchange stream. Reads envelopes, hands each that passes
// intake to the committer, and writes the acks back in groups as they
// come. It finishes only when nothing it handed on is still outstanding,
// so the committer's callbacks never outlive it.
class ExchangeReactor final : public ExchangeReactorBase {
 public:
  ExchangeReactor(const PeerServiceDeps* deps, std::string tls_peer,
                  std::string tls_certificate)
      : deps_(deps),
        tls_peer_(std::move(tls_peer)),
        tls_certificate_(std::move(tls_certificate)) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      absl::MutexLock lock(&mu_);
      reads_done_ = true;
      MaybeFinish();
      return;
    }
    if (!hello_) {
      absl::Status status = TakeHello();
      if (!status.ok()) {
        deps_->log->Warning("exchange_refused", {{"peer", tls_peer_},
                                                 {"error", status.ToString()}});
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
        stream_status_ = ToGrpcStatus(status);
        MaybeFinish();
        return;
      }
      hello_ = true;
    } else if (deps_->revocations->IsRevokedPem(tls_certificate_)) {
      // Revoked while the stream was open: cut it.
      deps_->log->Warning("exchange_cut", {{"peer", tls_peer_},
                                           {"reason", "certificate revoked"}});
      absl::MutexLock lock(&mu_);
      reads_done_ = true;
      stream_status_ = grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                    "the certificate of this link is revoked");
      MaybeFinish();
      return;
    } else if (request_.has_envelope()) {
      TakeEnvelope(*request_.mutable_envelope());
    } else if (request_.has_batch()) {
      for (v1::Envelope& envelope :
           *request_.mutable_batch()->mutable_envelopes()) {
        TakeEnvelope(envelope);
      }
    }
    absl::MutexLock lock(&mu_);
    if (outstanding_ >= deps_->max_outstanding) {
      read_paused_ = true;
    } else {
      StartRead(&request_);
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) write_failed_ = true;
    MaybeWrite();
    MaybeFinish();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    MaybeFinish();
  }

  void OnDone() override {
    // Finish ran, which needs outstanding_ == 0: no callback can follow.
    delete this;
  }

 private:
  absl::Status TakeHello() {
    if (!request_.has_hello()) {
      return absl::FailedPreconditionError(
          "the first frame of an exchange must be a hello");
    }
    const v1::Hello& hello = request_.hello();
    if (hello.code() != tls_peer_) {
      return absl::PermissionDeniedError(
          Cat("hello names ", hello.code(), " but the link is ", tls_peer_));
    }
    receipts_on_acks_ = hello.receipts_on_acks();
    for (const std::string& pem : hello.signing_certificates()) {
      absl::Status learned = deps_->keys->Learn(tls_peer_, pem);
      if (!learned.ok()) {
        return absl::PermissionDeniedError(Cat("signing certificate of ",
                                               tls_peer_, ": ",
                                               View(learned.message())));
      }
    }
    if (!hello.sealing_certificate().empty()) {
      absl::Status learned = deps_->directory->LearnSealingKey(
          tls_peer_, hello.sealing_certificate());
      if (!learned.ok()) {
        return absl::PermissionDeniedError(Cat("sealing certificate of ",
                                               tls_peer_, ": ",
                                               View(learned.message())));
      }
    }
    return absl::OkStatus();
  }

  // Checks `envelope` and hands it to the committer, or queues the refusal.
  void TakeEnvelope(v1::Envelope& envelope) {
    v1::Body body;
    absl::Status checked = deps_->intake->Check(envelope, tls_peer_, &body);
    if (!checked.ok()) {
      v1::Ack ack;
      ack.set_message_id(body.message_id());
      ack.set_code(static_cast<int>(checked.code()));
      ack.set_reason(std::string(View(checked.message())));
      absl::MutexLock lock(&mu_);
      acks_.push_back(std::move(ack));
      MaybeWrite();
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      ++outstanding_;
    }
    Arrival arrival;
    arrival.envelope = std::move(envelope);
    arrival.body = std::move(body);
    arrival.from_peer = tls_peer_;
    arrival.receipt_on_ack = receipts_on_acks_;
    arrival.done = [this](v1::Ack ack) { OnCommitted(std::move(ack)); };
    deps_->committer->Deliver(std::move(arrival));
  }

  void OnCommitted(v1::Ack ack) {
    absl::MutexLock lock(&mu_);
    --outstanding_;
    acks_.push_back(std::move(ack));
    MaybeWrite();
    if (read_paused_ && outstanding_ < deps_->max_outstanding / 2 &&
        !cancelled_) {
      read_paused_ = false;
      StartRead(&request_);
    }
    MaybeFinish();
  }

  void MaybeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || acks_.empty() || cancelled_ || write_failed_ || finished_) {
      return;
    }
    response_.Clear();
    for (v1::Ack& ack : acks_) *response_.add_acks() = std::move(ack);
    acks_.clear();
    writing_ = true;
    StartWrite(&response_);
  }

  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || outstanding_ > 0 || writing_) return;
    bool quiet = acks_.empty() || cancelled_ || write_failed_;
    if ((reads_done_ && quiet) || cancelled_ || write_failed_) {
      finished_ = true;
      Finish(cancelled_ ? grpc::Status::CANCELLED : stream_status_);
    }
  }

  const PeerServiceDeps* const deps_;
  const std::string tls_peer_;
  const std::string tls_certificate_;
  // Touched by the read path only.
  bool hello_ = false;
  bool receipts_on_acks_ = false;
  v1::ExchangeRequest request_;

  absl::Mutex mu_;
  v1::ExchangeResponse response_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Ack> acks_ ABSL_GUARDED_BY(mu_);
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status stream_status_ ABSL_GUARDED_BY(mu_) = grpc::Status::OK;
};

// A stream refused before it starts.
class RefusedExchange final : public ExchangeReactorBase {
 public:
  explicit RefusedExchange(grpc::Status status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerUnaryReactor* PeerServiceImpl::GetNodeInfo(
    grpc::CallbackServerContext* context,
    const v1::GetNodeInfoRequest* /*request*/,
    v1::GetNodeInfoResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto caller = RequireCaller(*context, Role::kNode, "", deps_.revocations);
  if (!caller.ok()) {
    deps_.log->Warning("call_refused", {{"rpc", "GetNodeInfo"},
                                        {"peer", context->peer()},
                                        {"error", caller.status().ToString()}});
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  std::shared_ptr<const NodeIdentity> self = deps_.self->Get();
  response->set_code(self->code);
  response->set_name(self->name);
  response->add_signing_certificates(self->signing_cert_pem);
  for (const std::string& pem : self->previous_signing_pems) {
    response->add_signing_certificates(pem);
  }
  response->set_sealing_certificate(self->sealing_cert_pem);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* PeerServiceImpl::GetSigningCertificate(
    grpc::CallbackServerContext* context,
    const v1::GetSigningCertificateRequest* request,
    v1::GetSigningCertificateResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto caller = RequireCaller(*context, Role::kNode, "", deps_.revocations);
  absl::Status status = caller.status();
  if (status.ok()) {
    auto signer = deps_.keys->Find(request->key_id());
    if (signer.ok()) {
      response->set_code(signer->code);
      response->set_certificate(signer->certificate.ToPem());
    }
    status = signer.status();
  }
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* PeerServiceImpl::GetDirectory(
    grpc::CallbackServerContext* context,
    const v1::GetDirectoryRequest* request,
    v1::GetDirectoryResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto caller = RequireCaller(*context, Role::kNode, "", deps_.revocations);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  std::map<std::string, uint64_t> known(request->known_versions().begin(),
                                        request->known_versions().end());
  for (v1::SignedDirectory& document : deps_.directory->NewerThan(known)) {
    *response->add_directories() = std::move(document);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* PeerServiceImpl::ListDue(
    grpc::CallbackServerContext* context, const v1::ListDueRequest* request,
    v1::ListDueResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto caller = RequireCaller(*context, Role::kNode, "", deps_.revocations);
  absl::Status refusal = caller.status();
  const std::string& self = deps_.self->code();
  if (caller.ok() &&
      (caller->code == self ||
       !std::string_view(self).starts_with(SignificantPrefix(caller->code)))) {
    refusal = absl::PermissionDeniedError(
        Cat(caller->code, " is not above ", self, " in the division tree"));
  }
  if (refusal.ok() && deps_.ledger == nullptr) {
    refusal = absl::UnimplementedError("this node keeps no cases");
  }
  if (!refusal.ok()) {
    deps_.log->Warning("list_due_refused", {{"peer", context->peer()},
                                            {"error", refusal.ToString()}});
    reactor->Finish(ToGrpcStatus(refusal));
    return reactor;
  }
  absl::Duration within = request->within_seconds() == 0
                              ? absl::Hours(24)
                              : absl::Seconds(request->within_seconds());
  auto report = ReportDue(*deps_.ledger, *deps_.links, self, absl::Now(),
                          within, request->subtree());
  if (report.ok()) *response = std::move(*report);
  reactor->Finish(ToGrpcStatus(report.status()));
  return reactor;
}

namespace {

// Runs `handler` for a caller with a node certificate, if the node keeps an
// audit log.
grpc::ServerUnaryReactor* ServeAudit(
    grpc::CallbackServerContext* context, const PeerServiceDeps& deps,
    const std::function<absl::Status()>& handler) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto caller = RequireCaller(*context, Role::kNode, "", deps.revocations);
  absl::Status status = caller.status();
  if (status.ok() && deps.audit == nullptr) {
    status = absl::UnimplementedError("this node keeps no audit log");
  }
  reactor->Finish(ToGrpcStatus(status.ok() ? handler() : status));
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* PeerServiceImpl::GetTreeHead(
    grpc::CallbackServerContext* context, const v1::GetTreeHeadRequest* request,
    v1::GetTreeHeadResponse* response) {
  return ServeAudit(context, deps_, [&]() -> absl::Status {
    auto head = deps_.audit->Head(request->fresh());
    if (head.ok()) *response = std::move(*head);
    return head.status();
  });
}

grpc::ServerUnaryReactor* PeerServiceImpl::GetConsistencyProof(
    grpc::CallbackServerContext* context,
    const v1::GetConsistencyProofRequest* request,
    v1::GetConsistencyProofResponse* response) {
  return ServeAudit(context, deps_, [&]() -> absl::Status {
    auto proof = deps_.audit->Consistency(request->first_tree_size(),
                                          request->second_tree_size());
    if (proof.ok()) *response = std::move(*proof);
    return proof.status();
  });
}

grpc::ServerUnaryReactor* PeerServiceImpl::GetCaseHistory(
    grpc::CallbackServerContext* context,
    const v1::GetCaseHistoryRequest* request, v1::AuditAnswer* response) {
  return ServeAudit(context, deps_, [&]() -> absl::Status {
    if (request->case_id().empty() || request->case_id().size() > 128) {
      return absl::InvalidArgumentError("case_id: 1 to 128 characters");
    }
    AuditFilter filter;
    filter.case_id = request->case_id();
    auto answer = deps_.audit->Answer(filter, request->page_token(),
                                      request->page_size());
    if (answer.ok()) *response = std::move(*answer);
    return answer.status();
  });
}

ExchangeReactorBase* PeerServiceImpl::Exchange(
    grpc::CallbackServerContext* context) {
  auto caller = RequireCaller(*context, Role::kNode, "", deps_.revocations);
  absl::Status refusal = caller.status();
  if (caller.ok() && !deps_.links->Contains(caller->code)) {
    refusal = absl::PermissionDeniedError(
        Cat(caller->code, " is not a peer of ", deps_.self->code()));
  }
  if (!refusal.ok()) {
    deps_.log->Warning("exchange_refused", {{"peer", context->peer()},
                                            {"error", refusal.ToString()}});
    deps_.counters->Add("refused_streams");
    return new RefusedExchange(ToGrpcStatus(refusal));
  }
  return new ExchangeReactor(&deps_, caller->code,
                             CallerCertificatePem(*context));
}

}  // namespace caselink::server
