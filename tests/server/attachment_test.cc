// Attachments between real caselinkd processes on a line of three Fujian
// nodes, county to city to province: uploaded at the county, resumed after
// a broken upload, refused when too large or not what its digest says, and
// carried with a referral through the city, which can neither read them
// nor lose them when it is killed mid-transfer.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "caselink/v1/cases.grpc.pb.h"
#include "caselink/v1/peer.grpc.pb.h"
#include "core/crypto.h"
#include "core/envelope.h"
#include "core/seal.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/network.h"

namespace caselink::testing {
namespace {

constexpr char kFujian[] = "350000000000";
constexpr char kXiamen[] = "350200000000";
constexpr char kTongan[] = "350212000000";

constexpr size_t kPiece = 256 * 1024;
// The county's limit, low so that going over it is cheap.
constexpr uint64_t kCountyLimit = 4 << 20;

NodeSpec Spec(const char* code, const char* name, const char* parent,
              std::string extra = "") {
  std::vector<std::string> peers;
  if (parent[0] != '\0') peers.push_back(parent);
  NodeSpec spec(code, name, peers, Cat(kFastRetry, extra));
  spec.parent = parent;
  return spec;
}

// True if any file under `dir` contains `needle`.
bool AnyFileContains(const std::string& dir, const std::string& needle) {
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    if (bytes.str().find(needle) != std::string::npos) return true;
  }
  return false;
}

// `size` bytes that differ from piece to piece and from test to test
// (`seed`), with `marker` in clear every 64 KiB.
std::string Content(size_t size, uint32_t seed, const std::string& marker) {
  std::string content(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : content) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  for (size_t at = 0; at + marker.size() <= size; at += 64 * 1024) {
    content.replace(at, marker.size(), marker);
  }
  return content;
}

std::string Sha256(const std::string& content) {
  auto digest = Digest(HashAlgorithm::kSha256, content);
  EXPECT_TRUE(digest.ok());
  return digest.ok() ? *digest : "";
}

v1::Referral ReferralWith(const v1::AttachmentRef& ref) {
  v1::Referral referral;
  v1::Applicant* applicant = referral.add_applicants();
  applicant->set_name("Li Na");
  applicant->set_id_number("350212199203034567");
  applicant->set_phone("13900000000");
  applicant->set_home_region("350212");
  applicant->set_workplace_region("350212");
  referral.set_case_type(v1::CASE_TYPE_UNPAID_WAGES);
  referral.set_employer("Xiamen Harbour Construction Co.");
  referral.set_facts("Eight months of wages unpaid.");
  referral.set_amount_claimed_fen(4800000);
  *referral.add_attachments() = ref;
  return referral;
}

class AttachmentTest : public ::testing::Test {
 protected:
  // One network for the suite: starting three nodes and spreading the
  // directory costs more than every test together.
  static void SetUpTestSuite() {
    NetworkOptions options;
    options.directories = true;
    auto network = TestNetwork::Create(
        {Spec(kFujian, "Fujian Provincial Department of Justice", ""),
         Spec(kXiamen, "Xiamen City Justice Bureau", kFujian),
         Spec(kTongan, "Tong'an County Justice Bureau", kXiamen,
              Cat("workflow:\n  max_attachment_bytes: ", kCountyLimit, "\n"))},
        options);
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = network->release();
    ASSERT_TRUE(network_->StartAll().ok());
    ASSERT_TRUE(WaitForDirectoryAndLinks());
  }

  static void TearDownTestSuite() {
    delete network_;
    network_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(network_, nullptr);
    files_ = std::make_unique<TempDir>();
  }

  static bool WaitForDirectoryAndLinks() {
    return WaitFor(
        [] {
          for (const std::string& code : network_->Codes()) {
            auto client = network_->OperatorClient(code);
            if (!client.ok()) return false;
            auto status = (*client)->GetStatus(absl::Seconds(2));
            if (!status.ok()) return false;
            auto it = status->directory_versions().find(kFujian);
            if (it == status->directory_versions().end()) return false;
            for (const auto& peer : status->peers()) {
              if (peer.state() != v1::LINK_STATE_CONNECTED) return false;
            }
          }
          return true;
        },
        absl::Seconds(30));
  }

  std::unique_ptr<client::NodeClient> Client(const std::string& code) {
    auto client = network_->OperatorClient(code);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  std::string WriteFile(const std::string& name, const std::string& content) {
    std::string path = Cat(files_->path(), "/", name);
    std::ofstream out(path, std::ios::binary);
    out << content;
    return path;
  }

  // Sends `start`, then each chunk, then ends the stream.
  static grpc::Status RawUpload(client::NodeClient& client,
                                const v1::UploadAttachmentRequest::Start& start,
                                const std::vector<v1::AttachmentChunk>& chunks,
                                v1::UploadAttachmentResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
    auto writer = client.case_stub()->UploadAttachment(&context, response);
    v1::UploadAttachmentRequest message;
    *message.mutable_start() = start;
    bool open = writer->Write(message);
    for (const v1::AttachmentChunk& chunk : chunks) {
      if (!open) break;
      *message.mutable_chunk() = chunk;
      open = writer->Write(message);
    }
    if (open) writer->WritesDone();
    return writer->Finish();
  }

  static v1::UploadAttachmentRequest::Start StartOf(const std::string& content,
                                                    const std::string& digest) {
    v1::UploadAttachmentRequest::Start start;
    start.set_name("evidence.bin");
    start.set_media_type("application/octet-stream");
    start.set_size(content.size());
    start.set_digest(digest);
    start.set_digest_algorithm(v1::DIGEST_ALGORITHM_SHA256);
    return start;
  }

  static v1::AttachmentChunk ChunkOf(const std::string& content,
                                     const std::string& digest, size_t offset,
                                     size_t length) {
    v1::AttachmentChunk chunk;
    chunk.set_digest(digest);
    chunk.set_offset(offset);
    chunk.set_total_size(content.size());
    chunk.set_data(content.substr(offset, length));
    return chunk;
  }

  // Uploads `content` at the county and refers a case carrying it to the
  // province; returns the reference.
  v1::AttachmentRef UploadAndRefer(const std::string& content,
                                   const std::string& name) {
    auto county = Client(kTongan);
    auto ref = county->UploadAttachment(WriteFile(name, content));
    EXPECT_TRUE(ref.ok()) << ref.status();
    if (!ref.ok()) return {};
    v1::CreateReferralRequest request;
    request.set_handler(kFujian);
    *request.mutable_referral() = ReferralWith(*ref);
    auto opened = county->CreateReferral(request);
    EXPECT_TRUE(opened.ok()) << opened.status();
    return *ref;
  }

  // Waits until the province holds the whole attachment.
  bool WaitComplete(const std::string& digest,
                    absl::Duration timeout = absl::Seconds(30)) {
    auto province = Client(kFujian);
    return WaitFor(
        [&] {
          auto upload = province->GetUpload(digest, absl::Seconds(2));
          return upload.ok() && upload->complete();
        },
        timeout);
  }

  std::string Download(const std::string& code, const std::string& digest) {
    auto client = Client(code);
    const std::string out = Cat(files_->path(), "/download-", code);
    auto size = client->DownloadAttachment(digest, out);
    EXPECT_TRUE(size.ok()) << size.status();
    return size.ok() ? ReadFile(out) : "";
  }

  static TestNetwork* network_;
  std::unique_ptr<TempDir> files_;
};

TestNetwork* AttachmentTest::network_ = nullptr;

TEST_F(AttachmentTest, NodeReportsSha256ForEcdsaSigning) {
  auto status = Client(kTongan)->GetStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->attachment_digest(), v1::DIGEST_ALGORITHM_SHA256);
}

TEST_F(AttachmentTest, HandlerGetsTheAttachmentWholeThroughTheRelay) {
  const std::string content =
      Content(4 * kPiece + 12345, 1, "PAYSLIP-MARKER-a41c");
  v1::AttachmentRef ref = UploadAndRefer(content, "payslips.pdf");
  ASSERT_EQ(ref.digest(), Sha256(content));
  EXPECT_EQ(ref.digest_algorithm(), v1::DIGEST_ALGORITHM_SHA256);

  ASSERT_TRUE(WaitComplete(ref.digest())) << network_->Process(kFujian).Log();
  auto upload = Client(kFujian)->GetUpload(ref.digest());
  ASSERT_TRUE(upload.ok());
  EXPECT_EQ(upload->received(), content.size());
  EXPECT_EQ(upload->size(), content.size());
  EXPECT_EQ(Download(kFujian, ref.digest()), content);
}

TEST_F(AttachmentTest, RelayHoldsNoAttachmentContentInClear) {
  const std::string marker = "WAGE-LEDGER-MARKER-9b27e";
  const std::string content = Content(3 * kPiece, 2, marker);
  v1::AttachmentRef ref = UploadAndRefer(content, "ledger.xlsx");
  ASSERT_TRUE(WaitComplete(ref.digest()));

  // The handler's files do hold it in clear, so the search can see it...
  EXPECT_TRUE(AnyFileContains(network_->DataDir(kFujian), marker));
  // ...and the relay's do not.
  EXPECT_FALSE(AnyFileContains(network_->DataDir(kXiamen), marker));
  auto relay = Client(kXiamen)->GetUpload(ref.digest());
  EXPECT_EQ(relay.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AttachmentTest, InterruptedUploadResumesFromGetUploadCount) {
  const std::string content = Content(3 * kPiece + 999, 3, "CONTRACT-3");
  const std::string digest = Sha256(content);
  auto county = Client(kTongan);

  // Two chunks, then the stream ends.
  v1::UploadAttachmentResponse response;
  grpc::Status cut = RawUpload(*county, StartOf(content, digest),
                               {ChunkOf(content, digest, 0, kPiece),
                                ChunkOf(content, digest, kPiece, kPiece)},
                               &response);
  EXPECT_EQ(cut.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  auto upload = county->GetUpload(digest);
  ASSERT_TRUE(upload.ok()) << upload.status();
  EXPECT_EQ(upload->received(), 2 * kPiece);
  EXPECT_EQ(upload->size(), content.size());
  EXPECT_FALSE(upload->complete());

  // A chunk from anywhere else is refused, saying where the upload stands.
  grpc::Status misplaced =
      RawUpload(*county, StartOf(content, digest),
                {ChunkOf(content, digest, 0, kPiece)}, &response);
  EXPECT_EQ(misplaced.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(misplaced.error_message().find("chunk.offset"), std::string::npos)
      << misplaced.error_message();
  EXPECT_NE(misplaced.error_message().find(Cat(2 * kPiece)), std::string::npos)
      << misplaced.error_message();

  // The client resumes from the count and completes it.
  auto ref = county->UploadAttachment(WriteFile("contract.pdf", content));
  ASSERT_TRUE(ref.ok()) << ref.status();
  upload = county->GetUpload(digest);
  ASSERT_TRUE(upload.ok());
  EXPECT_TRUE(upload->complete());
  EXPECT_EQ(Download(kTongan, digest), content);
}

TEST_F(AttachmentTest, AttachmentOverTheLimitIsRefusedNamingTheField) {
  const std::string content = Content(1000, 4, "BIG");
  v1::UploadAttachmentRequest::Start start = StartOf(content, Sha256(content));
  start.set_size(kCountyLimit + 1);
  v1::UploadAttachmentResponse response;
  grpc::Status refused = RawUpload(*Client(kTongan), start, {}, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(refused.error_message().find("start.size"), std::string::npos)
      << refused.error_message();
  EXPECT_NE(refused.error_message().find(Cat(kCountyLimit)), std::string::npos)
      << refused.error_message();
}

TEST_F(AttachmentTest, WrongDigestIsRefusedAndTheUploadDiscarded) {
  const std::string content = Content(kPiece + 10, 5, "WRONG");
  const std::string claimed = Sha256("something else entirely");
  v1::UploadAttachmentResponse response;
  auto county = Client(kTongan);
  grpc::Status refused = RawUpload(*county, StartOf(content, claimed),
                                   {ChunkOf(content, claimed, 0, kPiece),
                                    ChunkOf(content, claimed, kPiece, 10)},
                                   &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(refused.error_message().find("start.digest"), std::string::npos)
      << refused.error_message();
  EXPECT_EQ(county->GetUpload(claimed).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(AttachmentTest, OtherDigestAlgorithmIsRefusedNamingTheField) {
  const std::string content = Content(100, 6, "SM3");
  auto sm3 = Digest(HashAlgorithm::kSm3, content);
  ASSERT_TRUE(sm3.ok());
  v1::UploadAttachmentRequest::Start start = StartOf(content, *sm3);
  start.set_digest_algorithm(v1::DIGEST_ALGORITHM_SM3);
  v1::UploadAttachmentResponse response;
  grpc::Status refused = RawUpload(*Client(kTongan), start, {}, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(refused.error_message().find("start.digest_algorithm"),
            std::string::npos)
      << refused.error_message();
}

TEST_F(AttachmentTest, ReferralNamingAnIncompleteAttachmentIsRefused) {
  const std::string content = Content(2 * kPiece, 7, "HALF");
  const std::string digest = Sha256(content);
  auto county = Client(kTongan);
  v1::UploadAttachmentResponse response;
  static_cast<void>(RawUpload(*county, StartOf(content, digest),
                              {ChunkOf(content, digest, 0, kPiece)},
                              &response));
  v1::AttachmentRef ref;
  ref.set_name("half.pdf");
  ref.set_size(content.size());
  ref.set_digest(digest);
  v1::CreateReferralRequest request;
  request.set_handler(kFujian);
  *request.mutable_referral() = ReferralWith(ref);
  auto opened = county->CreateReferral(request);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(opened.status().message().find("referral.attachments[1]"),
            std::string::npos)
      << opened.status();
}

TEST_F(AttachmentTest, SupplementAndEvidenceResultCarryTheirAttachments) {
  auto county = Client(kTongan);
  auto province = Client(kFujian);
  v1::AttachmentRef first =
      UploadAndRefer(Content(kPiece, 9, "FIRST"), "first.pdf");
  ASSERT_TRUE(WaitComplete(first.digest()));
  auto cases = county->ListCases();
  ASSERT_TRUE(cases.ok()) << cases.status();
  std::string case_id;
  for (const v1::CaseView& view : cases->cases()) {
    if (view.handler() == kFujian) case_id = view.case_id();
  }
  ASSERT_FALSE(case_id.empty());

  // The handler asks for materials; the origin supplies them with a file.
  v1::ReferralStep ask;
  ask.mutable_request_materials()->set_what("the labour contract");
  ASSERT_TRUE(province->StepReferral(case_id, ask).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto read = county->GetCase(case_id);
        return read.ok() && read->case_view().state() ==
                                v1::REFERRAL_STATE_MATERIALS_REQUESTED;
      },
      absl::Seconds(20)));
  const std::string contract = Content(2 * kPiece + 5, 10, "CONTRACT");
  auto contract_ref =
      county->UploadAttachment(WriteFile("contract.pdf", contract));
  ASSERT_TRUE(contract_ref.ok()) << contract_ref.status();
  v1::ReferralStep supplement;
  supplement.mutable_supplement()->set_note("signed contract attached");
  *supplement.mutable_supplement()->add_attachments() = *contract_ref;
  auto supplied = county->StepReferral(case_id, supplement);
  ASSERT_TRUE(supplied.ok()) << supplied.status();
  ASSERT_TRUE(WaitComplete(contract_ref->digest()));
  EXPECT_EQ(Download(kFujian, contract_ref->digest()), contract);

  // The handler asks the county to collect evidence; its result carries
  // a file back.
  v1::RequestEvidenceRequest request;
  request.set_case_id(case_id);
  request.set_collector(kTongan);
  request.mutable_request()->set_what("attendance records");
  request.mutable_request()->set_where("the employer's site office");
  auto evidence = province->RequestEvidence(request);
  ASSERT_TRUE(evidence.ok()) << evidence.status();
  const std::string evidence_id = evidence->evidence().evidence_id();
  ASSERT_TRUE(WaitFor([&] { return county->GetEvidence(evidence_id).ok(); },
                      absl::Seconds(20)));
  v1::EvidenceStep accept;
  accept.mutable_accept();
  ASSERT_TRUE(county->StepEvidence(evidence_id, accept).ok());
  const std::string records = Content(kPiece + 1, 11, "ATTENDANCE");
  auto records_ref =
      county->UploadAttachment(WriteFile("attendance.csv", records));
  ASSERT_TRUE(records_ref.ok()) << records_ref.status();
  v1::EvidenceStep result;
  result.mutable_result()->set_findings("records for March to October");
  *result.mutable_result()->add_attachments() = *records_ref;
  auto sent = county->StepEvidence(evidence_id, result);
  ASSERT_TRUE(sent.ok()) << sent.status();
  ASSERT_TRUE(WaitComplete(records_ref->digest()));
  EXPECT_EQ(Download(kFujian, records_ref->digest()), records);
}

TEST_F(AttachmentTest, ArrivingContentWithoutItsDigestIsRecordedAndRefused) {
  // Xiamen, spoken for by hand, sends the province a piece whose bytes are
  // not what its digest names: signed, sealed and marked as a workflow
  // message, as a faulty or forging node would send it.
  const std::string content = Content(1000, 13, "FORGED");
  const std::string digest = Sha256("the real content");
  v1::WorkflowPayload payload;
  v1::AttachmentChunk& chunk = *payload.mutable_attachment_chunk();
  chunk.set_digest(digest);
  chunk.set_offset(0);
  chunk.set_total_size(content.size());
  chunk.set_data(content);
  chunk.set_digest_algorithm(v1::DIGEST_ALGORITHM_SHA256);

  const std::string pki = network_->PkiDir();
  auto key = PrivateKey::LoadPemFile(Cat(pki, "/nodes/", kXiamen, "/sign.key"));
  ASSERT_TRUE(key.ok()) << key.status();
  auto seal_to = SealingPublicKey::FromCertificatePem(
      ReadFile(Cat(pki, "/nodes/", kFujian, "/seal.crt")));
  ASSERT_TRUE(seal_to.ok()) << seal_to.status();
  v1::Body body;
  body.set_message_id(NewMessageId());
  body.set_sender(kXiamen);
  body.set_recipient(kFujian);
  *body.mutable_created_at() =
      google::protobuf::util::TimeUtil::GetCurrentTime();
  body.set_kind(v1::MESSAGE_KIND_REFERRAL);
  body.set_case_id("CASE-FORGED-1");
  body.set_priority(v1::PRIORITY_ORDINARY);
  body.set_workflow(true);
  auto sealed = Seal(*seal_to, payload.SerializeAsString(),
                     SealAssociatedData(body.message_id(), kXiamen, kFujian));
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  *body.mutable_sealed_payload() = std::move(*sealed);
  std::vector<std::string> bodies = {body.SerializeAsString()};
  auto envelopes = SignBodies(*key, bodies);
  ASSERT_TRUE(envelopes.ok()) << envelopes.status();
  v1::Envelope envelope = (*envelopes)[0];
  envelope.mutable_routing()->add_hops(kXiamen);
  envelope.mutable_routing()->set_hop_limit(8);

  auto stub =
      v1::PeerService::NewStub(network_->ChannelAsNode(kXiamen, kFujian));
  grpc::ClientContext context;
  auto stream = stub->Exchange(&context);
  v1::ExchangeRequest hello;
  hello.mutable_hello()->set_code(kXiamen);
  hello.mutable_hello()->add_signing_certificates(
      ReadFile(Cat(pki, "/nodes/", kXiamen, "/sign.crt")));
  ASSERT_TRUE(stream->Write(hello));
  v1::ExchangeRequest request;
  *request.mutable_envelope() = envelope;
  ASSERT_TRUE(stream->Write(request));

  // The sender hears why; the province keeps a record that says so.
  v1::Ack ack;
  v1::ExchangeResponse response;
  while (ack.message_id().empty() && stream->Read(&response)) {
    for (const v1::Ack& one : response.acks()) {
      if (one.message_id() == body.message_id()) ack = one;
    }
  }
  stream->WritesDone();
  while (stream->Read(&response)) {
  }
  stream->Finish();
  EXPECT_EQ(ack.code(), static_cast<int>(absl::StatusCode::kDataLoss))
      << ack.reason();
  EXPECT_NE(ack.reason().find("digest"), std::string::npos) << ack.reason();
  auto province = Client(kFujian);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto refused = province->DownloadAttachment(
            digest, Cat(files_->path(), "/forged"), absl::Seconds(2));
        return absl::IsFailedPrecondition(refused.status()) &&
               refused.status().message().find("do not have") !=
                   std::string::npos;
      },
      absl::Seconds(10)));
  auto upload = province->GetUpload(digest);
  ASSERT_TRUE(upload.ok()) << upload.status();
  EXPECT_FALSE(upload->complete());
}

TEST_F(AttachmentTest, RelayKilledMidTransferStillDeliversItWhole) {
  const std::string content = Content(12 * kPiece + 77, 8, "INJURY-REPORT");
  // Freeze the relay so that the transfer is in flight through it, then
  // kill it and bring it back.
  network_->Process(kXiamen).Notify(SIGSTOP);
  v1::AttachmentRef ref = UploadAndRefer(content, "injury-report.pdf");
  absl::SleepFor(absl::Milliseconds(300));
  network_->Kill(kXiamen);
  ASSERT_TRUE(network_->Start(kXiamen).ok());

  // Once more while the pieces move on to the province, if they have not
  // all arrived yet.
  auto province = Client(kFujian);
  bool moving = WaitFor(
      [&] {
        auto upload = province->GetUpload(ref.digest(), absl::Seconds(2));
        return upload.ok();
      },
      absl::Seconds(20));
  auto upload = province->GetUpload(ref.digest());
  if (moving && upload.ok() && !upload->complete()) {
    network_->Kill(kXiamen);
    ASSERT_TRUE(network_->Start(kXiamen).ok());
  }

  ASSERT_TRUE(WaitComplete(ref.digest(), absl::Seconds(60)))
      << network_->Process(kFujian).Log();
  EXPECT_EQ(Download(kFujian, ref.digest()), content);
  ASSERT_TRUE(WaitForDirectoryAndLinks());
}

// The same line of nodes signing with SM2, which address attachments by
// SM3 end to end.
class AttachmentSm2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    NetworkOptions options;
    options.directories = true;
    options.sign_alg = "sm2";
    auto network = TestNetwork::Create(
        {Spec(kFujian, "Fujian Provincial Department of Justice", ""),
         Spec(kXiamen, "Xiamen City Justice Bureau", kFujian),
         Spec(kTongan, "Tong'an County Justice Bureau", kXiamen)},
        options);
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = std::move(*network);
    ASSERT_TRUE(network_->StartAll().ok());
  }

  std::unique_ptr<TestNetwork> network_;
  TempDir files_;
};

TEST_F(AttachmentSm2Test, Sm2NodesAddressAttachmentsBySm3EndToEnd) {
  auto county_or = network_->OperatorClient(kTongan);
  auto province_or = network_->OperatorClient(kFujian);
  ASSERT_TRUE(county_or.ok() && province_or.ok());
  client::NodeClient& county = **county_or;
  client::NodeClient& province = **province_or;
  auto status = county.GetStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->attachment_digest(), v1::DIGEST_ALGORITHM_SM3);
  // The county can seal to the province once the directory has reached it.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto now = county.GetStatus(absl::Seconds(2));
        return now.ok() && now->directory_versions().contains(kFujian);
      },
      absl::Seconds(30)));

  const std::string content = Content(2 * kPiece + 3, 12, "SM3-MARKER");
  const std::string path = Cat(files_.path(), "/scan.pdf");
  {
    std::ofstream out(path, std::ios::binary);
    out << content;
  }
  auto ref = county.UploadAttachment(path);
  ASSERT_TRUE(ref.ok()) << ref.status();
  auto sm3 = Digest(HashAlgorithm::kSm3, content);
  ASSERT_TRUE(sm3.ok());
  EXPECT_EQ(ref->digest(), *sm3);
  EXPECT_EQ(ref->digest_algorithm(), v1::DIGEST_ALGORITHM_SM3);

  v1::CreateReferralRequest request;
  request.set_handler(kFujian);
  *request.mutable_referral() = ReferralWith(*ref);
  auto opened = county.CreateReferral(request);
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto upload = province.GetUpload(*sm3, absl::Seconds(2));
        return upload.ok() && upload->complete();
      },
      absl::Seconds(30)))
      << network_->Process(kFujian).Log();
  const std::string out = Cat(files_.path(), "/copy.pdf");
  auto size = province.DownloadAttachment(*sm3, out);
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(ReadFile(out), content);
}

}  // namespace
}  // namespace caselink::testing
