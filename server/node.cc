#include "server/node.h"

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "core/identity.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "grpcpp/health_check_service_interface.h"

namespace caselink::server {
namespace {

// The meta key naming the node a data directory belongs to.
constexpr std::string_view kNodeCodeKey = "node_code";

constexpr absl::Duration kSweepInterval = absl::Hours(1);
// How often the store's disk space is looked after (empty queues, blob
// garbage), and how many writes since the outbox's last flush make
// reclaiming the queues' space worth a flush and a compaction.
constexpr absl::Duration kStoreKeepInterval = absl::Minutes(1);
constexpr uint64_t kReclaimAfterWrites = 1000;
// How long an envelope's stream may wait for a peer to give a signing
// certificate.
constexpr absl::Duration kSignerTimeout = absl::Seconds(2);

// What a new identity changes, as the log says it.
struct IdentityChange {
  std::string tls;
  std::string signing;
  std::string sealing;
  std::string signing_key;
  std::string previous_signing;
};

IdentityChange ChangeOf(const NodeIdentity& before, const NodeIdentity& after) {
  auto state = [](bool same) { return same ? "kept" : "new"; };
  return IdentityChange{
      state(after.tls.cert_chain_pem == before.tls.cert_chain_pem),
      state(after.signing_cert_pem == before.signing_cert_pem),
      state(after.sealing_cert_pem == before.sealing_cert_pem),
      HexEncode(after.signing_key.KeyId()).substr(0, 16),
      Cat(after.previous_signing_pems.size())};
}

}  // namespace

absl::StatusOr<std::unique_ptr<Node>> Node::Start(const NodeConfig& config,
                                                  Logger* log) {
  std::unique_ptr<Node> node(new Node(config, log));
  CASELINK_RETURN_IF_ERROR(node->Open());
  CASELINK_RETURN_IF_ERROR(node->Serve());
  return node;
}

absl::Status Node::Open() {
  CASELINK_ASSIGN_OR_RETURN(TrustStore trust,
                            TrustStore::LoadPemFile(config_.ca_bundle));
  trust_ = std::make_unique<TrustStore>(std::move(trust));
  {
    // Taken before the files are read, so that a change while they are
    // read is seen later.
    absl::MutexLock lock(&reload_mu_);
    watched_config_ = config_;
    watched_digest_ = IdentityFilesDigest(config_);
  }
  CASELINK_ASSIGN_OR_RETURN(NodeIdentity identity,
                            LoadNodeIdentity(config_, *trust_));
  identity_ = std::make_unique<CurrentIdentity>(std::move(identity));
  const std::shared_ptr<const NodeIdentity> self = identity_->Get();

  CASELINK_ASSIGN_OR_RETURN(store_, storage::Store::Open(config_.data_dir));
  CASELINK_RETURN_IF_ERROR(ClaimStore());
  keys_ = std::make_unique<KeyRing>(trust_.get(), store_.get());
  CASELINK_RETURN_IF_ERROR(keys_->Load());
  CASELINK_RETURN_IF_ERROR(keys_->Learn(config_.code, self->signing_cert_pem));

  std::vector<std::string> peer_codes;
  for (const PeerConfig& peer : config_.peers) peer_codes.push_back(peer.code);
  router_ = std::make_unique<Router>(config_.code, peer_codes);

  audit_log_ = std::make_unique<AuditLog>(
      store_.get(), HashAlgorithmOf(self->signing_key.scheme()), config_.code);
  CASELINK_RETURN_IF_ERROR(audit_log_->Load());
  tree_heads_ = std::make_unique<TreeHeads>(audit_log_.get(), identity_.get());
  audit_reader_ =
      std::make_unique<AuditReader>(audit_log_.get(), tree_heads_.get());

  CommitterOptions options;
  options.self = config_.code;
  options.signing_key = [identity = identity_.get()] {
    std::shared_ptr<const NodeIdentity> current = identity->Get();
    return std::shared_ptr<const PrivateKey>(current, &current->signing_key);
  };
  options.router = router_.get();
  options.store = store_.get();
  options.log = log_;
  options.counters = &counters_;
  options.listener = this;
  options.dedup_retention = config_.delivery.dedup_retention;
  options.audit_log = audit_log_.get();
  // The ledger exists before any message can arrive: it is made below,
  // before the server starts.
  options.arrival_hook = [this](const v1::Body& body, GroupWriter& writer) {
    return ledger_->OnArrival(body, writer);
  };
  committer_ = std::make_unique<Committer>(options);
  CASELINK_RETURN_IF_ERROR(committer_->Start());

  CASELINK_ASSIGN_OR_RETURN(std::vector<Certificate> cas,
                            Certificate::AllFromPem(self->tls.roots_pem));
  revocations_ =
      std::make_unique<Revocations>(config_.crl_bundle, std::move(cas), log_);
  CASELINK_RETURN_IF_ERROR(revocations_->Reload());
  // The links exist before any envelope can arrive: they are made below,
  // before the server starts.
  intake_ = std::make_unique<Intake>(
      config_.code, config_.delivery, keys_.get(), revocations_.get(),
      &counters_, log_, committer_.get(),
      [this](const std::string& peer, const std::string& signer,
             const std::string& key_id) {
        return LearnSigner(peer, signer, key_id);
      });
  directory_ = std::make_unique<Directory>(config_.code, trust_.get(),
                                           keys_.get(), store_.get(), log_);
  CASELINK_RETURN_IF_ERROR(directory_->Load());
  if (!self->sealing_cert_pem.empty()) {
    CASELINK_RETURN_IF_ERROR(
        directory_->LearnSealingKey(config_.code, self->sealing_cert_pem));
  }
  attachments_ = std::make_unique<AttachmentStore>(
      AttachmentStoreDeps{self->signing_key.scheme(), &config_.workflow,
                          store_.get(), committer_.get(), log_, &counters_});
  ledger_ = std::make_unique<CaseLedger>(CaseLedgerDeps{
      identity_.get(), &config_.workflow, store_.get(), committer_.get(),
      directory_.get(), log_, &counters_, attachments_.get()});
  links_ = std::make_unique<LinkSet>(
      &config_.delivery,
      PeerLinkDeps{identity_.get(), store_.get(), committer_.get(), keys_.get(),
                   directory_.get(), revocations_.get(), log_, intake_.get(),
                   &counters_},
      router_.get(), log_);
  return absl::OkStatus();
}

absl::Status Node::ClaimStore() {
  using storage::Family;
  CASELINK_ASSIGN_OR_RETURN(std::optional<std::string> owner,
                            store_->Get(Family::kMeta, kNodeCodeKey));
  if (owner.has_value()) {
    if (*owner != config_.code) {
      return absl::FailedPreconditionError(
          Cat("data directory ", config_.data_dir, " belongs to node ", *owner,
              ", not to ", config_.code));
    }
    store_state_ = "opened";
    return absl::OkStatus();
  }
  storage::Batch batch = store_->NewBatch();
  batch.Put(Family::kMeta, kNodeCodeKey, config_.code);
  CASELINK_RETURN_IF_ERROR(store_->Commit(batch));
  store_state_ = "created";
  return absl::OkStatus();
}

absl::Status Node::Serve() {
  PeerServiceDeps peer_deps;
  peer_deps.self = identity_.get();
  peer_deps.links = links_.get();
  peer_deps.keys = keys_.get();
  peer_deps.directory = directory_.get();
  peer_deps.revocations = revocations_.get();
  peer_deps.intake = intake_.get();
  peer_deps.committer = committer_.get();
  peer_deps.counters = &counters_;
  peer_deps.log = log_;
  peer_deps.ledger = ledger_.get();
  peer_deps.audit = audit_reader_.get();
  peer_service_ = std::make_unique<PeerServiceImpl>(std::move(peer_deps));
  operator_service_ = std::make_unique<OperatorServiceImpl>(OperatorServiceDeps{
      identity_.get(), &config_.delivery, links_.get(), directory_.get(),
      revocations_.get(), committer_.get(), store_.get(), &counters_, log_,
      attachments_->algorithm()});
  witness_ = std::make_unique<Witness>(
      WitnessDeps{config_.code, links_.get(), keys_.get(), committer_.get(),
                  store_.get(), log_, &counters_});
  AuditServiceDeps audit_deps;
  audit_deps.self = identity_.get();
  audit_deps.revocations = revocations_.get();
  audit_deps.reader = audit_reader_.get();
  audit_deps.witness = witness_.get();
  audit_deps.directory = directory_.get();
  audit_deps.log = log_;
  audit_service_ = std::make_unique<AuditServiceImpl>(audit_deps);
  case_service_ = std::make_unique<CaseServiceImpl>(CaseServiceDeps{
      identity_.get(), &config_.workflow, links_.get(), revocations_.get(),
      ledger_.get(), attachments_.get(), log_});

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  // gRPC would otherwise let a second process bind the same port and share
  // its connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  server_tls_ =
      std::make_unique<RenewableServerTls>([identity = identity_.get()] {
        std::shared_ptr<const NodeIdentity> current = identity->Get();
        return std::shared_ptr<const TlsMaterial>(current, &current->tls);
      });
  builder.AddListeningPort(config_.listen, server_tls_->Credentials(), &port_);
  // Leave room above the envelope limit so that an oversized envelope is
  // refused with a reason instead of breaking the stream.
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(config_.delivery.max_envelope_bytes + (1 << 20)));
  builder.RegisterService(peer_service_.get());
  builder.RegisterService(operator_service_.get());
  builder.RegisterService(case_service_.get());
  builder.RegisterService(audit_service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(Cat("cannot listen on ", config_.listen,
                                      ": the address is in use or not valid"));
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  for (const PeerConfig& peer : config_.peers) {
    CASELINK_RETURN_IF_ERROR(links_->Add(peer).status());
  }
  RefreshDirectoryOnce();
  sweeper_ = std::thread([this] { SweepDedup(); });
  refresher_ = std::thread([this] { RefreshDirectory(); });
  limit_watcher_ = std::thread([this] { WatchTimeLimits(); });
  audit_watcher_ = std::thread([this] { WatchAuditLogs(); });
  store_keeper_ = std::thread([this] { KeepStore(); });
  log_->Info("node_started", {{"name", config_.name},
                              {"listen", config_.listen},
                              {"port", Cat(port_)},
                              {"peers", Cat(links_->All().size())},
                              {"data_dir", config_.data_dir},
                              {"store", store_state_}});
  return absl::OkStatus();
}

void Node::OnQueued(const std::string& peer, const std::string& first_key,
                    uint64_t count) {
  PeerLink* link = links_->Find(peer);
  if (link != nullptr) link->OnQueued(first_key, count);
}

void Node::RefreshDirectoryOnce() {
  absl::Status reloaded = revocations_->Reload();
  if (!reloaded.ok()) {
    log_->Error("revocations_not_loaded",
                {{"error", reloaded.ToString()},
                 {"next", "keeping the lists in force"}});
  }
  for (PeerLink* link : links_->All()) link->CutIfRevoked();
  WatchIdentityFiles();
  if (!config_.directory_publish.empty()) {
    std::shared_ptr<const NodeIdentity> self = identity_->Get();
    auto published = directory_->Publish(
        config_.directory_publish, self->signing_key, self->signing_cert_pem);
    if (!published.ok()) {
      log_->Error("directory_publish_failed",
                  {{"file", config_.directory_publish},
                   {"error", published.status().ToString()},
                   {"next", "keeping the version published before"}});
    }
  }
  for (PeerLink* link : links_->All()) {
    if (link->Snapshot().state != v1::LINK_STATE_CONNECTED) continue;
    auto documents = link->FetchDirectory(directory_->Versions());
    if (!documents.ok()) continue;
    for (const v1::SignedDirectory& document : *documents) {
      auto taken = directory_->Take(document);
      if (!taken.ok()) {
        log_->Warning(
            "directory_refused",
            {{"peer", link->code()}, {"error", taken.status().ToString()}});
      }
    }
  }
  for (const DirectoryLink& wanted : directory_->LinksOf(config_.code)) {
    auto added = links_->Add(PeerConfig{wanted.code, wanted.address});
    if (!added.ok()) {
      log_->Error("link_not_added", {{"peer", wanted.code},
                                     {"error", added.status().ToString()}});
    } else if (*added) {
      log_->Info("link_added", {{"peer", wanted.code},
                                {"address", wanted.address},
                                {"source", "directory"}});
    }
  }
}

void Node::WatchIdentityFiles() {
  absl::MutexLock lock(&reload_mu_);
  std::string digest = IdentityFilesDigest(watched_config_);
  if (digest == watched_digest_) {
    changed_digest_.clear();
    return;
  }
  // A rotation is several files written one after another: wait until
  // they have stayed the same for one more look.
  if (digest != changed_digest_) {
    changed_digest_ = std::move(digest);
    return;
  }
  ReloadIdentityLocked("file_change");
}

void Node::ReloadIdentity(std::string_view trigger) {
  absl::MutexLock lock(&reload_mu_);
  ReloadIdentityLocked(trigger);
}

void Node::ReloadIdentityLocked(std::string_view trigger) {
  auto refuse = [&](const absl::Status& status) {
    log_->Error("identity_not_reloaded",
                {{"trigger", std::string(trigger)},
                 {"error", std::string(View(status.message()))},
                 {"next", "keeping the identity in force"}});
  };
  changed_digest_.clear();
  // A config made in code (tests) has no file: only the files it names are
  // read again.
  absl::StatusOr<NodeConfig> config = config_;
  if (!config_.path.empty()) config = LoadNodeConfig(config_.path);
  if (!config.ok()) {
    watched_digest_ = IdentityFilesDigest(watched_config_);
    return refuse(config.status());
  }
  watched_config_ = *config;
  watched_digest_ = IdentityFilesDigest(watched_config_);

  const std::shared_ptr<const NodeIdentity> current = identity_->Get();
  auto next = LoadReplacementIdentity(*config, *trust_, *current);
  if (!next.ok()) return refuse(next.status());
  if (SameKeys(*next, *current)) {
    log_->Info("identity_unchanged", {{"trigger", std::string(trigger)}});
    return;
  }
  absl::Status learned = LearnOwnCertificates(*next);
  if (!learned.ok()) return refuse(learned);

  const IdentityChange change = ChangeOf(*current, *next);
  identity_->Replace(std::move(*next));
  log_->Info("identity_reloaded",
             {{"trigger", std::string(trigger)},
              {"tls", change.tls},
              {"signing", change.signing},
              {"sealing", change.sealing},
              {"signing_key", change.signing_key},
              {"previous_signing", change.previous_signing},
              {"generation", Cat(identity_->generation())},
              {"next", "peer links reconnect"}});
  links_->RenewAll();
}

absl::Status Node::LearnOwnCertificates(const NodeIdentity& next) {
  // Peers may ask this node for the new certificate as soon as anything
  // signed with it leaves, and receipts for it must verify here.
  std::vector<std::string> signing = {next.signing_cert_pem};
  signing.insert(signing.end(), next.previous_signing_pems.begin(),
                 next.previous_signing_pems.end());
  for (const std::string& pem : signing) {
    CASELINK_RETURN_IF_ERROR(keys_->Learn(config_.code, pem));
  }
  if (next.sealing_cert_pem.empty()) return absl::OkStatus();
  return directory_->LearnSealingKey(config_.code, next.sealing_cert_pem);
}

absl::Status Node::LearnSigner(const std::string& peer,
                               const std::string& signer,
                               const std::string& key_id) {
  PeerLink* link = links_->Find(peer);
  if (link == nullptr) return absl::NotFoundError(Cat("no link to ", peer));
  CASELINK_ASSIGN_OR_RETURN(v1::GetSigningCertificateResponse answer,
                            link->SigningCertificate(key_id, kSignerTimeout));
  // The certificate vouches for itself: the ring takes it only if it chains
  // to a trusted CA and names the node it is said to be of. Intake then
  // checks that this node is the envelope's sender.
  CASELINK_RETURN_IF_ERROR(keys_->Learn(answer.code(), answer.certificate()));
  if (!keys_->Find(key_id).ok()) {
    return absl::NotFoundError(Cat(peer, " gave the certificate of another key",
                                   " than the one ", signer, " signed with"));
  }
  return absl::OkStatus();
}

void Node::RefreshDirectory() {
  while (!stopping_.WaitForNotificationWithTimeout(config_.directory_refresh)) {
    RefreshDirectoryOnce();
  }
}

void Node::SweepDedup() {
  while (!stopping_.WaitForNotificationWithTimeout(kSweepInterval)) {
    const uint64_t now = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
    absl::StatusOr<uint64_t> expired = SweepDuplicateEntries(
        *store_, now, [this] { return !stopping_.HasBeenNotified(); });
    if (!expired.ok()) {
      log_->Error("dedup_sweep_failed", {{"error", expired.status().ToString()},
                                         {"next", "retrying in an hour"}});
    } else if (*expired > 0) {
      log_->Info("dedup_swept", {{"expired", Cat(*expired)}});
    }
  }
}

void Node::KeepStore() {
  while (!stopping_.WaitForNotificationWithTimeout(kStoreKeepInterval)) {
    absl::StatusOr<storage::BlobCleaning> cleaning =
        store_->UpdateBlobCleaning();
    if (!cleaning.ok()) {
      log_->Error("blob_cleaning_not_updated",
                  {{"error", cleaning.status().ToString()},
                   {"next", "trying again in a minute"}});
    } else if (cleaning->changed) {
      log_->Info(
          cleaning->on ? "blob_cleaning_started" : "blob_cleaning_stopped",
          {{"blob_mib", Cat(cleaning->blob_bytes >> 20)},
           {"garbage_mib", Cat(cleaning->garbage_bytes >> 20)}});
    }
    bool drained = true;
    for (PeerLink* link : links_->All()) {
      if (link->Snapshot().queued > 0) {
        drained = false;
        break;
      }
    }
    if (!drained) continue;
    absl::StatusOr<bool> reclaimed =
        store_->ReclaimSpace(storage::Family::kOutbox, kReclaimAfterWrites);
    if (!reclaimed.ok()) {
      log_->Error("queue_space_not_reclaimed",
                  {{"error", reclaimed.status().ToString()},
                   {"next", "trying again in a minute"}});
    } else if (*reclaimed) {
      log_->Info("queue_space_reclaimed", {{"family", "outbox"}});
    }
  }
}

void Node::WatchTimeLimits() {
  const absl::Duration interval = config_.workflow.check_interval;
  while (!stopping_.WaitForNotificationWithTimeout(interval)) {
    ledger_->RecordPassedLimits(absl::Now());
  }
}

void Node::WatchAuditLogs() {
  const absl::Duration interval = config_.audit_head_interval;
  while (!stopping_.WaitForNotificationWithTimeout(interval)) {
    auto head = tree_heads_->Latest(/*fresh=*/true);
    if (!head.ok()) {
      log_->Error("tree_head_not_signed",
                  {{"error", head.status().ToString()},
                   {"next", "trying again at the next interval"}});
    }
    witness_->CheckAll();
  }
}

void Node::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  if (server_ != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    server_->Wait();
  }
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (refresher_.joinable()) refresher_.join();
  if (sweeper_.joinable()) sweeper_.join();
  if (limit_watcher_.joinable()) limit_watcher_.join();
  if (audit_watcher_.joinable()) audit_watcher_.join();
  if (store_keeper_.joinable()) store_keeper_.join();
  if (links_ != nullptr) links_->StopAll();
  if (committer_ != nullptr) committer_->Stop();
  links_.reset();
  store_.reset();
  // A node that never started serving says nothing: its caller reports why.
  if (server_ != nullptr) log_->Info("node_stopped");
}

Node::~Node() { Shutdown(); }

}  // namespace caselink::server
