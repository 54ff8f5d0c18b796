#include "core/crypto.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

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
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OpenSslFree<ECDSA_SIG_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpenSslFree<EVP_MD_CTX_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY_free>>;
using GeneralNamesPtr =
    std::unique_ptr<GENERAL_NAMES, OpenSslFree<GENERAL_NAMES_free>>;
using OctetStringPtr =
    std::unique_ptr<ASN1_OCTET_STRING, OpenSslFree<ASN1_OCTET_STRING_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslFree<X509_free>>;
using X509StoreCtxPtr =
    std::unique_ptr<X509_STORE_CTX, OpenSslFree<X509_STORE_CTX_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpenSslFree<X509_STORE_free>>;

// Frees a stack of certificates together with the certificates.
struct X509StackFree {
  void operator()(STACK_OF(X509) * stack) const {
    sk_X509_pop_free(stack, X509_free);
  }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackFree>;

// Key and certificate files are small; anything bigger is a mistake.
constexpr off_t kMaxPemFileSize = 1 << 20;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* MutableBytes(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

// Empties this thread's OpenSSL error queue into one line. Draining matters
// beyond the message: errors left behind would be blamed on the next,
// unrelated OpenSSL call in this thread (gRPC's TLS, for one).
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

// Debian builds abseil with its own string_view type, to which
// std::string_view does not convert by itself.
absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

absl::Status OpenSslError(absl::StatusCode code, absl::string_view what) {
  return absl::Status(code, absl::StrCat(what, ": ", DrainOpenSslErrors()));
}

// Prefixes a status message, keeping the code.
absl::Status Annotate(const absl::Status& status, absl::string_view prefix) {
  return absl::Status(status.code(),
                      absl::StrCat(prefix, ": ", status.message()));
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

// Copies out everything written to a memory BIO.
std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : "";
}

// PEM passphrase callback that declines. Without it OpenSSL would prompt
// on the terminal for an encrypted key, hanging a daemon.
int RefusePassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/,
                     void* /*userdata*/) {
  return -1;
}

std::string OctalMode(mode_t mode) {
  std::string out = "0";
  for (int shift = 6; shift >= 0; shift -= 3) {
    out.push_back(static_cast<char>('0' + ((mode >> shift) & 7)));
  }
  return out;
}

// Closes a file descriptor on scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  ~FdCloser() { close(fd_); }

 private:
  int fd_;
};

// Refuses a private key file that anyone but its owner may read or write.
absl::Status CheckPrivateMode(const std::string& path, mode_t mode) {
  if ((mode & 077) == 0) return absl::OkStatus();
  const char* access =
      (mode & 044) != 0 ? "readable by other users" : "writable by other users";
  return absl::FailedPreconditionError(
      absl::StrCat("key file ", path, " is ", access, " (mode ",
                   OctalMode(mode & 07777), "); chmod 600 it"));
}

// Reads a small file whole. `what` names it in errors ("key file"). With
// `owner_only`, the file must also pass CheckPrivateMode; the mode is read
// from the open descriptor so the check and the read see the same file.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                          absl::string_view what,
                                          bool owner_only) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("cannot open ", what, " ", path));
  }
  FdCloser closer(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("cannot stat ", what, " ", path));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", path, " is not a regular file"));
  }
  if (owner_only) CASELINK_RETURN_IF_ERROR(CheckPrivateMode(path, st.st_mode));
  if (st.st_size > kMaxPemFileSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " ", path, " is ", st.st_size, " bytes; too large for PEM"));
  }

  // Sized once, so a key is never left behind in a reallocated buffer.
  std::string contents(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = read(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      OPENSSL_cleanse(contents.data(), contents.size());
      return absl::ErrnoToStatus(error,
                                 absl::StrCat("cannot read ", what, " ", path));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  contents.resize(done);
  return contents;
}

const EVP_MD* MessageDigestOf(HashAlgorithm algorithm) {
  // Fetched once from the default provider: OpenSSL 3 otherwise looks the
  // algorithm up again at every digest it starts, which costs more than
  // hashing a short Merkle node. Never freed.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  static EVP_MD* const sm3 = EVP_MD_fetch(nullptr, "SM3", nullptr);
  switch (algorithm) {
    case HashAlgorithm::kSha256:
      return sha256;
    case HashAlgorithm::kSm3:
      return sm3;
  }
  return nullptr;
}

// Works out which caselink scheme an OpenSSL key belongs to. OpenSSL 3.0
// decodes keys on the SM2 curve (from PKCS#8, SPKI or a certificate) as key
// type "SM2", not "EC"; EVP_PKEY_get_id() is -1 for them, so only
// EVP_PKEY_is_a() tells them apart.
absl::StatusOr<SignatureScheme> SchemeOfKey(EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "ED25519")) return SignatureScheme::kEd25519;
  if (EVP_PKEY_is_a(pkey, "SM2")) return SignatureScheme::kSm2Sm3;
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[64];
    size_t length = 0;
    if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &length) != 1) {
      return OpenSslError(absl::StatusCode::kInvalidArgument,
                          "EC key without a named curve");
    }
    absl::string_view name(group, length);
    if (name == "prime256v1" || name == "P-256") {
      return SignatureScheme::kEcdsaP256Sha256;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported EC curve ", name,
                     "; caselink keys are P-256, SM2 or Ed25519"));
  }
  const char* type = EVP_PKEY_get0_type_name(pkey);
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported key type ", type != nullptr ? type : "unknown",
                   "; caselink keys are P-256, SM2 or Ed25519"));
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

// Sets up `ctx` to sign or verify with `scheme`. Ed25519 takes no digest;
// SM2 gets its signer id here, at init, because OpenSSL 3.0 otherwise
// hashes an empty id into Z (only OpenSSL 4.0 defaults to the standard one).
absl::Status InitSignatureContext(EVP_MD_CTX* ctx, EVP_PKEY* pkey,
                                  SignatureScheme scheme, bool sign) {
  const char* digest = nullptr;
  OSSL_PARAM params[2] = {OSSL_PARAM_construct_end(),
                          OSSL_PARAM_construct_end()};
  switch (scheme) {
    case SignatureScheme::kEcdsaP256Sha256:
      digest = "SHA256";
      break;
    case SignatureScheme::kEd25519:
      break;
    case SignatureScheme::kSm2Sm3:
      digest = "SM3";
      // OpenSSL only reads the id; the parameter type lacks const.
      params[0] = OSSL_PARAM_construct_octet_string(
          OSSL_PKEY_PARAM_DIST_ID, const_cast<char*>(kSm2DefaultId.data()),
          kSm2DefaultId.size());
      break;
  }
  int rc = sign ? EVP_DigestSignInit_ex(ctx, nullptr, digest, nullptr, nullptr,
                                        pkey, params)
                : EVP_DigestVerifyInit_ex(ctx, nullptr, digest, nullptr,
                                          nullptr, pkey, params);
  if (rc != 1) {
    return OpenSslError(
        absl::StatusCode::kInternal,
        absl::StrCat("setting up ", AsAbsl(SignatureSchemeName(scheme)),
                     sign ? " signing" : " verification"));
  }
  return absl::OkStatus();
}

// Rejects signatures that cannot be valid for `scheme` whatever the key,
// so that "malformed" and "does not verify" stay distinct errors.
absl::Status CheckSignatureForm(SignatureScheme scheme,
                                std::string_view signature) {
  absl::string_view name = AsAbsl(SignatureSchemeName(scheme));
  if (scheme == SignatureScheme::kEd25519) {
    if (signature.size() == 64) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        name, " signature is ", signature.size(), " bytes, not 64"));
  }

  // ECDSA and SM2: a strict DER ECDSA-Sig-Value and nothing after it.
  const unsigned char* in = Bytes(signature);
  EcdsaSigPtr parsed;
  if (signature.size() <= 256) {
    parsed.reset(
        d2i_ECDSA_SIG(nullptr, &in, static_cast<long>(signature.size())));
  }
  bool strict = false;
  if (parsed != nullptr && in == Bytes(signature) + signature.size()) {
    unsigned char* again = nullptr;
    int length = i2d_ECDSA_SIG(parsed.get(), &again);
    strict = length > 0 && static_cast<size_t>(length) == signature.size() &&
             std::equal(again, again + length, Bytes(signature));
    OPENSSL_free(again);
  }
  ERR_clear_error();
  if (strict) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(name, " signature is not a DER ECDSA-Sig-Value"));
}

absl::Time Asn1TimeToAbsl(const ASN1_TIME* time) {
  struct tm parts = {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) {
    ERR_clear_error();
    return absl::InfinitePast();
  }
  return absl::FromTM(parts, absl::UTCTimeZone());
}

// RFC 2253, but with UTF-8 left as is so Chinese names stay readable.
std::string NameToString(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      X509_NAME_print_ex(bio.get(), name, 0,
                         XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    ERR_clear_error();
    return "(unprintable name)";
  }
  return BioContents(bio.get());
}

// A reference to `cert` ready for path validation. GM/T 0015 CAs sign with
// the default SM2 id; OpenSSL 3.0 verifies a certificate's signature with
// the id stored on that X509 object, empty unless set. The id is set on a
// private copy because the caller's certificate may be shared by threads.
absl::StatusOr<X509Ptr> PrepareForVerification(X509* cert) {
  if (X509_get_signature_nid(cert) != NID_SM2_with_SM3) {
    if (X509_up_ref(cert) != 1) {
      return OpenSslError(absl::StatusCode::kInternal, "X509_up_ref");
    }
    return X509Ptr(cert);
  }
  X509Ptr copy(X509_dup(cert));
  OctetStringPtr id(ASN1_OCTET_STRING_new());
  if (copy == nullptr || id == nullptr ||
      ASN1_OCTET_STRING_set(id.get(), Bytes(kSm2DefaultId),
                            static_cast<int>(kSm2DefaultId.size())) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "copying certificate");
  }
  X509_set0_distinguishing_id(copy.get(), id.release());
  return copy;
}

std::string DescribeChainFailure(const std::string& subject,
                                 X509_STORE_CTX* ctx, absl::Time at) {
  int error = X509_STORE_CTX_get_error(ctx);
  int depth = X509_STORE_CTX_get_error_depth(ctx);
  X509* failed = X509_STORE_CTX_get_current_cert(ctx);
  std::string reason = X509_verify_cert_error_string(error);
  if (depth > 0 && failed != nullptr) {
    absl::StrAppend(&reason, " (at ",
                    NameToString(X509_get_subject_name(failed)), ")");
  }
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return absl::StrCat(
          "certificate ", subject, " is not valid at ",
          absl::FormatTime(absl::RFC3339_sec, at, absl::UTCTimeZone()), ": ",
          reason);
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return absl::StrCat("certificate ", subject,
                          " is not signed by a trusted CA: ", reason);
    default:
      return absl::StrCat("certificate ", subject,
                          " failed chain verification: ", reason);
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Hashing

std::string_view HashAlgorithmName(HashAlgorithm algorithm) {
  switch (algorithm) {
    case HashAlgorithm::kSha256:
      return "sha256";
    case HashAlgorithm::kSm3:
      return "sm3";
  }
  return "unknown";
}

absl::StatusOr<std::string> Digest(HashAlgorithm algorithm,
                                   std::string_view data) {
  const EVP_MD* md = MessageDigestOf(algorithm);
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int length = 0;
  if (md == nullptr || EVP_Digest(data.data(), data.size(), MutableBytes(out),
                                  &length, md, nullptr) != 1) {
    return OpenSslError(
        absl::StatusCode::kInternal,
        absl::StrCat(AsAbsl(HashAlgorithmName(algorithm)), " digest"));
  }
  out.resize(length);
  return out;
}

void Hasher::CtxDeleter::operator()(EVP_MD_CTX* ctx) const {
  EVP_MD_CTX_free(ctx);
}

Hasher::Hasher(HashAlgorithm algorithm, const EVP_MD* md, EVP_MD_CTX* ctx)
    : algorithm_(algorithm), md_(md), ctx_(ctx) {}

absl::StatusOr<Hasher> Hasher::Create(HashAlgorithm algorithm) {
  const EVP_MD* md = MessageDigestOf(algorithm);
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (md == nullptr || ctx == nullptr ||
      EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) {
    return OpenSslError(
        absl::StatusCode::kInternal,
        absl::StrCat(AsAbsl(HashAlgorithmName(algorithm)), " hasher"));
  }
  return Hasher(algorithm, md, ctx.release());
}

void Hasher::Update(std::string_view data) {
  if (failed_ || ctx_ == nullptr) {
    failed_ = true;
    return;
  }
  if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1) {
    failed_ = true;
  }
}

absl::StatusOr<std::string> Hasher::Finish() {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int length = 0;
  bool ok = !failed_ && ctx_ != nullptr &&
            EVP_DigestFinal_ex(ctx_.get(), MutableBytes(out), &length) == 1;
  // Start over whatever happened, so the hasher stays usable.
  failed_ = ctx_ == nullptr || EVP_DigestInit_ex(ctx_.get(), md_, nullptr) != 1;
  if (!ok) {
    return OpenSslError(
        absl::StatusCode::kInternal,
        absl::StrCat(AsAbsl(HashAlgorithmName(algorithm_)), " digest"));
  }
  out.resize(length);
  return out;
}

// ---------------------------------------------------------------------------
// Signature schemes

HashAlgorithm HashAlgorithmOf(SignatureScheme scheme) {
  return scheme == SignatureScheme::kSm2Sm3 ? HashAlgorithm::kSm3
                                            : HashAlgorithm::kSha256;
}

int SignatureSchemeToProto(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kEcdsaP256Sha256:
      return 1;
    case SignatureScheme::kEd25519:
      return 2;
    case SignatureScheme::kSm2Sm3:
      return 3;
  }
  return 0;
}

absl::StatusOr<SignatureScheme> SignatureSchemeFromProto(int value) {
  switch (value) {
    case 1:
      return SignatureScheme::kEcdsaP256Sha256;
    case 2:
      return SignatureScheme::kEd25519;
    case 3:
      return SignatureScheme::kSm2Sm3;
    case 0:
      return absl::InvalidArgumentError("signature algorithm is unspecified");
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown signature algorithm ", value));
  }
}

std::string_view SignatureSchemeName(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kEcdsaP256Sha256:
      return "ecdsa-p256";
    case SignatureScheme::kEd25519:
      return "ed25519";
    case SignatureScheme::kSm2Sm3:
      return "sm2";
  }
  return "unknown";
}

absl::StatusOr<SignatureScheme> ParseSignatureScheme(std::string_view name) {
  for (SignatureScheme scheme :
       {SignatureScheme::kEcdsaP256Sha256, SignatureScheme::kEd25519,
        SignatureScheme::kSm2Sm3}) {
    if (name == SignatureSchemeName(scheme)) return scheme;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown signature scheme \"", AsAbsl(name),
                   "\"; expected \"ecdsa-p256\", \"ed25519\" or \"sm2\""));
}

// ---------------------------------------------------------------------------
// PublicKey

PublicKey::PublicKey(std::shared_ptr<EVP_PKEY> pkey, SignatureScheme scheme,
                     std::string spki_der, std::string key_id)
    : pkey_(std::move(pkey)),
      scheme_(scheme),
      spki_der_(std::move(spki_der)),
      key_id_(std::move(key_id)) {}

absl::StatusOr<PublicKey> PublicKey::FromSpkiDer(std::string_view der) {
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
  CASELINK_ASSIGN_OR_RETURN(SignatureScheme scheme, SchemeOfKey(pkey.get()));

  // The key id hashes the canonical re-encoding, so equal keys get equal ids
  // however their bytes arrived.
  CASELINK_ASSIGN_OR_RETURN(std::string canonical, SpkiDerOf(pkey.get()));
  CASELINK_ASSIGN_OR_RETURN(std::string key_id,
                            Digest(HashAlgorithm::kSha256, canonical));
  return PublicKey(std::shared_ptr<EVP_PKEY>(pkey.release(), EVP_PKEY_free),
                   scheme, std::move(canonical), std::move(key_id));
}

absl::StatusOr<PublicKey> PublicKey::FromPem(std::string_view pem) {
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

absl::Status PublicKey::Verify(std::string_view message,
                               std::string_view signature) const {
  if (pkey_ == nullptr) {
    return absl::FailedPreconditionError("public key was moved from");
  }
  CASELINK_RETURN_IF_ERROR(CheckSignatureForm(scheme_, signature));
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal, "EVP_MD_CTX_new");
  }
  CASELINK_RETURN_IF_ERROR(
      InitSignatureContext(ctx.get(), pkey_.get(), scheme_, /*sign=*/false));
  int rc = EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(),
                            Bytes(message), message.size());
  if (rc == 1) return absl::OkStatus();

  // OpenSSL's detail for a bad signature says nothing more than this does.
  ERR_clear_error();
  return absl::UnauthenticatedError(
      absl::StrCat(AsAbsl(SignatureSchemeName(scheme_)),
                   " signature does not verify under key ",
                   HexEncode(std::string_view(key_id_).substr(0, 8))));
}

// ---------------------------------------------------------------------------
// PrivateKey

void PrivateKey::PkeyDeleter::operator()(EVP_PKEY* pkey) const {
  EVP_PKEY_free(pkey);
}

PrivateKey::PrivateKey(EVP_PKEY* pkey, PublicKey public_key)
    : pkey_(pkey), public_key_(std::move(public_key)) {}

absl::StatusOr<PrivateKey> PrivateKey::FromOwnedPkey(EVP_PKEY* pkey) {
  EvpPkeyPtr owned(pkey);
  CASELINK_RETURN_IF_ERROR(SchemeOfKey(owned.get()).status());
  CASELINK_ASSIGN_OR_RETURN(std::string der, SpkiDerOf(owned.get()));
  CASELINK_ASSIGN_OR_RETURN(PublicKey public_key, PublicKey::FromSpkiDer(der));
  return PrivateKey(owned.release(), std::move(public_key));
}

absl::StatusOr<PrivateKey> PrivateKey::FromPem(std::string_view pem) {
  if (absl::StrContains(AsAbsl(pem), "ENCRYPTED")) {
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

absl::StatusOr<PrivateKey> PrivateKey::LoadPemFile(const std::string& path) {
  CASELINK_ASSIGN_OR_RETURN(std::string pem,
                            ReadSmallFile(path, "key file", true));
  absl::StatusOr<PrivateKey> key = FromPem(pem);
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!key.ok()) return Annotate(key.status(), absl::StrCat("key file ", path));
  return key;
}

absl::StatusOr<PrivateKey> PrivateKey::Generate(SignatureScheme scheme) {
  EVP_PKEY* pkey = nullptr;
  switch (scheme) {
    case SignatureScheme::kEcdsaP256Sha256: {
      char curve[] = "P-256";
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve);
      break;
    }
    case SignatureScheme::kEd25519:
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
    case SignatureScheme::kSm2Sm3:
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "SM2");
      break;
  }
  if (pkey == nullptr) {
    return OpenSslError(
        absl::StatusCode::kInternal,
        absl::StrCat("generating ", AsAbsl(SignatureSchemeName(scheme)),
                     " key"));
  }
  return FromOwnedPkey(pkey);
}

absl::StatusOr<std::string> PrivateKey::Sign(std::string_view message) const {
  if (pkey_ == nullptr) {
    return absl::FailedPreconditionError("private key was moved from");
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal, "EVP_MD_CTX_new");
  }
  CASELINK_RETURN_IF_ERROR(
      InitSignatureContext(ctx.get(), pkey_.get(), scheme(), /*sign=*/true));

  // EVP_PKEY_get_size is the largest signature the key can make; DER
  // signatures usually come out a byte or two shorter.
  int max_size = EVP_PKEY_get_size(pkey_.get());
  if (max_size <= 0) {
    return OpenSslError(absl::StatusCode::kInternal, "signature size");
  }
  std::string signature(static_cast<size_t>(max_size), '\0');
  size_t length = signature.size();
  if (EVP_DigestSign(ctx.get(), MutableBytes(signature), &length,
                     Bytes(message), message.size()) != 1) {
    return OpenSslError(
        absl::StatusCode::kInternal,
        absl::StrCat(AsAbsl(SignatureSchemeName(scheme())), " signing"));
  }
  signature.resize(length);
  return signature;
}

absl::StatusOr<std::string> PrivateKey::ToPem() const {
  if (pkey_ == nullptr) {
    return absl::FailedPreconditionError("private key was moved from");
  }
  // Secure memory is cleared when freed, so no copy of the key lingers.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0,
                               nullptr, nullptr) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "writing private key");
  }
  return BioContents(bio.get());
}

// ---------------------------------------------------------------------------
// Certificate

void Certificate::X509Deleter::operator()(X509* x509) const { X509_free(x509); }

Certificate::Certificate(std::shared_ptr<X509> x509, std::string der,
                         std::string fingerprint, absl::Time not_before,
                         absl::Time not_after)
    : x509_(std::move(x509)),
      der_(std::move(der)),
      fingerprint_(std::move(fingerprint)),
      not_before_(not_before),
      not_after_(not_after) {}

absl::StatusOr<Certificate> Certificate::FromOwnedX509(X509* x509) {
  std::unique_ptr<X509, X509Deleter> owned(x509);
  int length = i2d_X509(owned.get(), nullptr);
  if (length <= 0) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "encoding certificate");
  }
  std::string der(static_cast<size_t>(length), '\0');
  unsigned char* out = MutableBytes(der);
  if (i2d_X509(owned.get(), &out) != length) {
    return OpenSslError(absl::StatusCode::kInternal, "encoding certificate");
  }
  CASELINK_ASSIGN_OR_RETURN(std::string fingerprint,
                            Digest(HashAlgorithm::kSha256, der));
  absl::Time not_before = Asn1TimeToAbsl(X509_get0_notBefore(owned.get()));
  absl::Time not_after = Asn1TimeToAbsl(X509_get0_notAfter(owned.get()));
  return Certificate(std::shared_ptr<X509>(std::move(owned)), std::move(der),
                     std::move(fingerprint), not_before, not_after);
}

absl::StatusOr<std::vector<Certificate>> Certificate::AllFromPem(
    std::string_view pem) {
  CASELINK_ASSIGN_OR_RETURN(BioPtr bio, ReadBio(pem));
  std::vector<Certificate> certificates;
  while (true) {
    X509* x509 =
        PEM_read_bio_X509(bio.get(), nullptr, RefusePassphrase, nullptr);
    if (x509 == nullptr) {
      // Running out of PEM blocks is how a good bundle ends.
      unsigned long error = ERR_peek_last_error();
      if (ERR_GET_LIB(error) == ERR_LIB_PEM &&
          ERR_GET_REASON(error) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        if (!certificates.empty()) break;
        return absl::InvalidArgumentError("no PEM CERTIFICATE block");
      }
      return OpenSslError(
          absl::StatusCode::kInvalidArgument,
          absl::StrCat("PEM certificate ", certificates.size() + 1));
    }
    CASELINK_ASSIGN_OR_RETURN(Certificate certificate, FromOwnedX509(x509));
    certificates.push_back(std::move(certificate));
  }
  return certificates;
}

absl::StatusOr<Certificate> Certificate::FromPem(std::string_view pem) {
  CASELINK_ASSIGN_OR_RETURN(BioPtr bio, ReadBio(pem));
  X509* x509 = PEM_read_bio_X509(bio.get(), nullptr, RefusePassphrase, nullptr);
  if (x509 == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "no PEM certificate");
  }
  return FromOwnedX509(x509);
}

absl::StatusOr<Certificate> Certificate::FromDer(std::string_view der) {
  if (der.size() > static_cast<size_t>(LONG_MAX)) {
    return absl::InvalidArgumentError("certificate too large");
  }
  const unsigned char* in = Bytes(der);
  X509* x509 = d2i_X509(nullptr, &in, static_cast<long>(der.size()));
  if (x509 == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "not a DER certificate");
  }
  if (in != Bytes(der) + der.size()) {
    X509_free(x509);
    return absl::InvalidArgumentError("trailing bytes after the certificate");
  }
  return FromOwnedX509(x509);
}

absl::StatusOr<Certificate> Certificate::LoadPemFile(const std::string& path) {
  CASELINK_ASSIGN_OR_RETURN(std::string pem,
                            ReadSmallFile(path, "certificate file", false));
  absl::StatusOr<Certificate> certificate = FromPem(pem);
  if (!certificate.ok()) {
    return Annotate(certificate.status(),
                    absl::StrCat("certificate file ", path));
  }
  return certificate;
}

std::string Certificate::ToPem() const {
  std::string base64(4 * ((der_.size() + 2) / 3) + 1, '\0');
  int length = EVP_EncodeBlock(MutableBytes(base64), Bytes(der_),
                               static_cast<int>(der_.size()));
  base64.resize(static_cast<size_t>(length));
  std::string pem = "-----BEGIN CERTIFICATE-----\n";
  for (size_t i = 0; i < base64.size(); i += 64) {
    absl::StrAppend(&pem, absl::string_view(base64).substr(i, 64), "\n");
  }
  pem += "-----END CERTIFICATE-----\n";
  return pem;
}

absl::StatusOr<PublicKey> Certificate::public_key() const {
  X509_PUBKEY* key = X509_get_X509_PUBKEY(x509_.get());
  unsigned char* der = nullptr;
  int length = key != nullptr ? i2d_X509_PUBKEY(key, &der) : -1;
  if (length <= 0) {
    return OpenSslError(absl::StatusCode::kInvalidArgument,
                        "certificate public key");
  }
  std::string spki(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return PublicKey::FromSpkiDer(spki);
}

std::vector<std::string> Certificate::uri_sans() const {
  std::vector<std::string> uris;
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(x509_.get(), NID_subject_alt_name, nullptr, nullptr)));
  ERR_clear_error();
  if (names == nullptr) return uris;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  return uris;
}

std::string Certificate::common_name() const {
  const X509_NAME* name = X509_get_subject_name(x509_.get());
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return "";
  ASN1_STRING* value =
      X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, value);
  if (length < 0) {
    ERR_clear_error();
    return "";
  }
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return out;
}

std::string Certificate::subject() const {
  return NameToString(X509_get_subject_name(x509_.get()));
}

// ---------------------------------------------------------------------------
// TrustStore

TrustStore::TrustStore(std::shared_ptr<X509_STORE> store, size_t size)
    : store_(std::move(store)), size_(size) {}

absl::StatusOr<TrustStore> TrustStore::FromCertificates(
    const std::vector<Certificate>& cas) {
  if (cas.empty()) {
    return absl::InvalidArgumentError("a trust store needs at least one CA");
  }
  X509StorePtr store(X509_STORE_new());
  if (store == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal, "X509_STORE_new");
  }
  for (const Certificate& ca : cas) {
    // A CA in the bundle may itself be signed by another one in it.
    CASELINK_ASSIGN_OR_RETURN(X509Ptr prepared,
                              PrepareForVerification(ca.x509_.get()));
    if (X509_STORE_add_cert(store.get(), prepared.get()) != 1) {
      return OpenSslError(absl::StatusCode::kInternal,
                          absl::StrCat("adding CA ", ca.subject()));
    }
  }
  return TrustStore(
      std::shared_ptr<X509_STORE>(store.release(), X509_STORE_free),
      cas.size());
}

absl::StatusOr<TrustStore> TrustStore::FromPem(std::string_view bundle) {
  CASELINK_ASSIGN_OR_RETURN(std::vector<Certificate> cas,
                            Certificate::AllFromPem(bundle));
  return FromCertificates(cas);
}

absl::StatusOr<TrustStore> TrustStore::LoadPemFile(const std::string& path) {
  CASELINK_ASSIGN_OR_RETURN(std::string pem,
                            ReadSmallFile(path, "CA bundle", false));
  absl::StatusOr<TrustStore> store = FromPem(pem);
  if (!store.ok()) {
    return Annotate(store.status(), absl::StrCat("CA bundle ", path));
  }
  return store;
}

absl::Status TrustStore::VerifyChain(
    const Certificate& leaf, const std::vector<Certificate>& intermediates,
    absl::Time at) const {
  CASELINK_ASSIGN_OR_RETURN(X509Ptr subject,
                            PrepareForVerification(leaf.x509_.get()));
  X509StackPtr untrusted(sk_X509_new_null());
  if (untrusted == nullptr) {
    return OpenSslError(absl::StatusCode::kInternal, "sk_X509_new_null");
  }
  for (const Certificate& intermediate : intermediates) {
    CASELINK_ASSIGN_OR_RETURN(X509Ptr prepared,
                              PrepareForVerification(intermediate.x509_.get()));
    if (sk_X509_push(untrusted.get(), prepared.get()) <= 0) {
      return OpenSslError(absl::StatusCode::kInternal, "sk_X509_push");
    }
    prepared.release();  // Now owned by the stack.
  }

  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (ctx == nullptr ||
      X509_STORE_CTX_init(ctx.get(), store_.get(), subject.get(),
                          untrusted.get()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "X509_STORE_CTX_init");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(at));
  int rc = X509_verify_cert(ctx.get());
  if (rc == 1) return absl::OkStatus();
  if (rc < 0) {
    return OpenSslError(absl::StatusCode::kInternal, "X509_verify_cert");
  }
  ERR_clear_error();
  return absl::UnauthenticatedError(
      DescribeChainFailure(leaf.subject(), ctx.get(), at));
}

// ---------------------------------------------------------------------------
// Bytes

absl::StatusOr<std::string> ReadPrivateKeyFile(const std::string& path) {
  return ReadSmallFile(path, "key file", /*owner_only=*/true);
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  size_t done = 0;
  while (done < n) {
    int chunk = static_cast<int>(std::min<size_t>(n - done, 1 << 20));
    if (RAND_bytes(MutableBytes(out) + done, chunk) != 1) {
      std::fprintf(stderr, "caselink: RAND_bytes failed: %s\n",
                   DrainOpenSslErrors().c_str());
      std::abort();
    }
    done += static_cast<size_t>(chunk);
  }
  return out;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char byte : bytes) {
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0xf]);
  }
  return out;
}

absl::StatusOr<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("hex string has odd length ", hex.size()));
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int high = nibble(hex[i]);
    int low = nibble(hex[i + 1]);
    if (high < 0 || low < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("not a hex digit at offset ", high < 0 ? i : i + 1));
    }
    out.push_back(static_cast<char>((high << 4) | low));
  }
  return out;
}

}  // namespace caselink
