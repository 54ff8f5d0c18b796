#include "client/audit_export.h"

#include <array>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "client/cli_format.h"
#include "core/crypto.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace caselink::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using Json = nlohmann::ordered_json;

constexpr std::string_view kFormat = "caselink-audit-export/1";

struct AuditKindSpelling {
  v1::AuditEventKind kind;
  std::string_view name;
};

constexpr std::array<AuditKindSpelling, 10> kAuditKinds = {{
    {v1::AUDIT_EVENT_KIND_SUBMITTED, "submitted"},
    {v1::AUDIT_EVENT_KIND_ACKNOWLEDGED, "acknowledged"},
    {v1::AUDIT_EVENT_KIND_RELAYED, "relayed"},
    {v1::AUDIT_EVENT_KIND_RECEIVED, "received"},
    {v1::AUDIT_EVENT_KIND_RECEIPT, "receipt"},
    {v1::AUDIT_EVENT_KIND_STATE_CHANGE, "state-change"},
    {v1::AUDIT_EVENT_KIND_REFUSAL, "refusal"},
    {v1::AUDIT_EVENT_KIND_TIME_LIMIT_PASSED, "time-limit-passed"},
    {v1::AUDIT_EVENT_KIND_UNDELIVERABLE, "undeliverable"},
    {v1::AUDIT_EVENT_KIND_INCONSISTENT_TREE_HEAD, "inconsistent-tree-head"},
}};

constexpr std::string_view kAuditKindNames =
    "submitted, acknowledged, relayed, received, receipt, state-change, "
    "refusal, time-limit-passed, undeliverable, inconsistent-tree-head";

// The readable fields of the export, in order; CSV columns and JSON Lines
// keys alike.
constexpr std::array<std::string_view, 11> kReadableFields = {
    "index",   "node", "at",    "kind",   "message_id",      "message_kind",
    "case_id", "peer", "state", "detail", "previous_in_case"};

Json Readable(const v1::AuditEvent& event) {
  Json fields = Json::object();
  fields["index"] = event.index();
  fields["node"] = event.node();
  fields["at"] = google::protobuf::util::TimeUtil::ToString(event.at());
  fields["kind"] = std::string(AuditKindName(event.kind()));
  fields["message_id"] = HexEncode(event.message_id());
  fields["message_kind"] = std::string(KindName(event.message_kind()));
  fields["case_id"] = event.case_id();
  fields["peer"] = event.peer();
  fields["state"] = event.state();
  fields["detail"] = event.detail();
  fields["previous_in_case"] = event.previous_in_case();
  return fields;
}

std::string CellText(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

// Rewrites the bytes fields of a `type` message rendered as `value`, from
// base64 to hex or back. False if one does not decode.
bool RecodeBytes(const Descriptor& type, Json& value, bool to_hex);

bool RecodeOne(const FieldDescriptor& field, Json& value, bool to_hex) {
  if (field.type() == FieldDescriptor::TYPE_MESSAGE && !field.is_map()) {
    return RecodeBytes(*field.message_type(), value, to_hex);
  }
  if (field.type() != FieldDescriptor::TYPE_BYTES || !value.is_string()) {
    return true;
  }
  const std::string text = value.get<std::string>();
  std::string raw;
  if (to_hex) {
    if (!absl::Base64Unescape(text, &raw)) return false;
    value = HexEncode(raw);
    return true;
  }
  absl::StatusOr<std::string> decoded = HexDecode(text);
  if (!decoded.ok()) return false;
  value = absl::Base64Escape(*decoded);
  return true;
}

bool RecodeBytes(const Descriptor& type, Json& value, bool to_hex) {
  if (!value.is_object()) return true;
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor& field = *type.field(i);
    auto found = value.find(field.name());
    if (found == value.end()) continue;
    if (field.is_repeated() && found->is_array()) {
      for (Json& item : *found) {
        if (!RecodeOne(field, item, to_hex)) return false;
      }
    } else if (!RecodeOne(field, *found, to_hex)) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<Json> ParseJsonText(std::string_view text,
                                   std::string_view where) {
  Json value = Json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) {
    return absl::InvalidArgumentError(Cat(where, " is not a JSON object"));
  }
  return value;
}

absl::Status MessageFromJson(Json value, google::protobuf::Message* message) {
  if (!RecodeBytes(*message->GetDescriptor(), value, /*to_hex=*/false)) {
    return absl::InvalidArgumentError("a bytes field is not hex");
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto parsed = google::protobuf::util::JsonStringToMessage(value.dump(),
                                                            message, options);
  if (!parsed.ok()) {
    // protobuf's own string view, not abseil's.
    const auto reason = parsed.message();
    return absl::InvalidArgumentError(
        Cat("not a ", message->GetDescriptor()->name(), ": ",
            std::string_view(reason.data(), reason.size())));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// JSON Lines

absl::StatusOr<std::string> HeaderLine(const v1::AuditAnswer& answer,
                                       const ExportScope& scope) {
  CASELINK_ASSIGN_OR_RETURN(std::string head, AuditToJson(answer.head()));
  Json line = Json::object();
  line["format"] = std::string(kFormat);
  line["scope"] = scope.whole_log ? "log" : "case";
  line["case_id"] = scope.case_id;
  line["head"] = Json::parse(head, nullptr, /*allow_exceptions=*/false);
  line["signing_certificate_pem"] = answer.signing_certificate_pem();
  return line.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string EntryLine(const v1::AuditEntry& entry) {
  v1::AuditEvent event;
  Json line = Json::object();
  if (event.ParseFromString(entry.event())) {
    line = Readable(event);
  }
  // The entry's own index, which is what verification uses.
  line["index"] = entry.index();
  line["event"] = HexEncode(entry.event());
  Json path = Json::array();
  for (const std::string& hash : entry.inclusion_path()) {
    path.push_back(HexEncode(hash));
  }
  line["inclusion_path"] = std::move(path);
  return line.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::Status ReadHeaderLine(const Json& line, AuditFile& file) {
  const auto text = [&](const char* key) {
    auto found = line.find(key);
    return found != line.end() && found->is_string() ? found->get<std::string>()
                                                     : std::string();
  };
  if (text("format") != kFormat) {
    return absl::InvalidArgumentError(Cat("line 1: format is not ", kFormat));
  }
  const std::string scope = text("scope");
  if (scope != "log" && scope != "case") {
    return absl::InvalidArgumentError("line 1: scope is not log or case");
  }
  file.scope.whole_log = scope == "log";
  file.scope.case_id = text("case_id");
  file.answer.set_signing_certificate_pem(text("signing_certificate_pem"));
  auto head = line.find("head");
  if (head == line.end()) {
    return absl::InvalidArgumentError("line 1: no head");
  }
  absl::Status parsed = MessageFromJson(*head, file.answer.mutable_head());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        Cat("line 1: head: ", View(parsed.message())));
  }
  return absl::OkStatus();
}

// One entry line; adds a mismatch for each readable field that does not
// say what the event bytes say.
absl::Status ReadEntryLine(const Json& line, size_t number, AuditFile& file) {
  const std::string where = Cat("line ", number);
  auto index = line.find("index");
  auto event = line.find("event");
  auto path = line.find("inclusion_path");
  if (index == line.end() || !index->is_number_unsigned() ||
      event == line.end() || !event->is_string() || path == line.end() ||
      !path->is_array()) {
    return absl::InvalidArgumentError(
        Cat(where, ": needs index, event and inclusion_path"));
  }
  v1::AuditEntry& entry = *file.answer.add_entries();
  entry.set_index(index->get<uint64_t>());
  absl::StatusOr<std::string> bytes = HexDecode(event->get<std::string>());
  if (!bytes.ok()) return absl::InvalidArgumentError(Cat(where, ": event"));
  entry.set_event(*std::move(bytes));
  for (const Json& hash : *path) {
    absl::StatusOr<std::string> raw =
        hash.is_string() ? HexDecode(hash.get<std::string>())
                         : absl::InvalidArgumentError("not text");
    if (!raw.ok()) {
      return absl::InvalidArgumentError(Cat(where, ": inclusion_path"));
    }
    entry.add_inclusion_path(*std::move(raw));
  }

  v1::AuditEvent parsed;
  if (!parsed.ParseFromString(entry.event())) return absl::OkStatus();
  const Json readable = Readable(parsed);
  for (auto& field : readable.items()) {
    if (field.key() == "index") continue;  // The entry's own, checked apart.
    auto stated = line.find(field.key());
    if (stated == line.end() || *stated != field.value()) {
      file.mismatches.push_back({file.answer.head().code(), entry.index(),
                                 std::nullopt,
                                 Cat("field \"", field.key(),
                                     "\" does not say what the event "
                                     "bytes say (",
                                     CellText(field.value()), ")")});
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<AuditFile> ParseExport(std::string_view text) {
  AuditFile file;
  file.kind = AuditFile::Kind::kExport;
  size_t number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view()
                                         : text.substr(end + 1);
    ++number;
    if (line.empty() || line == "\r") continue;
    CASELINK_ASSIGN_OR_RETURN(Json value,
                              ParseJsonText(line, Cat("line ", number)));
    if (number == 1) {
      CASELINK_RETURN_IF_ERROR(ReadHeaderLine(value, file));
    } else {
      CASELINK_RETURN_IF_ERROR(ReadEntryLine(value, number, file));
    }
  }
  return file;
}

}  // namespace

std::string_view AuditKindName(v1::AuditEventKind kind) {
  for (const AuditKindSpelling& spelling : kAuditKinds) {
    if (spelling.kind == kind) return spelling.name;
  }
  return "unknown";
}

std::string_view AuditKindNames() { return kAuditKindNames; }

absl::StatusOr<v1::AuditEventKind> ParseAuditKind(std::string_view name) {
  for (const AuditKindSpelling& spelling : kAuditKinds) {
    if (spelling.name == name) return spelling.kind;
  }
  return absl::InvalidArgumentError(Cat("\"", Printable(name, 40),
                                        "\" is not an audit event kind; use "
                                        "one of ",
                                        kAuditKindNames));
}

absl::StatusOr<std::string> AuditToJson(
    const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string proto_json;
  if (!google::protobuf::util::MessageToJsonString(message, &proto_json,
                                                   options)
           .ok()) {
    return absl::InternalError("cannot render the answer as JSON");
  }
  Json value = Json::parse(proto_json, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() ||
      !RecodeBytes(*message.GetDescriptor(), value, /*to_hex=*/true)) {
    return absl::InternalError("cannot render the answer as JSON");
  }
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::Status AuditFromJson(std::string_view json,
                           google::protobuf::Message* message) {
  CASELINK_ASSIGN_OR_RETURN(Json value, ParseJsonText(json, "the file"));
  return MessageFromJson(std::move(value), message);
}

absl::StatusOr<std::string> ExportJsonLines(const v1::AuditAnswer& answer,
                                            const ExportScope& scope) {
  CASELINK_ASSIGN_OR_RETURN(std::string out, HeaderLine(answer, scope));
  out += '\n';
  for (const v1::AuditEntry& entry : answer.entries()) {
    out += EntryLine(entry);
    out += '\n';
  }
  return out;
}

std::string CsvField(std::string_view text) {
  const bool quote =
      text.find_first_of(",\"\r\n") != std::string_view::npos ||
      (!text.empty() && (text.front() == ' ' || text.back() == ' '));
  if (!quote) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string ExportCsv(const v1::AuditAnswer& answer) {
  std::string out;
  for (size_t i = 0; i < kReadableFields.size(); ++i) {
    if (i > 0) out += ',';
    out += kReadableFields[i];
  }
  out += "\r\n";
  for (const v1::AuditEntry& entry : answer.entries()) {
    v1::AuditEvent event;
    if (!event.ParseFromString(entry.event())) {
      out += Cat(entry.index(), "\r\n");
      continue;
    }
    const Json fields = Readable(event);
    for (size_t i = 0; i < kReadableFields.size(); ++i) {
      if (i > 0) out += ',';
      out += CsvField(CellText(fields[std::string(kReadableFields[i])]));
    }
    out += "\r\n";
  }
  return out;
}

absl::StatusOr<AuditFile> ParseAuditFile(std::string_view text) {
  // An export's first line is an object with "format"; an answer printed
  // by --json is a single object, which may span lines if edited.
  const std::string_view first_line = text.substr(0, text.find('\n'));
  Json first = Json::parse(first_line, nullptr, /*allow_exceptions=*/false);
  if (!first.is_discarded() && first.is_object() && first.contains("format")) {
    return ParseExport(text);
  }

  CASELINK_ASSIGN_OR_RETURN(Json value, ParseJsonText(text, "the file"));
  AuditFile file;
  if (value.contains("nodes")) {
    file.kind = AuditFile::Kind::kCasePath;
    CASELINK_RETURN_IF_ERROR(MessageFromJson(std::move(value), &file.path));
  } else {
    file.kind = AuditFile::Kind::kAnswer;
    CASELINK_RETURN_IF_ERROR(MessageFromJson(std::move(value), &file.answer));
  }
  return file;
}

}  // namespace caselink::cli
