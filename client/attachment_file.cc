#include "client/attachment_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::client {
namespace {

struct MediaType {
  std::string_view extension;  // Lower case, without the dot.
  std::string_view type;
};

constexpr std::array<MediaType, 30> kMediaTypes = {{
    {"pdf", "application/pdf"},
    {"ofd", "application/ofd"},
    {"doc", "application/msword"},
    {"docx",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx",
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"wps", "application/vnd.ms-works"},
    {"rtf", "application/rtf"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"txt", "text/plain"},
    {"csv", "text/csv"},
    {"json", "application/json"},
    {"xml", "application/xml"},
    {"html", "text/html"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"png", "image/png"},
    {"gif", "image/gif"},
    {"bmp", "image/bmp"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"heic", "image/heic"},
    {"webp", "image/webp"},
    {"mp3", "audio/mpeg"},
    {"m4a", "audio/mp4"},
    {"amr", "audio/amr"},
    {"wav", "audio/wav"},
    {"mp4", "video/mp4"},
    {"zip", "application/zip"},
    {"7z", "application/x-7z-compressed"},
}};

constexpr std::string_view kOctetStream = "application/octet-stream";

std::string LowerAscii(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

absl::Status OpenError(const std::string& path, int error) {
  const std::string message =
      Cat("cannot open \"", path, "\": ", std::strerror(error));
  if (error == ENOENT) return absl::NotFoundError(message);
  if (error == EACCES || error == EPERM) {
    return absl::PermissionDeniedError(message);
  }
  return absl::UnavailableError(message);
}

}  // namespace

std::string BaseName(std::string_view path) {
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  const size_t slash = path.rfind('/');
  if (slash != std::string_view::npos) path.remove_prefix(slash + 1);
  return std::string(path);
}

std::string_view MediaTypeForName(std::string_view name) {
  const size_t dot = name.rfind('.');
  // A leading dot names a hidden file, not an extension.
  if (dot == std::string_view::npos || dot == 0) return kOctetStream;
  const std::string extension = LowerAscii(name.substr(dot + 1));
  for (const MediaType& media : kMediaTypes) {
    if (media.extension == extension) return media.type;
  }
  return kOctetStream;
}

absl::StatusOr<v1::AttachmentRef> DescribeFile(const std::string& path,
                                               HashAlgorithm algorithm) {
  CASELINK_ASSIGN_OR_RETURN(FileReader reader, FileReader::Open(path));
  CASELINK_ASSIGN_OR_RETURN(Hasher hasher, Hasher::Create(algorithm));
  uint64_t size = 0;
  std::string piece;
  do {
    CASELINK_RETURN_IF_ERROR(reader.Read(kAttachmentChunkSize, &piece));
    hasher.Update(piece);
    size += piece.size();
  } while (!piece.empty());
  CASELINK_ASSIGN_OR_RETURN(std::string digest, hasher.Finish());

  v1::AttachmentRef ref;
  ref.set_name(BaseName(path));
  ref.set_media_type(std::string(MediaTypeForName(ref.name())));
  ref.set_size(size);
  ref.set_digest(std::move(digest));
  ref.set_digest_algorithm(algorithm == HashAlgorithm::kSm3
                               ? v1::DIGEST_ALGORITHM_SM3
                               : v1::DIGEST_ALGORITHM_SHA256);
  return ref;
}

// ---------------------------------------------------------------------------
// FileReader

void FileReader::Closer::operator()(std::FILE* file) const {
  std::fclose(file);
}

FileReader::FileReader(std::string path, std::FILE* file)
    : path_(std::move(path)), file_(file) {}

absl::StatusOr<FileReader> FileReader::Open(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return OpenError(path, errno);
  FileReader reader(path, file);
  struct stat info;
  if (fstat(fileno(file), &info) != 0) {
    return absl::DataLossError(
        Cat("cannot read \"", path, "\": ", std::strerror(errno)));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(
        Cat("\"", path, "\" is not a regular file"));
  }
  return reader;
}

absl::Status FileReader::Seek(uint64_t offset) {
  struct stat info;
  if (fstat(fileno(file_.get()), &info) != 0) {
    return absl::DataLossError(
        Cat("cannot read \"", path_, "\": ", std::strerror(errno)));
  }
  if (offset > static_cast<uint64_t>(info.st_size)) {
    return absl::InvalidArgumentError(Cat(
        "\"", path_, "\" holds ", info.st_size, " bytes, fewer than ", offset));
  }
  if (fseeko(file_.get(), static_cast<off_t>(offset), SEEK_SET) != 0) {
    return absl::DataLossError(
        Cat("cannot read \"", path_, "\": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status FileReader::Read(size_t max_bytes, std::string* out) {
  out->resize(max_bytes);
  const size_t n = std::fread(out->data(), 1, max_bytes, file_.get());
  out->resize(n);
  if (n < max_bytes && std::ferror(file_.get()) != 0) {
    return absl::DataLossError(
        Cat("cannot read \"", path_, "\": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// DownloadFile

DownloadFile::DownloadFile(std::string final_path, std::string temp_path,
                           int fd, std::string digest,
                           std::vector<Hasher> hashers)
    : final_path_(std::move(final_path)),
      temp_path_(std::move(temp_path)),
      fd_(fd),
      digest_(std::move(digest)),
      hashers_(std::move(hashers)) {}

absl::StatusOr<std::unique_ptr<DownloadFile>> DownloadFile::Create(
    const std::string& final_path, std::string_view digest) {
  if (digest.size() != kDigestSize) {
    return absl::InvalidArgumentError(Cat("an attachment digest is ",
                                          kDigestSize, " bytes, not ",
                                          digest.size()));
  }
  std::vector<Hasher> hashers;
  CASELINK_ASSIGN_OR_RETURN(Hasher sha256,
                            Hasher::Create(HashAlgorithm::kSha256));
  hashers.push_back(std::move(sha256));
  // SM3 may be missing from a restricted OpenSSL; SHA-256 digests still
  // verify without it.
  absl::StatusOr<Hasher> sm3 = Hasher::Create(HashAlgorithm::kSm3);
  if (sm3.ok()) hashers.push_back(*std::move(sm3));

  // The temporary file lives beside the final one so that the rename
  // stays within one file system.
  std::string temp_path = Cat(final_path, ".part-XXXXXX");
  const int fd = mkstemp(temp_path.data());
  if (fd < 0) {
    const size_t slash = final_path.rfind('/');
    const std::string directory =
        slash == std::string::npos ? "." : final_path.substr(0, slash + 1);
    return absl::Status(OpenError(directory, errno).code(),
                        Cat("cannot create a file in \"", directory,
                            "\": ", std::strerror(errno)));
  }
  return std::unique_ptr<DownloadFile>(
      new DownloadFile(final_path, std::move(temp_path), fd,
                       std::string(digest), std::move(hashers)));
}

DownloadFile::~DownloadFile() {
  if (!settled_) Discard(absl::OkStatus()).IgnoreError();
}

absl::Status DownloadFile::Append(std::string_view data) {
  if (settled_) {
    return absl::FailedPreconditionError(
        Cat("\"", temp_path_, "\" is already closed"));
  }
  for (Hasher& hasher : hashers_) hasher.Update(data);
  while (!data.empty()) {
    const ssize_t n = write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::DataLossError(
          Cat("cannot write \"", temp_path_, "\": ", std::strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
    size_ += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status DownloadFile::Commit() {
  if (settled_) {
    return absl::FailedPreconditionError(
        Cat("\"", temp_path_, "\" is already closed"));
  }

  // Check the content before it takes the final name.
  bool matches = false;
  for (Hasher& hasher : hashers_) {
    absl::StatusOr<std::string> digest = hasher.Finish();
    if (!digest.ok()) return Discard(digest.status());
    if (*digest == digest_) matches = true;
  }
  if (!matches) {
    return Discard(absl::DataLossError(Cat(
        "the ", size_, " bytes received do not have digest ",
        HexEncode(digest_), "; nothing was written to \"", final_path_, "\"")));
  }

  // Durable content first, then the name.
  if (fsync(fd_) != 0) {
    return Discard(absl::DataLossError(
        Cat("cannot write \"", temp_path_, "\": ", std::strerror(errno))));
  }
  const int fd = std::exchange(fd_, -1);
  if (close(fd) != 0) {
    return Discard(absl::DataLossError(
        Cat("cannot write \"", temp_path_, "\": ", std::strerror(errno))));
  }
  if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    return Discard(
        absl::DataLossError(Cat("cannot rename \"", temp_path_, "\" to \"",
                                final_path_, "\": ", std::strerror(errno))));
  }
  settled_ = true;
  return absl::OkStatus();
}

absl::Status DownloadFile::Discard(absl::Status why) {
  if (fd_ >= 0) close(std::exchange(fd_, -1));
  unlink(temp_path_.c_str());
  settled_ = true;
  return why;
}

}  // namespace caselink::client
