// Mutual-TLS material for gRPC servers and channels.
#ifndef CASELINK_CORE_TLS_H_
#define CASELINK_CORE_TLS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpc/grpc_security.h"
#include "grpcpp/grpcpp.h"

namespace caselink {

// PEM text of one TLS identity and the CAs it trusts.
struct TlsMaterial {
  std::string cert_chain_pem;
  std::string key_pem;
  std::string roots_pem;
};

// Reads the three files. Each failure names the file and what is wrong
// with it: missing, unreadable, not PEM, a key readable by other users, a
// key that does not match the certificate, an empty CA bundle.
[[nodiscard]] absl::StatusOr<TlsMaterial> LoadTlsMaterial(
    const std::string& cert_path, const std::string& key_path,
    const std::string& ca_bundle_path);

// The TLS identity of a server that may roll to a new certificate and key
// while it runs, with no restart and no connection dropped. Each new TLS
// handshake asks `current` for the material; from the first handshake that
// sees a change on, the server presents the new certificate. Connections
// made before keep theirs. Clients must present a certificate issued by one
// of the trusted CAs, checked as for any gRPC SSL server.
//
// Thread-safe. `current` must be quick: it runs at every handshake. The
// object must outlive every server its credentials are added to.
class RenewableServerTls {
 public:
  using Source = std::function<std::shared_ptr<const TlsMaterial>()>;

  explicit RenewableServerTls(Source current) : current_(std::move(current)) {}

  RenewableServerTls(const RenewableServerTls&) = delete;
  RenewableServerTls& operator=(const RenewableServerTls&) = delete;

  // Credentials for one listening port.
  std::shared_ptr<grpc::ServerCredentials> Credentials();

 private:
  // gRPC's certificate config callback; `self` is this object.
  static grpc_ssl_certificate_config_reload_status Fetch(
      void* self, grpc_ssl_server_certificate_config** config);

  const Source current_;
  absl::Mutex mu_;
  // What the last handshake was given.
  std::shared_ptr<const TlsMaterial> served_ ABSL_GUARDED_BY(mu_);
};

// A channel to the node `peer_code12` at `address`, presenting this
// material's certificate and accepting only a server certificate, from a
// trusted CA, that names that node.
std::shared_ptr<grpc::Channel> MutualTlsChannel(const std::string& address,
                                                const std::string& peer_code12,
                                                const TlsMaterial& material);

}  // namespace caselink

#endif  // CASELINK_CORE_TLS_H_
