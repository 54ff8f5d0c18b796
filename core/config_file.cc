#include "core/config_file.h"

#include <charconv>
#include <filesystem>
#include <fstream>

#include "core/strings.h"

namespace caselink {
namespace {

int LineOf(const YAML::Node& node) { return node.Mark().line + 1; }

}  // namespace

absl::StatusOr<ConfigSection> ConfigSection::ParseFile(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return absl::NotFoundError(Cat("config ", path, ": no such file"));
    }
    return absl::InvalidArgumentError(Cat("config ", path, ": cannot be read"));
  }
  // yaml-cpp reports malformed input by throwing; this is the one place
  // where such an exception is turned into a status.
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(Cat("config ", path, ": line ",
                                          e.mark.line + 1,
                                          ": not valid YAML: ", e.msg));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        Cat("config ", path, ": the top level must be a mapping"));
  }
  return ConfigSection(path, "", root);
}

std::string ConfigSection::PathOf(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  if (key.empty()) return path_;
  return Cat(path_, ".", key);
}

absl::Status ConfigSection::Error(std::string_view key,
                                  std::string_view message) const {
  YAML::Node at = node_;
  if (!key.empty() && node_[std::string(key)]) at = node_[std::string(key)];
  std::string where = PathOf(key);
  return absl::InvalidArgumentError(Cat("config ", file_, ": line ", LineOf(at),
                                        ": ", where.empty() ? "" : where + ": ",
                                        message));
}

absl::Status ConfigSection::AllowOnly(
    std::initializer_list<std::string_view> allowed) const {
  for (const auto& entry : node_) {
    const std::string key = entry.first.Scalar();
    bool known = false;
    for (std::string_view name : allowed) known = known || name == key;
    if (!known) {
      return absl::InvalidArgumentError(Cat("config ", file_, ": line ",
                                            LineOf(entry.first), ": ",
                                            PathOf(key), ": unknown setting"));
    }
  }
  return absl::OkStatus();
}

bool ConfigSection::Has(std::string_view key) const {
  return static_cast<bool>(node_[std::string(key)]);
}

absl::StatusOr<std::optional<std::string>> ConfigSection::OptionalString(
    std::string_view key) const {
  YAML::Node value = node_[std::string(key)];
  if (!value || value.IsNull()) return std::nullopt;
  if (!value.IsScalar()) return Error(key, "must be a single value");
  return value.Scalar();
}

absl::StatusOr<std::string> ConfigSection::RequiredString(
    std::string_view key) const {
  auto value = OptionalString(key);
  if (!value.ok()) return value.status();
  if (!value->has_value() || (*value)->empty()) return Error(key, "missing");
  return **value;
}

std::string ConfigSection::ResolvePath(const std::string& value) const {
  std::filesystem::path p(value);
  if (p.is_absolute()) return value;
  return (std::filesystem::path(file_).parent_path() / p)
      .lexically_normal()
      .string();
}

absl::StatusOr<std::string> ConfigSection::RequiredPath(
    std::string_view key) const {
  auto value = RequiredString(key);
  if (!value.ok()) return value.status();
  return ResolvePath(*value);
}

absl::StatusOr<std::optional<std::string>> ConfigSection::OptionalPath(
    std::string_view key) const {
  auto value = OptionalString(key);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return std::nullopt;
  return ResolvePath(**value);
}

absl::StatusOr<uint64_t> ConfigSection::UnsignedOr(std::string_view key,
                                                   uint64_t fallback,
                                                   uint64_t max) const {
  auto text = OptionalString(key);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return fallback;
  const std::string& s = **text;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return Error(key, Cat("\"", s, "\" is not a whole number"));
  }
  if (value > max) {
    return Error(key, Cat(value, " is larger than ", max));
  }
  return value;
}

absl::StatusOr<std::vector<std::string>> ConfigSection::StringList(
    std::string_view key) const {
  YAML::Node list = node_[std::string(key)];
  std::vector<std::string> values;
  if (!list || list.IsNull()) return values;
  if (!list.IsSequence()) return Error(key, "must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].IsScalar()) {
      return Error(key, Cat("item ", i, " must be a single value"));
    }
    values.push_back(list[i].Scalar());
  }
  return values;
}

absl::StatusOr<std::vector<std::string>> ConfigSection::PathList(
    std::string_view key) const {
  auto values = StringList(key);
  if (!values.ok()) return values.status();
  for (std::string& value : *values) value = ResolvePath(value);
  return values;
}

absl::StatusOr<std::optional<ConfigSection>> ConfigSection::Section(
    std::string_view key) const {
  YAML::Node value = node_[std::string(key)];
  if (!value || value.IsNull()) return std::nullopt;
  if (!value.IsMap()) return Error(key, "must be a mapping");
  return ConfigSection(file_, PathOf(key), value);
}

absl::Status ConfigSection::ForEachInList(
    std::string_view key,
    const std::function<absl::Status(const ConfigSection&)>& visit) const {
  YAML::Node list = node_[std::string(key)];
  if (!list || list.IsNull()) return absl::OkStatus();
  if (!list.IsSequence()) return Error(key, "must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    std::string item_path = Cat(PathOf(key), "[", i, "]");
    if (!list[i].IsMap()) {
      return absl::InvalidArgumentError(Cat("config ", file_, ": line ",
                                            LineOf(list[i]), ": ", item_path,
                                            ": must be a mapping"));
    }
    absl::Status status = visit(ConfigSection(file_, item_path, list[i]));
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace caselink
