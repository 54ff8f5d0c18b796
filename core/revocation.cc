#include "core/revocation.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/status/status.h"
#include "core/strings.h"

namespace caselink {
namespace {

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct CrlDeleter {
  void operator()(X509_CRL* crl) const { X509_CRL_free(crl); }
};
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

std::string NameDer(const X509_NAME* name) {
  unsigned char* out = nullptr;
  int length = i2d_X509_NAME(name, &out);
  if (length <= 0) return "";
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(length));
  OPENSSL_free(out);
  return der;
}

std::string SerialDer(const ASN1_INTEGER* serial) {
  unsigned char* out = nullptr;
  int length = i2d_ASN1_INTEGER(serial, &out);
  if (length <= 0) return "";
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(length));
  OPENSSL_free(out);
  return der;
}

std::unique_ptr<X509, X509Deleter> ParseDer(const std::string& der) {
  const unsigned char* in = reinterpret_cast<const unsigned char*>(der.data());
  return std::unique_ptr<X509, X509Deleter>(
      d2i_X509(nullptr, &in, static_cast<long>(der.size())));
}

}  // namespace

absl::StatusOr<RevocationList> RevocationList::LoadPemFile(
    const std::string& path, const std::vector<Certificate>& cas) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        Cat("CRL bundle ", path, ": cannot be opened for reading"));
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string pem = text.str();
  std::unique_ptr<BIO, BioDeleter> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));

  RevocationList list;
  int count = 0;
  while (true) {
    std::unique_ptr<X509_CRL, CrlDeleter> crl(
        PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (crl == nullptr) break;
    ++count;
    const X509_NAME* issuer = X509_CRL_get_issuer(crl.get());
    const std::string issuer_der = NameDer(issuer);
    bool verified = false;
    for (const Certificate& ca : cas) {
      auto x509 = ParseDer(ca.der());
      if (x509 == nullptr ||
          X509_NAME_cmp(X509_get_subject_name(x509.get()), issuer) != 0) {
        continue;
      }
      EVP_PKEY* key = X509_get0_pubkey(x509.get());
      verified = key != nullptr && X509_CRL_verify(crl.get(), key) == 1;
      if (verified) break;
    }
    if (!verified) {
      return absl::InvalidArgumentError(Cat("CRL bundle ", path, ": CRL ",
                                            count,
                                            " is not signed by a trusted CA"));
    }
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
    if (next != nullptr && X509_cmp_current_time(next) < 0) {
      return absl::InvalidArgumentError(Cat("CRL bundle ", path, ": CRL ",
                                            count, " has expired; reissue it"));
    }
    STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
    for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
      const X509_REVOKED* entry = sk_X509_REVOKED_value(revoked, i);
      list.revoked_.emplace(issuer_der,
                            SerialDer(X509_REVOKED_get0_serialNumber(entry)));
    }
  }
  // Reading stops at the end of the text, which OpenSSL records as an error.
  ERR_clear_error();
  if (count == 0) {
    return absl::InvalidArgumentError(
        Cat("CRL bundle ", path, ": holds no CRL"));
  }
  return list;
}

bool RevocationList::IsRevoked(const Certificate& certificate) const {
  if (revoked_.empty()) return false;
  auto x509 = ParseDer(certificate.der());
  if (x509 == nullptr) return false;
  return revoked_.count({NameDer(X509_get_issuer_name(x509.get())),
                         SerialDer(X509_get0_serialNumber(x509.get()))}) > 0;
}

}  // namespace caselink
