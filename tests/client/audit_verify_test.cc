// Offline verification of audit answers, built here from a real Merkle
// tree, a head signed with a generated key and a certificate from a test
// CA: a good answer verifies under every scheme, and each kind of
// tampering is found and named by its entry. Then paging through
// AuditClient against an in-process fake node, and the export formats: CSV
// quoting, JSON with hex bytes, and JSON Lines exports read back and
// verified.
#include "client/audit_verify.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/audit_client.h"
#include "client/audit_export.h"
#include "core/crypto.h"
#include "core/merkle.h"
#include "core/strings.h"
#include "core/tree_head.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace caselink::client {
namespace {

constexpr char kNode[] = "350212000000";
constexpr char kOtherNode[] = "350200000000";
constexpr time_t kNow = 1767225600;  // 2026-01-01T00:00:00Z
constexpr time_t kDay = 86400;

template <typename T>
T Unwrap(absl::StatusOr<T> value) {
  if (!value.ok()) {
    ADD_FAILURE() << value.status();
    std::abort();
  }
  return *std::move(value);
}

// ---------------------------------------------------------------------------
// A test PKI made with OpenSSL directly.

struct PkeyFree {
  void operator()(EVP_PKEY* pkey) const { EVP_PKEY_free(pkey); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct X509Free {
  void operator()(X509* x509) const { X509_free(x509); }
};
using X509Owned = std::unique_ptr<X509, X509Free>;

Pkey NewKey(SignatureScheme scheme) {
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

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::string pem = BioText(bio);
  BIO_free_all(bio);
  return pem;
}

std::string CertPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  std::string pem = BioText(bio);
  BIO_free_all(bio);
  return pem;
}

void Extend(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str());
  ASSERT_NE(ext, nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// Signs with the digest each scheme's certificates use; SM2 with the
// GB/T default signer id, as TrustStore expects.
void SignWith(X509* cert, EVP_PKEY* key) {
  const char* digest = "SHA256";
  char id[] = "1234567812345678";
  OSSL_PARAM params[2] = {OSSL_PARAM_construct_end(),
                          OSSL_PARAM_construct_end()};
  if (EVP_PKEY_is_a(key, "ED25519")) digest = nullptr;
  if (EVP_PKEY_is_a(key, "SM2")) {
    digest = "SM3";
    params[0] =
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_DIST_ID, id, 16);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ASSERT_EQ(EVP_DigestSignInit_ex(ctx, nullptr, digest, nullptr, nullptr, key,
                                  params),
            1);
  EXPECT_GT(X509_sign_ctx(cert, ctx), 0);
  EVP_MD_CTX_free(ctx);
}

// A CA certificate (issuer null) or one it issues for `uri`.
X509Owned Issue(EVP_PKEY* subject, const std::string& name, X509* issuer,
                EVP_PKEY* issuer_key, const std::string& uri) {
  X509Owned cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), issuer ? 2 : 1);
  X509_NAME_add_entry_by_txt(
      X509_get_subject_name(cert.get()), "CN", MBSTRING_UTF8,
      reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), kNow - kDay);
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), kNow + 30 * kDay);
  X509_set_pubkey(cert.get(), subject);
  if (issuer == nullptr) {
    Extend(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    Extend(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    Extend(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    Extend(cert.get(), signer, NID_subject_alt_name, "URI:" + uri);
  }
  SignWith(cert.get(), issuer_key != nullptr ? issuer_key : subject);
  return cert;
}

// A CA, and a node signing key with a certificate the CA issued for it.
struct Authority {
  Pkey ca_key;
  X509Owned ca;
  Pkey node_key;
  X509Owned node_cert;

  Authority(SignatureScheme scheme, const std::string& ca_name,
            const std::string& node_code) {
    ca_key = NewKey(scheme);
    ca = Issue(ca_key.get(), ca_name, nullptr, nullptr, "");
    node_key = NewKey(scheme);
    node_cert = Issue(node_key.get(), "node", ca.get(), ca_key.get(),
                      Cat("urn:caselink:node:", node_code));
  }
  TrustStore Trust() const {
    return Unwrap(TrustStore::FromPem(CertPem(ca.get())));
  }
  PrivateKey Signer() const {
    return Unwrap(PrivateKey::FromPem(KeyPem(node_key.get())));
  }
};

// ---------------------------------------------------------------------------
// A node's log: events appended in order, each case's chained.

class TestLog {
 public:
  explicit TestLog(SignatureScheme scheme) : hash_(HashAlgorithmOf(scheme)) {}

  // Appends an event of `case_id` (none if empty) and returns its index.
  uint64_t Add(const std::string& case_id, const std::string& node = kNode) {
    v1::AuditEvent event;
    const uint64_t index = leaves_.size();
    event.set_index(index);
    event.mutable_at()->set_seconds(kNow - 3600 + static_cast<int64_t>(index));
    event.set_node(node);
    event.set_kind(v1::AUDIT_EVENT_KIND_STATE_CHANGE);
    event.set_message_id(std::string(16, static_cast<char>(index + 1)));
    event.set_message_kind(v1::MESSAGE_KIND_REFERRAL);
    event.set_case_id(case_id);
    event.set_peer(kOtherNode);
    event.set_state("accepted");
    event.set_detail(Cat("note ", index, ", with \"quotes\", commas"));
    if (!case_id.empty()) {
      auto last = last_of_case_.find(case_id);
      if (last != last_of_case_.end())
        event.set_previous_in_case(last->second + 1);
      last_of_case_[case_id] = index;
    }
    leaves_.push_back(event.SerializeAsString());
    return index;
  }

  // An answer holding `indices`, in that order, against a head of the
  // whole log signed by `authority`'s node key.
  v1::AuditAnswer Answer(const std::vector<uint64_t>& indices,
                         const Authority& authority) const {
    std::vector<std::string_view> views(leaves_.begin(), leaves_.end());
    BatchTree tree = Unwrap(BatchTree::Build(hash_, views));
    v1::AuditAnswer answer;
    *answer.mutable_head() =
        Unwrap(SignTreeHead(authority.Signer(), kNode, leaves_.size(),
                            tree.root(), absl::FromUnixSeconds(kNow)));
    answer.set_signing_certificate_pem(CertPem(authority.node_cert.get()));
    for (uint64_t index : indices) {
      v1::AuditEntry& entry = *answer.add_entries();
      entry.set_index(index);
      entry.set_event(leaves_[index]);
      for (std::string& hash : Unwrap(tree.AuditPath(index))) {
        entry.add_inclusion_path(std::move(hash));
      }
    }
    return answer;
  }

  std::vector<uint64_t> All() const {
    std::vector<uint64_t> all;
    for (uint64_t i = 0; i < leaves_.size(); ++i) all.push_back(i);
    return all;
  }

 private:
  HashAlgorithm hash_;
  std::vector<std::string> leaves_;
  std::map<std::string, uint64_t> last_of_case_;
};

// The problems as text, one per line, for assertions and messages.
std::vector<std::string> Lines(const AuditVerification& result) {
  std::vector<std::string> lines;
  for (const AuditProblem& problem : result.problems) {
    lines.push_back(problem.ToString());
  }
  return lines;
}

::testing::AssertionResult HasProblem(const AuditVerification& result,
                                      std::string_view line) {
  for (const std::string& problem : Lines(result)) {
    if (problem.find(line) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
  }
  std::string all;
  for (const std::string& problem : Lines(result)) all += "\n  " + problem;
  return ::testing::AssertionFailure()
         << "no problem contains \"" << line << "\"; problems:" << all;
}

// Case "C-1" at 1, 3, 4, 7 and 10 of a log of 12; others elsewhere.
class AuditVerifyTest : public ::testing::Test {
 protected:
  explicit AuditVerifyTest(
      SignatureScheme scheme = SignatureScheme::kEcdsaP256Sha256)
      : authority_(scheme, "Fujian Test CA", kNode), log_(scheme) {
    for (int i = 0; i < 12; ++i) {
      const bool ours = i == 1 || i == 3 || i == 4 || i == 7 || i == 10;
      log_.Add(ours ? "C-1" : (i % 2 == 0 ? "C-2" : ""));
    }
    history_ = {1, 3, 4, 7, 10};
  }

  AuditVerification Check(const v1::AuditAnswer& answer,
                          AuditScope scope = AuditScope::kCaseHistory) {
    AuditVerifyOptions options;
    options.scope = scope;
    options.expected_node = kNode;
    if (scope == AuditScope::kCaseHistory) options.case_id = "C-1";
    return VerifyAuditAnswer(answer, authority_.Trust(), options);
  }

  Authority authority_;
  TestLog log_;
  std::vector<uint64_t> history_;
};

class AuditVerifySchemeTest
    : public AuditVerifyTest,
      public ::testing::WithParamInterface<SignatureScheme> {
 protected:
  AuditVerifySchemeTest() : AuditVerifyTest(GetParam()) {}
};

TEST_P(AuditVerifySchemeTest, GoodHistoryAndExportVerify) {
  const AuditVerification history = Check(log_.Answer(history_, authority_));
  EXPECT_TRUE(history.ok()) << ::testing::PrintToString(Lines(history));
  EXPECT_EQ(history.Summary(),
            "verified: 5 entries against head 350212000000 size 12");

  const AuditVerification all =
      Check(log_.Answer(log_.All(), authority_), AuditScope::kExport);
  EXPECT_TRUE(all.ok()) << ::testing::PrintToString(Lines(all));
  EXPECT_EQ(all.entries, 12u);
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, AuditVerifySchemeTest,
                         ::testing::Values(SignatureScheme::kEcdsaP256Sha256,
                                           SignatureScheme::kEd25519,
                                           SignatureScheme::kSm2Sm3));

TEST_F(AuditVerifyTest, ChangedEventByteFailsItsInclusionProof) {
  v1::AuditAnswer answer = log_.Answer(history_, authority_);
  // A byte of the detail text, so that the event still parses and only its
  // proof can tell.
  std::string& event = *answer.mutable_entries(2)->mutable_event();
  const size_t at = event.find("note 4");
  ASSERT_NE(at, std::string::npos);
  event[at + 5] = '5';

  const AuditVerification result = Check(answer);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(Lines(result), std::vector<std::string>{
                               "350212000000 entry 4: event does not match "
                               "its inclusion proof"});
}

TEST_F(AuditVerifyTest, RemovedEntryShowsAsAGapNamingTheMissingIndex) {
  const AuditVerification result =
      Check(log_.Answer({1, 3, 7, 10}, authority_));
  EXPECT_EQ(Lines(result),
            std::vector<std::string>{
                "350212000000 entry 7: the case's previous event, entry 4, "
                "is missing from the answer"});
}

TEST_F(AuditVerifyTest, RemovedFirstEntryIsFoundInAFullHistory) {
  const AuditVerification result =
      Check(log_.Answer({3, 4, 7, 10}, authority_));
  EXPECT_TRUE(HasProblem(result,
                         "350212000000 entry 3: the case's previous "
                         "event, entry 1, is missing"));
  // The same answer as selected events claims nothing about the rest.
  EXPECT_TRUE(
      Check(log_.Answer({3, 4, 7, 10}, authority_), AuditScope::kEvents).ok());
}

TEST_F(AuditVerifyTest, AnswerWithANextPageIsNotAFullHistory) {
  v1::AuditAnswer answer = log_.Answer({1, 3}, authority_);
  answer.set_next_page_token("page-2");
  EXPECT_TRUE(HasProblem(Check(answer),
                         "350212000000: the answer has a next "
                         "page"));
}

TEST_F(AuditVerifyTest, SwappedEntriesAreOutOfOrder) {
  const AuditVerification result =
      Check(log_.Answer({1, 4, 3, 7, 10}, authority_));
  EXPECT_FALSE(result.ok());
  EXPECT_TRUE(HasProblem(result,
                         "350212000000 entry 3: out of order: comes after "
                         "entry 4"));
  EXPECT_EQ(Check(log_.Answer({1, 4, 3}, authority_), AuditScope::kEvents)
                .problems.size(),
            1u);
}

TEST_F(AuditVerifyTest, SignedWrongRootFailsEveryEntry) {
  v1::AuditAnswer answer = log_.Answer(history_, authority_);
  std::string root = answer.head().root_hash();
  root[0] = static_cast<char>(root[0] ^ 1);
  // Signed properly: the node itself states a root its entries are not in.
  *answer.mutable_head() = Unwrap(SignTreeHead(
      authority_.Signer(), kNode, 12, root, absl::FromUnixSeconds(kNow)));

  const AuditVerification result = Check(answer);
  ASSERT_EQ(result.problems.size(), history_.size());
  for (uint64_t index : history_) {
    EXPECT_TRUE(HasProblem(result, Cat("350212000000 entry ", index,
                                       ": event does not match its "
                                       "inclusion proof")));
  }
}

TEST_F(AuditVerifyTest, BadSignatureFailsTheHead) {
  v1::AuditAnswer answer = log_.Answer(history_, authority_);
  std::string& signature = *answer.mutable_head()->mutable_signature();
  signature[signature.size() / 2] ^= 0x10;
  const AuditVerification result = Check(answer);
  ASSERT_EQ(result.problems.size(), 1u)
      << ::testing::PrintToString(Lines(result));
  EXPECT_FALSE(result.problems[0].entry.has_value());
  EXPECT_TRUE(HasProblem(result, "350212000000: signature does not verify"));
}

TEST_F(AuditVerifyTest, CertificateFromAnUntrustedCaFails) {
  const Authority impostor(SignatureScheme::kEcdsaP256Sha256, "Fujian Test CA",
                           kNode);
  const AuditVerification result = Check(log_.Answer(history_, impostor));
  EXPECT_TRUE(
      HasProblem(result, "350212000000: signing certificate is not trusted"));
}

TEST_F(AuditVerifyTest, CertificateForAnotherNodeFails) {
  // The right CA and the right key, but a certificate naming another node.
  v1::AuditAnswer answer = log_.Answer(history_, authority_);
  const X509Owned other =
      Issue(authority_.node_key.get(), "node", authority_.ca.get(),
            authority_.ca_key.get(), Cat("urn:caselink:node:", kOtherNode));
  answer.set_signing_certificate_pem(CertPem(other.get()));

  EXPECT_EQ(Lines(Check(answer)),
            std::vector<std::string>{
                "350212000000: signing certificate is for node 350200000000, "
                "not for node 350212000000"});
}

TEST_F(AuditVerifyTest, EntryOfAnotherNodeFails) {
  TestLog log(SignatureScheme::kEcdsaP256Sha256);
  log.Add("C-1");
  log.Add("C-1", kOtherNode);
  log.Add("C-1");
  const AuditVerification result = Check(log.Answer({0, 1, 2}, authority_));
  EXPECT_EQ(Lines(result),
            std::vector<std::string>{"350212000000 entry 1: event is of node "
                                     "350200000000, not of 350212000000"});
}

TEST_F(AuditVerifyTest, ExportNamesEveryMissingRunAndEveryProblem) {
  v1::AuditAnswer answer = log_.Answer({0, 1, 2, 6, 7, 10}, authority_);
  answer.mutable_entries(1)->mutable_inclusion_path(0)->back() ^= 1;
  const AuditVerification result = Check(answer, AuditScope::kExport);
  EXPECT_EQ(Lines(result),
            (std::vector<std::string>{
                "350212000000 entry 1: event does not match its inclusion "
                "proof",
                "350212000000 entries 3-5: missing from the export",
                "350212000000 entries 8-9: missing from the export",
                "350212000000 entry 11: missing from the export"}));
}

TEST_F(AuditVerifyTest, IndexOutsideTheTreeAndMismatchedEventIndexFail) {
  v1::AuditAnswer answer = log_.Answer({1, 3}, authority_);
  answer.mutable_entries(1)->set_index(40);
  const AuditVerification result = Check(answer, AuditScope::kEvents);
  EXPECT_TRUE(HasProblem(result, "entry 40: event says it is entry 3"));
  EXPECT_TRUE(HasProblem(result, "entry 40: index is outside the tree"));
}

TEST_F(AuditVerifyTest, CasePathPartsAreCheckedPerNode) {
  v1::GetCasePathResponse path;
  v1::NodeHistory& here = *path.add_nodes();
  here.set_code(kNode);
  *here.mutable_answer() = log_.Answer(history_, authority_);
  v1::NodeHistory& away = *path.add_nodes();
  away.set_code(kOtherNode);
  away.set_error("unreachable");

  const std::vector<AuditVerification> results =
      VerifyCasePath(path, "C-1", authority_.Trust(), AuditVerifyOptions());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0].ok()) << ::testing::PrintToString(Lines(results[0]));
  EXPECT_EQ(Lines(results[1]),
            std::vector<std::string>{"350200000000: no answer: unreachable"});
}

TEST_F(AuditVerifyTest, PagesWithDifferentHeadsDoNotMerge) {
  v1::AuditAnswer all;
  v1::AuditAnswer first = log_.Answer({1, 3}, authority_);
  first.set_next_page_token("2");
  ASSERT_TRUE(AppendAuditPage(first, &all, /*first=*/true).ok());
  EXPECT_TRUE(
      AppendAuditPage(log_.Answer({4}, authority_), &all, false).code() ==
      absl::StatusCode::kFailedPrecondition);

  v1::AuditAnswer second = first;  // Same head.
  second.clear_entries();
  *second.add_entries() = log_.Answer({4}, authority_).entries(0);
  second.clear_next_page_token();
  ASSERT_TRUE(AppendAuditPage(second, &all, false).ok());
  EXPECT_EQ(all.entries_size(), 3);
  EXPECT_TRUE(all.next_page_token().empty());
}

// ---------------------------------------------------------------------------
// Fetching through AuditClient from an in-process fake node

// Serves a fixed set of pages of one case's history, by page token "0",
// "1", ...; NotFound for any other case.
class FakeAuditService final : public v1::AuditService::Service {
 public:
  explicit FakeAuditService(std::vector<v1::AuditAnswer> pages)
      : pages_(std::move(pages)) {}

  grpc::Status GetCaseHistory(grpc::ServerContext*,
                              const v1::GetCaseHistoryRequest* request,
                              v1::AuditAnswer* answer) override {
    if (request->case_id() != "C-1") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such case");
    }
    const size_t page =
        request->page_token().empty() ? 0 : std::stoul(request->page_token());
    if (page >= pages_.size()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad token");
    }
    *answer = pages_[page];
    if (page + 1 < pages_.size()) answer->set_next_page_token(Cat(page + 1));
    return grpc::Status::OK;
  }

 private:
  const std::vector<v1::AuditAnswer> pages_;
};

class AuditClientTest : public AuditVerifyTest {
 protected:
  // Splits the answer for `indices` into pages of `per_page` entries with
  // its head; `other_head` gives the last page another signature.
  std::unique_ptr<AuditClient> Serve(const std::vector<uint64_t>& indices,
                                     int per_page, bool other_head = false) {
    const v1::AuditAnswer whole = log_.Answer(indices, authority_);
    std::vector<v1::AuditAnswer> pages;
    for (int i = 0; i < whole.entries_size(); ++i) {
      if (i % per_page == 0) {
        pages.emplace_back();
        *pages.back().mutable_head() = whole.head();
        pages.back().set_signing_certificate_pem(
            whole.signing_certificate_pem());
      }
      *pages.back().add_entries() = whole.entries(i);
    }
    if (other_head) {
      *pages.back().mutable_head() = log_.Answer({}, authority_).head();
      pages.back().mutable_head()->set_tree_size(13);
    }
    service_ = std::make_unique<FakeAuditService>(std::move(pages));
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    return AuditClient::ForChannel(
        server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  std::unique_ptr<FakeAuditService> service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(AuditClientTest, FullCaseHistoryJoinsPagesIntoOneVerifiedAnswer) {
  std::unique_ptr<AuditClient> client = Serve(history_, /*per_page=*/2);
  const v1::AuditAnswer answer = Unwrap(client->FullCaseHistory("C-1"));
  EXPECT_EQ(answer.entries_size(), 5);
  EXPECT_TRUE(answer.next_page_token().empty());
  const AuditVerification result = Check(answer);
  EXPECT_TRUE(result.ok()) << ::testing::PrintToString(Lines(result));
}

TEST_F(AuditClientTest, PageAgainstAnotherHeadIsRefused) {
  std::unique_ptr<AuditClient> client =
      Serve(history_, /*per_page=*/2, /*other_head=*/true);
  EXPECT_EQ(client->FullCaseHistory("C-1").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(AuditClientTest, NodeStatusPassesThrough) {
  std::unique_ptr<AuditClient> client = Serve(history_, /*per_page=*/5);
  const absl::Status status = client->FullCaseHistory("C-9").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "no such case");
}

// ---------------------------------------------------------------------------
// Export formats

TEST(AuditExportTest, CsvQuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(cli::CsvField("plain"), "plain");
  EXPECT_EQ(cli::CsvField(""), "");
  EXPECT_EQ(cli::CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(cli::CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(cli::CsvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(cli::CsvField("cr\r"), "\"cr\r\"");
  EXPECT_EQ(cli::CsvField(" padded"), "\" padded\"");
  EXPECT_EQ(cli::CsvField("中文"), "中文");
}

TEST_F(AuditVerifyTest, CsvHasAHeaderAndOneQuotedRowPerEvent) {
  const std::string csv = cli::ExportCsv(log_.Answer({1, 3}, authority_));
  const std::string header =
      "index,node,at,kind,message_id,message_kind,case_id,peer,state,detail,"
      "previous_in_case\r\n";
  ASSERT_EQ(csv.substr(0, header.size()), header);
  EXPECT_NE(csv.find("\r\n3,350212000000,2025-12-31T23:00:03Z,state-change,"
                     "04040404040404040404040404040404,referral,C-1,"
                     "350200000000,accepted,\"note 3, with \"\"quotes\"\", "
                     "commas\",2\r\n"),
            std::string::npos)
      << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
}

TEST_F(AuditVerifyTest, JsonLinesExportReadsBackAndVerifies) {
  const v1::AuditAnswer answer = log_.Answer(log_.All(), authority_);
  const std::string text =
      Unwrap(cli::ExportJsonLines(answer, cli::ExportScope{true, ""}));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 13);

  const cli::AuditFile file = Unwrap(cli::ParseAuditFile(text));
  ASSERT_EQ(file.kind, cli::AuditFile::Kind::kExport);
  EXPECT_TRUE(file.scope.whole_log);
  EXPECT_TRUE(file.mismatches.empty());
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(file.answer, answer));
  EXPECT_TRUE(Check(file.answer, AuditScope::kExport).ok());
}

TEST_F(AuditVerifyTest, JsonLinesWithAnEditedReadableFieldIsCaught) {
  const std::string text = Unwrap(cli::ExportJsonLines(
      log_.Answer(history_, authority_), cli::ExportScope{false, "C-1"}));
  std::string edited = text;
  const size_t state = edited.find("\"state\":\"accepted\"");
  ASSERT_NE(state, std::string::npos);
  edited.replace(state, 18, "\"state\":\"rejected\"");

  const cli::AuditFile file = Unwrap(cli::ParseAuditFile(edited));
  EXPECT_FALSE(file.scope.whole_log);
  EXPECT_EQ(file.scope.case_id, "C-1");
  ASSERT_EQ(file.mismatches.size(), 1u);
  EXPECT_EQ(file.mismatches[0].ToString(),
            "350212000000 entry 1: field \"state\" does not say what the "
            "event bytes say (accepted)");
  // The proofs themselves still hold: the bytes were not touched.
  EXPECT_TRUE(Check(file.answer).ok());
}

TEST_F(AuditVerifyTest, AnswerJsonHasHexBytesAndRoundTrips) {
  const v1::AuditAnswer answer = log_.Answer({1, 3}, authority_);
  const std::string json = Unwrap(cli::AuditToJson(answer));
  EXPECT_NE(json.find(Cat("\"root_hash\":\"",
                          HexEncode(answer.head().root_hash()), "\"")),
            std::string::npos);
  EXPECT_NE(json.find(Cat("\"inclusion_path\":[\"",
                          HexEncode(answer.entries(0).inclusion_path(0)))),
            std::string::npos);

  const cli::AuditFile file = Unwrap(cli::ParseAuditFile(json));
  ASSERT_EQ(file.kind, cli::AuditFile::Kind::kAnswer);
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(file.answer, answer));

  v1::GetCasePathResponse path;
  path.add_nodes()->set_code(kNode);
  *path.mutable_nodes(0)->mutable_answer() = answer;
  const cli::AuditFile path_file =
      Unwrap(cli::ParseAuditFile(Unwrap(cli::AuditToJson(path))));
  EXPECT_EQ(path_file.kind, cli::AuditFile::Kind::kCasePath);
  EXPECT_EQ(path_file.path.nodes(0).answer().entries_size(), 2);
}

TEST(AuditExportTest, KindNamesRoundTripAndUnknownNamesAreRefused) {
  for (int value = 1; value <= 10; ++value) {
    const auto kind = static_cast<v1::AuditEventKind>(value);
    EXPECT_EQ(Unwrap(cli::ParseAuditKind(cli::AuditKindName(kind))), kind);
  }
  EXPECT_EQ(cli::ParseAuditKind("sent").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace caselink::client
