// The gRPC service for this node's own operators: status, submitting
// messages, following what was sent, and reading the inbox.
#ifndef CASELINK_SERVER_OPERATOR_SERVICE_H_
#define CASELINK_SERVER_OPERATOR_SERVICE_H_

#include <functional>
#include <memory>
#include <vector>

#include "caselink/v1/operator.grpc.pb.h"
#include "core/log.h"
#include "core/seal.h"
#include "server/committer.h"
#include "server/config.h"
#include "server/counters.h"
#include "server/directory.h"
#include "server/link_set.h"
#include "server/node_identity.h"
#include "server/peer_link.h"
#include "storage/store.h"

namespace caselink::server {

struct OperatorServiceDeps {
  const CurrentIdentity* self = nullptr;
  const DeliveryConfig* delivery = nullptr;
  const LinkSet* links = nullptr;
  const Directory* directory = nullptr;
  const Revocations* revocations = nullptr;
  Committer* committer = nullptr;
  storage::Store* store = nullptr;
  Counters* counters = nullptr;
  Logger* log = nullptr;
  // How this node addresses attachments, for GetStatus.
  v1::DigestAlgorithm attachment_digest = v1::DIGEST_ALGORITHM_SHA256;
};

class OperatorServiceImpl final : public v1::OperatorService::CallbackService {
 public:
  // Everything the deps point to must outlive the service.
  explicit OperatorServiceImpl(OperatorServiceDeps deps)
      : deps_(std::move(deps)) {}

  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest* request,
                                      v1::GetStatusResponse* response) override;
  grpc::ServerUnaryReactor* SubmitMessage(
      grpc::CallbackServerContext* context,
      const v1::SubmitMessageRequest* request,
      v1::SubmitMessageResponse* response) override;
  grpc::ServerUnaryReactor* SubmitMessages(
      grpc::CallbackServerContext* context,
      const v1::SubmitMessagesRequest* request,
      v1::SubmitMessagesResponse* response) override;
  grpc::ServerUnaryReactor* ListSent(grpc::CallbackServerContext* context,
                                     const v1::ListSentRequest* request,
                                     v1::ListSentResponse* response) override;
  grpc::ServerUnaryReactor* GetSent(grpc::CallbackServerContext* context,
                                    const v1::GetSentRequest* request,
                                    v1::GetSentResponse* response) override;
  grpc::ServerUnaryReactor* ListInbox(grpc::CallbackServerContext* context,
                                      const v1::ListInboxRequest* request,
                                      v1::ListInboxResponse* response) override;
  grpc::ServerUnaryReactor* GetInboxMessage(
      grpc::CallbackServerContext* context,
      const v1::GetInboxMessageRequest* request,
      v1::GetInboxMessageResponse* response) override;
  grpc::ServerUnaryReactor* MarkHandled(
      grpc::CallbackServerContext* context,
      const v1::MarkHandledRequest* request,
      v1::MarkHandledResponse* response) override;

 private:
  // True if the caller is an operator of this node; otherwise logs the
  // refusal, finishes `reactor` with PermissionDenied and returns false.
  bool Admit(grpc::CallbackServerContext* context, std::string_view rpc,
             grpc::ServerUnaryReactor* reactor);
  // Runs `handler` if the caller is an operator of this node, and finishes
  // the call with what it returns; otherwise finishes with
  // PermissionDenied.
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* context,
                                  std::string_view rpc,
                                  const std::function<absl::Status()>& handler);

  // Checks and seals one operator message into a submission for the
  // committer; its `done` is left to the caller.
  absl::StatusOr<Submission> Prepare(const v1::SubmitMessageRequest& request);
  absl::Status FillStatus(v1::GetStatusResponse* response) const;
  absl::StatusOr<v1::SentMessage> LoadSent(const std::string& id) const;
  absl::StatusOr<v1::InboxMessage> LoadInbox(const std::string& id,
                                             bool with_envelope) const;

  const OperatorServiceDeps deps_;
  // One key agreement per recipient per session, not per message.
  SealingCache sealer_;
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_OPERATOR_SERVICE_H_
