#include "core/crypto.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/envelope.h"
#include "gtest/gtest.h"

namespace caselink {
namespace {

// Passes if `text` contains `part`, and shows both if not.
::testing::AssertionResult Contains(absl::string_view text,
                                    absl::string_view part) {
  if (absl::StrContains(text, part)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\" does not contain \"" << part << "\"";
}

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

template <typename T>
T Unwrap(absl::StatusOr<T> value) {
  if (!value.ok()) {
    ADD_FAILURE() << value.status();
    std::abort();
  }
  return *std::move(value);
}

std::string ReadBio(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

// A fresh key made straight with OpenSSL, not with PrivateKey::Generate.
Pkey NewOpenSslKey(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kEcdsaP256Sha256: {
      char curve[] = "P-256";
      return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
    }
    case SignatureScheme::kEd25519:
      return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    case SignatureScheme::kSm2Sm3:
      return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "SM2"));
  }
  return nullptr;
}

std::string PrivatePem(EVP_PKEY* pkey) {
  Bio bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), pkey, nullptr, nullptr, 0,
                                     nullptr, nullptr),
            1);
  return ReadBio(bio.get());
}

std::string PublicPem(EVP_PKEY* pkey) {
  Bio bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PUBKEY(bio.get(), pkey), 1);
  return ReadBio(bio.get());
}

std::string FlipBit(std::string bytes, size_t bit) {
  bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
  return bytes;
}

// A private directory per test, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "crypto_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `contents` to `name` in the directory with exactly `mode`.
  std::string WriteFile(const std::string& name, const std::string& contents,
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

  std::string dir_;
};

// ---------------------------------------------------------------------------
// Hashes, schemes, bytes

TEST(CryptoTest, DigestsMatchPublishedVectors) {
  EXPECT_EQ(HexEncode(Unwrap(Digest(HashAlgorithm::kSha256, "abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // GB/T 32905 example 1.
  EXPECT_EQ(HexEncode(Unwrap(Digest(HashAlgorithm::kSm3, "abc"))),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  EXPECT_EQ(HexEncode(Unwrap(Digest(HashAlgorithm::kSha256, ""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Unwrap(Digest(HashAlgorithm::kSm3, "")).size(), kDigestSize);
}

TEST(CryptoTest, HasherMatchesOneShotDigestAndStartsOver) {
  for (HashAlgorithm algorithm :
       {HashAlgorithm::kSha256, HashAlgorithm::kSm3}) {
    Hasher hasher = Unwrap(Hasher::Create(algorithm));
    hasher.Update("ab");
    hasher.Update("");
    hasher.Update("c");
    EXPECT_EQ(Unwrap(hasher.Finish()), Unwrap(Digest(algorithm, "abc")));
    hasher.Update("second");
    EXPECT_EQ(Unwrap(hasher.Finish()), Unwrap(Digest(algorithm, "second")));
  }
}

TEST(CryptoTest, SchemesMapToProtoValuesNamesAndHashFamilies) {
  struct Case {
    SignatureScheme scheme;
    int proto;
    const char* name;
    HashAlgorithm hash;
  };
  for (const Case& c :
       {Case{SignatureScheme::kEcdsaP256Sha256, 1, "ecdsa-p256",
             HashAlgorithm::kSha256},
        Case{SignatureScheme::kEd25519, 2, "ed25519", HashAlgorithm::kSha256},
        Case{SignatureScheme::kSm2Sm3, 3, "sm2", HashAlgorithm::kSm3}}) {
    EXPECT_EQ(SignatureSchemeToProto(c.scheme), c.proto);
    EXPECT_EQ(Unwrap(SignatureSchemeFromProto(c.proto)), c.scheme);
    EXPECT_EQ(SignatureSchemeName(c.scheme), c.name);
    EXPECT_EQ(Unwrap(ParseSignatureScheme(c.name)), c.scheme);
    EXPECT_EQ(HashAlgorithmOf(c.scheme), c.hash);
  }
  EXPECT_EQ(SignatureSchemeFromProto(0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignatureSchemeFromProto(4).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseSignatureScheme("rsa").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CryptoTest, HexRoundTripsAndRejectsBadInput) {
  std::string bytes("\x00\x01\x7f\x80\xff", 5);
  EXPECT_EQ(HexEncode(bytes), "00017f80ff");
  EXPECT_EQ(Unwrap(HexDecode("00017F80ff")), bytes);
  EXPECT_EQ(Unwrap(HexDecode("")), "");
  EXPECT_EQ(HexDecode("abc").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HexDecode("0g").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CryptoTest, RandomBytesHaveTheRequestedLengthAndDiffer) {
  EXPECT_EQ(RandomBytes(0), "");
  std::string a = RandomBytes(16);
  std::string b = RandomBytes(16);
  EXPECT_EQ(a.size(), 16u);
  EXPECT_NE(a, b);
}

TEST(CryptoTest, MessageIdsAreDistinctAcrossRefillsAndThreads) {
  // More ids than one refill of random bytes gives, on two threads at once.
  constexpr int kIds = 1000;
  std::vector<std::string> first;
  std::vector<std::string> second;
  std::thread other([&second] {
    for (int i = 0; i < kIds; ++i) second.push_back(NewMessageId());
  });
  for (int i = 0; i < kIds; ++i) first.push_back(NewMessageId());
  other.join();
  std::set<std::string> all;
  for (const std::vector<std::string>* ids : {&first, &second}) {
    for (const std::string& id : *ids) {
      EXPECT_EQ(id.size(), kMessageIdSize);
      all.insert(id);
    }
  }
  EXPECT_EQ(all.size(), 2u * kIds);
}

uint64_t IdMicros(const std::string& id) {
  uint64_t micros = 0;
  for (size_t i = 0; i < kMessageIdTimeSize; ++i) {
    micros = (micros << 8) | static_cast<unsigned char>(id[i]);
  }
  return micros;
}

TEST(CryptoTest, MessageIdsStartWithTheirCreationTimeAndSortByIt) {
  const auto before = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  const std::string first = NewMessageId();
  const auto after = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  EXPECT_GE(IdMicros(first), before);
  EXPECT_LE(IdMicros(first), after);

  // Ids made later sort after it, byte by byte, as a store orders keys.
  absl::SleepFor(absl::Milliseconds(2));
  std::vector<std::string> later;
  for (int i = 0; i < 300; ++i) later.push_back(NewMessageId());
  for (const std::string& id : later) {
    EXPECT_GT(IdMicros(id), IdMicros(first));
    EXPECT_GT(id, first);
  }
}

// ---------------------------------------------------------------------------
// Signing, for each scheme

class SchemeTest : public TempDirTest,
                   public ::testing::WithParamInterface<SignatureScheme> {
 protected:
  // A key made with OpenSSL directly, loaded through a 0600 file.
  PrivateKey LoadFreshKey() {
    Pkey pkey = NewOpenSslKey(GetParam());
    EXPECT_NE(pkey, nullptr);
    std::string path = WriteFile("signing.key", PrivatePem(pkey.get()), 0600);
    return Unwrap(PrivateKey::LoadPemFile(path));
  }
};

TEST_P(SchemeTest, SignatureVerifies) {
  PrivateKey key = LoadFreshKey();
  EXPECT_EQ(key.scheme(), GetParam());
  std::string signature = Unwrap(key.Sign("referral 1"));
  EXPECT_TRUE(key.public_key().Verify("referral 1", signature).ok());
  EXPECT_TRUE(key.public_key().Verify("", Unwrap(key.Sign(""))).ok());
}

TEST_P(SchemeTest, FlippedMessageBitFails) {
  PrivateKey key = LoadFreshKey();
  std::string message = "evidence request 7";
  std::string signature = Unwrap(key.Sign(message));
  for (size_t bit = 0; bit < message.size() * 8; ++bit) {
    absl::Status status =
        key.public_key().Verify(FlipBit(message, bit), signature);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << bit;
  }
}

TEST_P(SchemeTest, FlippedSignatureBitFails) {
  PrivateKey key = LoadFreshKey();
  std::string signature = Unwrap(key.Sign("receipt"));
  for (size_t bit = 0; bit < signature.size() * 8; ++bit) {
    EXPECT_FALSE(
        key.public_key().Verify("receipt", FlipBit(signature, bit)).ok())
        << bit;
  }
  // The last byte is inside the value (s, or Ed25519's S), so the encoding
  // stays well-formed and only the mathematics fails.
  absl::Status status = key.public_key().Verify(
      "receipt", FlipBit(signature, signature.size() * 8 - 1));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Contains(status.message(), "signature does not verify"));
}

TEST_P(SchemeTest, MalformedSignatureIsInvalidArgument) {
  PrivateKey key = LoadFreshKey();
  std::string signature = Unwrap(key.Sign("x"));
  EXPECT_EQ(key.public_key().Verify("x", "").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(key.public_key().Verify("x", signature + '\0').code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(key.public_key().Verify("x", signature.substr(1)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(SchemeTest, SignatureUnderAnotherKeyFails) {
  PrivateKey key = LoadFreshKey();
  PrivateKey other = Unwrap(PrivateKey::Generate(GetParam()));
  std::string signature = Unwrap(key.Sign("case status"));
  EXPECT_EQ(other.public_key().Verify("case status", signature).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_P(SchemeTest, KeyIdIsSha256OfSubjectPublicKeyInfo) {
  PrivateKey key = LoadFreshKey();
  EXPECT_EQ(key.KeyId(),
            Unwrap(Digest(HashAlgorithm::kSha256, key.PublicKeyDer())));
  EXPECT_EQ(key.KeyId().size(), 32u);

  PublicKey from_der = Unwrap(PublicKey::FromSpkiDer(key.PublicKeyDer()));
  EXPECT_EQ(from_der.KeyId(), key.KeyId());
  EXPECT_EQ(from_der.scheme(), GetParam());
  EXPECT_TRUE(from_der.Verify("m", Unwrap(key.Sign("m"))).ok());
  EXPECT_EQ(PublicKey::FromSpkiDer(key.PublicKeyDer() + "x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(SchemeTest, PublicPemFromOpenSslMatchesKey) {
  Pkey pkey = NewOpenSslKey(GetParam());
  PrivateKey key = Unwrap(PrivateKey::FromPem(PrivatePem(pkey.get())));
  PublicKey public_key = Unwrap(PublicKey::FromPem(PublicPem(pkey.get())));
  EXPECT_EQ(public_key.KeyId(), key.KeyId());
  EXPECT_TRUE(public_key.Verify("m", Unwrap(key.Sign("m"))).ok());
}

TEST_P(SchemeTest, GeneratedKeyRoundTripsThroughPem) {
  PrivateKey key = Unwrap(PrivateKey::Generate(GetParam()));
  PrivateKey again = Unwrap(PrivateKey::FromPem(Unwrap(key.ToPem())));
  EXPECT_EQ(again.scheme(), GetParam());
  EXPECT_EQ(again.KeyId(), key.KeyId());
  EXPECT_TRUE(key.public_key().Verify("m", Unwrap(again.Sign("m"))).ok());
}

TEST_P(SchemeTest, ConcurrentSignaturesAllVerify) {
  PrivateKey key = LoadFreshKey();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&key, &failures, t] {
      for (int i = 0; i < 25; ++i) {
        std::string message =
            "thread " + std::to_string(t) + " message " + std::to_string(i);
        absl::StatusOr<std::string> signature = key.Sign(message);
        if (!signature.ok() ||
            !key.public_key().Verify(message, *signature).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_P(SchemeTest, KeyFileReadableByOthersIsRefused) {
  Pkey pkey = NewOpenSslKey(GetParam());
  std::string path = WriteFile("open.key", PrivatePem(pkey.get()), 0644);
  absl::Status status = PrivateKey::LoadPemFile(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            "key file " + path +
                " is readable by other users (mode 0644); chmod 600 it");
}

INSTANTIATE_TEST_SUITE_P(
    AllSchemes, SchemeTest,
    ::testing::Values(SignatureScheme::kEcdsaP256Sha256,
                      SignatureScheme::kEd25519, SignatureScheme::kSm2Sm3),
    [](const ::testing::TestParamInfo<SignatureScheme>& instance) {
      switch (instance.param) {
        case SignatureScheme::kEcdsaP256Sha256:
          return std::string("EcdsaP256");
        case SignatureScheme::kEd25519:
          return std::string("Ed25519");
        case SignatureScheme::kSm2Sm3:
          return std::string("Sm2");
      }
      return std::string("Unknown");
    });

// ---------------------------------------------------------------------------
// Key files

using KeyFileTest = TempDirTest;

TEST_F(KeyFileTest, GroupWritableKeyFileIsRefused) {
  Pkey pkey = NewOpenSslKey(SignatureScheme::kEd25519);
  std::string path = WriteFile("group.key", PrivatePem(pkey.get()), 0620);
  absl::Status status = PrivateKey::LoadPemFile(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            "key file " + path +
                " is writable by other users (mode 0620); chmod 600 it");
}

TEST_F(KeyFileTest, OwnerReadOnlyKeyFileIsAccepted) {
  Pkey pkey = NewOpenSslKey(SignatureScheme::kEd25519);
  std::string path = WriteFile("ro.key", PrivatePem(pkey.get()), 0400);
  EXPECT_TRUE(PrivateKey::LoadPemFile(path).ok());
}

TEST_F(KeyFileTest, MissingKeyFileErrorNamesPath) {
  std::string path = dir_ + "/absent.key";
  absl::Status status = PrivateKey::LoadPemFile(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Contains(status.message(), path));
}

TEST_F(KeyFileTest, DirectoryAsKeyFileIsRefused) {
  absl::Status status = PrivateKey::LoadPemFile(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "not a regular file"));
}

TEST_F(KeyFileTest, UnparseableKeyFileErrorNamesPath) {
  std::string path = WriteFile("junk.key", "not a key\n", 0600);
  absl::Status status = PrivateKey::LoadPemFile(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "key file " + path));
}

TEST_F(KeyFileTest, EncryptedKeyIsRefusedWithoutPrompting) {
  Pkey pkey = NewOpenSslKey(SignatureScheme::kEcdsaP256Sha256);
  Bio bio(BIO_new(BIO_s_mem()));
  char passphrase[] = "secret";
  ASSERT_EQ(
      PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey.get(), EVP_aes_256_cbc(),
                                    passphrase, 6, nullptr, nullptr),
      1);
  std::string path = WriteFile("enc.key", ReadBio(bio.get()), 0600);
  absl::Status status = PrivateKey::LoadPemFile(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "encrypted"));
}

TEST_F(KeyFileTest, KeyOnAnotherCurveIsRefused) {
  char curve[] = "P-384";
  Pkey pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
  absl::Status status = PrivateKey::FromPem(PrivatePem(pkey.get())).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "secp384r1"));
}

// ---------------------------------------------------------------------------
// Known answers and interoperability

TEST(CryptoTest, Ed25519MatchesRfc8032TestVector2) {
  std::string secret = Unwrap(HexDecode(
      "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"));
  Pkey pkey(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(secret.data()), secret.size()));
  ASSERT_NE(pkey, nullptr);
  PrivateKey key = Unwrap(PrivateKey::FromPem(PrivatePem(pkey.get())));
  EXPECT_EQ(HexEncode(Unwrap(key.Sign("\x72"))),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
  // The SPKI ends with the RFC's public key.
  EXPECT_TRUE(absl::EndsWith(
      HexEncode(key.PublicKeyDer()),
      "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"));
}

bool OpenSslCliAvailable() {
  return std::system("openssl version >/dev/null 2>&1") == 0;
}

bool RunQuietly(const std::string& command) {
  int status = std::system((command + " >/dev/null 2>&1").c_str());
  return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

using Sm2InteropTest = TempDirTest;

TEST_F(Sm2InteropTest, OpenSslCliSignatureWithDefaultIdVerifies) {
  if (!OpenSslCliAvailable()) GTEST_SKIP() << "no openssl command";
  Pkey pkey = NewOpenSslKey(SignatureScheme::kSm2Sm3);
  std::string key_path = WriteFile("sm2.key", PrivatePem(pkey.get()), 0600);
  std::string message = "移送 referral body bytes";
  std::string message_path = WriteFile("message", message, 0600);
  std::string signature_path = dir_ + "/signature";
  ASSERT_TRUE(RunQuietly("openssl pkeyutl -sign -rawin -digest sm3 -inkey " +
                         key_path + " -in " + message_path + " -out " +
                         signature_path + " -pkeyopt distid:1234567812345678"));

  PublicKey public_key = Unwrap(PublicKey::FromPem(PublicPem(pkey.get())));
  EXPECT_TRUE(public_key.Verify(message, ReadFile(signature_path)).ok());
}

TEST_F(Sm2InteropTest, OurSignatureVerifiesWithOpenSslCliAndDefaultId) {
  if (!OpenSslCliAvailable()) GTEST_SKIP() << "no openssl command";
  PrivateKey key = Unwrap(PrivateKey::Generate(SignatureScheme::kSm2Sm3));
  std::string message = "receipt for message 42";
  std::string message_path = WriteFile("message", message, 0600);
  std::string signature_path =
      WriteFile("signature", Unwrap(key.Sign(message)), 0600);
  Bio bio(BIO_new(BIO_s_mem()));
  const unsigned char* der =
      reinterpret_cast<const unsigned char*>(key.PublicKeyDer().data());
  Pkey public_pkey(
      d2i_PUBKEY(nullptr, &der, static_cast<long>(key.PublicKeyDer().size())));
  std::string public_path =
      WriteFile("sm2.pub", PublicPem(public_pkey.get()), 0600);
  std::string verify =
      "openssl pkeyutl -verify -rawin -digest sm3 -pubin "
      "-inkey " +
      public_path + " -in " + message_path + " -sigfile " + signature_path;

  EXPECT_TRUE(RunQuietly(verify + " -pkeyopt distid:1234567812345678"));
  // OpenSSL 3.x signs and verifies with an empty id unless told otherwise,
  // so a mismatch here shows the default id really went into our Z.
#if OPENSSL_VERSION_MAJOR < 4
  EXPECT_FALSE(RunQuietly(verify));
#endif
}

// ---------------------------------------------------------------------------
// Certificates

// What a test certificate should say and who signs it.
struct CertSpec {
  EVP_PKEY* subject_key = nullptr;
  EVP_PKEY* issuer_key = nullptr;  // The subject's own key if null.
  X509* issuer = nullptr;          // Self-signed if null.
  std::string common_name;
  std::string organization;
  std::vector<std::string> uris;
  time_t not_before = 0;
  time_t not_after = 0;
  bool ca = false;
  long serial = 1;
  // For SM2 issuers: sign with the GB/T default id, or with an empty one
  // as OpenSSL 3.0 would by itself.
  bool sm2_default_id = true;
};

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str());
  ASSERT_NE(ext, nullptr);
  ASSERT_EQ(X509_add_ext(cert, ext, -1), 1);
  X509_EXTENSION_free(ext);
}

// Signs `cert` with the issuer's key and the scheme's digest (and id).
void SignCertificate(X509* cert, EVP_PKEY* key, bool sm2_default_id) {
  const char* digest = "SHA256";
  OSSL_PARAM params[2] = {OSSL_PARAM_construct_end(),
                          OSSL_PARAM_construct_end()};
  char id[] = "1234567812345678";
  if (EVP_PKEY_is_a(key, "ED25519")) digest = nullptr;
  if (EVP_PKEY_is_a(key, "SM2")) {
    digest = "SM3";
    if (sm2_default_id) {
      params[0] =
          OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_DIST_ID, id, 16);
    }
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ASSERT_EQ(EVP_DigestSignInit_ex(ctx, nullptr, digest, nullptr, nullptr, key,
                                  params),
            1);
  EXPECT_GT(X509_sign_ctx(cert, ctx), 0);
  EVP_MD_CTX_free(ctx);
}

X509Owned MakeCertificate(const CertSpec& spec) {
  X509Owned cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), spec.serial);
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!spec.organization.empty()) {
    X509_NAME_add_entry_by_txt(
        name, "O", MBSTRING_UTF8,
        reinterpret_cast<const unsigned char*>(spec.organization.c_str()), -1,
        -1, 0);
  }
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_UTF8,
      reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1,
      0);
  X509* issuer = spec.issuer != nullptr ? spec.issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer));
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), spec.not_before);
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), spec.not_after);
  X509_set_pubkey(cert.get(), spec.subject_key);

  if (spec.ca) {
    AddExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert.get(), issuer, NID_key_usage,
                 "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert.get(), issuer, NID_key_usage,
                 "critical,digitalSignature");
  }
  if (!spec.uris.empty()) {
    std::vector<std::string> entries;
    for (const std::string& uri : spec.uris) entries.push_back("URI:" + uri);
    AddExtension(cert.get(), issuer, NID_subject_alt_name,
                 absl::StrJoin(entries, ","));
  }
  SignCertificate(
      cert.get(),
      spec.issuer_key != nullptr ? spec.issuer_key : spec.subject_key,
      spec.sm2_default_id);
  return cert;
}

std::string CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_X509(bio.get(), cert), 1);
  return ReadBio(bio.get());
}

// Validity periods around a fixed instant, so no test depends on the clock.
constexpr time_t kNow = 1767225600;  // 2026-01-01T00:00:00Z
constexpr time_t kDay = 86400;

// A CA of the given scheme and a leaf it issued.
struct TestPki {
  Pkey ca_key;
  X509Owned ca;
  Pkey leaf_key;
  X509Owned leaf;
};

TestPki MakePki(SignatureScheme ca_scheme, SignatureScheme leaf_scheme,
                bool sm2_default_id = true,
                const std::string& ca_name = "Caselink Test Root") {
  TestPki pki;
  pki.ca_key = NewOpenSslKey(ca_scheme);
  CertSpec ca_spec;
  ca_spec.subject_key = pki.ca_key.get();
  ca_spec.common_name = ca_name;
  ca_spec.not_before = kNow - 365 * kDay;
  ca_spec.not_after = kNow + 3650 * kDay;
  ca_spec.ca = true;
  pki.ca = MakeCertificate(ca_spec);

  pki.leaf_key = NewOpenSslKey(leaf_scheme);
  CertSpec leaf_spec;
  leaf_spec.subject_key = pki.leaf_key.get();
  leaf_spec.issuer_key = pki.ca_key.get();
  leaf_spec.issuer = pki.ca.get();
  leaf_spec.common_name = "北京市司法局";
  leaf_spec.organization = "Ministry of Justice";
  leaf_spec.uris = {"caselink://110000000000/signing",
                    "spiffe://caselink.cn/node/110000000000"};
  leaf_spec.not_before = kNow - kDay;
  leaf_spec.not_after = kNow + 30 * kDay;
  leaf_spec.serial = 2;
  leaf_spec.sm2_default_id = sm2_default_id;
  pki.leaf = MakeCertificate(leaf_spec);
  return pki;
}

TEST(CertificateTest, ExposesNamesValidityFingerprintAndKey) {
  TestPki pki =
      MakePki(SignatureScheme::kEcdsaP256Sha256, SignatureScheme::kEd25519);
  Certificate leaf = Unwrap(Certificate::FromPem(CertPem(pki.leaf.get())));

  EXPECT_EQ(leaf.common_name(), "北京市司法局");
  EXPECT_TRUE(Contains(leaf.subject(), "CN=北京市司法局"));
  EXPECT_TRUE(Contains(leaf.subject(), "O=Ministry of Justice"));
  EXPECT_EQ(leaf.uri_sans(), (std::vector<std::string>{
                                 "caselink://110000000000/signing",
                                 "spiffe://caselink.cn/node/110000000000"}));
  EXPECT_EQ(leaf.not_before(), absl::FromTimeT(kNow - kDay));
  EXPECT_EQ(leaf.not_after(), absl::FromTimeT(kNow + 30 * kDay));
  EXPECT_EQ(leaf.fingerprint(),
            Unwrap(Digest(HashAlgorithm::kSha256, leaf.der())));

  PublicKey key = Unwrap(leaf.public_key());
  EXPECT_EQ(key.scheme(), SignatureScheme::kEd25519);
  PrivateKey private_key =
      Unwrap(PrivateKey::FromPem(PrivatePem(pki.leaf_key.get())));
  EXPECT_EQ(key.KeyId(), private_key.KeyId());
}

TEST(CertificateTest, PemAndDerRoundTrip) {
  TestPki pki = MakePki(SignatureScheme::kSm2Sm3, SignatureScheme::kSm2Sm3);
  Certificate leaf = Unwrap(Certificate::FromPem(CertPem(pki.leaf.get())));
  EXPECT_EQ(leaf.ToPem(), CertPem(pki.leaf.get()));
  EXPECT_EQ(Unwrap(Certificate::FromPem(leaf.ToPem())).der(), leaf.der());
  EXPECT_EQ(Unwrap(Certificate::FromDer(leaf.der())).fingerprint(),
            leaf.fingerprint());
  EXPECT_EQ(Certificate::FromDer(leaf.der() + "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Certificate::FromPem("no certificate").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CertificateTest, CertificateWithoutSansHasNoUris) {
  TestPki pki = MakePki(SignatureScheme::kEd25519, SignatureScheme::kEd25519);
  Certificate ca = Unwrap(Certificate::FromPem(CertPem(pki.ca.get())));
  EXPECT_TRUE(ca.uri_sans().empty());
  EXPECT_EQ(ca.common_name(), "Caselink Test Root");
}

TEST(TrustStoreTest, LeafIssuedByTrustedCaVerifies) {
  for (SignatureScheme scheme :
       {SignatureScheme::kEcdsaP256Sha256, SignatureScheme::kEd25519,
        SignatureScheme::kSm2Sm3}) {
    TestPki pki = MakePki(scheme, scheme);
    TrustStore store = Unwrap(TrustStore::FromPem(CertPem(pki.ca.get())));
    Certificate leaf = Unwrap(Certificate::FromPem(CertPem(pki.leaf.get())));
    absl::Status status = store.VerifyChain(leaf, absl::FromTimeT(kNow));
    EXPECT_TRUE(status.ok()) << SignatureSchemeName(scheme) << ": " << status;
  }
}

TEST(TrustStoreTest, LeafFromUnknownCaIsRejected) {
  TestPki trusted = MakePki(SignatureScheme::kEcdsaP256Sha256,
                            SignatureScheme::kEcdsaP256Sha256);
  TestPki stranger =
      MakePki(SignatureScheme::kEcdsaP256Sha256,
              SignatureScheme::kEcdsaP256Sha256, true, "Stranger Root");
  TrustStore store = Unwrap(TrustStore::FromPem(CertPem(trusted.ca.get())));
  Certificate leaf = Unwrap(Certificate::FromPem(CertPem(stranger.leaf.get())));
  absl::Status status = store.VerifyChain(leaf, absl::FromTimeT(kNow));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(status.message(),
            "certificate CN=北京市司法局,O=Ministry of Justice is not "
            "signed by a trusted CA: unable to get local issuer "
            "certificate");
}

TEST(TrustStoreTest, LeafOfImpostorCaWithTrustedNameIsRejected) {
  TestPki trusted = MakePki(SignatureScheme::kEcdsaP256Sha256,
                            SignatureScheme::kEcdsaP256Sha256);
  TestPki impostor = MakePki(SignatureScheme::kEcdsaP256Sha256,
                             SignatureScheme::kEcdsaP256Sha256);
  TrustStore store = Unwrap(TrustStore::FromPem(CertPem(trusted.ca.get())));
  Certificate leaf = Unwrap(Certificate::FromPem(CertPem(impostor.leaf.get())));
  absl::Status status = store.VerifyChain(leaf, absl::FromTimeT(kNow));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Contains(status.message(), "certificate signature failure"));
}

TEST(TrustStoreTest, ExpiredAndNotYetValidLeavesAreRejected) {
  TestPki pki = MakePki(SignatureScheme::kEd25519, SignatureScheme::kEd25519);
  TrustStore store = Unwrap(TrustStore::FromPem(CertPem(pki.ca.get())));
  Certificate leaf = Unwrap(Certificate::FromPem(CertPem(pki.leaf.get())));

  absl::Status expired =
      store.VerifyChain(leaf, absl::FromTimeT(kNow + 31 * kDay));
  EXPECT_EQ(expired.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Contains(expired.message(), "has expired"));
  EXPECT_TRUE(
      Contains(expired.message(), "is not valid at 2026-02-01T00:00:00+00:00"));

  absl::Status early =
      store.VerifyChain(leaf, absl::FromTimeT(kNow - 2 * kDay));
  EXPECT_EQ(early.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Contains(early.message(), "not yet valid"));
}

TEST(TrustStoreTest, ChainThroughIntermediateNeedsTheIntermediate) {
  TestPki root = MakePki(SignatureScheme::kSm2Sm3, SignatureScheme::kSm2Sm3);
  Pkey intermediate_key = NewOpenSslKey(SignatureScheme::kSm2Sm3);
  CertSpec intermediate_spec;
  intermediate_spec.subject_key = intermediate_key.get();
  intermediate_spec.issuer_key = root.ca_key.get();
  intermediate_spec.issuer = root.ca.get();
  intermediate_spec.common_name = "Beijing Issuing CA";
  intermediate_spec.not_before = kNow - 100 * kDay;
  intermediate_spec.not_after = kNow + 1000 * kDay;
  intermediate_spec.ca = true;
  intermediate_spec.serial = 3;
  X509Owned intermediate_x509 = MakeCertificate(intermediate_spec);

  Pkey leaf_key = NewOpenSslKey(SignatureScheme::kSm2Sm3);
  CertSpec leaf_spec;
  leaf_spec.subject_key = leaf_key.get();
  leaf_spec.issuer_key = intermediate_key.get();
  leaf_spec.issuer = intermediate_x509.get();
  leaf_spec.common_name = "Haidian node";
  leaf_spec.not_before = kNow - kDay;
  leaf_spec.not_after = kNow + kDay;
  leaf_spec.serial = 4;
  X509Owned leaf_x509 = MakeCertificate(leaf_spec);

  TrustStore store = Unwrap(TrustStore::FromPem(CertPem(root.ca.get())));
  Certificate leaf = Unwrap(Certificate::FromPem(CertPem(leaf_x509.get())));
  Certificate intermediate =
      Unwrap(Certificate::FromPem(CertPem(intermediate_x509.get())));
  absl::Status status =
      store.VerifyChain(leaf, {intermediate}, absl::FromTimeT(kNow));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(store.VerifyChain(leaf, absl::FromTimeT(kNow)).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(TrustStoreTest, Sm2CertificatesAreCheckedWithTheDefaultSignerId) {
  // A CA that signed with an empty id, as bare OpenSSL 3.0 would, made a
  // signature that a GB/T verifier rejects.
  TestPki pki = MakePki(SignatureScheme::kSm2Sm3, SignatureScheme::kSm2Sm3,
                        /*sm2_default_id=*/false);
  TrustStore store = Unwrap(TrustStore::FromPem(CertPem(pki.ca.get())));
  Certificate leaf = Unwrap(Certificate::FromPem(CertPem(pki.leaf.get())));
  absl::Status status = store.VerifyChain(leaf, absl::FromTimeT(kNow));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Contains(status.message(), "certificate signature failure"));
}

TEST(TrustStoreTest, VerifiesFromManyThreads) {
  TestPki pki = MakePki(SignatureScheme::kSm2Sm3, SignatureScheme::kSm2Sm3);
  TrustStore store = Unwrap(TrustStore::FromPem(CertPem(pki.ca.get())));
  Certificate leaf = Unwrap(Certificate::FromPem(CertPem(pki.leaf.get())));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        if (!store.VerifyChain(leaf, absl::FromTimeT(kNow)).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

using TrustStoreFileTest = TempDirTest;

TEST_F(TrustStoreFileTest, BundleFileWithManyCasVerifiesLeavesOfEach) {
  TestPki first = MakePki(SignatureScheme::kEcdsaP256Sha256,
                          SignatureScheme::kEcdsaP256Sha256);
  TestPki second = MakePki(SignatureScheme::kSm2Sm3, SignatureScheme::kSm2Sm3);
  std::string path =
      WriteFile("ca-bundle.pem",
                CertPem(first.ca.get()) + CertPem(second.ca.get()), 0644);
  TrustStore store = Unwrap(TrustStore::LoadPemFile(path));
  EXPECT_EQ(store.size(), 2u);
  for (X509* leaf : {first.leaf.get(), second.leaf.get()}) {
    Certificate certificate = Unwrap(Certificate::FromPem(CertPem(leaf)));
    EXPECT_TRUE(store.VerifyChain(certificate, absl::FromTimeT(kNow)).ok());
  }
}

TEST_F(TrustStoreFileTest, MissingOrEmptyBundleErrorNamesPath) {
  std::string missing = dir_ + "/absent.pem";
  absl::Status status = TrustStore::LoadPemFile(missing).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Contains(status.message(), missing));

  std::string empty = WriteFile("empty.pem", "", 0644);
  status = TrustStore::LoadPemFile(empty).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), empty));

  status = Certificate::LoadPemFile(missing).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Contains(status.message(), missing));
}

}  // namespace
}  // namespace caselink
