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

std::shared_ptr<grpc::ServerCredentials> MutualTlsServerCredentials(
    const TlsMaterial& material) {
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = material.roots_pem;
  options.pem_key_cert_pairs.push_back(
      {material.key_pem, material.cert_chain_pem});
  return grpc::SslServerCredentials(options);
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
