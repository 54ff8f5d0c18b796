// Local files on either side of an attachment transfer: what a file is
// called and holds before it is uploaded, reading it piece by piece, and
// writing a download so that a partial or corrupt one never takes the name
// the operator asked for.
//
// Nothing here talks to a node; NodeClient::UploadAttachment and
// NodeClient::DownloadAttachment do, using these.
#ifndef CASELINK_CLIENT_ATTACHMENT_FILE_H_
#define CASELINK_CLIENT_ATTACHMENT_FILE_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "caselink/v1/cases.pb.h"
#include "core/crypto.h"

namespace caselink::client {

// How many bytes of an attachment one upload message carries.
inline constexpr size_t kAttachmentChunkSize = 256 * 1024;

// The last component of `path`: "scan.pdf" for "/tmp/docs/scan.pdf" and for
// "scan.pdf". Trailing slashes are ignored; "" for "" and "/".
std::string BaseName(std::string_view path);

// The media type of a file, guessed from the extension of `name` (in
// either case): application/pdf for .pdf, image/jpeg for .jpg, and so on
// for the documents, images, recordings and archives legal-aid cases carry.
// application/octet-stream when the extension is missing or unknown.
std::string_view MediaTypeForName(std::string_view name);

// Describes the regular file at `path` as an attachment: its base name, its
// media type from the name, its size and its digest by `algorithm` (the
// node's: SM3 at a node that signs with SM2), read through once; the
// reference names the algorithm. NotFound or PermissionDenied when it
// cannot be opened, FailedPrecondition when it is not a regular file,
// DataLoss when reading fails; every message names the file.
[[nodiscard]] absl::StatusOr<v1::AttachmentRef> DescribeFile(
    const std::string& path, HashAlgorithm algorithm = HashAlgorithm::kSha256);

// Reads a file in pieces from a given offset. Not thread-safe.
class FileReader {
 public:
  // Opens `path` for reading; errors as DescribeFile.
  [[nodiscard]] static absl::StatusOr<FileReader> Open(const std::string& path);

  FileReader(FileReader&&) noexcept = default;
  FileReader& operator=(FileReader&&) noexcept = default;
  ~FileReader() = default;

  // Moves to `offset` bytes from the start. InvalidArgument past the end of
  // the file.
  [[nodiscard]] absl::Status Seek(uint64_t offset);

  // Reads up to `max_bytes` into `out` (replacing what it held); an empty
  // `out` means the end of the file. DataLoss if reading fails.
  [[nodiscard]] absl::Status Read(size_t max_bytes, std::string* out);

 private:
  struct Closer {
    void operator()(std::FILE* file) const;
  };

  FileReader(std::string path, std::FILE* file);

  std::string path_;
  std::unique_ptr<std::FILE, Closer> file_;
};

// A download being written. The bytes go to a temporary file beside the
// final path, which Commit renames into place only after checking the
// digest; a download that is abandoned (destroyed without Commit, or whose
// Commit fails) leaves no file behind. The file is created readable by its
// owner alone, since attachments carry personal data. Not thread-safe.
class DownloadFile {
 public:
  // Creates the temporary file in the directory of `final_path`, to be
  // checked against `digest` (kDigestSize raw bytes). InvalidArgument for a
  // digest of another length; the error of mkstemp, naming the directory,
  // if the file cannot be created.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DownloadFile>> Create(
      const std::string& final_path, std::string_view digest);

  DownloadFile(const DownloadFile&) = delete;
  DownloadFile& operator=(const DownloadFile&) = delete;
  // Removes the temporary file unless Commit succeeded.
  ~DownloadFile();

  // Bytes written so far.
  uint64_t size() const { return size_; }

  // Appends `data`. DataLoss, naming the file, if the write fails.
  [[nodiscard]] absl::Status Append(std::string_view data);

  // Flushes the content to disk and renames the temporary file to the final
  // path, replacing any file there. DataLoss if the content does not have
  // the digest (as SHA-256, or as SM3 for attachments written at a node
  // that signs with SM2); the error of fsync or rename otherwise. The
  // temporary file is removed whenever Commit fails.
  [[nodiscard]] absl::Status Commit();

 private:
  DownloadFile(std::string final_path, std::string temp_path, int fd,
               std::string digest, std::vector<Hasher> hashers);

  absl::Status Discard(absl::Status why);

  const std::string final_path_;
  const std::string temp_path_;
  int fd_;  // -1 once closed.
  const std::string digest_;
  // SHA-256 first, then SM3 if this OpenSSL offers it.
  std::vector<Hasher> hashers_;
  uint64_t size_ = 0;
  // Committed, or the temporary file removed.
  bool settled_ = false;
};

}  // namespace caselink::client

#endif  // CASELINK_CLIENT_ATTACHMENT_FILE_H_
