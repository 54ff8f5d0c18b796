#include "client/cli_case_commands.h"

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "client/cli_case_format.h"
#include "client/cli_format.h"
#include "core/crypto.h"
#include "core/division_code.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::cli {

using client::NodeClient;

// The commands CLI11 knows, what each runs, and the values it parses into.
// Commands share the value fields: only one command runs, and it reads the
// fields its own options fill.
struct CaseCommands::Commands {
  struct Entry {
    CLI::App* command;
    std::function<int(NodeClient&, bool json)> run;
  };
  std::vector<Entry> entries;

  std::string id;  // The case or evidence id a command works on.
  std::string to;
  std::string file;
  std::string case_id;
  std::vector<std::string> attach;
  bool materials_to_follow = false;
  std::string override_reason;
  std::string reason;
  std::string what;
  std::string note;
  std::string lawyer;
  std::string outcome;
  std::string contender;
  std::string from_whom;
  std::string where;
  std::string due_by;
  std::string findings;
  std::string within;
  bool subtree = false;
  std::string path;
  std::string digest;
  std::string out;
};

namespace {

using Commands = CaseCommands::Commands;
using StepBuilder = std::function<absl::StatusOr<v1::ReferralStep>(
    NodeClient&, const Commands&)>;
using EvidenceStepBuilder = std::function<absl::StatusOr<v1::EvidenceStep>(
    NodeClient&, const Commands&)>;

// The exit code of a usage error found after parsing.
constexpr int kUsageExit = 2;

int FailRpc(const absl::Status& status) { return Fail(status.ToString()); }

// ---------------------------------------------------------------------------
// Checks CLI11 runs while parsing, so that a malformed value is a usage
// error. The commands parse the values again, and cannot fail to.

// Turns a parse function into a CLI11 check that reports its message.
template <typename Parse>
CLI::Validator Check(Parse parse, std::string description) {
  return CLI::Validator(
      [parse](std::string& value) -> std::string {
        auto parsed = parse(value);
        if (parsed.ok()) return "";
        return std::string(View(parsed.status().message()));
      },
      std::move(description));
}

CLI::Validator DivisionCodeCheck() {
  return Check(
      [](std::string_view text) { return NormalizeDivisionCode(text); },
      "CODE");
}

CLI::Validator TimeCheck() {
  return Check([](std::string_view text) { return ParseRfc3339(text); },
               "RFC3339");
}

CLI::Validator WithinCheck() {
  return Check([](std::string_view text) { return ParseWithin(text); },
               "DURATION");
}

CLI::Validator DigestCheck() {
  return Check([](std::string_view text) { return ParseDigest(text); }, "HEX");
}

CLI::Validator OutcomeCheck() {
  return Check([](std::string_view text) { return ParseOutcome(text); },
               "OUTCOME");
}

// Adds `--attach PATH`, once per file; a word after the path is not taken
// for another path.
void AddAttach(CLI::App& command, Commands& c, std::string_view what) {
  command
      .add_option(
          "--attach", c.attach,
          Cat("a file to upload and attach to the ", what, "; repeat for more"))
      ->allow_extra_args(false)
      ->check(CLI::ExistingFile);
}

// ---------------------------------------------------------------------------
// Running

// Fetches every page of a listing into one response.
template <typename Response, typename Fetch, typename Items>
absl::StatusOr<Response> AllPages(Fetch fetch, Items items) {
  Response all;
  std::string token;
  do {
    CASELINK_ASSIGN_OR_RETURN(Response page, fetch(token));
    for (auto& item : *items(page)) *items(all)->Add() = std::move(item);
    if (!page.next_page_token().empty() && page.next_page_token() == token) {
      return absl::DataLossError("the node returned the same page twice");
    }
    token = page.next_page_token();
  } while (!token.empty());
  return all;
}

// Uploads every --attach file, in order. Errors say which file failed.
absl::StatusOr<std::vector<v1::AttachmentRef>> UploadAll(
    NodeClient& client, const std::vector<std::string>& paths) {
  std::vector<v1::AttachmentRef> attachments;
  for (const std::string& path : paths) {
    absl::StatusOr<v1::AttachmentRef> uploaded = client.UploadAttachment(path);
    if (!uploaded.ok()) {
      return absl::Status(
          uploaded.status().code(),
          Cat("--attach \"", path, "\": ", View(uploaded.status().message())));
    }
    attachments.push_back(*std::move(uploaded));
  }
  return attachments;
}

std::string Normalized(const std::string& code) {
  // The parser checked the code already.
  absl::StatusOr<std::string> normalized = NormalizeDivisionCode(code);
  return normalized.ok() ? *normalized : code;
}

int PrintCaseStep(const v1::CaseResponse& response, bool json) {
  if (json) return PrintJson(response);
  const v1::CaseView& view = response.case_view();
  std::printf("%s  %s  version %llu\n", Printable(view.case_id(), 64).c_str(),
              ReferralStateName(view.state()).c_str(),
              static_cast<unsigned long long>(view.version()));
  return 0;
}

int PrintEvidenceStep(const v1::EvidenceResponse& response, bool json) {
  if (json) return PrintJson(response);
  const v1::EvidenceView& view = response.evidence();
  std::printf("%s  %s  version %llu\n",
              Printable(view.evidence_id(), 64).c_str(),
              EvidenceStateName(view.state()).c_str(),
              static_cast<unsigned long long>(view.version()));
  return 0;
}

// The referral file is read before anything is uploaded, so that a
// mistake in it costs no upload.
absl::StatusOr<v1::CreateReferralRequest> BuildCreation(NodeClient& client,
                                                        const Commands& c) {
  v1::CreateReferralRequest request;
  CASELINK_ASSIGN_OR_RETURN(*request.mutable_referral(),
                            ReadReferralFile(c.file));
  CASELINK_ASSIGN_OR_RETURN(std::vector<v1::AttachmentRef> attachments,
                            UploadAll(client, c.attach));
  for (v1::AttachmentRef& attachment : attachments) {
    *request.mutable_referral()->add_attachments() = std::move(attachment);
  }
  request.set_handler(Normalized(c.to));
  request.set_case_id(c.case_id);
  return request;
}

int RunCreate(NodeClient& client, const Commands& c, bool json) {
  absl::StatusOr<v1::CreateReferralRequest> request = BuildCreation(client, c);
  if (!request.ok()) return Fail(View(request.status().message()));

  absl::StatusOr<v1::CaseResponse> response = client.CreateReferral(*request);
  if (!response.ok()) return FailRpc(response.status());
  if (json) return PrintJson(*response);
  std::printf("%s\n", Printable(response->case_view().case_id(), 256).c_str());
  return 0;
}

int RunShow(NodeClient& client, const Commands& c, bool json) {
  absl::StatusOr<v1::GetCaseResponse> response = client.GetCase(c.id);
  if (!response.ok()) return FailRpc(response.status());
  if (json) return PrintJson(*response);
  std::fputs(CaseViewText(*response, absl::Now()).c_str(), stdout);
  return 0;
}

int RunList(NodeClient& client, bool json) {
  absl::StatusOr<v1::ListCasesResponse> cases = AllPages<v1::ListCasesResponse>(
      [&](const std::string& token) {
        return client.ListCases(/*page_size=*/0, token);
      },
      [](v1::ListCasesResponse& page) { return page.mutable_cases(); });
  if (!cases.ok()) return FailRpc(cases.status());
  if (json) return PrintJson(*cases);
  std::fputs(CaseTableText(cases->cases()).c_str(), stdout);
  return 0;
}

int RunStep(NodeClient& client, const Commands& c, const StepBuilder& build,
            bool json) {
  absl::StatusOr<v1::ReferralStep> step = build(client, c);
  if (!step.ok()) return Fail(View(step.status().message()));
  absl::StatusOr<v1::CaseResponse> response = client.StepReferral(c.id, *step);
  if (!response.ok()) return FailRpc(response.status());
  return PrintCaseStep(*response, json);
}

int RunRequestEvidence(NodeClient& client, const Commands& c, bool json) {
  v1::RequestEvidenceRequest request;
  request.set_case_id(c.case_id);
  request.set_collector(Normalized(c.to));
  v1::EvidenceRequest& asked = *request.mutable_request();
  asked.set_what(c.what);
  asked.set_from_whom(c.from_whom);
  asked.set_where(c.where);
  if (!c.due_by.empty()) {
    absl::StatusOr<google::protobuf::Timestamp> due_by = ParseRfc3339(c.due_by);
    if (!due_by.ok()) return Fail(View(due_by.status().message()), kUsageExit);
    *asked.mutable_due_by() = *due_by;
  }
  absl::StatusOr<v1::EvidenceResponse> response =
      client.RequestEvidence(request);
  if (!response.ok()) return FailRpc(response.status());
  if (json) return PrintJson(*response);
  std::printf("%s\n",
              Printable(response->evidence().evidence_id(), 256).c_str());
  return 0;
}

int RunShowEvidence(NodeClient& client, const Commands& c, bool json) {
  absl::StatusOr<v1::EvidenceResponse> response = client.GetEvidence(c.id);
  if (!response.ok()) return FailRpc(response.status());
  if (json) return PrintJson(*response);
  std::fputs(EvidenceViewText(response->evidence(), absl::Now()).c_str(),
             stdout);
  return 0;
}

int RunListEvidence(NodeClient& client, bool json) {
  absl::StatusOr<v1::ListEvidenceResponse> evidence =
      AllPages<v1::ListEvidenceResponse>(
          [&](const std::string& token) {
            return client.ListEvidence(/*page_size=*/0, token);
          },
          [](v1::ListEvidenceResponse& page) {
            return page.mutable_evidence();
          });
  if (!evidence.ok()) return FailRpc(evidence.status());
  if (json) return PrintJson(*evidence);
  std::fputs(EvidenceTableText(evidence->evidence()).c_str(), stdout);
  return 0;
}

int RunEvidenceStep(NodeClient& client, const Commands& c,
                    const EvidenceStepBuilder& build, bool json) {
  absl::StatusOr<v1::EvidenceStep> step = build(client, c);
  if (!step.ok()) return Fail(View(step.status().message()));
  absl::StatusOr<v1::EvidenceResponse> response =
      client.StepEvidence(c.id, *step);
  if (!response.ok()) return FailRpc(response.status());
  return PrintEvidenceStep(*response, json);
}

int RunDue(NodeClient& client, const Commands& c, bool json) {
  absl::Duration within = absl::ZeroDuration();  // The node's default.
  if (!c.within.empty()) {
    absl::StatusOr<absl::Duration> parsed = ParseWithin(c.within);
    if (!parsed.ok()) return Fail(View(parsed.status().message()), kUsageExit);
    within = *parsed;
  }
  absl::StatusOr<v1::ListDueResponse> due = client.ListDue(within, c.subtree);
  if (!due.ok()) return FailRpc(due.status());
  if (json) return PrintJson(*due);
  std::fputs(DueTableText(*due).c_str(), stdout);
  // The table is still worth having, but the operator must know it may be
  // missing items.
  for (const std::string& unreachable : due->unreachable()) {
    Fail(Cat("no answer from ", Printable(unreachable, 512),
             "; its items are missing"));
  }
  return 0;
}

int RunUpload(NodeClient& client, const Commands& c, bool json) {
  absl::StatusOr<v1::AttachmentRef> uploaded = client.UploadAttachment(c.path);
  if (!uploaded.ok()) return FailRpc(uploaded.status());
  if (json) return PrintJson(*uploaded);
  std::fputs(AttachmentLine(*uploaded).c_str(), stdout);
  return 0;
}

int RunDownload(NodeClient& client, const Commands& c, bool json) {
  absl::StatusOr<std::string> digest = ParseDigest(c.digest);
  if (!digest.ok()) return Fail(View(digest.status().message()), kUsageExit);
  absl::StatusOr<uint64_t> size = client.DownloadAttachment(*digest, c.out);
  if (!size.ok()) return FailRpc(size.status());
  if (json) {
    v1::AttachmentRef written;
    written.set_name(c.out);
    written.set_size(*size);
    written.set_digest(*digest);
    return PrintJson(written);
  }
  std::printf("%llu bytes written to %s\n",
              static_cast<unsigned long long>(*size),
              Printable(c.out, 1024).c_str());
  return 0;
}

// ---------------------------------------------------------------------------
// Declaring

CLI::App* AddCommand(Commands& c, CLI::App& parent, std::string name,
                     std::string description,
                     std::function<int(NodeClient&, bool)> run) {
  CLI::App* command =
      parent.add_subcommand(std::move(name), std::move(description));
  c.entries.push_back({command, std::move(run)});
  return command;
}

// A referral step command: `referral NAME CASE ...`.
CLI::App* AddStep(Commands& c, CLI::App& referral, std::string name,
                  std::string description, StepBuilder build) {
  CLI::App* command =
      AddCommand(c, referral, std::move(name), std::move(description),
                 [&c, build = std::move(build)](NodeClient& client, bool json) {
                   return RunStep(client, c, build, json);
                 });
  command->add_option("case", c.id, "the case id")->required();
  return command;
}

void AddReferralReading(Commands& c, CLI::App& referral) {
  CLI::App* create =
      AddCommand(c, referral, "create", "open a case and send its referral",
                 [&c](NodeClient& client, bool json) {
                   return RunCreate(client, c, json);
                 });
  create->add_option("--to", c.to, "division code of the handling bureau")
      ->required()
      ->check(DivisionCodeCheck());
  create
      ->add_option("--file", c.file,
                   "the Referral message as protobuf JSON (see cases.proto)")
      ->required();
  create->add_option("--case", c.case_id,
                     "the case id; the node chooses one if left out");
  AddAttach(*create, c, "referral");

  CLI::App* show = AddCommand(
      c, referral, "show", "one case: its state, deadlines and events",
      [&c](NodeClient& client, bool json) { return RunShow(client, c, json); });
  show->add_option("case", c.id, "the case id")->required();

  AddCommand(
      c, referral, "list", "the cases this node holds",
      [](NodeClient& client, bool json) { return RunList(client, json); });
}

void AddHandlerSteps(Commands& c, CLI::App& referral) {
  CLI::App* accept = AddStep(
      c, referral, "accept", "accept the case (handler)",
      [](NodeClient&, const Commands& o) -> absl::StatusOr<v1::ReferralStep> {
        v1::ReferralStep step;
        step.mutable_accept()->set_materials_to_follow(o.materials_to_follow);
        step.mutable_accept()->set_override_reason(o.override_reason);
        return step;
      });
  accept->add_flag("--materials-to-follow", c.materials_to_follow,
                   "accept now, materials to follow (urgent cases only)");
  accept->add_option("--override", c.override_reason,
                     "why a case that failed the hardship test is accepted");

  AddStep(
      c, referral, "reject", "reject the case (handler)",
      [](NodeClient&, const Commands& o) -> absl::StatusOr<v1::ReferralStep> {
        v1::ReferralStep step;
        step.mutable_reject()->set_reason(o.reason);
        return step;
      })
      ->add_option("--reason", c.reason, "why, for the origin")
      ->required();

  AddStep(
      c, referral, "request-materials",
      "ask the origin for more materials (handler)",
      [](NodeClient&, const Commands& o) -> absl::StatusOr<v1::ReferralStep> {
        v1::ReferralStep step;
        step.mutable_request_materials()->set_what(o.what);
        return step;
      })
      ->add_option("--what", c.what, "the materials needed")
      ->required();

  AddStep(
      c, referral, "assign", "assign a lawyer (handler)",
      [](NodeClient&, const Commands& o) -> absl::StatusOr<v1::ReferralStep> {
        v1::ReferralStep step;
        step.mutable_assign()->set_lawyer_id(o.lawyer);
        return step;
      })
      ->add_option("--lawyer", c.lawyer,
                   "lawyer id; the node chooses from its pool if left out");

  CLI::App* close = AddStep(
      c, referral, "close", "record the outcome and close (handler)",
      [](NodeClient&, const Commands& o) -> absl::StatusOr<v1::ReferralStep> {
        v1::ReferralStep step;
        CASELINK_ASSIGN_OR_RETURN(v1::CaseOutcome outcome,
                                  ParseOutcome(o.outcome));
        step.mutable_close()->set_outcome(outcome);
        step.mutable_close()->set_note(o.note);
        return step;
      });
  close
      ->add_option("--outcome", c.outcome,
                   "mediated, arbitrated, judged, withdrawn or other")
      ->required()
      ->check(OutcomeCheck());
  close->add_option("--note", c.note, "a note on the outcome");
}

void AddOtherSteps(Commands& c, CLI::App& referral) {
  CLI::App* supplement = AddStep(
      c, referral, "supplement", "send more materials (origin)",
      [](NodeClient& client,
         const Commands& o) -> absl::StatusOr<v1::ReferralStep> {
        v1::ReferralStep step;
        step.mutable_supplement()->set_note(o.note);
        CASELINK_ASSIGN_OR_RETURN(std::vector<v1::AttachmentRef> attachments,
                                  UploadAll(client, o.attach));
        for (v1::AttachmentRef& attachment : attachments) {
          *step.mutable_supplement()->add_attachments() = std::move(attachment);
        }
        return step;
      });
  supplement->add_option("--note", c.note, "what is being sent")->required();
  AddAttach(*supplement, c, "supplement");

  AddStep(
      c, referral, "withdraw", "withdraw the referral (origin)",
      [](NodeClient&, const Commands& o) -> absl::StatusOr<v1::ReferralStep> {
        v1::ReferralStep step;
        step.mutable_withdraw()->set_reason(o.reason);
        return step;
      })
      ->add_option("--reason", c.reason, "why")
      ->required();

  CLI::App* escalate = AddStep(
      c, referral, "escalate",
      "put the question of jurisdiction to the superior node (handler)",
      [](NodeClient&, const Commands& o) -> absl::StatusOr<v1::ReferralStep> {
        v1::ReferralStep step;
        step.mutable_escalate()->set_reason(o.reason);
        if (!o.contender.empty()) {
          step.mutable_escalate()->set_contender(Normalized(o.contender));
        }
        return step;
      });
  escalate->add_option("--reason", c.reason, "the question")->required();
  escalate
      ->add_option("--contender", c.contender,
                   "division code of another bureau that claims the case")
      ->check(DivisionCodeCheck());

  CLI::App* route = AddStep(
      c, referral, "route",
      "name the bureau that is to handle the case (superior node)",
      [](NodeClient&, const Commands& o) -> absl::StatusOr<v1::ReferralStep> {
        v1::ReferralStep step;
        step.mutable_route()->set_to(Normalized(o.to));
        step.mutable_route()->set_reason(o.reason);
        return step;
      });
  route->add_option("--to", c.to, "division code of the bureau")
      ->required()
      ->check(DivisionCodeCheck());
  route->add_option("--reason", c.reason, "why");
}

// An evidence step command: `evidence NAME ID ...`.
CLI::App* AddEvidenceStep(Commands& c, CLI::App& evidence, std::string name,
                          std::string description, EvidenceStepBuilder build) {
  CLI::App* command =
      AddCommand(c, evidence, std::move(name), std::move(description),
                 [&c, build = std::move(build)](NodeClient& client, bool json) {
                   return RunEvidenceStep(client, c, build, json);
                 });
  command->add_option("evidence", c.id, "the evidence id")->required();
  return command;
}

void AddEvidenceReading(Commands& c, CLI::App& evidence) {
  CLI::App* request = AddCommand(c, evidence, "request",
                                 "ask a bureau to collect evidence for a case",
                                 [&c](NodeClient& client, bool json) {
                                   return RunRequestEvidence(client, c, json);
                                 });
  request->add_option("--case", c.case_id, "the case id")->required();
  request->add_option("--to", c.to, "division code of the collecting bureau")
      ->required()
      ->check(DivisionCodeCheck());
  request->add_option("--what", c.what, "the evidence wanted")->required();
  request->add_option("--from", c.from_whom, "who holds it")->required();
  request->add_option("--where", c.where, "where it is")->required();
  request
      ->add_option(
          "--due-by", c.due_by,
          "when it is needed (RFC 3339, e.g. 2025-06-30T17:00:00+08:00)")
      ->check(TimeCheck());

  AddCommand(c, evidence, "show", "one evidence request",
             [&c](NodeClient& client, bool json) {
               return RunShowEvidence(client, c, json);
             })
      ->add_option("evidence", c.id, "the evidence id")
      ->required();

  AddCommand(c, evidence, "list", "the evidence requests this node holds",
             [](NodeClient& client, bool json) {
               return RunListEvidence(client, json);
             });
}

void AddEvidenceSteps(Commands& c, CLI::App& evidence) {
  AddEvidenceStep(
      c, evidence, "accept", "take the request on (collector)",
      [](NodeClient&, const Commands&) -> absl::StatusOr<v1::EvidenceStep> {
        v1::EvidenceStep step;
        step.mutable_accept();
        return step;
      });

  AddEvidenceStep(
      c, evidence, "decline", "decline the request (collector)",
      [](NodeClient&, const Commands& o) -> absl::StatusOr<v1::EvidenceStep> {
        v1::EvidenceStep step;
        step.mutable_decline()->set_reason(o.reason);
        return step;
      })
      ->add_option("--reason", c.reason, "why")
      ->required();

  AddEvidenceStep(
      c, evidence, "progress", "report progress (collector)",
      [](NodeClient&, const Commands& o) -> absl::StatusOr<v1::EvidenceStep> {
        v1::EvidenceStep step;
        step.mutable_progress()->set_note(o.note);
        return step;
      })
      ->add_option("--note", c.note, "how it stands")
      ->required();

  CLI::App* result = AddEvidenceStep(
      c, evidence, "result", "send the findings (collector)",
      [](NodeClient& client,
         const Commands& o) -> absl::StatusOr<v1::EvidenceStep> {
        v1::EvidenceStep step;
        step.mutable_result()->set_findings(o.findings);
        CASELINK_ASSIGN_OR_RETURN(std::vector<v1::AttachmentRef> attachments,
                                  UploadAll(client, o.attach));
        for (v1::AttachmentRef& attachment : attachments) {
          *step.mutable_result()->add_attachments() = std::move(attachment);
        }
        return step;
      });
  result->add_option("--findings", c.findings, "what was found")->required();
  AddAttach(*result, c, "result");

  AddEvidenceStep(
      c, evidence, "confirm", "confirm the findings (requester)",
      [](NodeClient&, const Commands& o) -> absl::StatusOr<v1::EvidenceStep> {
        v1::EvidenceStep step;
        step.mutable_confirm()->set_note(o.note);
        return step;
      })
      ->add_option("--note", c.note, "a note for the collector");
}

void AddDueAndAttachments(Commands& c, CLI::App& app) {
  CLI::App* due = AddCommand(
      c, app, "due", "time limits passed or coming up",
      [&c](NodeClient& client, bool json) { return RunDue(client, c, json); });
  due->add_option("--within", c.within,
                  "how far ahead counts as due soon, e.g. 2d or 36h "
                  "(default: the node's, one day)")
      ->check(WithinCheck());
  due->add_flag("--subtree", c.subtree, "include every node below this one");

  CLI::App* attachment =
      app.add_subcommand("attachment", "store and fetch attachment files");
  attachment->require_subcommand(1);
  AddCommand(c, *attachment, "upload",
             "store a file at this node (resumes a broken upload) and print "
             "its digest",
             [&c](NodeClient& client, bool json) {
               return RunUpload(client, c, json);
             })
      ->add_option("path", c.path, "the file")
      ->required()
      ->check(CLI::ExistingFile);
  CLI::App* download = AddCommand(c, *attachment, "download",
                                  "fetch an attachment by its digest",
                                  [&c](NodeClient& client, bool json) {
                                    return RunDownload(client, c, json);
                                  });
  download->add_option("digest", c.digest, "the digest (64 hex digits)")
      ->required()
      ->check(DigestCheck());
  download->add_option("--out", c.out, "where to write it")->required();
}

}  // namespace

CaseCommands::CaseCommands(CLI::App& app)
    : commands_(std::make_unique<Commands>()) {
  Commands& c = *commands_;
  CLI::App* referral =
      app.add_subcommand("referral", "open, follow and decide cases");
  referral->require_subcommand(1);
  AddReferralReading(c, *referral);
  AddHandlerSteps(c, *referral);
  AddOtherSteps(c, *referral);

  CLI::App* evidence =
      app.add_subcommand("evidence", "request and collect evidence");
  evidence->require_subcommand(1);
  AddEvidenceReading(c, *evidence);
  AddEvidenceSteps(c, *evidence);

  AddDueAndAttachments(c, app);
}

CaseCommands::~CaseCommands() = default;

bool CaseCommands::Parsed() const {
  for (const Commands::Entry& entry : commands_->entries) {
    if (entry.command->parsed()) return true;
  }
  return false;
}

int CaseCommands::Run(NodeClient& client, bool json) const {
  for (const Commands::Entry& entry : commands_->entries) {
    if (entry.command->parsed()) return entry.run(client, json);
  }
  return Fail("no case command given", kUsageExit);
}

}  // namespace caselink::cli
