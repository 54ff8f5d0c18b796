// What the caselink CLI reads from and writes for an operator: the names it
// uses for kinds, states and priorities, message ids in hex, times, tables
// and JSON. Nothing here talks to a node.
//
// Text that came from a node (case ids, reasons, payloads) is untrusted and
// may hold terminal control sequences; Printable() and IsPlainText() are
// how the CLI keeps it from reaching a terminal raw.
#ifndef CASELINK_CLIENT_CLI_FORMAT_H_
#define CASELINK_CLIENT_CLI_FORMAT_H_

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "caselink/v1/envelope.pb.h"
#include "caselink/v1/operator.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"

namespace caselink::cli {

// Writes "caselink: `message`" as one line on stderr (line breaks in the
// message become spaces) and returns `exit_code`, for `return Fail(...)`.
int Fail(std::string_view message, int exit_code = 1);

// The names of the kinds an operator may send, as `send --kind` takes them,
// comma-separated.
std::string_view SendableKindNames();

// Parses a --kind value: referral, decision, status, evidence-request,
// evidence-result, supplement or withdrawal. InvalidArgument otherwise,
// quoting the value and listing the names.
[[nodiscard]] absl::StatusOr<v1::MessageKind> ParseSendableKind(
    std::string_view name);

// Lower-case names for tables: the --kind names, plus "receipt" and
// "undeliverable"; "unknown" for anything else.
std::string_view KindName(v1::MessageKind kind);
// "queued", "sent", "acknowledged", "delivered", "rejected" or "unknown".
std::string_view DeliveryStateName(v1::DeliveryState state);
// "green" for the green channel, "ordinary" for everything else.
std::string_view PriorityName(v1::Priority priority);
// "connecting", "connected", "unreachable" or "unknown".
std::string_view LinkStateName(v1::LinkState state);

// Decodes a message id given as 32 hex digits (either case) to its 16
// bytes. InvalidArgument quoting the text otherwise.
[[nodiscard]] absl::StatusOr<std::string> ParseMessageId(std::string_view text);

// Parses an RFC 3339 time with an offset or "Z", such as
// 2025-06-30T17:00:00+08:00. InvalidArgument quoting the text otherwise.
[[nodiscard]] absl::StatusOr<google::protobuf::Timestamp> ParseRfc3339(
    std::string_view text);

// A time in the local time zone: "2025-06-30 17:00:00" for tables, or RFC
// 3339 with the offset for detail views. "-" for an unset timestamp.
std::string FormatTableTime(const google::protobuf::Timestamp& time);
std::string FormatFullTime(const google::protobuf::Timestamp& time);

// `text` with control characters, DEL and bytes that are not UTF-8 shown as
// \xNN, so that it can be printed on a terminal; at most `max_bytes` of the
// input are shown, followed by "..." if there was more.
std::string Printable(std::string_view text, size_t max_bytes = 4096);

// True if `bytes` is valid UTF-8 without control characters other than tab,
// line feed and carriage return: safe to print on a terminal as it is.
bool IsPlainText(std::string_view bytes);

// A hex dump of the first `max_bytes` of `bytes`, 16 bytes a line with
// offsets and the printable ASCII alongside.
std::string HexDump(std::string_view bytes, size_t max_bytes);

// A table of left-aligned columns, sized to their widest cell (counting
// wide CJK characters as two columns). Empty cells show as "-". Cells are
// printed as given, so callers pass untrusted text through Printable().
class Table {
 public:
  explicit Table(std::vector<std::string> headings);

  // Rows with fewer cells than headings are padded with empty cells.
  void AddRow(std::vector<std::string> cells);

  // The table as text, one line per row, each ending in a line break.
  std::string Text() const;

  void Print(std::FILE* out) const;

 private:
  std::vector<std::vector<std::string>> rows_;  // Headings first.
};

// Renders `message` as one line of JSON: the proto3 JSON mapping with the
// .proto field names and default values printed, except that message ids,
// in_reply_to and key ids are lower-case hex, as the CLI shows and accepts
// them, rather than base64, and so are attachment digests. Other bytes
// fields stay base64.
[[nodiscard]] absl::StatusOr<std::string> ToJson(
    const google::protobuf::Message& message);

// Prints ToJson(message) and a line break on stdout; returns 0, or Fail()'s
// 1 if the message cannot be rendered.
int PrintJson(const google::protobuf::Message& message);

}  // namespace caselink::cli

#endif  // CASELINK_CLIENT_CLI_FORMAT_H_
