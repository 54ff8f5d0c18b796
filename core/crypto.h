// Hashes, signing keys, certificates and chain verification for caselink,
// built on OpenSSL 3.0.
//
// Every class here owns its OpenSSL objects and frees them itself; none of
// them hands out an OpenSSL pointer. All const member functions may be called
// from many threads at once on the same object. Errors come back as
// absl::Status with a message an operator can act on, including OpenSSL's
// own reason where there is one; nothing here throws.
//
// The signature schemes follow caselink/v1/envelope.proto:
//   ECDSA over P-256 with SHA-256, DER-encoded ECDSA-Sig-Value;
//   pure Ed25519 (RFC 8032), 64 bytes;
//   SM2 with SM3 and the default signer id "1234567812345678"
//   (GB/T 32918, GB/T 32905), DER-encoded like ECDSA.
// These functions sign and verify exactly the bytes they are given; the
// domain-separation prefixes of envelope.proto are the caller's business.
#ifndef CASELINK_CORE_CRYPTO_H_
#define CASELINK_CORE_CRYPTO_H_

#include <openssl/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace caselink {

// ---------------------------------------------------------------------------
// Hashing

enum class HashAlgorithm { kSha256, kSm3 };

// Both algorithms produce 32-byte digests.
inline constexpr size_t kDigestSize = 32;

// "sha256" or "sm3".
std::string_view HashAlgorithmName(HashAlgorithm algorithm);

// Returns the raw kDigestSize-byte digest of `data`. Fails (kInternal) only
// if OpenSSL cannot provide the algorithm, e.g. SM3 in a FIPS-only build.
[[nodiscard]] absl::StatusOr<std::string> Digest(HashAlgorithm algorithm,
                                                 std::string_view data);

// An incremental digest, for input that arrives in pieces. After Finish the
// hasher starts over and may be reused. A Hasher is not thread-safe; give
// each thread its own.
class Hasher {
 public:
  // Fails (kInternal) if OpenSSL cannot set up the algorithm.
  [[nodiscard]] static absl::StatusOr<Hasher> Create(HashAlgorithm algorithm);

  Hasher(Hasher&&) noexcept = default;
  Hasher& operator=(Hasher&&) noexcept = default;
  ~Hasher() = default;

  HashAlgorithm algorithm() const { return algorithm_; }

  // Appends `data`. A failure inside OpenSSL is remembered and reported by
  // the next Finish, so callers need not check every piece.
  void Update(std::string_view data);

  // Returns the digest of everything since the last Finish (or Create) and
  // resets the hasher.
  [[nodiscard]] absl::StatusOr<std::string> Finish();

 private:
  struct CtxDeleter {
    void operator()(EVP_MD_CTX* ctx) const;
  };

  Hasher(HashAlgorithm algorithm, const EVP_MD* md, EVP_MD_CTX* ctx);

  HashAlgorithm algorithm_;
  const EVP_MD* md_;  // Static OpenSSL object; never freed.
  std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx_;
  bool failed_ = false;
};

// ---------------------------------------------------------------------------
// Signature schemes

enum class SignatureScheme { kEcdsaP256Sha256, kEd25519, kSm2Sm3 };

// The SM2 signer id every caselink node uses (the GB/T 32918 default).
inline constexpr std::string_view kSm2DefaultId = "1234567812345678";

// The hash family of a scheme: SM3 for SM2, SHA-256 for the others. Receipts
// and batch trees hash with this.
HashAlgorithm HashAlgorithmOf(SignatureScheme scheme);

// The value of caselink.v1.SignatureAlgorithm for `scheme` (1, 2 or 3).
int SignatureSchemeToProto(SignatureScheme scheme);

// Maps a caselink.v1.SignatureAlgorithm value back. Fails with
// kInvalidArgument for 0 (unspecified) and for values this build does not
// know.
[[nodiscard]] absl::StatusOr<SignatureScheme> SignatureSchemeFromProto(
    int value);

// "ecdsa-p256", "ed25519" or "sm2"; the names used in configuration.
std::string_view SignatureSchemeName(SignatureScheme scheme);

// Inverse of SignatureSchemeName; kInvalidArgument for any other name.
[[nodiscard]] absl::StatusOr<SignatureScheme> ParseSignatureScheme(
    std::string_view name);

// ---------------------------------------------------------------------------
// Keys

// A public key of one of the three schemes. Copies share one immutable
// OpenSSL key, so copying is cheap.
class PublicKey {
 public:
  // Parses a DER SubjectPublicKeyInfo. Fails with kInvalidArgument if the
  // bytes do not parse or the key is not Ed25519, SM2, or EC on P-256.
  [[nodiscard]] static absl::StatusOr<PublicKey> FromSpkiDer(
      std::string_view der);

  // Parses a PEM "PUBLIC KEY" block; errors as FromSpkiDer.
  [[nodiscard]] static absl::StatusOr<PublicKey> FromPem(std::string_view pem);

  SignatureScheme scheme() const { return scheme_; }

  // The DER SubjectPublicKeyInfo.
  const std::string& SpkiDer() const { return spki_der_; }

  // SHA-256 of SpkiDer(), raw 32 bytes: the key_id of envelope.proto.
  const std::string& KeyId() const { return key_id_; }

  // Returns OK if `signature` is a valid signature of `message` under this
  // key with this key's scheme. Fails with kInvalidArgument if the signature
  // is not even well-formed for the scheme (wrong length, not strict DER),
  // and with kUnauthenticated if it is well-formed but does not verify.
  [[nodiscard]] absl::Status Verify(std::string_view message,
                                    std::string_view signature) const;

 private:
  PublicKey(std::shared_ptr<EVP_PKEY> pkey, SignatureScheme scheme,
            std::string spki_der, std::string key_id);

  std::shared_ptr<EVP_PKEY> pkey_;
  SignatureScheme scheme_;
  std::string spki_der_;
  std::string key_id_;
};

// A private signing key. Move-only; it owns the OpenSSL key, which is freed
// (and its secret cleared by OpenSSL) on destruction. A moved-from key may
// only be destroyed or assigned to.
class PrivateKey {
 public:
  // Reads a PEM private key (PKCS#8 "PRIVATE KEY", or the traditional "EC
  // PRIVATE KEY") from `path`. The file must be a regular file that neither
  // group nor others may read or write; otherwise kFailedPrecondition with
  // the path, the mode and the fix. A missing file is kNotFound, an
  // unreadable one kPermissionDenied, and an unparseable or encrypted one
  // kInvalidArgument; every message names the path.
  [[nodiscard]] static absl::StatusOr<PrivateKey> LoadPemFile(
      const std::string& path);

  // Parses a PEM private key held in memory. Encrypted keys are refused
  // (kInvalidArgument) rather than prompting for a passphrase. The key must
  // be Ed25519, SM2, or EC on P-256.
  [[nodiscard]] static absl::StatusOr<PrivateKey> FromPem(std::string_view pem);

  // Makes a fresh key from OpenSSL's random generator.
  [[nodiscard]] static absl::StatusOr<PrivateKey> Generate(
      SignatureScheme scheme);

  PrivateKey(PrivateKey&&) noexcept = default;
  PrivateKey& operator=(PrivateKey&&) noexcept = default;
  ~PrivateKey() = default;

  SignatureScheme scheme() const { return public_key_.scheme(); }

  // Signs `message` with this key's scheme (see the top of this file).
  // ECDSA and SM2 signatures are randomised, so two calls give different
  // bytes. Thread-safe: each call uses its own OpenSSL context.
  [[nodiscard]] absl::StatusOr<std::string> Sign(
      std::string_view message) const;

  // The matching public key, and its DER SubjectPublicKeyInfo and key id.
  const PublicKey& public_key() const { return public_key_; }
  const std::string& PublicKeyDer() const { return public_key_.SpkiDer(); }
  const std::string& KeyId() const { return public_key_.KeyId(); }

  // The key as unencrypted PKCS#8 PEM, for writing to a 0600 file. The
  // returned string holds the secret; the caller should not log or keep it.
  [[nodiscard]] absl::StatusOr<std::string> ToPem() const;

 private:
  struct PkeyDeleter {
    void operator()(EVP_PKEY* pkey) const;
  };

  // Takes ownership of `pkey`.
  [[nodiscard]] static absl::StatusOr<PrivateKey> FromOwnedPkey(EVP_PKEY* pkey);

  PrivateKey(EVP_PKEY* pkey, PublicKey public_key);

  std::unique_ptr<EVP_PKEY, PkeyDeleter> pkey_;
  PublicKey public_key_;
};

// ---------------------------------------------------------------------------
// Certificates

// An X.509 certificate. Copies share one immutable OpenSSL object.
class Certificate {
 public:
  // Parses the first CERTIFICATE block of `pem`; kInvalidArgument if there
  // is none or it does not parse.
  [[nodiscard]] static absl::StatusOr<Certificate> FromPem(
      std::string_view pem);

  // Parses every CERTIFICATE block of `pem`, in order; kInvalidArgument if
  // there is none or one does not parse.
  [[nodiscard]] static absl::StatusOr<std::vector<Certificate>> AllFromPem(
      std::string_view pem);

  // Parses a DER certificate; kInvalidArgument if it does not parse.
  [[nodiscard]] static absl::StatusOr<Certificate> FromDer(
      std::string_view der);

  // Reads the first certificate of a PEM file. kNotFound or
  // kPermissionDenied if it cannot be read, kInvalidArgument if it does not
  // parse; messages name the path.
  [[nodiscard]] static absl::StatusOr<Certificate> LoadPemFile(
      const std::string& path);

  // The DER encoding and its PEM form.
  const std::string& der() const { return der_; }
  std::string ToPem() const;

  // SHA-256 of der(), raw 32 bytes.
  const std::string& fingerprint() const { return fingerprint_; }

  // The subject's public key. Fails with kInvalidArgument if the key is not
  // of one of the three signature schemes (for example an RSA CA).
  [[nodiscard]] absl::StatusOr<PublicKey> public_key() const;

  // The URI entries of the subjectAltName extension, in order; empty if
  // there are none.
  std::vector<std::string> uri_sans() const;

  // The subject's first commonName as UTF-8; empty if there is none.
  std::string common_name() const;

  // The subject in RFC 2253 form with UTF-8 left unescaped, e.g.
  // "CN=北京市司法局,O=Ministry of Justice,C=CN". For messages and logs.
  std::string subject() const;

  absl::Time not_before() const { return not_before_; }
  absl::Time not_after() const { return not_after_; }

 private:
  friend class TrustStore;

  struct X509Deleter {
    void operator()(X509* x509) const;
  };

  // Takes ownership of `x509`.
  [[nodiscard]] static absl::StatusOr<Certificate> FromOwnedX509(X509* x509);

  Certificate(std::shared_ptr<X509> x509, std::string der,
              std::string fingerprint, absl::Time not_before,
              absl::Time not_after);

  std::shared_ptr<X509> x509_;
  std::string der_;
  std::string fingerprint_;
  absl::Time not_before_;
  absl::Time not_after_;
};

// A set of trusted CA certificates and the X.509 path validation against
// them. Immutable after construction; copies share the same store, and
// VerifyChain may be called from many threads at once.
//
// Certificates signed with SM2 are verified with the default SM2 signer id,
// as GM/T 0015 CAs issue them (OpenSSL 3.0 alone would use an empty id).
class TrustStore {
 public:
  // Reads a PEM bundle of CA certificates from `path`. Errors as
  // Certificate::LoadPemFile; a file without any certificate is
  // kInvalidArgument.
  [[nodiscard]] static absl::StatusOr<TrustStore> LoadPemFile(
      const std::string& path);

  // Builds a store from a PEM bundle held in memory.
  [[nodiscard]] static absl::StatusOr<TrustStore> FromPem(
      std::string_view bundle);

  // Builds a store from certificates already parsed; at least one.
  [[nodiscard]] static absl::StatusOr<TrustStore> FromCertificates(
      const std::vector<Certificate>& cas);

  // How many CA certificates the store holds.
  size_t size() const { return size_; }

  // Returns OK if `leaf` chains, through `intermediates` if needed, to a CA
  // of this store, with every certificate valid at time `at`. Otherwise
  // kUnauthenticated with the subject and OpenSSL's reason, e.g.
  // "certificate CN=x is not signed by a trusted CA: unable to get local
  // issuer certificate". kInternal if OpenSSL cannot run the check at all.
  // Checks the chain only: the caller decides what the leaf's names and key
  // usage must be.
  [[nodiscard]] absl::Status VerifyChain(
      const Certificate& leaf, const std::vector<Certificate>& intermediates,
      absl::Time at) const;
  [[nodiscard]] absl::Status VerifyChain(const Certificate& leaf,
                                         absl::Time at = absl::Now()) const {
    return VerifyChain(leaf, {}, at);
  }

 private:
  TrustStore(std::shared_ptr<X509_STORE> store, size_t size);

  std::shared_ptr<X509_STORE> store_;
  size_t size_;
};

// ---------------------------------------------------------------------------
// Bytes

// Reads a private key file whole, refusing one that group or others may
// read or write, and one that is not a regular file; errors as
// PrivateKey::LoadPemFile. The caller should clear the returned bytes.
[[nodiscard]] absl::StatusOr<std::string> ReadPrivateKeyFile(
    const std::string& path);

// Returns `n` bytes from OpenSSL's CSPRNG. Aborts the process if the
// generator fails, since no caller can proceed safely without randomness.
// Thread-safe.
std::string RandomBytes(size_t n);

// Lower-case hex of `bytes`.
std::string HexEncode(std::string_view bytes);

// Decodes hex in either case. kInvalidArgument for an odd length or a
// character that is not a hex digit.
[[nodiscard]] absl::StatusOr<std::string> HexDecode(std::string_view hex);

}  // namespace caselink

#endif  // CASELINK_CORE_CRYPTO_H_
