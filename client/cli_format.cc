#include "client/cli_format.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "core/crypto.h"
#include "core/envelope.h"
#include "core/strings.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace caselink::cli {
namespace {

struct KindSpelling {
  v1::MessageKind kind;
  std::string_view name;
};

// The kinds an operator sends, in the order the help lists them.
constexpr std::array<KindSpelling, 7> kSendableKinds = {{
    {v1::MESSAGE_KIND_REFERRAL, "referral"},
    {v1::MESSAGE_KIND_REFERRAL_DECISION, "decision"},
    {v1::MESSAGE_KIND_CASE_STATUS, "status"},
    {v1::MESSAGE_KIND_EVIDENCE_REQUEST, "evidence-request"},
    {v1::MESSAGE_KIND_EVIDENCE_RESULT, "evidence-result"},
    {v1::MESSAGE_KIND_SUPPLEMENT, "supplement"},
    {v1::MESSAGE_KIND_WITHDRAWAL, "withdrawal"},
}};

constexpr std::string_view kSendableKindNames =
    "referral, decision, status, evidence-request, evidence-result, "
    "supplement, withdrawal";

// The JSON keys whose base64 bytes are shown as hex instead.
constexpr std::array<std::string_view, 4> kHexKeys = {
    "message_id", "in_reply_to", "key_id", "digest"};

// Decodes the UTF-8 sequence at the start of `s` into `code_point` and
// returns its length, or 0 if it is not well-formed (overlong forms,
// surrogates and values past U+10FFFF included).
size_t DecodeUtf8(std::string_view s, char32_t* code_point) {
  if (s.empty()) return 0;
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  size_t length;
  char32_t value;
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  } else if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    value = lead & 0x1Fu;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    value = lead & 0x0Fu;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    value = lead & 0x07u;
  } else {
    return 0;
  }
  if (s.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0u) != 0x80u) return 0;
    value = (value << 6) | (byte(i) & 0x3Fu);
  }
  const char32_t smallest = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
  if (value < smallest || value > 0x10FFFF ||
      (value >= 0xD800 && value <= 0xDFFF)) {
    return 0;
  }
  *code_point = value;
  return length;
}

bool IsControl(char32_t c) { return c < 0x20 || (c >= 0x7F && c < 0xA0); }

// Terminal columns a code point takes: two for the wide East Asian ranges
// (CJK, Hangul, full-width forms), one otherwise.
size_t ColumnsOf(char32_t c) {
  const bool wide =
      (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0xA4CF) ||
      (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
      (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
      (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x20000 && c <= 0x3FFFD);
  return wide ? 2 : 1;
}

size_t DisplayWidth(std::string_view text) {
  size_t width = 0;
  while (!text.empty()) {
    char32_t c = 0;
    size_t length = DecodeUtf8(text, &c);
    if (length == 0) length = 1;
    width += length == 1 ? 1 : ColumnsOf(c);
    text.remove_prefix(length);
  }
  return width;
}

std::string EscapedByte(unsigned char b) {
  constexpr std::string_view kDigits = "0123456789abcdef";
  return Cat("\\x", kDigits[b >> 4], kDigits[b & 0xFu]);
}

absl::Time ToAbslTime(const google::protobuf::Timestamp& time) {
  return absl::FromUnixSeconds(time.seconds()) +
         absl::Nanoseconds(time.nanos());
}

bool IsUnset(const google::protobuf::Timestamp& time) {
  return time.seconds() == 0 && time.nanos() == 0;
}

void HexIdsIn(nlohmann::ordered_json& value) {
  if (value.is_array()) {
    for (auto& item : value) HexIdsIn(item);
    return;
  }
  if (!value.is_object()) return;
  for (auto& item : value.items()) {
    const bool hex_key = std::find(kHexKeys.begin(), kHexKeys.end(),
                                   item.key()) != kHexKeys.end();
    std::string raw;
    if (hex_key && item.value().is_string() &&
        absl::Base64Unescape(item.value().get<std::string>(), &raw)) {
      item.value() = HexEncode(raw);
    } else {
      HexIdsIn(item.value());
    }
  }
}

}  // namespace

int Fail(std::string_view message, int exit_code) {
  std::string line(message);
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::fprintf(stderr, "caselink: %s\n", line.c_str());
  return exit_code;
}

std::string_view SendableKindNames() { return kSendableKindNames; }

absl::StatusOr<v1::MessageKind> ParseSendableKind(std::string_view name) {
  for (const KindSpelling& spelling : kSendableKinds) {
    if (spelling.name == name) return spelling.kind;
  }
  return absl::InvalidArgumentError(Cat("\"", Printable(name, 40),
                                        "\" is not a message kind; use one of ",
                                        kSendableKindNames));
}

std::string_view KindName(v1::MessageKind kind) {
  for (const KindSpelling& spelling : kSendableKinds) {
    if (spelling.kind == kind) return spelling.name;
  }
  if (kind == v1::MESSAGE_KIND_RECEIPT) return "receipt";
  if (kind == v1::MESSAGE_KIND_UNDELIVERABLE) return "undeliverable";
  return "unknown";
}

std::string_view DeliveryStateName(v1::DeliveryState state) {
  switch (state) {
    case v1::DELIVERY_STATE_QUEUED:
      return "queued";
    case v1::DELIVERY_STATE_SENT:
      return "sent";
    case v1::DELIVERY_STATE_ACKNOWLEDGED:
      return "acknowledged";
    case v1::DELIVERY_STATE_DELIVERED:
      return "delivered";
    case v1::DELIVERY_STATE_REJECTED:
      return "rejected";
    default:
      return "unknown";
  }
}

std::string_view PriorityName(v1::Priority priority) {
  return priority == v1::PRIORITY_GREEN_CHANNEL ? "green" : "ordinary";
}

std::string_view LinkStateName(v1::LinkState state) {
  switch (state) {
    case v1::LINK_STATE_CONNECTED:
      return "connected";
    case v1::LINK_STATE_UNREACHABLE:
      return "unreachable";
    case v1::LINK_STATE_CONNECTING:
      return "connecting";
    default:
      return "unknown";
  }
}

absl::StatusOr<std::string> ParseMessageId(std::string_view text) {
  if (text.size() == 2 * kMessageIdSize) {
    auto id = HexDecode(text);
    if (id.ok()) return id;
  }
  return absl::InvalidArgumentError(Cat("message id \"", Printable(text, 40),
                                        "\" is not ", 2 * kMessageIdSize,
                                        " hex digits"));
}

absl::StatusOr<google::protobuf::Timestamp> ParseRfc3339(
    std::string_view text) {
  google::protobuf::Timestamp time;
  if (!google::protobuf::util::TimeUtil::FromString(std::string(text), &time)) {
    return absl::InvalidArgumentError(
        Cat("\"", Printable(text, 40),
            "\" is not an RFC 3339 time such as 2025-06-30T17:00:00+08:00"));
  }
  return time;
}

std::string FormatTableTime(const google::protobuf::Timestamp& time) {
  if (IsUnset(time)) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", ToAbslTime(time),
                          absl::LocalTimeZone());
}

std::string FormatFullTime(const google::protobuf::Timestamp& time) {
  if (IsUnset(time)) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3S%Ez", ToAbslTime(time),
                          absl::LocalTimeZone());
}

std::string Printable(std::string_view text, size_t max_bytes) {
  const bool cut = text.size() > max_bytes;
  if (cut) text = text.substr(0, max_bytes);
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    char32_t c = 0;
    size_t length = DecodeUtf8(text, &c);
    if (length == 0 || IsControl(c)) {
      // A control character of two bytes (C1) is escaped byte by byte.
      length = std::max<size_t>(length, 1);
      for (size_t i = 0; i < length; ++i) {
        out += EscapedByte(static_cast<unsigned char>(text[i]));
      }
    } else {
      out.append(text.substr(0, length));
    }
    text.remove_prefix(length);
  }
  if (cut) out += "...";
  return out;
}

bool IsPlainText(std::string_view bytes) {
  while (!bytes.empty()) {
    char32_t c = 0;
    size_t length = DecodeUtf8(bytes, &c);
    if (length == 0) return false;
    if (IsControl(c) && c != '\t' && c != '\n' && c != '\r') return false;
    bytes.remove_prefix(length);
  }
  return true;
}

std::string HexDump(std::string_view bytes, size_t max_bytes) {
  constexpr size_t kPerLine = 16;
  const size_t shown = std::min(bytes.size(), max_bytes);
  std::string out;
  for (size_t offset = 0; offset < shown; offset += kPerLine) {
    std::string_view line =
        bytes.substr(offset, std::min(kPerLine, shown - offset));
    char prefix[24];
    std::snprintf(prefix, sizeof(prefix), "%08zx  ", offset);
    out += prefix;
    for (size_t i = 0; i < kPerLine; ++i) {
      out += i < line.size() ? HexEncode(line.substr(i, 1)) + " "
                             : std::string("   ");
      if (i == 7) out += ' ';
    }
    out += " |";
    for (char c : line) out += (c >= 0x20 && c < 0x7F) ? c : '.';
    out += "|\n";
  }
  return out;
}

Table::Table(std::vector<std::string> headings) {
  rows_.push_back(std::move(headings));
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(std::max(cells.size(), rows_.front().size()));
  for (std::string& cell : cells) {
    if (cell.empty()) cell = "-";
  }
  rows_.push_back(std::move(cells));
}

void Table::Print(std::FILE* out) const {
  const std::string text = Text();
  std::fwrite(text.data(), 1, text.size(), out);
}

std::string Table::Text() const {
  const size_t columns = rows_.front().size();
  std::vector<size_t> widths(columns, 0);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < columns; ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(row[i]));
    }
  }
  std::string text;
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      text += row[i];
      if (i + 1 < row.size()) {
        text.append(widths[i] - DisplayWidth(row[i]) + 2, ' ');
      }
    }
    text += '\n';
  }
  return text;
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
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
  nlohmann::ordered_json value = nlohmann::ordered_json::parse(
      proto_json, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return absl::InternalError("cannot render the answer as JSON");
  }
  HexIdsIn(value);
  return value.dump(-1, ' ', /*ensure_ascii=*/false,
                    nlohmann::ordered_json::error_handler_t::replace);
}

int PrintJson(const google::protobuf::Message& message) {
  absl::StatusOr<std::string> json = ToJson(message);
  if (!json.ok()) return Fail(View(json.status().message()));
  std::printf("%s\n", json->c_str());
  return 0;
}

}  // namespace caselink::cli
