// How audit answers are written to files and read back, without a node:
// JSON in which every bytes field is lower-case hex, JSON Lines exports
// that keep everything needed to verify them offline, and CSV for reading.
//
// A JSON Lines export is one JSON object per line. The first line is
//   {"format": "caselink-audit-export/1", "scope": "log" or "case",
//    "case_id": "...", "head": {SignedTreeHead, bytes in hex},
//    "signing_certificate_pem": "..."}
// and each further line is one entry, oldest first:
//   {"index", "node", "at" (RFC 3339, UTC), "kind", "message_id" (hex),
//    "message_kind", "case_id", "peer", "state", "detail",
//    "previous_in_case", "event" (the exact event bytes, hex),
//    "inclusion_path" (hex hashes)}.
// Only "index", "event" and "inclusion_path" are needed to verify; the
// other fields are for readers, and reading checks that they say what the
// event bytes say.
//
// The CSV has a header row and one row per entry with the readable fields
// only, in the order above; fields holding a comma, a double quote, a line
// break or leading or trailing spaces are quoted (RFC 4180), and rows end
// in CRLF. Node text goes in as it is: a spreadsheet may treat a detail
// starting with "=" as a formula.
//
// Every function is pure and thread-safe.
#ifndef CASELINK_CLIENT_AUDIT_EXPORT_H_
#define CASELINK_CLIENT_AUDIT_EXPORT_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "caselink/v1/audit.pb.h"
#include "client/audit_verify.h"
#include "google/protobuf/message.h"

namespace caselink::cli {

// "submitted", "acknowledged", "relayed", "received", "receipt",
// "state-change", "refusal", "time-limit-passed", "undeliverable",
// "inconsistent-tree-head"; "unknown" for anything else.
std::string_view AuditKindName(v1::AuditEventKind kind);

// The names above, comma-separated, for help texts.
std::string_view AuditKindNames();

// Parses one of the names above. InvalidArgument quoting the text and
// listing the names otherwise.
[[nodiscard]] absl::StatusOr<v1::AuditEventKind> ParseAuditKind(
    std::string_view name);

// `message` as one line of JSON: the proto3 JSON mapping with the .proto
// field names and default values printed, and every bytes field (at any
// depth, repeated ones too) as lower-case hex instead of base64.
[[nodiscard]] absl::StatusOr<std::string> AuditToJson(
    const google::protobuf::Message& message);

// The inverse of AuditToJson: parses `json` into `message`, bytes fields
// from hex. InvalidArgument with the parser's reason for text that is not
// such JSON.
[[nodiscard]] absl::Status AuditFromJson(std::string_view json,
                                         google::protobuf::Message* message);

// What an export covers: the whole log, or the full history of one case.
struct ExportScope {
  bool whole_log = true;
  std::string case_id;  // When !whole_log.
};

// `answer` as a JSON Lines export, each line ending in a line break. The
// answer should have been verified first; an entry whose event does not
// parse is written with its index, bytes and proof alone.
[[nodiscard]] absl::StatusOr<std::string> ExportJsonLines(
    const v1::AuditAnswer& answer, const ExportScope& scope);

// `answer` as CSV; entries whose events do not parse get a row with their
// index alone.
std::string ExportCsv(const v1::AuditAnswer& answer);

// One CSV field, quoted if it needs to be.
std::string CsvField(std::string_view text);

// A file `caselink audit verify` reads: a JSON answer as `caselink --json
// audit history|events|path` prints it, or a JSON Lines export.
struct AuditFile {
  enum class Kind { kAnswer, kCasePath, kExport };
  Kind kind = Kind::kAnswer;
  v1::AuditAnswer answer;        // kAnswer and kExport.
  v1::GetCasePathResponse path;  // kCasePath.
  ExportScope scope;             // kExport.
  // kExport: readable fields that do not say what the event bytes say,
  // each naming the entry and the field.
  std::vector<client::AuditProblem> mismatches;
};

// Parses `text`, telling the kinds apart by their shape: a first line with
// "format" is an export, an object with "nodes" a case path, and any other
// object an answer. InvalidArgument naming the line for text that is none
// of these.
[[nodiscard]] absl::StatusOr<AuditFile> ParseAuditFile(std::string_view text);

}  // namespace caselink::cli

#endif  // CASELINK_CLIENT_AUDIT_EXPORT_H_
