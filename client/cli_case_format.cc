#include "client/cli_case_format.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "client/cli_format.h"
#include "core/crypto.h"
#include "core/strings.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"

namespace caselink::cli {
namespace {

using google::protobuf::RepeatedPtrField;

// A referral file larger than this is surely not one.
constexpr size_t kMaxReferralFileBytes = 16 << 20;

constexpr absl::Duration kLongestWithin = absl::Hours(366 * 24);

// The name of enum value `value` of `type`, lower case, without `prefix`.
std::string EnumName(const google::protobuf::EnumDescriptor* type, int value,
                     std::string_view prefix) {
  const google::protobuf::EnumValueDescriptor* found =
      type->FindValueByNumber(value);
  if (found == nullptr) return "unknown";
  std::string_view name = found->name();
  if (name.substr(0, prefix.size()) == prefix)
    name.remove_prefix(prefix.size());
  std::string lower(name);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

// A state a node sent as text (in a DueItem): shown as the enum names are,
// whether it came as "received" or as "REFERRAL_STATE_RECEIVED".
std::string StateText(std::string_view state) {
  for (std::string_view prefix : {"REFERRAL_STATE_", "EVIDENCE_STATE_"}) {
    if (state.substr(0, prefix.size()) == prefix) {
      std::string lower(state.substr(prefix.size()));
      for (char& c : lower) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      return Printable(lower, 64);
    }
  }
  return Printable(state, 64);
}

absl::Time ToTime(const google::protobuf::Timestamp& time) {
  return absl::FromUnixSeconds(time.seconds()) +
         absl::Nanoseconds(time.nanos());
}

bool IsSet(const google::protobuf::Timestamp& time) {
  return time.seconds() != 0 || time.nanos() != 0;
}

// One line of a detail view.
void AddField(std::string& text, std::string_view label,
              std::string_view value) {
  std::string line(label);
  line.resize(std::max<size_t>(line.size() + 1, 13), ' ');
  text += Cat(line, value.empty() ? std::string_view("-") : value, "\n");
}

// Node codes and ids, which are short; longer text is cut.
std::string Short(std::string_view text) { return Printable(text, 64); }

std::string EligibilityText(const v1::Eligibility& eligibility) {
  std::string verdict = eligibility.exempt()     ? "exempt from the test"
                        : eligibility.eligible() ? "eligible"
                                                 : "not eligible";
  if (!eligibility.reason().empty()) {
    verdict += Cat(": ", Printable(eligibility.reason(), 512));
  }
  return verdict;
}

void AddDeadlines(std::string& text,
                  const RepeatedPtrField<v1::Deadline>& deadlines,
                  absl::Time now) {
  if (deadlines.empty()) return;
  Table table({"DEADLINE", "DUE", "OWNER", ""});
  for (const v1::Deadline& deadline : deadlines) {
    const bool overdue = IsSet(deadline.due()) && ToTime(deadline.due()) < now;
    table.AddRow({Short(deadline.stage()), FormatUtcTime(deadline.due()),
                  Short(deadline.owner()), overdue ? "overdue" : " "});
  }
  text += Cat("\n", table.Text());
}

void AddEvents(std::string& text,
               const RepeatedPtrField<v1::CaseEvent>& events) {
  if (events.empty()) return;
  Table table({"AT", "NODE", "EVENT", "DETAIL"});
  for (const v1::CaseEvent& event : events) {
    table.AddRow({FormatUtcTime(event.at()), Short(event.node()),
                  Short(event.name()), Printable(event.detail(), 512)});
  }
  text += Cat("\n", table.Text());
}

void AddAttachments(std::string& text,
                    const RepeatedPtrField<v1::AttachmentRef>& attachments) {
  if (attachments.empty()) return;
  Table table({"ATTACHMENT", "SIZE", "TYPE", "DIGEST"});
  for (const v1::AttachmentRef& attachment : attachments) {
    table.AddRow({Printable(attachment.name(), 256), Cat(attachment.size()),
                  Printable(attachment.media_type(), 128),
                  HexEncode(attachment.digest())});
  }
  text += Cat("\n", table.Text());
}

std::string Joined(const RepeatedPtrField<std::string>& items) {
  std::string joined;
  for (const std::string& item : items) {
    if (!joined.empty()) joined += ", ";
    joined += Short(item);
  }
  return joined;
}

// Reads JSON events and keeps only the first syntax error, which nlohmann
// reports with its line and column; protobuf's parser does not say where.
struct SyntaxErrorFinder {
  using Json = nlohmann::json;

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(Json::number_integer_t) { return true; }
  bool number_unsigned(Json::number_unsigned_t) { return true; }
  bool number_float(Json::number_float_t, const std::string&) { return true; }
  bool string(std::string&) { return true; }
  bool binary(Json::binary_t&) { return true; }
  bool start_object(size_t) { return true; }
  bool key(std::string&) { return true; }
  bool end_object() { return true; }
  bool start_array(size_t) { return true; }
  bool end_array() { return true; }
  bool parse_error(size_t, const std::string&,
                   const nlohmann::detail::exception& error) {
    // Drop the "[json.exception.parse_error.101] " tag.
    std::string_view what = error.what();
    const size_t tag_end = what.find("] ");
    if (tag_end != std::string_view::npos) what.remove_prefix(tag_end + 2);
    message = std::string(what);
    return false;
  }

  std::string message;
};

absl::Status ReferralFileError(std::string_view file_name,
                               std::string_view what) {
  return absl::InvalidArgumentError(Cat(file_name, ": ", what));
}

}  // namespace

std::string ReferralStateName(v1::ReferralState state) {
  return EnumName(v1::ReferralState_descriptor(), state, "REFERRAL_STATE_");
}

std::string EvidenceStateName(v1::EvidenceState state) {
  return EnumName(v1::EvidenceState_descriptor(), state, "EVIDENCE_STATE_");
}

std::string CaseTypeName(v1::CaseType type) {
  return EnumName(v1::CaseType_descriptor(), type, "CASE_TYPE_");
}

std::string OutcomeName(v1::CaseOutcome outcome) {
  return EnumName(v1::CaseOutcome_descriptor(), outcome, "CASE_OUTCOME_");
}

const std::vector<std::string>& OutcomeNames() {
  static const std::vector<std::string>* const names = [] {
    auto* list = new std::vector<std::string>;
    const google::protobuf::EnumDescriptor* type = v1::CaseOutcome_descriptor();
    for (int i = 0; i < type->value_count(); ++i) {
      if (type->value(i)->number() == v1::CASE_OUTCOME_UNSPECIFIED) continue;
      list->push_back(
          OutcomeName(static_cast<v1::CaseOutcome>(type->value(i)->number())));
    }
    return list;
  }();
  return *names;
}

absl::StatusOr<v1::CaseOutcome> ParseOutcome(std::string_view name) {
  const google::protobuf::EnumDescriptor* type = v1::CaseOutcome_descriptor();
  for (int i = 0; i < type->value_count(); ++i) {
    const auto outcome = static_cast<v1::CaseOutcome>(type->value(i)->number());
    if (outcome != v1::CASE_OUTCOME_UNSPECIFIED &&
        OutcomeName(outcome) == name) {
      return outcome;
    }
  }
  std::string names;
  for (const std::string& known : OutcomeNames()) {
    names += Cat(names.empty() ? "" : ", ", known);
  }
  return absl::InvalidArgumentError(Cat(
      "\"", Printable(name, 40), "\" is not an outcome; use one of ", names));
}

absl::StatusOr<absl::Duration> ParseWithin(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        Cat("\"", Printable(text, 40), "\" ", why,
            "; give a number and a unit (d, h, m or s), such as 2d, 36h or "
            "1d12h"));
  };
  if (text.empty()) return bad("is empty");

  absl::Duration total = absl::ZeroDuration();
  std::string_view rest = text;
  while (!rest.empty()) {
    // Digits, capped well before they could overflow.
    size_t digits = 0;
    int64_t number = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') {
      if (number > 1'000'000'000) return bad("is too long");
      number = number * 10 + (rest[digits] - '0');
      ++digits;
    }
    if (digits == 0) return bad("is not a duration");
    if (digits == rest.size()) return bad("has a number without a unit");

    absl::Duration unit;
    switch (rest[digits]) {
      case 'd':
        unit = absl::Hours(24);
        break;
      case 'h':
        unit = absl::Hours(1);
        break;
      case 'm':
        unit = absl::Minutes(1);
        break;
      case 's':
        unit = absl::Seconds(1);
        break;
      default:
        return bad("has a unit other than d, h, m or s");
    }
    total += number * unit;
    if (total > kLongestWithin) return bad("is longer than 366 days");
    rest.remove_prefix(digits + 1);
  }
  if (total <= absl::ZeroDuration()) return bad("is not more than zero");
  return total;
}

absl::StatusOr<std::string> ParseDigest(std::string_view text) {
  if (text.size() == 2 * kDigestSize) {
    auto digest = HexDecode(text);
    if (digest.ok()) return digest;
  }
  return absl::InvalidArgumentError(Cat("\"", Printable(text, 80),
                                        "\" is not a digest of ",
                                        2 * kDigestSize, " hex digits"));
}

absl::StatusOr<v1::Referral> ParseReferralJson(std::string_view json,
                                               std::string_view file_name) {
  if (json.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return ReferralFileError(file_name,
                             "is empty; it should hold a Referral "
                             "as a JSON object");
  }

  SyntaxErrorFinder syntax;
  if (!nlohmann::json::sax_parse(json, &syntax)) {
    return ReferralFileError(file_name,
                             Cat("is not valid JSON: ", syntax.message));
  }

  v1::Referral referral;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &referral,
      options);
  if (!parsed.ok()) {
    const auto message = parsed.message();
    return ReferralFileError(
        file_name, Cat("not a Referral in protobuf JSON: ",
                       std::string_view(message.data(), message.size())));
  }

  // The two things no handler can decide on without.
  if (referral.case_type() == v1::CASE_TYPE_UNSPECIFIED) {
    return ReferralFileError(
        file_name,
        "case_type is missing; set it to one of CASE_TYPE_UNPAID_WAGES, "
        "CASE_TYPE_WORK_INJURY, CASE_TYPE_LABOUR_CONTRACT, "
        "CASE_TYPE_SOCIAL_INSURANCE or CASE_TYPE_OTHER");
  }
  if (referral.applicants().empty()) {
    return ReferralFileError(file_name,
                             "applicants is empty; a referral names at least "
                             "one applicant");
  }
  return referral;
}

absl::StatusOr<v1::Referral> ReadReferralFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    const int error = errno;
    return absl::Status(error == ENOENT ? absl::StatusCode::kNotFound
                                        : absl::StatusCode::kFailedPrecondition,
                        Cat(path, ": cannot open: ", std::strerror(error)));
  }
  std::string json;
  char buffer[65536];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0 &&
         json.size() <= kMaxReferralFileBytes) {
    json.append(buffer, n);
  }
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) {
    return absl::DataLossError(
        Cat(path, ": cannot read: ", std::strerror(error)));
  }
  if (json.size() > kMaxReferralFileBytes) {
    return ReferralFileError(path, "is larger than 16 MiB");
  }
  return ParseReferralJson(json, path);
}

std::string FormatUtcTime(const google::protobuf::Timestamp& time) {
  if (!IsSet(time)) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", ToTime(time),
                          absl::UTCTimeZone());
}

std::string CaseViewText(const v1::GetCaseResponse& response, absl::Time now) {
  const v1::CaseView& view = response.case_view();
  std::string text;
  AddField(text, "case", Short(view.case_id()));
  AddField(text, "state", ReferralStateName(view.state()));
  AddField(text, "version", Cat(view.version()));
  AddField(text, "origin", Short(view.origin()));
  AddField(text, "handler", Short(view.handler()));
  if (!view.arbiter().empty()) AddField(text, "arbiter", Short(view.arbiter()));
  AddField(text, "priority", PriorityName(view.priority()));
  AddField(text, "case type", CaseTypeName(view.case_type()));
  AddField(text, "applicants", Cat(view.applicant_count()));
  AddField(text, "eligibility",
           view.has_eligibility() ? EligibilityText(view.eligibility())
                                  : "not evaluated");
  if (!view.reason().empty()) {
    AddField(text, "reason", Printable(view.reason(), 1024));
  }
  if (view.materials_to_follow()) {
    AddField(text, "materials", "to follow (accepted before all were in)");
  }
  AddField(text, "lawyer",
           view.lawyer_id().empty() ? ""
                                    : Cat(Short(view.lawyer_id()), "  ",
                                          Printable(view.lawyer_name(), 128)));
  AddField(text, "outcome",
           view.outcome() == v1::CASE_OUTCOME_UNSPECIFIED
               ? ""
               : Cat(OutcomeName(view.outcome()),
                     view.outcome_note().empty()
                         ? ""
                         : Cat(": ", Printable(view.outcome_note(), 1024))));
  AddField(text, "evidence", Joined(view.evidence_ids()));
  AddField(text, "updated", FormatUtcTime(view.updated_at()));

  AddDeadlines(text, view.deadlines(), now);
  if (response.has_referral()) {
    AddAttachments(text, response.referral().attachments());
  }
  AddEvents(text, view.events());
  return text;
}

std::string CaseTableText(const RepeatedPtrField<v1::CaseView>& cases) {
  Table table({"CASE", "STATE", "VERSION", "ORIGIN", "HANDLER", "TYPE",
               "PRIORITY", "UPDATED"});
  for (const v1::CaseView& view : cases) {
    table.AddRow({Short(view.case_id()), ReferralStateName(view.state()),
                  Cat(view.version()), Short(view.origin()),
                  Short(view.handler()), CaseTypeName(view.case_type()),
                  std::string(PriorityName(view.priority())),
                  FormatUtcTime(view.updated_at())});
  }
  return table.Text();
}

std::string EvidenceViewText(const v1::EvidenceView& evidence, absl::Time now) {
  std::string text;
  AddField(text, "evidence", Short(evidence.evidence_id()));
  AddField(text, "case", Short(evidence.case_id()));
  AddField(text, "state", EvidenceStateName(evidence.state()));
  AddField(text, "version", Cat(evidence.version()));
  AddField(text, "requester", Short(evidence.requester()));
  AddField(text, "collector", Short(evidence.collector()));
  AddField(text, "priority", PriorityName(evidence.priority()));
  AddField(text, "what", Printable(evidence.request().what(), 1024));
  AddField(text, "from", Printable(evidence.request().from_whom(), 256));
  AddField(text, "where", Printable(evidence.request().where(), 256));
  AddField(text, "due by", FormatUtcTime(evidence.request().due_by()));
  if (!evidence.reason().empty()) {
    AddField(text, "reason", Printable(evidence.reason(), 1024));
  }
  if (!evidence.findings().empty()) {
    AddField(text, "findings", Printable(evidence.findings()));
  }
  AddField(text, "updated", FormatUtcTime(evidence.updated_at()));

  AddDeadlines(text, evidence.deadlines(), now);
  AddAttachments(text, evidence.attachments());
  AddEvents(text, evidence.events());
  return text;
}

std::string EvidenceTableText(
    const RepeatedPtrField<v1::EvidenceView>& evidence) {
  Table table({"EVIDENCE", "CASE", "STATE", "REQUESTER", "COLLECTOR",
               "PRIORITY", "DUE BY", "UPDATED"});
  for (const v1::EvidenceView& view : evidence) {
    table.AddRow({Short(view.evidence_id()), Short(view.case_id()),
                  EvidenceStateName(view.state()), Short(view.requester()),
                  Short(view.collector()),
                  std::string(PriorityName(view.priority())),
                  FormatUtcTime(view.request().due_by()),
                  FormatUtcTime(view.updated_at())});
  }
  return table.Text();
}

std::string DueTableText(const v1::ListDueResponse& due) {
  std::vector<const v1::DueItem*> items;
  for (const v1::DueItem& item : due.items()) items.push_back(&item);
  std::stable_sort(items.begin(), items.end(),
                   [](const v1::DueItem* a, const v1::DueItem* b) {
                     return ToTime(a->due()) < ToTime(b->due());
                   });

  Table table({"", "DUE", "KIND", "ID", "CASE", "STAGE", "STATE", "PRIORITY",
               "OWNER", "REPORTED BY"});
  for (const v1::DueItem* item : items) {
    table.AddRow(
        {item->overdue() ? "overdue" : "soon", FormatUtcTime(item->due()),
         item->evidence() ? "evidence" : "case", Short(item->id()),
         Short(item->case_id()), Short(item->stage()), StateText(item->state()),
         std::string(PriorityName(item->priority())), Short(item->owner()),
         Short(item->reported_by())});
  }
  return table.Text();
}

std::string AttachmentLine(const v1::AttachmentRef& attachment) {
  return Cat(HexEncode(attachment.digest()), "  ", attachment.size(),
             " bytes  ", Printable(attachment.media_type(), 128), "  ",
             Printable(attachment.name(), 256), "\n");
}

}  // namespace caselink::cli
