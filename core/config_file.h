// Typed, checked reading of YAML configuration files.
//
// Every error names the file, the line and the dotted path of the setting,
// so that an operator can fix it without reading code:
//   config /etc/caselink/node.yaml: line 7: peers[1].address: missing
#ifndef CASELINK_CORE_CONFIG_FILE_H_
#define CASELINK_CORE_CONFIG_FILE_H_

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace caselink {

// A view of one mapping in a parsed file. Cheap to copy.
class ConfigSection {
 public:
  // Parses the whole file at `path`; its top level must be a mapping.
  // NotFound if the file does not exist, InvalidArgument if it is not YAML.
  [[nodiscard]] static absl::StatusOr<ConfigSection> ParseFile(
      const std::string& path);

  // InvalidArgument naming the first key not in `allowed`.
  [[nodiscard]] absl::Status AllowOnly(
      std::initializer_list<std::string_view> allowed) const;

  bool Has(std::string_view key) const;

  // A scalar as text. A missing required key is an error; a missing
  // optional one gives nullopt.
  [[nodiscard]] absl::StatusOr<std::string> RequiredString(
      std::string_view key) const;
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> OptionalString(
      std::string_view key) const;

  // A file path; relative paths are resolved against the file's directory.
  [[nodiscard]] absl::StatusOr<std::string> RequiredPath(
      std::string_view key) const;
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> OptionalPath(
      std::string_view key) const;

  // A non-negative integer no larger than `max`, or `fallback` if absent.
  [[nodiscard]] absl::StatusOr<uint64_t> UnsignedOr(std::string_view key,
                                                    uint64_t fallback,
                                                    uint64_t max) const;

  // A list of scalars; empty if absent.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> StringList(
      std::string_view key) const;
  // A list of file paths, resolved as by RequiredPath.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> PathList(
      std::string_view key) const;

  // A nested mapping; nullopt if absent.
  [[nodiscard]] absl::StatusOr<std::optional<ConfigSection>> Section(
      std::string_view key) const;

  // Calls `visit` for each mapping in the sequence under `key` (absent means
  // empty), stopping at the first error.
  [[nodiscard]] absl::Status ForEachInList(
      std::string_view key,
      const std::function<absl::Status(const ConfigSection&)>& visit) const;

  // An error about `key` in this section (or the section itself if empty),
  // with file, line and path.
  absl::Status Error(std::string_view key, std::string_view message) const;

  const std::string& file() const { return file_; }

 private:
  ConfigSection(std::string file, std::string path, YAML::Node node)
      : file_(std::move(file)), path_(std::move(path)), node_(node) {}

  std::string PathOf(std::string_view key) const;
  std::string ResolvePath(const std::string& value) const;

  std::string file_;
  std::string path_;  // Dotted path of this section, empty at the top.
  YAML::Node node_;
};

}  // namespace caselink

#endif  // CASELINK_CORE_CONFIG_FILE_H_
