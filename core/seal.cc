#include "core/seal.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink {
namespace {

// unique_ptr deleter calling an OpenSSL free function.
template <auto kFree>
struct OpenSslFree {
  template <typename T>
  void operator()(T* object) const {
    kFree(object);
  }
};

using BioPtr = std::unique_ptr<BIO, OpenSslFree<BIO_free_all>>;
using CipherCtxPtr =
    std::unique_ptr<EVP_CIPHER_CTX, OpenSslFree<EVP_CIPHER_CTX_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY_free>>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, OpenSslFree<EVP_KDF_CTX_free>>;
using KdfPtr = std::unique_ptr<EVP_KDF, OpenSslFree<EVP_KDF_free>>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, OpenSslFree<EVP_MAC_CTX_free>>;
using MacPtr = std::unique_ptr<EVP_MAC, OpenSslFree<EVP_MAC_free>>;
using PkeyCtxPtr =
    std::unique_ptr<EVP_PKEY_CTX, OpenSslFree<EVP_PKEY_CTX_free>>;

constexpr std::string_view kInfoLabel = "caselink/v1/seal";
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;
constexpr size_t kAesKeySize = 32;
constexpr size_t kSm2SecretSize = 32;
constexpr size_t kSm4KeySize = 16;
constexpr size_t kMacKeySize = 32;
constexpr size_t kKeyIdSize = 32;

// Key files are small; anything bigger is a mistake.

// EVP_CipherUpdate counts in int; larger inputs go through in pieces.
constexpr size_t kCipherChunk = size_t{1} << 30;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* MutableBytes(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

// Key material, cleared when it goes away. Backed by a vector because a
// moved vector hands over its buffer, where a short std::string would leave
// a copy of the bytes behind.
class SecretBytes {
 public:
  explicit SecretBytes(size_t size) : bytes_(size) {}
  SecretBytes(SecretBytes&&) noexcept = default;
  SecretBytes& operator=(SecretBytes&&) = delete;
  ~SecretBytes() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

  unsigned char* data() { return bytes_.data(); }
  const unsigned char* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }

  // Shrinking never reallocates, so nothing is left uncleared.
  void Shrink(size_t size) { bytes_.resize(std::min(size, bytes_.size())); }

 private:
  std::vector<unsigned char> bytes_;
};

// Empties this thread's OpenSSL error queue into one line, so that nothing
// is left for the next, unrelated OpenSSL call in this thread to report.
std::string DrainOpenSslErrors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!out.empty()) out += "; ";
    out += buffer;
  }
  return out.empty() ? "no detail from OpenSSL" : out;
}

absl::Status OpenSslError(absl::StatusCode code, std::string_view what) {
  return absl::Status(code, Cat(what, ": ", DrainOpenSslErrors()));
}

// The one error for a payload that fails to decrypt or authenticate. It
// must not say which part failed, so OpenSSL's detail is dropped.
absl::Status DoesNotOpen() {
  ERR_clear_error();
  return absl::UnauthenticatedError(
      "sealed payload does not open: it was altered, or sealed to another "
      "key");
}

std::string_view AlgorithmName(v1::SealAlgorithm algorithm) {
  switch (algorithm) {
    case v1::SEAL_ALGORITHM_P256_HKDF_SHA256_AES256GCM:
      return "p256-hkdf-sha256-aes256gcm";
    case v1::SEAL_ALGORITHM_X25519_HKDF_SHA256_AES256GCM:
      return "x25519-hkdf-sha256-aes256gcm";
    case v1::SEAL_ALGORITHM_SM2_SM4CTR_HMACSM3:
      return "sm2-sm4ctr-hmacsm3";
    default:
      return "unknown";
  }
}

bool IsEcdh(v1::SealAlgorithm algorithm) {
  return algorithm == v1::SEAL_ALGORITHM_P256_HKDF_SHA256_AES256GCM ||
         algorithm == v1::SEAL_ALGORITHM_X25519_HKDF_SHA256_AES256GCM;
}

// Works out which sealing algorithm a key is for. OpenSSL 3.0 decodes keys
// on the SM2 curve as type "SM2", never as "EC".
absl::StatusOr<v1::SealAlgorithm> AlgorithmOfKey(EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "X25519")) {
    return v1::SEAL_ALGORITHM_X25519_HKDF_SHA256_AES256GCM;
  }
  if (EVP_PKEY_is_a(pkey, "SM2")) return v1::SEAL_ALGORITHM_SM2_SM4CTR_HMACSM3;
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[64];
    size_t length = 0;
    if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &length) != 1) {
      return OpenSslError(absl::StatusCode::kInvalidArgument,
                          "EC key without a named curve");
    }
    std::string_view name(group, length);
    if (name == "prime256v1" || name == "P-256") {
      return v1::SEAL_ALGORITHM_P256_HKDF_SHA256_AES256GCM;
    }
    return absl::InvalidArgumentError(
        Cat("unsupported EC curve ", name,
            "; sealing keys are P-256, X25519 or SM2"));
  }
  const char* type = EVP_PKEY_get0_type_name(pkey);
  return absl::InvalidArgumentError(
      Cat("unsupported key type ", type != nullptr ? type : "unknown",
          "; sealing keys are P-256, X25519 or SM2"));
}

absl::StatusOr<std::string> SpkiDerOf(EVP_PKEY* pkey) {
  int length = i2d_PUBKEY(pkey, nullptr);
  if (length <= 0) {
    return OpenSslError(absl::StatusCode::kInternal, "encoding public key");
  }
  std::string der(static_cast<size_t>(length), '\0');
  unsigned char* out = MutableBytes(der);
  if (i2d_PUBKEY(pkey, &out) != length) {
    return OpenSslError(absl::StatusCode::kInternal, "encoding public key");
  }
  return der;
}

// Parses exactly one DER SubjectPublicKeyInfo, with nothing after it.
absl::StatusOr<EvpPkeyPtr> ParseSpki(std::string_view der) {
  if (der.size() > static_cast<size_t>(LONG_MAX)) {
    return absl::InvalidArgumentError("public key too large");
  }
  const unsigned char* in = Bytes(der);
  EvpPkeyPtr pkey(d2i_PUBKEY(nullptr, &in, static_cast<long>(der.size())));
  if (pkey == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "not a DER SubjectPublicKeyInfo");
  }
  if (in != Bytes(der) + der.size()) {
    return absl::InvalidArgumentError(
        "trailing bytes after the SubjectPublicKeyInfo");
  }
  return pkey;
}

// A read-only memory BIO over `data`, which must outlive it.
absl::StatusOr<BioPtr> ReadBio(std::string_view data) {
  if (data.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError("input too large for OpenSSL");
  }
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (bio == nullptr) return OpenSslError(absl::StatusCode::kInternal, "BIO");
  return bio;
}

// PEM passphrase callback that declines, so that an encrypted key fails
// instead of prompting on the terminal.
int RefusePassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/,
                     void* /*userdata*/) {
  return -1;
}

EvpPkeyPtr GenerateKey(v1::SealAlgorithm algorithm) {
  switch (algorithm) {
    case v1::SEAL_ALGORITHM_P256_HKDF_SHA256_AES256GCM: {
      char curve[] = "P-256";
      return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
    }
    case v1::SEAL_ALGORITHM_X25519_HKDF_SHA256_AES256GCM:
      return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
    case v1::SEAL_ALGORITHM_SM2_SM4CTR_HMACSM3:
      return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "SM2"));
    default:
      return nullptr;
  }
}

// ---------------------------------------------------------------------------
// Primitives. Each returns kInternal for an OpenSSL failure; callers that
// are opening a payload turn key-dependent failures into DoesNotOpen.

// The ECDH shared secret of `own` and `peer`. The peer key is validated
// (on the curve, not the identity) before use.
absl::StatusOr<SecretBytes> DeriveSharedSecret(EVP_PKEY* own, EVP_PKEY* peer) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, own, nullptr));
  size_t length = 0;
  if (ctx == nullptr || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer_ex(ctx.get(), peer, /*validate_peer=*/1) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &length) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "ECDH");
  }
  SecretBytes secret(length);
  if (EVP_PKEY_derive(ctx.get(), secret.data(), &length) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "ECDH");
  }
  secret.Shrink(length);
  return secret;
}

// HKDF (RFC 5869) with `digest`, salt = salt_head || salt_tail and info =
// kInfoLabel || the algorithm byte, filling `size` bytes.
absl::StatusOr<SecretBytes> DeriveKeys(
    const char* digest, const SecretBytes& ikm, std::string_view salt_head,
    std::string_view salt_tail, v1::SealAlgorithm algorithm, size_t size) {
  std::string salt = Cat(salt_head, salt_tail);
  std::string info =
      Cat(kInfoLabel, static_cast<char>(static_cast<uint8_t>(algorithm)));
  KdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  KdfCtxPtr ctx(kdf != nullptr ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
  if (ctx == nullptr) return OpenSslError(absl::StatusCode::kInternal, "HKDF");

  // OpenSSL only reads these; the parameter types lack const.
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                       const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                        const_cast<unsigned char*>(ikm.data()),
                                        ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt.data(),
                                        salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(),
                                        info.size()),
      OSSL_PARAM_construct_end()};
  SecretBytes out(size);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "HKDF");
  }
  return out;
}

// Feeds `in` to a cipher context; `out` may be null for GCM's AAD. Both
// modes used here are stream modes, so output keeps pace with input.
bool CipherUpdate(EVP_CIPHER_CTX* ctx, unsigned char* out,
                  std::string_view in) {
  for (size_t done = 0; done < in.size();) {
    int chunk = static_cast<int>(std::min(in.size() - done, kCipherChunk));
    int written = 0;
    if (EVP_CipherUpdate(ctx, out != nullptr ? out + done : nullptr, &written,
                         Bytes(in) + done, chunk) != 1 ||
        written != chunk) {
      return false;
    }
    done += static_cast<size_t>(chunk);
  }
  return true;
}

// The ciphers, fetched once from the default provider rather than looked up
// at every payload. Never freed.
const EVP_CIPHER* Aes256GcmCipher() {
  static EVP_CIPHER* const cipher =
      EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

const EVP_CIPHER* Sm4CtrCipher() {
  static EVP_CIPHER* const cipher =
      EVP_CIPHER_fetch(nullptr, "SM4-CTR", nullptr);
  return cipher;
}

// AES-256-GCM encryption: returns ciphertext || tag.
absl::StatusOr<std::string> GcmSeal(const SecretBytes& key,
                                    std::string_view nonce,
                                    std::string_view associated_data,
                                    std::string_view plaintext) {
  std::string out(plaintext.size() + kTagSize, '\0');
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int final_length = 0;
  if (ctx == nullptr ||
      EVP_CipherInit_ex2(ctx.get(), Aes256GcmCipher(), key.data(), Bytes(nonce),
                         /*enc=*/1, nullptr) != 1 ||
      !CipherUpdate(ctx.get(), nullptr, associated_data) ||
      !CipherUpdate(ctx.get(), MutableBytes(out), plaintext) ||
      EVP_CipherFinal_ex(ctx.get(), MutableBytes(out) + plaintext.size(),
                         &final_length) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG,
                          static_cast<int>(kTagSize),
                          MutableBytes(out) + plaintext.size()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "AES-256-GCM");
  }
  return out;
}

// AES-256-GCM decryption of ciphertext || tag; DoesNotOpen if the tag does
// not match.
absl::StatusOr<std::string> GcmOpen(const SecretBytes& key,
                                    std::string_view nonce,
                                    std::string_view associated_data,
                                    std::string_view sealed) {
  std::string_view body = sealed.substr(0, sealed.size() - kTagSize);
  std::string tag(sealed.substr(body.size()));
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr ||
      EVP_CipherInit_ex2(ctx.get(), Aes256GcmCipher(), key.data(), Bytes(nonce),
                         /*enc=*/0, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG,
                          static_cast<int>(kTagSize), tag.data()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "AES-256-GCM");
  }
  std::string plaintext(body.size(), '\0');
  int final_length = 0;
  if (!CipherUpdate(ctx.get(), nullptr, associated_data) ||
      !CipherUpdate(ctx.get(), MutableBytes(plaintext), body) ||
      EVP_CipherFinal_ex(ctx.get(), MutableBytes(plaintext) + body.size(),
                         &final_length) != 1) {
    // GCM decrypts before it checks; unauthenticated bytes must not linger.
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return DoesNotOpen();
  }
  return plaintext;
}

// SM4-CTR, which is its own inverse, from counter block nonce || 0^32.
absl::StatusOr<std::string> Sm4Ctr(const SecretBytes& keys,
                                   std::string_view nonce,
                                   std::string_view in) {
  unsigned char counter[16] = {};
  std::memcpy(counter, nonce.data(), std::min(nonce.size(), kNonceSize));
  std::string out(in.size(), '\0');
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int final_length = 0;
  if (ctx == nullptr ||
      EVP_CipherInit_ex2(ctx.get(), Sm4CtrCipher(), keys.data(), counter,
                         /*enc=*/1, nullptr) != 1 ||
      !CipherUpdate(ctx.get(), MutableBytes(out), in) ||
      EVP_CipherFinal_ex(ctx.get(), MutableBytes(out) + in.size(),
                         &final_length) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return OpenSslError(absl::StatusCode::kInternal, "SM4-CTR");
  }
  return out;
}

// The SM2 suite's tag: HMAC-SM3 under the second part of `keys`, truncated
// to kTagSize, over the length-prefixed associated data, nonce and body.
absl::StatusOr<std::string> Sm2SuiteTag(const SecretBytes& keys,
                                        std::string_view associated_data,
                                        std::string_view nonce,
                                        std::string_view body) {
  unsigned char length[8];
  uint64_t aad_size = associated_data.size();
  for (int i = 7; i >= 0; --i, aad_size >>= 8) {
    length[i] = static_cast<unsigned char>(aad_size & 0xff);
  }
  char digest[] = "SM3";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  MacCtxPtr ctx(mac != nullptr ? EVP_MAC_CTX_new(mac.get()) : nullptr);
  unsigned char full[EVP_MAX_MD_SIZE];
  size_t full_length = 0;
  if (ctx == nullptr ||
      EVP_MAC_init(ctx.get(), keys.data() + kSm4KeySize, kMacKeySize, params) !=
          1 ||
      EVP_MAC_update(ctx.get(), length, sizeof(length)) != 1 ||
      EVP_MAC_update(ctx.get(), Bytes(associated_data),
                     associated_data.size()) != 1 ||
      EVP_MAC_update(ctx.get(), Bytes(nonce), nonce.size()) != 1 ||
      EVP_MAC_update(ctx.get(), Bytes(body), body.size()) != 1 ||
      EVP_MAC_final(ctx.get(), full, &full_length, sizeof(full)) != 1 ||
      full_length < kTagSize) {
    return OpenSslError(absl::StatusCode::kInternal, "HMAC-SM3");
  }
  return std::string(reinterpret_cast<const char*>(full), kTagSize);
}

// The SM2 suite's two keys, Kenc || Kmac, from the wrapped secret.
absl::StatusOr<SecretBytes> Sm2SuiteKeys(const SecretBytes& secret,
                                         std::string_view wrapped_key,
                                         std::string_view recipient_spki) {
  return DeriveKeys("SM3", secret, wrapped_key, recipient_spki,
                    v1::SEAL_ALGORITHM_SM2_SM4CTR_HMACSM3,
                    kSm4KeySize + kMacKeySize);
}

// SM2 public-key encryption (GB/T 32918.4, SM3) of `secret`.
absl::StatusOr<std::string> Sm2Encrypt(EVP_PKEY* recipient,
                                       const SecretBytes& secret) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, recipient, nullptr));
  size_t length = 0;
  if (ctx == nullptr || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_encrypt(ctx.get(), nullptr, &length, secret.data(),
                       secret.size()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "SM2 encryption");
  }
  std::string wrapped(length, '\0');
  if (EVP_PKEY_encrypt(ctx.get(), MutableBytes(wrapped), &length, secret.data(),
                       secret.size()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "SM2 encryption");
  }
  wrapped.resize(length);
  return wrapped;
}

// SM2 decryption of a wrapped secret. Fails unless the SM3 check inside
// the SM2 ciphertext holds and the secret has the right size.
absl::StatusOr<SecretBytes> Sm2Decrypt(EVP_PKEY* own,
                                       std::string_view wrapped) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, own, nullptr));
  size_t length = 0;
  if (ctx == nullptr || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_decrypt(ctx.get(), nullptr, &length, Bytes(wrapped),
                       wrapped.size()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "SM2 decryption");
  }
  SecretBytes secret(length);
  if (EVP_PKEY_decrypt(ctx.get(), secret.data(), &length, Bytes(wrapped),
                       wrapped.size()) != 1 ||
      length != kSm2SecretSize) {
    return OpenSslError(absl::StatusCode::kInternal, "SM2 decryption");
  }
  secret.Shrink(length);
  return secret;
}

// Fills a secret from OpenSSL's CSPRNG.
absl::StatusOr<SecretBytes> RandomSecret(size_t size) {
  SecretBytes secret(size);
  if (RAND_bytes(secret.data(), static_cast<int>(size)) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "RAND_bytes");
  }
  return secret;
}

// The secret in `wrapped`, or a random one if it does not unwrap: the
// payload then fails at the tag like any other alteration, by the same
// path, so neither the error nor the work done tells which part was bad.
absl::StatusOr<SecretBytes> UnwrapOrRandom(EVP_PKEY* own,
                                           std::string_view wrapped) {
  absl::StatusOr<SecretBytes> secret = Sm2Decrypt(own, wrapped);
  if (secret.ok()) return secret;
  ERR_clear_error();
  return RandomSecret(kSm2SecretSize);
}

// ---------------------------------------------------------------------------
// The two constructions

absl::Status SealWithEcdh(EVP_PKEY* recipient, std::string_view recipient_spki,
                          std::string_view plaintext,
                          std::string_view associated_data,
                          v1::SealedPayload* sealed) {
  EvpPkeyPtr ephemeral = GenerateKey(sealed->algorithm());
  if (ephemeral == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal,
                        "generating ephemeral key");
  }
  CASELINK_ASSIGN_OR_RETURN(std::string ephemeral_spki,
                            SpkiDerOf(ephemeral.get()));
  CASELINK_ASSIGN_OR_RETURN(SecretBytes shared,
                            DeriveSharedSecret(ephemeral.get(), recipient));
  CASELINK_ASSIGN_OR_RETURN(
      SecretBytes key,
      DeriveKeys("SHA256", shared, ephemeral_spki, recipient_spki,
                 sealed->algorithm(), kAesKeySize));
  CASELINK_ASSIGN_OR_RETURN(
      *sealed->mutable_ciphertext(),
      GcmSeal(key, sealed->nonce(), associated_data, plaintext));
  sealed->set_ephemeral_public_key(std::move(ephemeral_spki));
  return absl::OkStatus();
}

absl::StatusOr<std::string> OpenWithEcdh(EVP_PKEY* own,
                                         std::string_view own_spki,
                                         const v1::SealedPayload& sealed,
                                         std::string_view associated_data) {
  // A sender's key that does not decode, or is of the wrong kind, is one
  // more way for the payload not to open, not a separate error.
  absl::StatusOr<EvpPkeyPtr> ephemeral =
      ParseSpki(sealed.ephemeral_public_key());
  if (!ephemeral.ok()) return DoesNotOpen();
  absl::StatusOr<v1::SealAlgorithm> kind = AlgorithmOfKey(ephemeral->get());
  if (!kind.ok() || *kind != sealed.algorithm()) return DoesNotOpen();
  absl::StatusOr<SecretBytes> shared =
      DeriveSharedSecret(own, ephemeral->get());
  if (!shared.ok()) return DoesNotOpen();

  // The salt takes the ephemeral key's bytes as sent, so any re-encoding
  // of the same point also changes the key.
  CASELINK_ASSIGN_OR_RETURN(
      SecretBytes key,
      DeriveKeys("SHA256", *shared, sealed.ephemeral_public_key(), own_spki,
                 sealed.algorithm(), kAesKeySize));
  return GcmOpen(key, sealed.nonce(), associated_data, sealed.ciphertext());
}

absl::Status SealWithSm2(EVP_PKEY* recipient, std::string_view recipient_spki,
                         std::string_view plaintext,
                         std::string_view associated_data,
                         v1::SealedPayload* sealed) {
  CASELINK_ASSIGN_OR_RETURN(SecretBytes secret, RandomSecret(kSm2SecretSize));
  CASELINK_ASSIGN_OR_RETURN(std::string wrapped, Sm2Encrypt(recipient, secret));
  CASELINK_ASSIGN_OR_RETURN(SecretBytes keys,
                            Sm2SuiteKeys(secret, wrapped, recipient_spki));
  CASELINK_ASSIGN_OR_RETURN(std::string body,
                            Sm4Ctr(keys, sealed->nonce(), plaintext));
  CASELINK_ASSIGN_OR_RETURN(
      std::string tag,
      Sm2SuiteTag(keys, associated_data, sealed->nonce(), body));
  body += tag;
  sealed->set_ciphertext(std::move(body));
  sealed->set_wrapped_key(std::move(wrapped));
  return absl::OkStatus();
}

absl::StatusOr<std::string> OpenWithSm2(EVP_PKEY* own,
                                        std::string_view own_spki,
                                        const v1::SealedPayload& sealed,
                                        std::string_view associated_data) {
  CASELINK_ASSIGN_OR_RETURN(SecretBytes secret,
                            UnwrapOrRandom(own, sealed.wrapped_key()));
  CASELINK_ASSIGN_OR_RETURN(
      SecretBytes keys, Sm2SuiteKeys(secret, sealed.wrapped_key(), own_spki));

  std::string_view ciphertext = sealed.ciphertext();
  std::string_view body = ciphertext.substr(0, ciphertext.size() - kTagSize);
  CASELINK_ASSIGN_OR_RETURN(
      std::string expected,
      Sm2SuiteTag(keys, associated_data, sealed.nonce(), body));
  if (CRYPTO_memcmp(expected.data(), ciphertext.data() + body.size(),
                    kTagSize) != 0) {
    return DoesNotOpen();
  }
  return Sm4Ctr(keys, sealed.nonce(), body);
}

// The first 8 bytes of a key id in hex, enough to tell keys apart in a
// message.
std::string KeyIdPrefix(std::string_view key_id) {
  return HexEncode(key_id.substr(0, 8));
}

// Open's first kInvalidArgument checks: is `sealed` for `key` at all?
absl::Status CheckSealedTo(const v1::SealedPayload& sealed,
                           const SealingPublicKey& key) {
  v1::SealAlgorithm algorithm = sealed.algorithm();
  if (algorithm == v1::SEAL_ALGORITHM_UNSPECIFIED) {
    return absl::InvalidArgumentError("seal algorithm is unspecified");
  }
  if (!IsEcdh(algorithm) &&
      algorithm != v1::SEAL_ALGORITHM_SM2_SM4CTR_HMACSM3) {
    return absl::InvalidArgumentError(
        Cat("unknown seal algorithm ", static_cast<int>(algorithm)));
  }
  if (algorithm != key.algorithm()) {
    return absl::InvalidArgumentError(
        Cat("payload is sealed with ", AlgorithmName(algorithm),
            ", but this sealing key is for ", AlgorithmName(key.algorithm())));
  }
  if (sealed.recipient_key_id().size() != kKeyIdSize) {
    return absl::InvalidArgumentError(Cat("recipient key id is ",
                                          sealed.recipient_key_id().size(),
                                          " bytes, not ", kKeyIdSize));
  }
  if (sealed.recipient_key_id() != key.KeyId()) {
    return absl::InvalidArgumentError(
        Cat("payload is sealed to key ", KeyIdPrefix(sealed.recipient_key_id()),
            ", not to this sealing key ", KeyIdPrefix(key.KeyId())));
  }
  return absl::OkStatus();
}

// Open's other kInvalidArgument checks: the fields the algorithm needs.
absl::Status CheckSealedFields(const v1::SealedPayload& sealed) {
  v1::SealAlgorithm algorithm = sealed.algorithm();
  if (sealed.nonce().size() != kNonceSize) {
    return absl::InvalidArgumentError(
        Cat("nonce is ", sealed.nonce().size(), " bytes, not ", kNonceSize));
  }
  if (sealed.ciphertext().size() < kTagSize) {
    return absl::InvalidArgumentError(
        Cat("ciphertext is ", sealed.ciphertext().size(),
            " bytes, shorter than its ", kTagSize, "-byte tag"));
  }
  bool ecdh = IsEcdh(algorithm);
  if (sealed.ephemeral_public_key().empty() == ecdh) {
    return absl::InvalidArgumentError(
        Cat(AlgorithmName(algorithm), ecdh ? " needs an ephemeral public key"
                                           : " takes no ephemeral public key"));
  }
  if (sealed.wrapped_key().empty() == !ecdh) {
    return absl::InvalidArgumentError(
        Cat(AlgorithmName(algorithm),
            ecdh ? " takes no wrapped key" : " needs a wrapped key"));
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------
// SealingPublicKey

SealingPublicKey::SealingPublicKey(std::shared_ptr<EVP_PKEY> pkey,
                                   v1::SealAlgorithm algorithm,
                                   std::string spki_der, std::string key_id)
    : pkey_(std::move(pkey)),
      algorithm_(algorithm),
      spki_der_(std::move(spki_der)),
      key_id_(std::move(key_id)) {}

absl::StatusOr<SealingPublicKey> SealingPublicKey::FromSpkiDer(
    std::string_view der) {
  CASELINK_ASSIGN_OR_RETURN(EvpPkeyPtr pkey, ParseSpki(der));
  CASELINK_ASSIGN_OR_RETURN(v1::SealAlgorithm algorithm,
                            AlgorithmOfKey(pkey.get()));
  CASELINK_ASSIGN_OR_RETURN(std::string canonical, SpkiDerOf(pkey.get()));
  CASELINK_ASSIGN_OR_RETURN(std::string key_id,
                            Digest(HashAlgorithm::kSha256, canonical));
  return SealingPublicKey(
      std::shared_ptr<EVP_PKEY>(pkey.release(), EVP_PKEY_free), algorithm,
      std::move(canonical), std::move(key_id));
}

absl::StatusOr<SealingPublicKey> SealingPublicKey::FromPem(
    std::string_view pem) {
  CASELINK_ASSIGN_OR_RETURN(BioPtr bio, ReadBio(pem));
  EvpPkeyPtr pkey(
      PEM_read_bio_PUBKEY(bio.get(), nullptr, RefusePassphrase, nullptr));
  if (pkey == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "no PEM public key");
  }
  CASELINK_ASSIGN_OR_RETURN(std::string der, SpkiDerOf(pkey.get()));
  return FromSpkiDer(der);
}

absl::StatusOr<SealingPublicKey> SealingPublicKey::FromCertificate(
    const Certificate& certificate) {
  // Certificate::public_key() knows only signing keys, so the key is read
  // from the DER here.
  const std::string& der = certificate.der();
  const unsigned char* in = Bytes(der);
  std::unique_ptr<X509, OpenSslFree<X509_free>> x509(
      d2i_X509(nullptr, &in, static_cast<long>(der.size())));
  X509_PUBKEY* key =
      x509 != nullptr ? X509_get_X509_PUBKEY(x509.get()) : nullptr;
  unsigned char* spki = nullptr;
  int length = key != nullptr ? i2d_X509_PUBKEY(key, &spki) : -1;
  if (length <= 0) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "certificate public key");
  }
  std::string spki_der(reinterpret_cast<char*>(spki),
                       static_cast<size_t>(length));
  OPENSSL_free(spki);
  return FromSpkiDer(spki_der);
}

absl::StatusOr<SealingPublicKey> SealingPublicKey::FromCertificatePem(
    std::string_view pem) {
  CASELINK_ASSIGN_OR_RETURN(Certificate certificate, Certificate::FromPem(pem));
  return FromCertificate(certificate);
}

// ---------------------------------------------------------------------------
// SealingPrivateKey

void SealingPrivateKey::PkeyDeleter::operator()(EVP_PKEY* pkey) const {
  EVP_PKEY_free(pkey);
}

SealingPrivateKey::SealingPrivateKey(EVP_PKEY* pkey,
                                     SealingPublicKey public_key)
    : pkey_(pkey), public_key_(std::move(public_key)) {}

absl::StatusOr<SealingPrivateKey> SealingPrivateKey::FromOwnedPkey(
    EVP_PKEY* pkey) {
  EvpPkeyPtr owned(pkey);
  CASELINK_RETURN_IF_ERROR(AlgorithmOfKey(owned.get()).status());
  CASELINK_ASSIGN_OR_RETURN(std::string der, SpkiDerOf(owned.get()));
  CASELINK_ASSIGN_OR_RETURN(SealingPublicKey public_key,
                            SealingPublicKey::FromSpkiDer(der));
  return SealingPrivateKey(owned.release(), std::move(public_key));
}

absl::StatusOr<SealingPrivateKey> SealingPrivateKey::FromPem(
    std::string_view pem) {
  if (pem.find("ENCRYPTED") != std::string_view::npos) {
    return absl::InvalidArgumentError(
        "the PEM private key is encrypted; caselink reads unencrypted keys "
        "from files only their owner can read");
  }
  CASELINK_ASSIGN_OR_RETURN(BioPtr bio, ReadBio(pem));
  EVP_PKEY* pkey =
      PEM_read_bio_PrivateKey(bio.get(), nullptr, RefusePassphrase, nullptr);
  if (pkey == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "no usable PEM private key");
  }
  return FromOwnedPkey(pkey);
}

absl::StatusOr<SealingPrivateKey> SealingPrivateKey::LoadPemFile(
    const std::string& path) {
  CASELINK_ASSIGN_OR_RETURN(std::string pem, ReadPrivateKeyFile(path));
  absl::StatusOr<SealingPrivateKey> key = FromPem(pem);
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!key.ok()) {
    return absl::Status(key.status().code(), Cat("key file ", path, ": ",
                                                 View(key.status().message())));
  }
  return key;
}

absl::StatusOr<SealingPrivateKey> SealingPrivateKey::Generate(
    v1::SealAlgorithm algorithm) {
  if (!IsEcdh(algorithm) &&
      algorithm != v1::SEAL_ALGORITHM_SM2_SM4CTR_HMACSM3) {
    return absl::InvalidArgumentError(
        Cat("cannot generate a sealing key for seal algorithm ",
            static_cast<int>(algorithm)));
  }
  EvpPkeyPtr pkey = GenerateKey(algorithm);
  if (pkey == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal,
                        Cat("generating ", AlgorithmName(algorithm), " key"));
  }
  return FromOwnedPkey(pkey.release());
}

absl::StatusOr<std::string> SealingPrivateKey::ToPem() const {
  if (pkey_ == nullptr) {
    return absl::FailedPreconditionError("sealing key was moved from");
  }
  // Secure memory is cleared when freed, so no copy of the key lingers.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0,
                               nullptr, nullptr) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "writing sealing key");
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : "";
}

// ---------------------------------------------------------------------------
// Sealing and opening

// What one key agreement with a recipient yields, reused by a session.
struct SealingSession::State {
  v1::SealAlgorithm algorithm;
  std::string recipient_key_id;
  // The ephemeral public key (ECDH) or the wrapped secret (SM2).
  std::string ephemeral_spki;
  std::string wrapped_key;
  std::optional<SecretBytes> keys;
};

absl::StatusOr<SealingSession> SealingSession::Start(
    const SealingPublicKey& recipient) {
  if (recipient.pkey_ == nullptr) {
    return absl::FailedPreconditionError("sealing public key was moved from");
  }
  auto state = std::make_shared<State>();
  state->algorithm = recipient.algorithm();
  state->recipient_key_id = recipient.KeyId();
  if (IsEcdh(recipient.algorithm())) {
    EvpPkeyPtr ephemeral = GenerateKey(recipient.algorithm());
    if (ephemeral == nullptr) {
      return OpenSslError(absl::StatusCode::kInternal,
                          "generating ephemeral key");
    }
    CASELINK_ASSIGN_OR_RETURN(state->ephemeral_spki,
                              SpkiDerOf(ephemeral.get()));
    CASELINK_ASSIGN_OR_RETURN(
        SecretBytes shared,
        DeriveSharedSecret(ephemeral.get(), recipient.pkey_.get()));
    CASELINK_ASSIGN_OR_RETURN(
        SecretBytes key,
        DeriveKeys("SHA256", shared, state->ephemeral_spki, recipient.SpkiDer(),
                   recipient.algorithm(), kAesKeySize));
    state->keys.emplace(std::move(key));
  } else {
    CASELINK_ASSIGN_OR_RETURN(SecretBytes secret, RandomSecret(kSm2SecretSize));
    CASELINK_ASSIGN_OR_RETURN(state->wrapped_key,
                              Sm2Encrypt(recipient.pkey_.get(), secret));
    CASELINK_ASSIGN_OR_RETURN(
        SecretBytes keys,
        Sm2SuiteKeys(secret, state->wrapped_key, recipient.SpkiDer()));
    state->keys.emplace(std::move(keys));
  }
  return SealingSession(std::move(state));
}

absl::StatusOr<v1::SealedPayload> SealingSession::Seal(
    std::string_view plaintext, std::string_view associated_data) const {
  if (plaintext.size() > kMaxSealPlaintextSize) {
    return absl::InvalidArgumentError(
        Cat("plaintext of ", plaintext.size(), " bytes is over the ",
            kMaxSealPlaintextSize, "-byte limit for sealing"));
  }
  v1::SealedPayload sealed;
  sealed.set_algorithm(state_->algorithm);
  sealed.set_recipient_key_id(state_->recipient_key_id);
  sealed.set_nonce(RandomBytes(kNonceSize));
  if (IsEcdh(state_->algorithm)) {
    CASELINK_ASSIGN_OR_RETURN(
        *sealed.mutable_ciphertext(),
        GcmSeal(*state_->keys, sealed.nonce(), associated_data, plaintext));
    sealed.set_ephemeral_public_key(state_->ephemeral_spki);
  } else {
    CASELINK_ASSIGN_OR_RETURN(std::string body,
                              Sm4Ctr(*state_->keys, sealed.nonce(), plaintext));
    CASELINK_ASSIGN_OR_RETURN(
        std::string tag,
        Sm2SuiteTag(*state_->keys, associated_data, sealed.nonce(), body));
    body += tag;
    sealed.set_ciphertext(std::move(body));
    sealed.set_wrapped_key(state_->wrapped_key);
  }
  return sealed;
}

absl::StatusOr<v1::SealedPayload> SealingCache::Seal(
    const SealingPublicKey& recipient, std::string_view plaintext,
    std::string_view associated_data) {
  std::shared_ptr<const SealingSession> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(recipient.KeyId());
    const absl::Time now = absl::Now();
    if (it != sessions_.end() && it->second.uses < max_uses_ &&
        now - it->second.started < max_age_) {
      ++it->second.uses;
      session = it->second.session;
    }
  }
  if (session == nullptr) {
    CASELINK_ASSIGN_OR_RETURN(SealingSession fresh,
                              SealingSession::Start(recipient));
    session = std::make_shared<const SealingSession>(std::move(fresh));
    absl::MutexLock lock(&mu_);
    if (sessions_.size() > 4096) sessions_.clear();
    sessions_.insert_or_assign(recipient.KeyId(),
                               Entry{session, absl::Now(), 1});
  }
  return session->Seal(plaintext, associated_data);
}

absl::StatusOr<v1::SealedPayload> Seal(const SealingPublicKey& recipient,
                                       std::string_view plaintext,
                                       std::string_view associated_data) {
  if (recipient.pkey_ == nullptr) {
    return absl::FailedPreconditionError("sealing public key was moved from");
  }
  if (plaintext.size() > kMaxSealPlaintextSize) {
    return absl::InvalidArgumentError(
        Cat("plaintext of ", plaintext.size(), " bytes is over the ",
            kMaxSealPlaintextSize, "-byte limit for sealing"));
  }
  v1::SealedPayload sealed;
  sealed.set_algorithm(recipient.algorithm());
  sealed.set_recipient_key_id(recipient.KeyId());
  sealed.set_nonce(RandomBytes(kNonceSize));
  if (IsEcdh(recipient.algorithm())) {
    CASELINK_RETURN_IF_ERROR(SealWithEcdh(recipient.pkey_.get(),
                                          recipient.SpkiDer(), plaintext,
                                          associated_data, &sealed));
  } else {
    CASELINK_RETURN_IF_ERROR(SealWithSm2(recipient.pkey_.get(),
                                         recipient.SpkiDer(), plaintext,
                                         associated_data, &sealed));
  }
  return sealed;
}

absl::StatusOr<std::string> Open(const SealingPrivateKey& key,
                                 const v1::SealedPayload& sealed,
                                 std::string_view associated_data) {
  if (key.pkey_ == nullptr) {
    return absl::FailedPreconditionError("sealing key was moved from");
  }
  CASELINK_RETURN_IF_ERROR(CheckSealedTo(sealed, key.public_key()));
  CASELINK_RETURN_IF_ERROR(CheckSealedFields(sealed));
  if (IsEcdh(sealed.algorithm())) {
    return OpenWithEcdh(key.pkey_.get(), key.public_key().SpkiDer(), sealed,
                        associated_data);
  }
  return OpenWithSm2(key.pkey_.get(), key.public_key().SpkiDer(), sealed,
                     associated_data);
}

std::string SealAssociatedData(std::string_view message_id,
                               std::string_view sender,
                               std::string_view recipient) {
  std::string out;
  out.reserve(24 + message_id.size() + sender.size() + recipient.size());
  for (std::string_view field : {message_id, sender, recipient}) {
    uint64_t size = field.size();
    for (int shift = 56; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((size >> shift) & 0xff));
    }
    out.append(field);
  }
  return out;
}

}  // namespace caselink
