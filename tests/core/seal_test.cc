#include "core/seal.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "caselink/v1/envelope.pb.h"
#include "core/crypto.h"
#include "core/strings.h"
#include "gtest/gtest.h"

namespace caselink {
namespace {

using v1::SealAlgorithm;
using v1::SealedPayload;

constexpr SealAlgorithm kP256 = v1::SEAL_ALGORITHM_P256_HKDF_SHA256_AES256GCM;
constexpr SealAlgorithm kX25519 =
    v1::SEAL_ALGORITHM_X25519_HKDF_SHA256_AES256GCM;
constexpr SealAlgorithm kSm2 = v1::SEAL_ALGORITHM_SM2_SM4CTR_HMACSM3;

constexpr std::string_view kDoesNotOpen = "sealed payload does not open: ";

// Test-side OpenSSL ownership, independent of the library's own.
struct PkeyFree {
  void operator()(EVP_PKEY* pkey) const { EVP_PKEY_free(pkey); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct X509Free {
  void operator()(X509* x509) const { X509_free(x509); }
};
using X509Owned = std::unique_ptr<X509, X509Free>;
struct BioFree {
  void operator()(BIO* bio) const { BIO_free_all(bio); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

template <typename T>
T Unwrap(absl::StatusOr<T> value) {
  if (!value.ok()) {
    ADD_FAILURE() << value.status();
    std::abort();
  }
  return *std::move(value);
}

::testing::AssertionResult Contains(std::string_view text,
                                    std::string_view part) {
  if (text.find(part) != std::string_view::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "\"" << text << "\" does not contain \"" << part << "\"";
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string FlipBit(std::string bytes, size_t bit) {
  bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
  return bytes;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

Pkey NewEcKey(const char* curve_name) {
  std::string curve = curve_name;
  return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve.data()));
}

Pkey ParseSpki(const std::string& der) {
  const unsigned char* in = Bytes(der);
  return Pkey(d2i_PUBKEY(nullptr, &in, static_cast<long>(der.size())));
}

Pkey ParsePrivatePem(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

std::string PublicPem(const std::string& spki_der) {
  Pkey pkey = ParseSpki(spki_der);
  Bio bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PUBKEY(bio.get(), pkey.get()), 1);
  return BioText(bio.get());
}

std::string PrivatePem(EVP_PKEY* pkey) {
  Bio bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), pkey, nullptr, nullptr, 0,
                                     nullptr, nullptr),
            1);
  return BioText(bio.get());
}

// A certificate for the key `subject_spki`, signed by `issuer_key`: the
// subject's own private key for a self-signed certificate, or a CA's.
std::string CertificatePem(const std::string& subject_spki,
                           EVP_PKEY* issuer_key) {
  Pkey subject = ParseSpki(subject_spki);
  X509Owned cert(X509_new());
  X509_NAME* name = X509_get_subject_name(cert.get());
  bool built =
      subject != nullptr && X509_set_version(cert.get(), X509_VERSION_3) &&
      ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7) &&
      X509_NAME_add_entry_by_txt(
          name, "CN", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(
              "\xe4\xb8\x8a\xe6\xb5\xb7\xe5\xb8\x82"  // Shanghai
              "\xe5\x8f\xb8\xe6\xb3\x95\xe5\xb1\x80"  // Justice Bureau
              " sealing"),
          -1, -1, 0) &&
      X509_set_issuer_name(cert.get(), name) &&
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) != nullptr &&
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600) != nullptr &&
      X509_set_pubkey(cert.get(), subject.get()) &&
      X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0;
  EXPECT_TRUE(built) << "could not make a test certificate";
  Bio bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_X509(bio.get(), cert.get()), 1);
  return BioText(bio.get());
}

// The associated data the tests seal with: that of a referral body.
std::string BodyAssociatedData(std::string_view recipient = "310000000000") {
  return SealAssociatedData("0123456789abcdef", "110000000000", recipient);
}

// A private directory per test, removed afterwards.
class SealFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "seal_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `contents` to `name` in the directory with exactly `mode`.
  std::string WriteFile(const std::string& name, std::string_view contents,
                        mode_t mode) {
    std::string path = dir_ + "/" + name;
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, contents.data(), contents.size()),
              static_cast<ssize_t>(contents.size()));
    EXPECT_EQ(fchmod(fd, mode), 0);
    close(fd);
    return path;
  }

  std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
  }

  // Runs a shell command, showing its error output if it fails.
  ::testing::AssertionResult Run(const std::string& command) {
    std::string errors = dir_ + "/stderr";
    // Only the test's main thread runs commands.
    int status = std::system(  // NOLINT(concurrency-mt-unsafe)
        (command + " >/dev/null 2>" + errors).c_str());
    if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << command << " failed: " << ReadFile(errors);
  }

  std::string dir_;
};

// ---------------------------------------------------------------------------
// Every algorithm

class SealTest : public SealFileTest,
                 public ::testing::WithParamInterface<SealAlgorithm> {
 protected:
  SealingPrivateKey NewKey() {
    return Unwrap(SealingPrivateKey::Generate(GetParam()));
  }
  bool Ecdh() const { return GetParam() != kSm2; }
};

TEST_P(SealTest, RoundTripsPayloadsOfEverySize) {
  SealingPrivateKey key = NewKey();
  for (size_t size : {size_t{0}, size_t{1}, size_t{1000}, size_t{1} << 20}) {
    SCOPED_TRACE(Cat("plaintext of ", size, " bytes"));
    std::string plaintext = RandomBytes(size);
    SealedPayload sealed =
        Unwrap(Seal(key.public_key(), plaintext, BodyAssociatedData()));

    EXPECT_EQ(sealed.algorithm(), GetParam());
    EXPECT_EQ(sealed.recipient_key_id(), key.KeyId());
    EXPECT_EQ(sealed.nonce().size(), 12u);
    EXPECT_EQ(sealed.ciphertext().size(), size + 16);
    EXPECT_EQ(sealed.ephemeral_public_key().empty(), !Ecdh());
    EXPECT_EQ(sealed.wrapped_key().empty(), Ecdh());
    EXPECT_EQ(Unwrap(Open(key, sealed, BodyAssociatedData())), plaintext);
  }
}

TEST_P(SealTest, SessionPayloadsOpenAndShareOneKeyAgreement) {
  SealingPrivateKey key = NewKey();
  SealingSession session = Unwrap(SealingSession::Start(key.public_key()));
  SealedPayload first = Unwrap(session.Seal("first", BodyAssociatedData()));
  SealedPayload second = Unwrap(session.Seal("second", BodyAssociatedData()));
  EXPECT_EQ(Unwrap(Open(key, first, BodyAssociatedData())), "first");
  EXPECT_EQ(Unwrap(Open(key, second, BodyAssociatedData())), "second");
  // One key agreement, two nonces.
  EXPECT_EQ(first.ephemeral_public_key(), second.ephemeral_public_key());
  EXPECT_EQ(first.wrapped_key(), second.wrapped_key());
  EXPECT_NE(first.nonce(), second.nonce());
  EXPECT_EQ(Open(key, first, "other data").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_P(SealTest, CacheRenewsItsSessionAfterMaxUses) {
  SealingPrivateKey key = NewKey();
  SealingCache cache(/*max_uses=*/2);
  SealedPayload a = Unwrap(cache.Seal(key.public_key(), "a", "ad"));
  SealedPayload b = Unwrap(cache.Seal(key.public_key(), "b", "ad"));
  SealedPayload c = Unwrap(cache.Seal(key.public_key(), "c", "ad"));
  const std::string& (SealedPayload::*agreement)() const =
      Ecdh() ? &SealedPayload::ephemeral_public_key
             : &SealedPayload::wrapped_key;
  EXPECT_EQ((a.*agreement)(), (b.*agreement)());
  EXPECT_NE((b.*agreement)(), (c.*agreement)());
  EXPECT_EQ(Unwrap(Open(key, c, "ad")), "c");
}

TEST_P(SealTest, PayloadForAnotherKeyDoesNotOpen) {
  SealingPrivateKey intended = NewKey();
  SealingPrivateKey other = NewKey();
  SealedPayload sealed =
      Unwrap(Seal(intended.public_key(), "for the intended node only",
                  BodyAssociatedData()));

  absl::StatusOr<std::string> opened =
      Open(other, sealed, BodyAssociatedData());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(View(opened.status().message()),
                       HexEncode(intended.KeyId().substr(0, 8))));

  // Claiming the other key's id gets past the check but not the crypto.
  sealed.set_recipient_key_id(other.KeyId());
  opened = Open(other, sealed, BodyAssociatedData());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Contains(View(opened.status().message()), kDoesNotOpen));
}

// A way of altering a sealed payload in transit.
struct Alteration {
  std::string name;
  std::function<void(SealedPayload*)> apply;
};

// One alteration per byte of a field: a bit flipped, a different bit each.
void FlipEachByte(const std::string& name, const std::string& value,
                  std::string* (SealedPayload::*field)(),
                  std::vector<Alteration>* alterations) {
  for (size_t i = 0; i < value.size(); ++i) {
    std::string altered = FlipBit(value, i * 8 + i % 8);
    alterations->push_back(
        {Cat(name, " byte ", i),
         [field, altered](SealedPayload* p) { *(p->*field)() = altered; }});
  }
}

// Alterations of `sealed`, some using the fields of `another` seal of the
// same plaintext to the same key.
std::vector<Alteration> AlterationsOf(const SealedPayload& sealed,
                                      const SealedPayload& another,
                                      const std::string& recipient_spki,
                                      const std::string& other_kind_spki) {
  std::vector<Alteration> out;
  // Covers the tag too: it is the last 16 bytes of the ciphertext.
  FlipEachByte("ciphertext", sealed.ciphertext(),
               &SealedPayload::mutable_ciphertext, &out);
  FlipEachByte("nonce", sealed.nonce(), &SealedPayload::mutable_nonce, &out);
  FlipEachByte("ephemeral key", sealed.ephemeral_public_key(),
               &SealedPayload::mutable_ephemeral_public_key, &out);
  FlipEachByte("wrapped key", sealed.wrapped_key(),
               &SealedPayload::mutable_wrapped_key, &out);
  auto set = [&out](std::string name, std::string* (SealedPayload::*field)(),
                    const std::string& value) {
    out.push_back({std::move(name), [field, value](SealedPayload* p) {
                     *(p->*field)() = value;
                   }});
  };
  set("another seal's nonce", &SealedPayload::mutable_nonce, another.nonce());
  set("another seal's ciphertext", &SealedPayload::mutable_ciphertext,
      another.ciphertext());
  const std::string& ciphertext = sealed.ciphertext();
  set("ciphertext truncated", &SealedPayload::mutable_ciphertext,
      ciphertext.substr(0, ciphertext.size() - 1));
  set("ciphertext extended", &SealedPayload::mutable_ciphertext,
      ciphertext + 'x');
  if (!sealed.ephemeral_public_key().empty()) {
    auto field = &SealedPayload::mutable_ephemeral_public_key;
    set("another seal's ephemeral key", field, another.ephemeral_public_key());
    set("the recipient's key as ephemeral", field, recipient_spki);
    set("ephemeral key of another kind", field, other_kind_spki);
    set("ephemeral key with a trailing byte", field,
        sealed.ephemeral_public_key() + '\0');
  } else {
    const std::string& wrapped = sealed.wrapped_key();
    auto field = &SealedPayload::mutable_wrapped_key;
    set("another seal's wrapped key", field, another.wrapped_key());
    set("wrapped key truncated", field, wrapped.substr(0, wrapped.size() - 1));
    set("wrapped key with a trailing byte", field, wrapped + '\0');
  }
  return out;
}

TEST_P(SealTest, EveryAlteredFieldFailsAuthentication) {
  SealingPrivateKey key = NewKey();
  SealingPrivateKey other_kind = Unwrap(
      SealingPrivateKey::Generate(GetParam() == kP256 ? kX25519 : kP256));
  std::string aad = BodyAssociatedData();
  std::string plaintext = "referral 2024-017 for intake";
  SealedPayload sealed = Unwrap(Seal(key.public_key(), plaintext, aad));
  SealedPayload another = Unwrap(Seal(key.public_key(), plaintext, aad));
  std::vector<Alteration> alterations =
      AlterationsOf(sealed, another, key.public_key().SpkiDer(),
                    other_kind.public_key().SpkiDer());

  std::string first_message;
  for (const Alteration& alteration : alterations) {
    SCOPED_TRACE(alteration.name);
    SealedPayload altered = sealed;
    alteration.apply(&altered);
    absl::StatusOr<std::string> opened = Open(key, altered, aad);
    ASSERT_EQ(opened.status().code(), absl::StatusCode::kUnauthenticated)
        << opened.status();
    std::string message(View(opened.status().message()));
    EXPECT_TRUE(message.starts_with(kDoesNotOpen)) << message;
    if (first_message.empty()) first_message = message;
    EXPECT_EQ(message, first_message) << "the error tells parts apart";
  }
  EXPECT_GT(alterations.size(), 40u);
  EXPECT_TRUE(Open(key, sealed, aad).ok());
}

TEST_P(SealTest, OtherAssociatedDataFailsAuthentication) {
  SealingPrivateKey key = NewKey();
  SealedPayload sealed = Unwrap(
      Seal(key.public_key(), "case status: accepted", BodyAssociatedData()));

  for (const std::string& aad :
       {BodyAssociatedData("320000000000"), std::string(),
        BodyAssociatedData() + "x",
        SealAssociatedData("fedcba9876543210", "110000000000",
                           "310000000000")}) {
    absl::StatusOr<std::string> opened = Open(key, sealed, aad);
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kUnauthenticated);
  }
}

TEST_P(SealTest, CiphertextDoesNotContainThePlaintext) {
  SealingPrivateKey key = NewKey();
  const std::string marker = "MARKER:worker-id-110101199003077";
  ASSERT_EQ(marker.size(), 32u);
  std::string plaintext =
      Cat("name=张三;", marker, std::string(500, ' '), marker);
  SealedPayload sealed =
      Unwrap(Seal(key.public_key(), plaintext, BodyAssociatedData()));

  EXPECT_FALSE(Contains(sealed.ciphertext(), marker));
  EXPECT_FALSE(Contains(sealed.SerializeAsString(), marker));
  EXPECT_FALSE(Contains(sealed.SerializeAsString(), "张三"));
}

TEST_P(SealTest, SealingTwiceGivesDifferentPayloads) {
  SealingPrivateKey key = NewKey();
  SealedPayload first =
      Unwrap(Seal(key.public_key(), "same plaintext", BodyAssociatedData()));
  SealedPayload second =
      Unwrap(Seal(key.public_key(), "same plaintext", BodyAssociatedData()));

  EXPECT_NE(first.nonce(), second.nonce());
  EXPECT_NE(first.ciphertext(), second.ciphertext());
  if (Ecdh()) {
    EXPECT_NE(first.ephemeral_public_key(), second.ephemeral_public_key());
  } else {
    EXPECT_NE(first.wrapped_key(), second.wrapped_key());
  }
  EXPECT_EQ(Unwrap(Open(key, first, BodyAssociatedData())), "same plaintext");
  EXPECT_EQ(Unwrap(Open(key, second, BodyAssociatedData())), "same plaintext");
}

TEST_P(SealTest, MalformedPayloadsAreInvalidArgument) {
  SealingPrivateKey key = NewKey();
  SealedPayload sealed =
      Unwrap(Seal(key.public_key(), "x", BodyAssociatedData()));
  SealAlgorithm other_kind = GetParam() == kSm2 ? kX25519 : kSm2;

  struct Malformation {
    std::string name;
    std::function<void(SealedPayload*)> apply;
  };
  std::vector<Malformation> malformations = {
      {"unspecified algorithm",
       [](auto* p) { p->set_algorithm(v1::SEAL_ALGORITHM_UNSPECIFIED); }},
      {"unknown algorithm",
       [](auto* p) { p->set_algorithm(static_cast<SealAlgorithm>(99)); }},
      {"another algorithm", [=](auto* p) { p->set_algorithm(other_kind); }},
      {"no key id", [](auto* p) { p->clear_recipient_key_id(); }},
      {"short key id",
       [](auto* p) { p->mutable_recipient_key_id()->pop_back(); }},
      {"no nonce", [](auto* p) { p->clear_nonce(); }},
      {"11-byte nonce", [](auto* p) { p->mutable_nonce()->pop_back(); }},
      {"13-byte nonce", [](auto* p) { p->mutable_nonce()->push_back('n'); }},
      {"no ciphertext", [](auto* p) { p->clear_ciphertext(); }},
      {"ciphertext shorter than a tag",
       [](auto* p) { p->set_ciphertext(std::string(15, 'c')); }},
  };
  if (Ecdh()) {
    malformations.push_back(
        {"no ephemeral key", [](auto* p) { p->clear_ephemeral_public_key(); }});
    malformations.push_back(
        {"a wrapped key", [](auto* p) { p->set_wrapped_key("wrapped"); }});
  } else {
    malformations.push_back(
        {"no wrapped key", [](auto* p) { p->clear_wrapped_key(); }});
    malformations.push_back({"an ephemeral key", [](auto* p) {
                               p->set_ephemeral_public_key("ephemeral");
                             }});
  }

  for (const Malformation& malformation : malformations) {
    SCOPED_TRACE(malformation.name);
    SealedPayload altered = sealed;
    malformation.apply(&altered);
    absl::StatusOr<std::string> opened =
        Open(key, altered, BodyAssociatedData());
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument)
        << opened.status();
  }
}

TEST_P(SealTest, KeyFileReadableByOthersIsRefused) {
  SealingPrivateKey key = NewKey();
  std::string pem = Unwrap(key.ToPem());
  std::string open_path = WriteFile("open.key", pem, 0644);

  absl::StatusOr<SealingPrivateKey> loaded =
      SealingPrivateKey::LoadPemFile(open_path);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(View(loaded.status().message()),
            Cat("key file ", open_path,
                " is readable by other users (mode 0644); chmod 600 it"));

  // The same key in a private file loads and opens what was sealed to it.
  std::string private_path = WriteFile("private.key", pem, 0600);
  SealingPrivateKey reloaded =
      Unwrap(SealingPrivateKey::LoadPemFile(private_path));
  EXPECT_EQ(reloaded.KeyId(), key.KeyId());
  SealedPayload sealed =
      Unwrap(Seal(key.public_key(), "after restart", BodyAssociatedData()));
  EXPECT_EQ(Unwrap(Open(reloaded, sealed, BodyAssociatedData())),
            "after restart");
}

TEST_P(SealTest, PublicKeyFromSpkiPemAndCertificateAgree) {
  SealingPrivateKey key = NewKey();
  const std::string& spki = key.public_key().SpkiDer();
  EXPECT_EQ(key.KeyId(), Unwrap(Digest(HashAlgorithm::kSha256, spki)));

  SealingPublicKey from_der = Unwrap(SealingPublicKey::FromSpkiDer(spki));
  SealingPublicKey from_pem =
      Unwrap(SealingPublicKey::FromPem(PublicPem(spki)));
  // Keys that cannot sign get a certificate from a P-256 CA.
  Pkey signer = GetParam() == kP256 ? ParsePrivatePem(Unwrap(key.ToPem()))
                                    : NewEcKey("P-256");
  ASSERT_NE(signer, nullptr);
  SealingPublicKey from_cert = Unwrap(
      SealingPublicKey::FromCertificatePem(CertificatePem(spki, signer.get())));

  for (const SealingPublicKey* parsed : {&from_der, &from_pem, &from_cert}) {
    EXPECT_EQ(parsed->algorithm(), GetParam());
    EXPECT_EQ(parsed->KeyId(), key.KeyId());
    SealedPayload sealed =
        Unwrap(Seal(*parsed, "via a published key", BodyAssociatedData()));
    EXPECT_EQ(Unwrap(Open(key, sealed, BodyAssociatedData())),
              "via a published key");
  }
}

TEST_P(SealTest, ConcurrentSealsAndOpensAllSucceed) {
  SealingPrivateKey key = NewKey();
  SealingPublicKey recipient = key.public_key();
  std::atomic<int> failures{0};
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        std::string plaintext = Cat("thread ", t, " message ", i);
        absl::StatusOr<SealedPayload> sealed =
            Seal(recipient, plaintext, BodyAssociatedData());
        absl::StatusOr<std::string> opened =
            sealed.ok() ? Open(key, *sealed, BodyAssociatedData())
                        : sealed.status();
        if (!opened.ok() || *opened != plaintext) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Algorithms, SealTest, ::testing::Values(kP256, kX25519, kSm2),
    [](const ::testing::TestParamInfo<SealAlgorithm>& test) {
      switch (test.param) {
        case kP256:
          return std::string("P256");
        case kX25519:
          return std::string("X25519");
        default:
          return std::string("Sm2");
      }
    });

// ---------------------------------------------------------------------------
// Keys and associated data

TEST(SealKeyTest, SigningKeysAndOtherCurvesAreRefused) {
  Pkey ed25519(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  Pkey p384 = NewEcKey("P-384");
  for (EVP_PKEY* pkey : {ed25519.get(), p384.get()}) {
    ASSERT_NE(pkey, nullptr);
    absl::StatusOr<SealingPrivateKey> key =
        SealingPrivateKey::FromPem(PrivatePem(pkey));
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(Contains(View(key.status().message()),
                         "sealing keys are P-256, X25519 or SM2"));

    unsigned char* der = nullptr;
    int length = i2d_PUBKEY(pkey, &der);
    ASSERT_GT(length, 0);
    std::string spki(reinterpret_cast<char*>(der), static_cast<size_t>(length));
    OPENSSL_free(der);
    EXPECT_EQ(SealingPublicKey::FromSpkiDer(spki).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(SealingPrivateKey::Generate(v1::SEAL_ALGORITHM_UNSPECIFIED)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SealingPrivateKey::Generate(static_cast<SealAlgorithm>(99))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SealKeyTest, KeysMadeByOpenSslAreRecognised) {
  Pkey p256 = NewEcKey("P-256");
  Pkey x25519(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  Pkey sm2(EVP_PKEY_Q_keygen(nullptr, nullptr, "SM2"));
  EXPECT_EQ(
      Unwrap(SealingPrivateKey::FromPem(PrivatePem(p256.get()))).algorithm(),
      kP256);
  EXPECT_EQ(
      Unwrap(SealingPrivateKey::FromPem(PrivatePem(x25519.get()))).algorithm(),
      kX25519);
  EXPECT_EQ(
      Unwrap(SealingPrivateKey::FromPem(PrivatePem(sm2.get()))).algorithm(),
      kSm2);
}

TEST(SealAssociatedDataTest, FieldsAreLengthPrefixedAndUnambiguous) {
  const char expected[] =
      "\0\0\0\0\0\0\0\x02"
      "ab"
      "\0\0\0\0\0\0\0\x01"
      "c"
      "\0\0\0\0\0\0\0\0";
  EXPECT_EQ(SealAssociatedData("ab", "c", ""),
            std::string(expected, sizeof(expected) - 1));
  EXPECT_NE(SealAssociatedData("ab", "c", "d"),
            SealAssociatedData("a", "bc", "d"));
  EXPECT_NE(SealAssociatedData("a", "bc", "d"),
            SealAssociatedData("a", "b", "cd"));
}

// ---------------------------------------------------------------------------
// Interoperability with the openssl command, which follows the format in
// seal.h step by step, independently of the library's own code.

bool OpenSslCliAvailable() {
  return std::system(  // NOLINT(concurrency-mt-unsafe)
             "openssl version >/dev/null 2>&1") == 0;
}

std::string Uint64BigEndian(uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, value >>= 8) {
    out[static_cast<size_t>(i)] = static_cast<char>(value & 0xff);
  }
  return out;
}

std::string Info(SealAlgorithm algorithm) {
  return Cat("caselink/v1/seal", static_cast<char>(algorithm));
}

class SealInteropTest : public SealFileTest {
 protected:
  // HKDF with `digest` by `openssl kdf`.
  std::string CliHkdf(std::string_view digest, std::string_view ikm,
                      std::string_view salt, std::string_view info,
                      size_t length) {
    std::string out = dir_ + "/hkdf";
    EXPECT_TRUE(Run(Cat("openssl kdf -binary -out ", out, " -keylen ", length,
                        " -kdfopt digest:", digest, " -kdfopt hexkey:",
                        HexEncode(ikm), " -kdfopt hexsalt:", HexEncode(salt),
                        " -kdfopt hexinfo:", HexEncode(info), " HKDF")));
    return ReadFile(out);
  }

  // SM4-CTR by `openssl enc`, from counter block nonce || 0^32.
  std::string CliSm4Ctr(std::string_view key, std::string_view nonce,
                        std::string_view in) {
    std::string in_path = WriteFile("sm4.in", in, 0600);
    std::string out = dir_ + "/sm4.out";
    EXPECT_TRUE(
        Run(Cat("openssl enc -sm4-ctr -K ", HexEncode(key), " -iv ",
                HexEncode(nonce), "00000000 -in ", in_path, " -out ", out)));
    return ReadFile(out);
  }

  // The SM2 suite's 16-byte tag by `openssl dgst`.
  std::string CliTag(std::string_view mac_key, std::string_view aad,
                     std::string_view nonce, std::string_view body) {
    std::string in_path = WriteFile(
        "mac.in", Cat(Uint64BigEndian(aad.size()), aad, nonce, body), 0600);
    std::string out = dir_ + "/mac.out";
    EXPECT_TRUE(Run(
        Cat("openssl dgst -sm3 -mac HMAC -macopt hexkey:", HexEncode(mac_key),
            " -binary -out ", out, " ", in_path)));
    return ReadFile(out).substr(0, 16);
  }
};

TEST_F(SealInteropTest, OpensSm2PayloadSealedWithOpenSslCli) {
  if (!OpenSslCliAvailable()) GTEST_SKIP() << "no openssl command";
  SealingPrivateKey key = Unwrap(SealingPrivateKey::Generate(kSm2));
  const std::string& spki = key.public_key().SpkiDer();
  std::string public_path = WriteFile("sm2.pub", PublicPem(spki), 0600);
  std::string secret_path = WriteFile("secret", RandomBytes(32), 0600);
  std::string wrapped_path = dir_ + "/wrapped";
  ASSERT_TRUE(Run(Cat("openssl pkeyutl -encrypt -pubin -inkey ", public_path,
                      " -in ", secret_path, " -out ", wrapped_path)));
  std::string wrapped = ReadFile(wrapped_path);

  std::string aad = BodyAssociatedData();
  std::string nonce = RandomBytes(12);
  std::string plaintext = "证据调取结果 evidence result";
  std::string keys =
      CliHkdf("SM3", ReadFile(secret_path), Cat(wrapped, spki), Info(kSm2), 48);
  ASSERT_EQ(keys.size(), 48u);
  std::string body = CliSm4Ctr(keys.substr(0, 16), nonce, plaintext);
  std::string tag = CliTag(keys.substr(16), aad, nonce, body);

  SealedPayload sealed;
  sealed.set_algorithm(kSm2);
  sealed.set_recipient_key_id(key.KeyId());
  sealed.set_wrapped_key(wrapped);
  sealed.set_nonce(nonce);
  sealed.set_ciphertext(body + tag);
  EXPECT_EQ(Unwrap(Open(key, sealed, aad)), plaintext);
}

TEST_F(SealInteropTest, OpenSslCliOpensOurSm2Payload) {
  if (!OpenSslCliAvailable()) GTEST_SKIP() << "no openssl command";
  SealingPrivateKey key = Unwrap(SealingPrivateKey::Generate(kSm2));
  std::string key_path = WriteFile("sm2.key", Unwrap(key.ToPem()), 0600);
  std::string aad = BodyAssociatedData();
  std::string plaintext = "移送 referral payload";
  SealedPayload sealed = Unwrap(Seal(key.public_key(), plaintext, aad));

  std::string wrapped_path = WriteFile("wrapped", sealed.wrapped_key(), 0600);
  std::string secret_path = dir_ + "/secret";
  ASSERT_TRUE(Run(Cat("openssl pkeyutl -decrypt -inkey ", key_path, " -in ",
                      wrapped_path, " -out ", secret_path)));
  std::string secret = ReadFile(secret_path);
  ASSERT_EQ(secret.size(), 32u);
  std::string keys = CliHkdf(
      "SM3", secret, Cat(sealed.wrapped_key(), key.public_key().SpkiDer()),
      Info(kSm2), 48);
  ASSERT_EQ(keys.size(), 48u);
  const std::string& ciphertext = sealed.ciphertext();
  std::string body = ciphertext.substr(0, ciphertext.size() - 16);
  EXPECT_EQ(CliTag(keys.substr(16), aad, sealed.nonce(), body),
            ciphertext.substr(body.size()));
  EXPECT_EQ(CliSm4Ctr(keys.substr(0, 16), sealed.nonce(), body), plaintext);
}

// AES-256-GCM decryption of ciphertext || tag, with the test's own code.
std::string AesGcmOpen(const std::string& key, const std::string& nonce,
                       const std::string& aad, const std::string& sealed) {
  std::string body = sealed.substr(0, sealed.size() - 16);
  std::string tag = sealed.substr(body.size());
  std::string out(body.size() + 16, '\0');
  unsigned char* out_bytes = reinterpret_cast<unsigned char*>(out.data());
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int length = 0;
  int final_length = 0;
  bool ok =
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, Bytes(key),
                         Bytes(nonce)) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &length, Bytes(aad),
                        static_cast<int>(aad.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), out_bytes, &length, Bytes(body),
                        static_cast<int>(body.size())) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag.data()) ==
          1 &&
      EVP_DecryptFinal_ex(ctx.get(), out_bytes + length, &final_length) == 1;
  EXPECT_TRUE(ok) << "AES-256-GCM did not open";
  out.resize(static_cast<size_t>(length) + static_cast<size_t>(final_length));
  return out;
}

TEST_F(SealInteropTest, OpenSslCliDerivesOurEcdhKeys) {
  if (!OpenSslCliAvailable()) GTEST_SKIP() << "no openssl command";
  for (SealAlgorithm algorithm : {kP256, kX25519}) {
    SCOPED_TRACE(static_cast<int>(algorithm));
    SealingPrivateKey key = Unwrap(SealingPrivateKey::Generate(algorithm));
    std::string key_path = WriteFile("ecdh.key", Unwrap(key.ToPem()), 0600);
    std::string aad = BodyAssociatedData();
    std::string plaintext = "案件状态 case status";
    SealedPayload sealed = Unwrap(Seal(key.public_key(), plaintext, aad));

    std::string peer_path = WriteFile(
        "ephemeral.pub", PublicPem(sealed.ephemeral_public_key()), 0600);
    std::string shared_path = dir_ + "/shared";
    ASSERT_TRUE(Run(Cat("openssl pkeyutl -derive -inkey ", key_path,
                        " -peerkey ", peer_path, " -out ", shared_path)));
    std::string shared = ReadFile(shared_path);
    ASSERT_EQ(shared.size(), 32u);
    std::string aes_key =
        CliHkdf("SHA256", shared,
                Cat(sealed.ephemeral_public_key(), key.public_key().SpkiDer()),
                Info(algorithm), 32);
    ASSERT_EQ(aes_key.size(), 32u);
    EXPECT_EQ(AesGcmOpen(aes_key, sealed.nonce(), aad, sealed.ciphertext()),
              plaintext);
  }
}

}  // namespace
}  // namespace caselink
