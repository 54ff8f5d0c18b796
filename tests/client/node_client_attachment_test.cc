// NodeClient's attachment transfers against an in-process fake of the
// CaseService that keeps uploads in memory: what the client sends, where
// it resumes, when it sends nothing, how it hashes for the node's digest
// algorithm, and what it does with a download that is wrong.
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "caselink/v1/cases.grpc.pb.h"
#include "caselink/v1/operator.grpc.pb.h"
#include "client/attachment_file.h"
#include "client/node_client.h"
#include "core/crypto.h"
#include "core/strings.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace caselink::client {
namespace {

// Stores uploads by digest, checks offsets and digests as a node would,
// and records what it was sent.
class FakeCaseService final : public v1::CaseService::Service {
 public:
  struct Stored {
    std::string content;
    uint64_t size = 0;
    bool complete = false;
  };

  grpc::Status GetUpload(grpc::ServerContext*,
                         const v1::GetUploadRequest* request,
                         v1::GetUploadResponse* response) override {
    absl::MutexLock lock(&mutex_);
    auto found = stored_.find(request->digest());
    if (found == stored_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such upload");
    }
    response->set_received(found->second.content.size());
    response->set_size(found->second.size);
    response->set_complete(found->second.complete);
    return grpc::Status::OK;
  }

  grpc::Status UploadAttachment(
      grpc::ServerContext*,
      grpc::ServerReader<v1::UploadAttachmentRequest>* reader,
      v1::UploadAttachmentResponse* response) override {
    v1::UploadAttachmentRequest message;
    if (!reader->Read(&message) || !message.has_start()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no start");
    }
    const v1::UploadAttachmentRequest::Start start = message.start();
    absl::MutexLock lock(&mutex_);
    starts_.push_back(start);
    Stored& stored = stored_[start.digest()];
    stored.size = start.size();
    while (reader->Read(&message)) {
      const v1::AttachmentChunk& chunk = message.chunk();
      offsets_.push_back(chunk.offset());
      largest_chunk_ = std::max(largest_chunk_, chunk.data().size());
      if (chunk.offset() != stored.content.size() ||
          chunk.digest() != start.digest()) {
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                            "chunk out of place");
      }
      stored.content += chunk.data();
    }
    const HashAlgorithm algorithm =
        start.digest_algorithm() == v1::DIGEST_ALGORITHM_SM3
            ? HashAlgorithm::kSm3
            : HashAlgorithm::kSha256;
    auto digest = Digest(algorithm, stored.content);
    if (!digest.ok() || *digest != start.digest()) {
      return grpc::Status(grpc::StatusCode::DATA_LOSS, "digest mismatch");
    }
    stored.complete = true;
    v1::AttachmentRef& ref = *response->mutable_attachment();
    ref.set_name(start.name());
    ref.set_media_type(start.media_type());
    ref.set_size(start.size());
    ref.set_digest(start.digest());
    return grpc::Status::OK;
  }

  grpc::Status DownloadAttachment(
      grpc::ServerContext*, const v1::DownloadAttachmentRequest* request,
      grpc::ServerWriter<v1::DownloadAttachmentResponse>* writer) override {
    absl::MutexLock lock(&mutex_);
    auto found = stored_.find(request->digest());
    if (found == stored_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such attachment");
    }
    const std::string& content = found->second.content;
    for (uint64_t offset = 0; offset < content.size(); offset += 100000) {
      v1::DownloadAttachmentResponse piece;
      piece.mutable_chunk()->set_digest(request->digest());
      piece.mutable_chunk()->set_offset(offset);
      piece.mutable_chunk()->set_total_size(content.size());
      piece.mutable_chunk()->set_data(content.substr(offset, 100000));
      writer->Write(piece);
    }
    return grpc::Status::OK;
  }

  // Puts `content` under `digest` as if an upload had got that far.
  void Preload(const std::string& digest, std::string content, uint64_t size,
               bool complete) {
    absl::MutexLock lock(&mutex_);
    stored_[digest] = {std::move(content), size, complete};
  }

  std::vector<v1::UploadAttachmentRequest::Start> starts() {
    absl::MutexLock lock(&mutex_);
    return starts_;
  }
  std::vector<uint64_t> offsets() {
    absl::MutexLock lock(&mutex_);
    return offsets_;
  }
  size_t largest_chunk() {
    absl::MutexLock lock(&mutex_);
    return largest_chunk_;
  }
  std::string content(const std::string& digest) {
    absl::MutexLock lock(&mutex_);
    return stored_[digest].content;
  }

 private:
  absl::Mutex mutex_;
  std::map<std::string, Stored> stored_ ABSL_GUARDED_BY(mutex_);
  std::vector<v1::UploadAttachmentRequest::Start> starts_
      ABSL_GUARDED_BY(mutex_);
  std::vector<uint64_t> offsets_ ABSL_GUARDED_BY(mutex_);
  size_t largest_chunk_ ABSL_GUARDED_BY(mutex_) = 0;
};

// Answers GetStatus with the digest algorithm a test sets, as a node
// reports the one it addresses attachments by.
class FakeOperatorService final : public v1::OperatorService::Service {
 public:
  grpc::Status GetStatus(grpc::ServerContext*, const v1::GetStatusRequest*,
                         v1::GetStatusResponse* response) override {
    absl::MutexLock lock(&mutex_);
    response->set_attachment_digest(algorithm_);
    return grpc::Status::OK;
  }

  void set_algorithm(v1::DigestAlgorithm algorithm) {
    absl::MutexLock lock(&mutex_);
    algorithm_ = algorithm;
  }

 private:
  absl::Mutex mutex_;
  v1::DigestAlgorithm algorithm_ ABSL_GUARDED_BY(mutex_) =
      v1::DIGEST_ALGORITHM_SHA256;
};

class NodeClientAttachmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    builder.RegisterService(&operator_service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    client_ = NodeClient::ForChannel(
        server_->InProcessChannel(grpc::ChannelArguments()));

    char pattern[] = "/tmp/node_client_attachment_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;

    // Two and a half chunks, no two alike.
    content_.resize(kAttachmentChunkSize * 5 / 2);
    for (size_t i = 0; i < content_.size(); ++i) {
      content_[i] = static_cast<char>((i * 7919) >> 3);
    }
    path_ = Cat(dir_, "/wage-slips.pdf");
    std::FILE* file = std::fopen(path_.c_str(), "wb");
    ASSERT_NE(file, nullptr);
    std::fwrite(content_.data(), 1, content_.size(), file);
    std::fclose(file);
    auto digest = Digest(HashAlgorithm::kSha256, content_);
    ASSERT_TRUE(digest.ok());
    digest_ = *digest;
  }

  void TearDown() override {
    for (const std::string& name : Entries()) {
      std::remove(Cat(dir_, "/", name).c_str());
    }
    rmdir(dir_.c_str());
    if (server_ != nullptr) server_->Shutdown();
  }

  std::vector<std::string> Entries() {
    std::vector<std::string> names;
    DIR* dir = opendir(dir_.c_str());
    if (dir == nullptr) return names;
    while (dirent* entry = readdir(dir)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(dir);
    return names;
  }

  FakeCaseService service_;
  FakeOperatorService operator_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<NodeClient> client_;
  std::string dir_;
  std::string path_;
  std::string content_;
  std::string digest_;
};

TEST_F(NodeClientAttachmentTest, FreshUploadStartsThenSendsEveryChunk) {
  absl::StatusOr<v1::AttachmentRef> ref = client_->UploadAttachment(path_);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->digest(), digest_);
  EXPECT_EQ(ref->size(), content_.size());

  const auto starts = service_.starts();
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].name(), "wage-slips.pdf");
  EXPECT_EQ(starts[0].media_type(), "application/pdf");
  EXPECT_EQ(starts[0].size(), content_.size());
  EXPECT_EQ(starts[0].digest(), digest_);
  EXPECT_EQ(starts[0].digest_algorithm(), v1::DIGEST_ALGORITHM_SHA256);
  EXPECT_EQ(service_.offsets(),
            (std::vector<uint64_t>{0, kAttachmentChunkSize,
                                   2 * kAttachmentChunkSize}));
  EXPECT_EQ(service_.largest_chunk(), kAttachmentChunkSize);
  EXPECT_EQ(service_.content(digest_), content_);
}

TEST_F(NodeClientAttachmentTest, UploadToAnSm2NodeIsAddressedBySm3) {
  operator_service_.set_algorithm(v1::DIGEST_ALGORITHM_SM3);
  absl::StatusOr<std::string> sm3 = Digest(HashAlgorithm::kSm3, content_);
  ASSERT_TRUE(sm3.ok()) << sm3.status();
  ASSERT_NE(*sm3, digest_);

  absl::StatusOr<v1::AttachmentRef> ref = client_->UploadAttachment(path_);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->digest(), *sm3);
  const auto starts = service_.starts();
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].digest(), *sm3);
  EXPECT_EQ(starts[0].digest_algorithm(), v1::DIGEST_ALGORITHM_SM3);
  EXPECT_EQ(service_.content(*sm3), content_);
}

TEST_F(NodeClientAttachmentTest, BrokenUploadResumesWhereTheNodeStopped) {
  constexpr uint64_t kReceived = 300000;
  service_.Preload(digest_, content_.substr(0, kReceived), content_.size(),
                   /*complete=*/false);
  absl::StatusOr<v1::AttachmentRef> ref = client_->UploadAttachment(path_);
  ASSERT_TRUE(ref.ok()) << ref.status();

  const std::vector<uint64_t> offsets = service_.offsets();
  ASSERT_FALSE(offsets.empty());
  EXPECT_EQ(offsets.front(), kReceived);
  EXPECT_EQ(service_.content(digest_), content_);
}

TEST_F(NodeClientAttachmentTest, CompleteUploadIsNotRepeated) {
  service_.Preload(digest_, content_, content_.size(), /*complete=*/true);
  absl::StatusOr<v1::AttachmentRef> ref = client_->UploadAttachment(path_);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->name(), "wage-slips.pdf");
  EXPECT_EQ(ref->digest(), digest_);
  EXPECT_TRUE(service_.starts().empty());
}

TEST_F(NodeClientAttachmentTest, NodeHoldingMoreThanTheFileIsRefused) {
  service_.Preload(digest_, content_ + "extra", content_.size() + 5,
                   /*complete=*/false);
  absl::StatusOr<v1::AttachmentRef> ref = client_->UploadAttachment(path_);
  EXPECT_EQ(ref.status().code(), absl::StatusCode::kFailedPrecondition)
      << ref.status();
  EXPECT_TRUE(service_.starts().empty());
}

TEST_F(NodeClientAttachmentTest, DownloadWritesTheCheckedContent) {
  service_.Preload(digest_, content_, content_.size(), /*complete=*/true);
  const std::string out = Cat(dir_, "/copy.pdf");
  absl::StatusOr<uint64_t> size = client_->DownloadAttachment(digest_, out);
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, content_.size());
  absl::StatusOr<v1::AttachmentRef> copy = DescribeFile(out);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->digest(), digest_);
}

TEST_F(NodeClientAttachmentTest, CorruptDownloadLeavesNoFile) {
  std::string corrupt = content_;
  corrupt[12345] ^= 1;
  service_.Preload(digest_, corrupt, corrupt.size(), /*complete=*/true);
  const std::vector<std::string> before = Entries();
  absl::StatusOr<uint64_t> size =
      client_->DownloadAttachment(digest_, Cat(dir_, "/copy.pdf"));
  EXPECT_EQ(size.status().code(), absl::StatusCode::kDataLoss) << size.status();
  EXPECT_EQ(Entries(), before);
}

TEST_F(NodeClientAttachmentTest, UnknownDownloadIsTheNodesNotFound) {
  absl::StatusOr<uint64_t> size = client_->DownloadAttachment(
      std::string(kDigestSize, 'x'), Cat(dir_, "/copy.pdf"));
  EXPECT_EQ(size.status().code(), absl::StatusCode::kNotFound) << size.status();
  EXPECT_EQ(Entries(), std::vector<std::string>{"wage-slips.pdf"});
}

}  // namespace
}  // namespace caselink::client
