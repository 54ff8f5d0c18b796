#include "core/tls.h"

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "core/crypto.h"
#include "core/identity.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink {
namespace {

absl::StatusOr<std::string> ReadPemFile(const std::string& path,
                                        std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        Cat(what, " ", path, ": cannot be opened for reading"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (!absl::StrContains(text.str(), "-----BEGIN ")) {
    return absl::InvalidArgumentError(Cat(what, " ", path, ": not a PEM file"));
  }
  return text.str();
}

}  // namespace

absl::StatusOr<TlsMaterial> LoadTlsMaterial(const std::string& cert_path,
                                            const std::string& key_path,
                                            const std::string& ca_bundle_path) {
  TlsMaterial material;
  CASELINK_ASSIGN_OR_RETURN(material.cert_chain_pem,
                            ReadPemFile(cert_path, "certificate"));
  CASELINK_ASSIGN_OR_RETURN(Certificate cert,
                            Certificate::FromPem(material.cert_chain_pem));
  CASELINK_ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::LoadPemFile(key_path));
  CASELINK_ASSIGN_OR_RETURN(PublicKey cert_key, cert.public_key());
  if (key.PublicKeyDer() != cert_key.SpkiDer()) {
    return absl::InvalidArgumentError(
        Cat("key ", key_path, ": does not match certificate ", cert_path));
  }
  CASELINK_ASSIGN_OR_RETURN(material.key_pem, ReadPemFile(key_path, "key"));
  CASELINK_ASSIGN_OR_RETURN(material.roots_pem,
                            ReadPemFile(ca_bundle_path, "CA bundle"));
  return material;
}

namespace {

// Server credentials around gRPC's SSL credentials with a certificate
// config fetcher, which the C++ API does not offer.
class FetchedSslServerCredentials final : public grpc::ServerCredentials {
 public:
  FetchedSslServerCredentials(grpc_ssl_server_certificate_config_callback fetch,
                              void* user_data) {
    grpc_ssl_server_credentials_options* options =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(
            GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, fetch,
            user_data);
    // Takes ownership of the options.
    credentials_ = grpc_ssl_server_credentials_create_with_options(options);
  }
  ~FetchedSslServerCredentials() override {
    grpc_server_credentials_release(credentials_);
  }

  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>& /*processor*/)
      override {}

 private:
  int AddPortToServer(const std::string& address,
                      grpc_server* server) override {
    return grpc_server_add_http2_port(server, address.c_str(), credentials_);
  }

  grpc_server_credentials* credentials_ = nullptr;
};

}  // namespace

std::shared_ptr<grpc::ServerCredentials> RenewableServerTls::Credentials() {
  return std::make_shared<FetchedSslServerCredentials>(&Fetch, this);
}

grpc_ssl_certificate_config_reload_status RenewableServerTls::Fetch(
    void* self, grpc_ssl_server_certificate_config** config) {
  auto* tls = static_cast<RenewableServerTls*>(self);
  std::shared_ptr<const TlsMaterial> material = tls->current_();
  absl::MutexLock lock(&tls->mu_);
  std::shared_ptr<const TlsMaterial>& served = tls->served_;
  if (material == nullptr) {
    return served == nullptr ? GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL
                             : GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  }
  if (material == served) return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  if (served != nullptr && material->cert_chain_pem == served->cert_chain_pem &&
      material->key_pem == served->key_pem &&
      material->roots_pem == served->roots_pem) {
    served = std::move(material);
    return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  }
  // gRPC copies the strings; the caller owns the config.
  grpc_ssl_pem_key_cert_pair pair{material->key_pem.c_str(),
                                  material->cert_chain_pem.c_str()};
  *config = grpc_ssl_server_certificate_config_create(
      material->roots_pem.c_str(), &pair, 1);
  served = std::move(material);
  return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

std::shared_ptr<grpc::Channel> MutualTlsChannel(const std::string& address,
                                                const std::string& peer_code12,
                                                const TlsMaterial& material) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = material.roots_pem;
  options.pem_private_key = material.key_pem;
  options.pem_cert_chain = material.cert_chain_pem;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(NodeTlsName(peer_code12));
  // Reconnect quickly after a peer restarts; the outbox does its own
  // backoff on top of this.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(options),
                                   args);
}

}  // namespace caselink
