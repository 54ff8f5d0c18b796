// What the caselink CLI reads and writes for the case commands: names of
// states, case types and outcomes; referral files; --within durations and
// attachment digests; and the text of case, evidence and due views. Nothing
// here talks to a node.
//
// Everything printed that came from a node goes through Printable() (see
// client/cli_format.h). Times are shown in RFC 3339, UTC. Views leave out
// the applicants and the facts, which are personal data; --json prints
// the whole response for scripts instead.
#ifndef CASELINK_CLIENT_CLI_CASE_FORMAT_H_
#define CASELINK_CLIENT_CLI_CASE_FORMAT_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "caselink/v1/cases.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace caselink::cli {

// Lower-case names without the enum prefix, as tables show them:
// "materials_requested", "result_sent", "unpaid_wages", "mediated".
// "unspecified" for 0 and "unknown" for a value this build does not know.
std::string ReferralStateName(v1::ReferralState state);
std::string EvidenceStateName(v1::EvidenceState state);
std::string CaseTypeName(v1::CaseType type);
std::string OutcomeName(v1::CaseOutcome outcome);

// The outcomes `referral close --outcome` takes, in order: mediated,
// arbitrated, judged, withdrawn, other.
const std::vector<std::string>& OutcomeNames();

// Parses one of OutcomeNames(). InvalidArgument quoting the text and
// listing the names otherwise.
[[nodiscard]] absl::StatusOr<v1::CaseOutcome> ParseOutcome(
    std::string_view name);

// Parses a --within value: one or more whole numbers each followed by a
// unit, d (days), h, m or s, as in "2d", "36h" or "1d12h". It must be more
// than zero and at most 366 days. InvalidArgument quoting the text
// otherwise.
[[nodiscard]] absl::StatusOr<absl::Duration> ParseWithin(std::string_view text);

// Decodes an attachment digest given as 64 hex digits (either case) to its
// 32 bytes. InvalidArgument quoting the text otherwise.
[[nodiscard]] absl::StatusOr<std::string> ParseDigest(std::string_view text);

// Parses `json`, the text of the referral file `file_name`, as a Referral
// in protobuf JSON (field names as in cases.proto or in lowerCamelCase;
// enums by their full names, such as "CASE_TYPE_UNPAID_WAGES"; attachment
// digests in base64). Unknown fields are errors, so that a misspelt field
// is not silently dropped. The referral must name its case type and at
// least one applicant. Every error is InvalidArgument starting with
// `file_name` and says what is wrong: the line and column of a syntax
// error, the field path of a field with a wrong name, type or value.
[[nodiscard]] absl::StatusOr<v1::Referral> ParseReferralJson(
    std::string_view json, std::string_view file_name);

// Reads the referral file at `path` (at most 16 MiB) and parses it with
// ParseReferralJson. Errors name the file.
[[nodiscard]] absl::StatusOr<v1::Referral> ReadReferralFile(
    const std::string& path);

// RFC 3339 in UTC, to the second: "2025-06-30T09:00:00Z". "-" for an unset
// timestamp.
std::string FormatUtcTime(const google::protobuf::Timestamp& time);

// The detail view `referral show` prints: the case's state, version,
// parties, priority, eligibility, lawyer, outcome and evidence, then its
// open deadlines (those before `now` marked overdue), the referral's
// attachments when the response carries the referral, and the events.
std::string CaseViewText(const v1::GetCaseResponse& response, absl::Time now);

// One row per case, for `referral list`.
std::string CaseTableText(
    const google::protobuf::RepeatedPtrField<v1::CaseView>& cases);

// The detail view `evidence show` prints, deadlines marked as for
// CaseViewText.
std::string EvidenceViewText(const v1::EvidenceView& evidence, absl::Time now);

// One row per evidence request, for `evidence list`.
std::string EvidenceTableText(
    const google::protobuf::RepeatedPtrField<v1::EvidenceView>& evidence);

// One row per item, soonest first, overdue ones marked "overdue" in the
// first column, for `caselink due`.
std::string DueTableText(const v1::ListDueResponse& due);

// "<digest hex>  <size> bytes  <media type>  <name>" and a line break.
std::string AttachmentLine(const v1::AttachmentRef& attachment);

}  // namespace caselink::cli

#endif  // CASELINK_CLIENT_CLI_CASE_FORMAT_H_
