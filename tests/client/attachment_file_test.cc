// Local files on both sides of an attachment transfer: names, media types,
// digests, reading from an offset, and downloads that never leave a wrong
// or partial file under the final name.
#include "client/attachment_file.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/crypto.h"
#include "core/strings.h"
#include "gtest/gtest.h"

namespace caselink::client {
namespace {

// SHA-256 of "abc" (FIPS 180-2, appendix B.1).
constexpr char kAbcSha256[] =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

class AttachmentFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/attachment_file_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    for (const std::string& name : Entries()) {
      std::remove(Cat(dir_, "/", name).c_str());
    }
    rmdir(dir_.c_str());
  }

  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = Cat(dir_, "/", name);
    std::FILE* file = std::fopen(path.c_str(), "wb");
    EXPECT_NE(file, nullptr) << path;
    if (file == nullptr) return path;
    std::fwrite(content.data(), 1, content.size(), file);
    std::fclose(file);
    return path;
  }

  std::string Read(const std::string& path) {
    std::string content;
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) return "<missing>";
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
      content.append(buffer, n);
    }
    std::fclose(file);
    return content;
  }

  // The names in the test directory.
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

  std::string dir_;
};

TEST(BaseNameTest, LastComponent) {
  EXPECT_EQ(BaseName("/tmp/docs/scan.pdf"), "scan.pdf");
  EXPECT_EQ(BaseName("scan.pdf"), "scan.pdf");
  EXPECT_EQ(BaseName("docs/"), "docs");
  EXPECT_EQ(BaseName("/"), "");
  EXPECT_EQ(BaseName(""), "");
}

TEST(MediaTypeTest, GuessedFromExtensionInEitherCase) {
  EXPECT_EQ(MediaTypeForName("payslips.pdf"), "application/pdf");
  EXPECT_EQ(MediaTypeForName("IMG_0012.JPG"), "image/jpeg");
  EXPECT_EQ(MediaTypeForName("contract.scan.Png"), "image/png");
  EXPECT_EQ(MediaTypeForName("call.amr"), "audio/amr");
  EXPECT_EQ(MediaTypeForName("notes"), "application/octet-stream");
  EXPECT_EQ(MediaTypeForName(".pdf"), "application/octet-stream");
  EXPECT_EQ(MediaTypeForName("archive.rar"), "application/octet-stream");
  EXPECT_EQ(MediaTypeForName("trailing."), "application/octet-stream");
}

TEST_F(AttachmentFileTest, DescribesNameTypeSizeAndDigest) {
  const std::string path = Write("Receipt.PDF", "abc");
  absl::StatusOr<v1::AttachmentRef> ref = DescribeFile(path);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->name(), "Receipt.PDF");
  EXPECT_EQ(ref->media_type(), "application/pdf");
  EXPECT_EQ(ref->size(), 3u);
  EXPECT_EQ(HexEncode(ref->digest()), kAbcSha256);
}

TEST_F(AttachmentFileTest, DigestOfAFileLargerThanAChunk) {
  std::string content(2 * kAttachmentChunkSize + 17, '\0');
  for (size_t i = 0; i < content.size(); ++i) {
    content[i] = static_cast<char>(i * 31 % 251);
  }
  const std::string path = Write("big.bin", content);
  absl::StatusOr<v1::AttachmentRef> ref = DescribeFile(path);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->size(), content.size());
  absl::StatusOr<std::string> expected =
      Digest(HashAlgorithm::kSha256, content);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(ref->digest(), *expected);
}

TEST_F(AttachmentFileTest, DescribeErrorsNameTheFile) {
  const std::string missing = Cat(dir_, "/missing.pdf");
  absl::StatusOr<v1::AttachmentRef> ref = DescribeFile(missing);
  ASSERT_FALSE(ref.ok());
  EXPECT_EQ(ref.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(ref.status().message().find(missing), std::string::npos);

  ref = DescribeFile(dir_);
  ASSERT_FALSE(ref.ok());
  EXPECT_EQ(ref.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(AttachmentFileTest, ReaderResumesAtAnOffset) {
  const std::string path = Write("a.txt", "0123456789");
  absl::StatusOr<FileReader> reader = FileReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_TRUE(reader->Seek(6).ok());
  std::string piece;
  ASSERT_TRUE(reader->Read(3, &piece).ok());
  EXPECT_EQ(piece, "678");
  ASSERT_TRUE(reader->Read(3, &piece).ok());
  EXPECT_EQ(piece, "9");
  ASSERT_TRUE(reader->Read(3, &piece).ok());
  EXPECT_EQ(piece, "");

  ASSERT_TRUE(reader->Seek(10).ok());
  EXPECT_EQ(reader->Seek(11).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AttachmentFileTest, DownloadTakesItsNameOnlyWithTheRightDigest) {
  const std::string out = Cat(dir_, "/out.pdf");
  auto digest = HexDecode(kAbcSha256);
  ASSERT_TRUE(digest.ok());
  absl::StatusOr<std::unique_ptr<DownloadFile>> file =
      DownloadFile::Create(out, *digest);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Append("ab").ok());
  ASSERT_TRUE((*file)->Append("c").ok());
  EXPECT_EQ(Read(out), "<missing>");  // Not before Commit.
  ASSERT_TRUE((*file)->Commit().ok());
  file->reset();

  EXPECT_EQ(Read(out), "abc");
  EXPECT_EQ(Entries(), std::vector<std::string>{"out.pdf"});
  struct stat info;
  ASSERT_EQ(stat(out.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST_F(AttachmentFileTest, WrongDigestLeavesTheOldFileAndNoTemporary) {
  const std::string out = Write("out.pdf", "previous");
  auto digest = HexDecode(kAbcSha256);
  ASSERT_TRUE(digest.ok());
  absl::StatusOr<std::unique_ptr<DownloadFile>> file =
      DownloadFile::Create(out, *digest);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Append("abd").ok());
  absl::Status committed = (*file)->Commit();
  EXPECT_EQ(committed.code(), absl::StatusCode::kDataLoss) << committed;
  file->reset();

  EXPECT_EQ(Read(out), "previous");
  EXPECT_EQ(Entries(), std::vector<std::string>{"out.pdf"});
}

TEST_F(AttachmentFileTest, AbandonedDownloadLeavesNothing) {
  auto digest = HexDecode(kAbcSha256);
  ASSERT_TRUE(digest.ok());
  {
    absl::StatusOr<std::unique_ptr<DownloadFile>> file =
        DownloadFile::Create(Cat(dir_, "/out.pdf"), *digest);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append("ab").ok());
    EXPECT_EQ(Entries().size(), 1u);  // The temporary file.
  }
  EXPECT_TRUE(Entries().empty());
}

TEST_F(AttachmentFileTest, DownloadRefusesADigestOfAnotherLength) {
  absl::StatusOr<std::unique_ptr<DownloadFile>> file =
      DownloadFile::Create(Cat(dir_, "/out.pdf"), "short");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Entries().empty());
}

}  // namespace
}  // namespace caselink::client
