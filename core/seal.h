// Sealing payloads to their recipient node, so that the relays an envelope
// passes through carry the payload without being able to read it.
//
// Sealing keys are separate from signing keys (core/crypto.h): a node signs
// with one key and other nodes seal to another, kept in its own file. There
// are three kinds, one per caselink.v1.SealAlgorithm:
//
//   EC key on P-256  SEAL_ALGORITHM_P256_HKDF_SHA256_AES256GCM
//   X25519 key       SEAL_ALGORITHM_X25519_HKDF_SHA256_AES256GCM
//   SM2 key          SEAL_ALGORITHM_SM2_SM4CTR_HMACSM3 (but see below: not GCM)
//
// In what follows, R is the recipient's DER SubjectPublicKeyInfo, A the
// algorithm's value as one byte (1, 2 or 3), AAD the associated data given
// to Seal and Open, "||" concatenation, and nonce the 12 random bytes of
// SealedPayload.nonce. Every payload has its own nonce and its own key.
//
// P-256 and X25519 (ephemeral-static ECDH):
//   E = a fresh key of the recipient's kind; ephemeral_public_key = its DER
//       SubjectPublicKeyInfo; wrapped_key is empty.
//   Z = ECDH(E, recipient): the 32-byte x-coordinate for P-256, the RFC 7748
//       X25519 output for X25519.
//   K = HKDF-SHA256 (RFC 5869) with IKM = Z,
//       salt = ephemeral_public_key || R, info = "caselink/v1/seal" || A,
//       32 bytes.
//   ciphertext = AES-256-GCM(K, nonce, AAD, plaintext) || 16-byte tag.
//
// SM2. OpenSSL 3.0 has no SM4-GCM, so despite the enum's name this is SM4
// in counter mode with HMAC-SM3, encrypt-then-MAC, under separate keys:
//   S = 32 random bytes; wrapped_key = SM2 encryption of S to the recipient
//       (GB/T 32918.4 with SM3, in the DER form of GM/T 0009 that OpenSSL
//       and `openssl pkeyutl -encrypt` produce); ephemeral_public_key is
//       empty.
//   Kenc || Kmac = HKDF-SM3 with IKM = S, salt = wrapped_key || R,
//       info = "caselink/v1/seal" || 0x03, 48 bytes (16 for SM4, 32 for
//       HMAC).
//   C = SM4-CTR(Kenc, first counter block nonce || 00 00 00 00, plaintext),
//       the block counted up as a big-endian number, as OpenSSL does.
//   T = the first 16 bytes of HMAC-SM3(Kmac,
//       uint64_be(length of AAD) || AAD || nonce || C).
//   ciphertext = C || T.
//
// Thread safety: keys are immutable once made, and Seal and Open use a
// fresh OpenSSL context per call, so any number of threads may seal to and
// open with the same key objects at once. Nothing here throws or logs.
#ifndef CASELINK_CORE_SEAL_H_
#define CASELINK_CORE_SEAL_H_

#include <openssl/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "caselink/v1/envelope.pb.h"
#include "core/crypto.h"

namespace caselink {

// The largest plaintext Seal accepts: 4 GiB, far below where GCM's or
// SM4-CTR's 32-bit block counter would run out.
inline constexpr size_t kMaxSealPlaintextSize = size_t{1} << 32;

// The public half of a node's sealing key, which other nodes seal to.
// Copies share one immutable OpenSSL key, so copying is cheap.
class SealingPublicKey {
 public:
  // Parses a DER SubjectPublicKeyInfo. kInvalidArgument if the bytes do not
  // parse, have trailing bytes, or hold a key of none of the three kinds
  // (an Ed25519 signing key, say, or EC on another curve).
  [[nodiscard]] static absl::StatusOr<SealingPublicKey> FromSpkiDer(
      std::string_view der);

  // Parses a PEM "PUBLIC KEY" block; errors as FromSpkiDer.
  [[nodiscard]] static absl::StatusOr<SealingPublicKey> FromPem(
      std::string_view pem);

  // The subject key of a certificate (for X25519, a certificate issued by
  // a CA with a signing key). Only the key is taken: the caller must check
  // the certificate itself, with TrustStore::VerifyChain and whatever key
  // usage it requires. kInvalidArgument if the key is of none of the kinds.
  [[nodiscard]] static absl::StatusOr<SealingPublicKey> FromCertificate(
      const Certificate& certificate);

  // The same for the first CERTIFICATE block of `pem`; kInvalidArgument if
  // there is none or it does not parse.
  [[nodiscard]] static absl::StatusOr<SealingPublicKey> FromCertificatePem(
      std::string_view pem);

  // The algorithm that payloads sealed to this key use.
  v1::SealAlgorithm algorithm() const { return algorithm_; }

  // The canonical DER SubjectPublicKeyInfo (re-encoded by OpenSSL, so equal
  // keys give equal bytes however they arrived).
  const std::string& SpkiDer() const { return spki_der_; }

  // SHA-256 of SpkiDer(), raw 32 bytes: SealedPayload.recipient_key_id.
  const std::string& KeyId() const { return key_id_; }

 private:
  friend absl::StatusOr<v1::SealedPayload> Seal(
      const SealingPublicKey& recipient, std::string_view plaintext,
      std::string_view associated_data);
  friend class SealingSession;

  SealingPublicKey(std::shared_ptr<EVP_PKEY> pkey, v1::SealAlgorithm algorithm,
                   std::string spki_der, std::string key_id);

  std::shared_ptr<EVP_PKEY> pkey_;
  v1::SealAlgorithm algorithm_;
  std::string spki_der_;
  std::string key_id_;
};

// A node's private sealing key. Move-only; it owns the OpenSSL key, which
// OpenSSL clears and frees on destruction. A moved-from key may only be
// destroyed or assigned to; Open and ToPem refuse it (kFailedPrecondition).
class SealingPrivateKey {
 public:
  // Reads a PEM private key (PKCS#8 "PRIVATE KEY", or "EC PRIVATE KEY")
  // from `path`, with the rules of PrivateKey::LoadPemFile: the file must
  // be a regular file that neither group nor others may read or write, or
  // kFailedPrecondition names the path, the mode and the fix. A missing
  // file is kNotFound, an unreadable one kPermissionDenied, an unparseable,
  // encrypted or unsuitable one kInvalidArgument; every message names the
  // path.
  [[nodiscard]] static absl::StatusOr<SealingPrivateKey> LoadPemFile(
      const std::string& path);

  // Parses a PEM private key held in memory. Encrypted keys are refused
  // (kInvalidArgument) rather than prompting for a passphrase, as are keys
  // of none of the three kinds.
  [[nodiscard]] static absl::StatusOr<SealingPrivateKey> FromPem(
      std::string_view pem);

  // Makes a fresh key for `algorithm` from OpenSSL's random generator.
  // kInvalidArgument for SEAL_ALGORITHM_UNSPECIFIED or an unknown value.
  [[nodiscard]] static absl::StatusOr<SealingPrivateKey> Generate(
      v1::SealAlgorithm algorithm);

  SealingPrivateKey(SealingPrivateKey&&) noexcept = default;
  SealingPrivateKey& operator=(SealingPrivateKey&&) noexcept = default;
  ~SealingPrivateKey() = default;

  v1::SealAlgorithm algorithm() const { return public_key_.algorithm(); }

  // The matching public key, to publish to the nodes that seal to this one.
  const SealingPublicKey& public_key() const { return public_key_; }
  const std::string& KeyId() const { return public_key_.KeyId(); }

  // The key as unencrypted PKCS#8 PEM, for writing to a 0600 file. The
  // returned string holds the secret; the caller should not log or keep it.
  [[nodiscard]] absl::StatusOr<std::string> ToPem() const;

 private:
  friend absl::StatusOr<std::string> Open(const SealingPrivateKey& key,
                                          const v1::SealedPayload& sealed,
                                          std::string_view associated_data);

  struct PkeyDeleter {
    void operator()(EVP_PKEY* pkey) const;
  };

  // Takes ownership of `pkey`.
  [[nodiscard]] static absl::StatusOr<SealingPrivateKey> FromOwnedPkey(
      EVP_PKEY* pkey);

  SealingPrivateKey(EVP_PKEY* pkey, SealingPublicKey public_key);

  std::unique_ptr<EVP_PKEY, PkeyDeleter> pkey_;
  SealingPublicKey public_key_;
};

// Encrypts `plaintext` so that only the holder of `recipient`'s private key
// can read it, bound to `associated_data` (normally SealAssociatedData of
// the carrying body). Sets every field of the result: algorithm,
// recipient_key_id, nonce, ciphertext, and ephemeral_public_key or
// wrapped_key. Two seals of the same plaintext differ in every random
// field. kInvalidArgument if `plaintext` exceeds kMaxSealPlaintextSize,
// kFailedPrecondition if `recipient` was moved from, kInternal if OpenSSL
// fails, which should not happen.
[[nodiscard]] absl::StatusOr<v1::SealedPayload> Seal(
    const SealingPublicKey& recipient, std::string_view plaintext,
    std::string_view associated_data);

// Decrypts a payload sealed to `key`, checking that it is unaltered and
// bound to `associated_data`. Errors:
//   kInvalidArgument if `sealed` is malformed, before any cryptography:
//     unknown or unspecified algorithm, an algorithm other than the key's,
//     a recipient_key_id other than KeyId() (sealed to another key: the
//     message gives both ids' first bytes in hex), a nonce not of 12 bytes,
//     a ciphertext shorter than its tag, or an absent ephemeral_public_key
//     or wrapped_key (or a present one the algorithm does not use).
//   kUnauthenticated "sealed payload does not open: ..." if the payload
//     does not decrypt and authenticate: any change to the ciphertext, tag,
//     nonce, ephemeral key, wrapped key or associated data, or a payload
//     sealed to another key under this key's id. The message is the same
//     whichever part was altered.
// No plaintext is returned, or left in memory, unless it authenticated.
[[nodiscard]] absl::StatusOr<std::string> Open(
    const SealingPrivateKey& key, const v1::SealedPayload& sealed,
    std::string_view associated_data);

// One key agreement with a recipient, reused to seal many payloads: the
// same ephemeral key (or SM2-wrapped secret) with a fresh random nonce for
// each payload. The output is exactly what Seal makes, so Open needs
// nothing new. A session gives up forward secrecy between the payloads it
// seals, so its life must be bounded (SealingCache bounds it). Copies share
// one state; Seal is thread-safe.
class SealingSession {
 public:
  [[nodiscard]] static absl::StatusOr<SealingSession> Start(
      const SealingPublicKey& recipient);

  [[nodiscard]] absl::StatusOr<v1::SealedPayload> Seal(
      std::string_view plaintext, std::string_view associated_data) const;

 private:
  struct State;
  explicit SealingSession(std::shared_ptr<State> state)
      : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// Seals payloads with one session per recipient key, renewed after
// `max_uses` payloads or `max_age`, whichever comes first. Thread-safe.
class SealingCache {
 public:
  SealingCache(uint64_t max_uses = 100000,
               absl::Duration max_age = absl::Minutes(10))
      : max_uses_(max_uses), max_age_(max_age) {}

  [[nodiscard]] absl::StatusOr<v1::SealedPayload> Seal(
      const SealingPublicKey& recipient, std::string_view plaintext,
      std::string_view associated_data);

 private:
  struct Entry {
    std::shared_ptr<const SealingSession> session;
    absl::Time started;
    uint64_t uses = 0;
  };
  const uint64_t max_uses_;
  const absl::Duration max_age_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> sessions_ ABSL_GUARDED_BY(mu_);
};

// The associated data for a payload sealed in a body: each field as an
// 8-byte big-endian length followed by its bytes, in this order. The
// lengths make the encoding unambiguous, so no two different triples give
// the same bytes.
std::string SealAssociatedData(std::string_view message_id,
                               std::string_view sender,
                               std::string_view recipient);

}  // namespace caselink

#endif  // CASELINK_CORE_SEAL_H_
