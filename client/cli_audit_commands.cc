#include "client/cli_audit_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "client/audit_client.h"
#include "client/audit_export.h"
#include "client/audit_verify.h"
#include "client/cli_format.h"
#include "client/client_config.h"
#include "core/crypto.h"
#include "core/division_code.h"
#include "core/merkle.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::cli {

using client::AuditClient;
using client::AuditScope;
using client::AuditVerification;
using client::AuditVerifyOptions;

// What a command that talks to the node runs with.
struct NodeContext {
  AuditClient& client;
  const TrustStore& trust;
  std::string node_code;
  bool json = false;
};

// The commands CLI11 knows, what each runs, and the values it parses
// into. Commands share the value fields: only one command runs.
struct AuditCommands::Commands {
  struct Entry {
    CLI::App* command;
    std::function<int(const NodeContext&)> run;
  };
  std::vector<Entry> entries;
  CLI::App* verify = nullptr;

  bool fresh = false;
  std::string case_id;
  std::string peer;
  std::string kind;
  std::string state;
  std::string from;
  std::string to;
  uint64_t first = 0;
  uint64_t second = 0;
  std::string first_root;
  std::string second_root;
  std::string file;
  std::string ca_bundle;
  std::string as = "auto";
  std::string format;
  std::string out;
};

namespace {

using Commands = AuditCommands::Commands;

constexpr int kUsageExit = 2;

int FailRpc(const absl::Status& status) { return Fail(status.ToString()); }

// ---------------------------------------------------------------------------
// Checks CLI11 runs while parsing, so that a malformed value is a usage
// error; the commands parse the values again and cannot fail to.

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

absl::StatusOr<std::string> ParseRoot(std::string_view text) {
  absl::StatusOr<std::string> root = HexDecode(text);
  if (!root.ok() || root->size() != kDigestSize) {
    return absl::InvalidArgumentError(Cat("\"", Printable(text, 80),
                                          "\" is not a root hash of ",
                                          2 * kDigestSize, " hex digits"));
  }
  return root;
}

// ---------------------------------------------------------------------------
// Output

// Checks live answers with the certificate valid now.
AuditVerifyOptions LiveOptions(const NodeContext& context, AuditScope scope) {
  AuditVerifyOptions options;
  options.scope = scope;
  options.expected_node = context.node_code;
  options.certificate_time = absl::Now();
  return options;
}

// Reports every problem of `result` on stderr; true if there were none.
bool Verified(const AuditVerification& result) {
  for (const client::AuditProblem& problem : result.problems) {
    Fail(problem.ToString());
  }
  return result.ok();
}

// The "verified: ..." line, after the output it vouches for.
void SayVerified(std::string_view line, bool json) {
  std::fprintf(json ? stderr : stdout, "%s\n", std::string(line).c_str());
}

int PrintAuditJson(const google::protobuf::Message& message) {
  absl::StatusOr<std::string> json = AuditToJson(message);
  if (!json.ok()) return Fail(View(json.status().message()));
  std::printf("%s\n", json->c_str());
  return 0;
}

std::string HeadLine(const v1::SignedTreeHead& head) {
  return Cat("verified: head ", head.code(), " size ", head.tree_size());
}

std::string EntriesText(const v1::AuditAnswer& answer) {
  Table table(
      {"INDEX", "AT", "KIND", "CASE", "PEER", "STATE", "MESSAGE", "DETAIL"});
  for (const v1::AuditEntry& entry : answer.entries()) {
    v1::AuditEvent event;
    if (!event.ParseFromString(entry.event())) continue;  // Verified before.
    table.AddRow({Cat(entry.index()), FormatTableTime(event.at()),
                  std::string(AuditKindName(event.kind())),
                  Printable(event.case_id(), 64), Printable(event.peer(), 24),
                  Printable(event.state(), 32),
                  event.message_id().empty() ? std::string()
                                             : HexEncode(event.message_id()),
                  Printable(event.detail(), 256)});
  }
  return table.Text();
}

// Prints a verified answer as a table or JSON, then the verified line.
int PrintAnswer(const v1::AuditAnswer& answer, const AuditVerification& result,
                bool json) {
  if (json) {
    if (PrintAuditJson(answer) != 0) return 1;
  } else {
    std::fputs(EntriesText(answer).c_str(), stdout);
  }
  SayVerified(result.Summary(), json);
  return 0;
}

absl::Status WriteFileAtomically(const std::string& path,
                                 std::string_view contents) {
  std::string temp = Cat(path, ".XXXXXX");
  const int fd = mkstemp(temp.data());
  if (fd < 0) {
    return absl::PermissionDeniedError(
        Cat("cannot write beside ", path, ": ", std::strerror(errno)));
  }
  bool written = fchmod(fd, 0600) == 0;
  while (written && !contents.empty()) {
    const ssize_t n = write(fd, contents.data(), contents.size());
    if (n < 0 && errno == EINTR) continue;
    written = n > 0;
    if (written) contents.remove_prefix(static_cast<size_t>(n));
  }
  written = written && fsync(fd) == 0;
  const int saved = errno;
  written = close(fd) == 0 && written;
  if (!written || std::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = written ? errno : saved;
    unlink(temp.c_str());
    return absl::InternalError(
        Cat("cannot write ", path, ": ", std::strerror(error)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(Cat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(Cat("cannot read ", path));
  return text.str();
}

// ---------------------------------------------------------------------------
// Commands that ask the node

int RunHead(const NodeContext& context, const Commands& c) {
  absl::StatusOr<v1::GetTreeHeadResponse> response =
      context.client.GetTreeHead(c.fresh);
  if (!response.ok()) return FailRpc(response.status());
  const v1::SignedTreeHead& head = response->head();
  if (!Verified(client::VerifySignedHead(
          head, response->signing_certificate_pem(), context.trust,
          LiveOptions(context, AuditScope::kEvents)))) {
    return 1;
  }
  if (context.json) {
    if (PrintAuditJson(*response) != 0) return 1;
  } else {
    Table table({"NODE", "SIZE", "ROOT", "SIGNED", "KEY"});
    table.AddRow({head.code(), Cat(head.tree_size()),
                  HexEncode(head.root_hash()), FormatFullTime(head.signed_at()),
                  HexEncode(head.key_id())});
    table.Print(stdout);
  }
  SayVerified(HeadLine(head), context.json);
  return 0;
}

int RunHistory(const NodeContext& context, const Commands& c) {
  absl::StatusOr<v1::AuditAnswer> answer =
      context.client.FullCaseHistory(c.case_id);
  if (!answer.ok()) return FailRpc(answer.status());
  AuditVerifyOptions options = LiveOptions(context, AuditScope::kCaseHistory);
  options.case_id = c.case_id;
  const AuditVerification result =
      client::VerifyAuditAnswer(*answer, context.trust, options);
  if (!Verified(result)) return Fail(result.Summary());
  return PrintAnswer(*answer, result, context.json);
}

absl::StatusOr<v1::QueryEventsRequest> EventsFilter(const Commands& c) {
  v1::QueryEventsRequest filter;
  if (!c.peer.empty()) {
    CASELINK_ASSIGN_OR_RETURN(*filter.mutable_peer(),
                              NormalizeDivisionCode(c.peer));
  }
  if (!c.kind.empty()) {
    CASELINK_ASSIGN_OR_RETURN(v1::AuditEventKind kind, ParseAuditKind(c.kind));
    filter.set_kind(kind);
  }
  filter.set_state(c.state);
  if (!c.from.empty()) {
    CASELINK_ASSIGN_OR_RETURN(*filter.mutable_from(), ParseRfc3339(c.from));
  }
  if (!c.to.empty()) {
    CASELINK_ASSIGN_OR_RETURN(*filter.mutable_to(), ParseRfc3339(c.to));
  }
  return filter;
}

int RunEvents(const NodeContext& context, const Commands& c) {
  absl::StatusOr<v1::QueryEventsRequest> filter = EventsFilter(c);
  if (!filter.ok()) return Fail(View(filter.status().message()), kUsageExit);
  absl::StatusOr<v1::AuditAnswer> answer = context.client.AllEvents(*filter);
  if (!answer.ok()) return FailRpc(answer.status());
  const AuditVerification result = client::VerifyAuditAnswer(
      *answer, context.trust, LiveOptions(context, AuditScope::kEvents));
  if (!Verified(result)) return Fail(result.Summary());
  return PrintAnswer(*answer, result, context.json);
}

int RunPath(const NodeContext& context, const Commands& c) {
  absl::StatusOr<v1::GetCasePathResponse> path =
      context.client.GetCasePath(c.case_id);
  if (!path.ok()) return FailRpc(path.status());
  const std::vector<AuditVerification> results =
      client::VerifyCasePath(*path, c.case_id, context.trust,
                             LiveOptions(context, AuditScope::kCaseHistory));
  bool all = !results.empty();
  for (const AuditVerification& result : results) all = Verified(result) && all;
  if (results.empty()) return Fail(Cat("no node answered for ", c.case_id));
  if (!all) return Fail(Cat("the path of ", c.case_id, " does not verify"));

  if (context.json && PrintAuditJson(*path) != 0) return 1;
  for (int i = 0; i < path->nodes_size(); ++i) {
    if (!context.json) {
      std::printf("%s%s\n", i == 0 ? "" : "\n", path->nodes(i).code().c_str());
      std::fputs(EntriesText(path->nodes(i).answer()).c_str(), stdout);
    }
    SayVerified(results[static_cast<size_t>(i)].Summary(), context.json);
  }
  return 0;
}

int RunWitnessed(const NodeContext& context) {
  absl::StatusOr<v1::GetWitnessedHeadsResponse> response =
      context.client.GetWitnessedHeads();
  if (!response.ok()) return FailRpc(response.status());
  if (context.json) return PrintAuditJson(*response);
  Table table({"PEER", "SIZE", "ROOT", "SIGNED", "FETCHED", "INCONSISTENCY"});
  for (const v1::WitnessedHead& witnessed : response->heads()) {
    table.AddRow({Printable(witnessed.peer(), 24),
                  Cat(witnessed.head().tree_size()),
                  HexEncode(witnessed.head().root_hash()),
                  FormatTableTime(witnessed.head().signed_at()),
                  FormatTableTime(witnessed.fetched_at()),
                  Printable(witnessed.inconsistency(), 256)});
  }
  table.Print(stdout);
  // Heads come without their certificates, so they cannot be checked here;
  // an inconsistency the node found is still worth shouting about.
  for (const v1::WitnessedHead& witnessed : response->heads()) {
    if (witnessed.inconsistency().empty()) continue;
    Fail(Cat("peer ", Printable(witnessed.peer(), 24),
             " did not extend its earlier head: ",
             Printable(witnessed.inconsistency(), 512)));
  }
  return 0;
}

int RunConsistency(const NodeContext& context, const Commands& c) {
  // The latest head gives the hash algorithm, and the second root when it
  // has SECOND leaves.
  absl::StatusOr<v1::GetTreeHeadResponse> latest = context.client.GetTreeHead();
  if (!latest.ok()) return FailRpc(latest.status());
  const v1::SignedTreeHead& head = latest->head();
  if (!Verified(client::VerifySignedHead(
          head, latest->signing_certificate_pem(), context.trust,
          LiveOptions(context, AuditScope::kEvents)))) {
    return 1;
  }
  absl::StatusOr<v1::GetConsistencyProofResponse> proof =
      context.client.GetConsistencyProof(c.first, c.second);
  if (!proof.ok()) return FailRpc(proof.status());

  if (context.json) {
    if (PrintAuditJson(*proof) != 0) return 1;
  } else {
    for (const std::string& hash : proof->path()) {
      std::printf("%s\n", HexEncode(hash).c_str());
    }
  }
  std::optional<std::string> second_root;
  if (!c.second_root.empty()) {
    second_root = *ParseRoot(c.second_root);
  } else if (head.tree_size() == c.second) {
    second_root = head.root_hash();
  }
  if (c.first_root.empty() || !second_root.has_value()) {
    Fail(Cat("not checked: give --first-root",
             second_root.has_value() ? "" : " and --second-root"),
         0);
    return 0;
  }
  const HashAlgorithm hash = HashAlgorithmOf(
      *SignatureSchemeFromProto(head.algorithm()));  // Verified above.
  const std::vector<std::string> path(proof->path().begin(),
                                      proof->path().end());
  absl::Status consistent = VerifyConsistency(
      hash, c.first, c.second, *ParseRoot(c.first_root), *second_root, path);
  if (!consistent.ok()) {
    return Fail(Cat(head.code(), ": size ", c.second, " does not extend size ",
                    c.first, ": ", View(consistent.message())));
  }
  SayVerified(Cat("verified: ", head.code(), " size ", c.second,
                  " extends size ", c.first),
              context.json);
  return 0;
}

int RunExport(const NodeContext& context, const Commands& c) {
  const bool whole_log = c.case_id.empty();
  absl::StatusOr<v1::AuditAnswer> answer =
      whole_log ? context.client.AllEvents(v1::QueryEventsRequest())
                : context.client.FullCaseHistory(c.case_id);
  if (!answer.ok()) return FailRpc(answer.status());
  AuditVerifyOptions options = LiveOptions(
      context, whole_log ? AuditScope::kExport : AuditScope::kCaseHistory);
  options.case_id = c.case_id;
  const AuditVerification result =
      client::VerifyAuditAnswer(*answer, context.trust, options);
  if (!Verified(result)) return Fail(Cat(result.Summary(), "; not written"));

  std::string contents;
  if (c.format == "csv") {
    contents = ExportCsv(*answer);
  } else {
    absl::StatusOr<std::string> lines =
        ExportJsonLines(*answer, ExportScope{whole_log, c.case_id});
    if (!lines.ok()) return Fail(View(lines.status().message()));
    contents = *std::move(lines);
  }
  absl::Status written = WriteFileAtomically(c.out, contents);
  if (!written.ok()) return Fail(View(written.message()));
  SayVerified(result.Summary(), context.json);
  SayVerified(Cat(answer->entries_size(), " entries written to ",
                  Printable(c.out, 1024)),
              context.json);
  return 0;
}

// ---------------------------------------------------------------------------
// Offline verification

absl::StatusOr<TrustStore> VerifyTrust(const Commands& c,
                                       const std::string& config_path) {
  if (!c.ca_bundle.empty()) return TrustStore::LoadPemFile(c.ca_bundle);
  if (config_path.empty()) {
    return absl::InvalidArgumentError(
        "no CA bundle: pass --ca-bundle PEM, --config FILE or set "
        "CASELINK_CONFIG");
  }
  CASELINK_ASSIGN_OR_RETURN(client::ClientConfig config,
                            client::LoadClientConfig(config_path));
  return TrustStore::LoadPemFile(config.ca_bundle);
}

// Whether a plain answer is checked as a case's full history: as asked,
// or when every entry is of the same case.
bool AsHistory(const v1::AuditAnswer& answer, const std::string& as) {
  if (as != "auto") return as == "history";
  std::string case_id;
  for (const v1::AuditEntry& entry : answer.entries()) {
    v1::AuditEvent event;
    if (!event.ParseFromString(entry.event()) || event.case_id().empty()) {
      return false;
    }
    if (case_id.empty()) case_id = event.case_id();
    if (event.case_id() != case_id) return false;
  }
  return !case_id.empty();
}

std::string FirstCaseOf(const v1::GetCasePathResponse& path) {
  for (const v1::NodeHistory& part : path.nodes()) {
    for (const v1::AuditEntry& entry : part.answer().entries()) {
      v1::AuditEvent event;
      if (event.ParseFromString(entry.event())) return event.case_id();
    }
  }
  return "";
}

std::vector<AuditVerification> VerifyFile(const AuditFile& file,
                                          const TrustStore& trust,
                                          const Commands& c) {
  AuditVerifyOptions options;  // Certificates as of each head's signing.
  if (file.kind == AuditFile::Kind::kCasePath) {
    return client::VerifyCasePath(file.path, FirstCaseOf(file.path), trust,
                                  options);
  }
  if (file.kind == AuditFile::Kind::kExport) {
    options.scope =
        file.scope.whole_log ? AuditScope::kExport : AuditScope::kCaseHistory;
    options.case_id = file.scope.case_id;
  } else {
    options.scope = AsHistory(file.answer, c.as) ? AuditScope::kCaseHistory
                                                 : AuditScope::kEvents;
  }
  AuditVerification result =
      client::VerifyAuditAnswer(file.answer, trust, options);
  result.problems.insert(result.problems.end(), file.mismatches.begin(),
                         file.mismatches.end());
  return {std::move(result)};
}

int RunVerify(const Commands& c, const std::string& config_path) {
  absl::StatusOr<TrustStore> trust = VerifyTrust(c, config_path);
  if (!trust.ok()) return Fail(View(trust.status().message()));
  absl::StatusOr<std::string> text = ReadWholeFile(c.file);
  if (!text.ok()) return Fail(View(text.status().message()));
  absl::StatusOr<AuditFile> file = ParseAuditFile(*text);
  if (!file.ok()) {
    return Fail(Cat(c.file, ": ", View(file.status().message())));
  }

  const std::vector<AuditVerification> results = VerifyFile(*file, *trust, c);
  bool all = !results.empty();
  for (const AuditVerification& result : results) {
    for (const client::AuditProblem& problem : result.problems) {
      std::printf("%s\n", problem.ToString().c_str());
    }
    all = all && result.ok();
  }
  if (results.empty()) std::printf("%s: holds no answer\n", c.file.c_str());
  if (!all) return 1;
  for (const AuditVerification& result : results) {
    std::printf("%s\n", result.Summary().c_str());
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Declaring

CLI::App* AddCommand(Commands& c, CLI::App& audit, std::string name,
                     std::string description,
                     std::function<int(const NodeContext&)> run) {
  CLI::App* command =
      audit.add_subcommand(std::move(name), std::move(description));
  c.entries.push_back({command, std::move(run)});
  return command;
}

void AddReading(Commands& c, CLI::App& audit) {
  AddCommand(c, audit, "head", "the node's signed tree head",
             [&c](const NodeContext& context) { return RunHead(context, c); })
      ->add_flag("--fresh", c.fresh, "have the node sign a head of now");

  AddCommand(
      c, audit, "history", "a case's events at this node, verified",
      [&c](const NodeContext& context) { return RunHistory(context, c); })
      ->add_option("case", c.case_id, "the case id")
      ->required();

  CLI::App* events = AddCommand(
      c, audit, "events", "events by peer, kind, state and time, verified",
      [&c](const NodeContext& context) { return RunEvents(context, c); });
  events->add_option("--peer", c.peer, "division code of the other node")
      ->check(Check(
          [](std::string_view text) { return NormalizeDivisionCode(text); },
          "CODE"));
  events->add_option("--kind", c.kind, Cat("one of ", AuditKindNames()))
      ->check(Check([](std::string_view text) { return ParseAuditKind(text); },
                    "KIND"));
  events->add_option("--state", c.state, "the state after a state change");
  const auto time_check = Check(
      [](std::string_view text) { return ParseRfc3339(text); }, "RFC3339");
  events->add_option("--from", c.from, "no events before (RFC 3339)")
      ->check(time_check);
  events->add_option("--to", c.to, "no events after (RFC 3339)")
      ->check(time_check);

  AddCommand(c, audit, "path",
             "a case's history at every node it passed through, verified",
             [&c](const NodeContext& context) { return RunPath(context, c); })
      ->add_option("case", c.case_id, "the case id")
      ->required();

  AddCommand(c, audit, "witnessed", "the heads of its peers this node holds",
             [](const NodeContext& context) { return RunWitnessed(context); });
}

void AddChecking(Commands& c, CLI::App& audit) {
  const auto root_check = Check(ParseRoot, "HEX");
  CLI::App* consistency = AddCommand(
      c, audit, "consistency", "the proof that one head extends another",
      [&c](const NodeContext& context) { return RunConsistency(context, c); });
  consistency->add_option("first", c.first, "the earlier tree size")
      ->required();
  consistency->add_option("second", c.second, "the later tree size")
      ->required();
  consistency
      ->add_option("--first-root", c.first_root,
                   "the earlier head's root, to check the proof")
      ->check(root_check);
  consistency
      ->add_option("--second-root", c.second_root,
                   "the later head's root (default: the latest head's)")
      ->check(root_check);

  CLI::App* verify = c.verify =
      audit.add_subcommand("verify", "check a saved answer or export offline");
  verify->add_option("file", c.file, "the file")
      ->required()
      ->check(CLI::ExistingFile);
  verify
      ->add_option("--ca-bundle", c.ca_bundle,
                   "the province CA bundle (default: the client config's)")
      ->check(CLI::ExistingFile);
  verify
      ->add_option("--as", c.as,
                   "check an answer as a case's full history or as selected "
                   "events")
      ->check(CLI::IsMember({"auto", "history", "events"}))
      ->capture_default_str();

  CLI::App* exported = AddCommand(
      c, audit, "export", "write the log, or a case's history, verified",
      [&c](const NodeContext& context) { return RunExport(context, c); });
  exported->add_option("--case", c.case_id, "only this case's history");
  exported->add_option("--format", c.format, "jsonl or csv")
      ->required()
      ->check(CLI::IsMember({"jsonl", "csv"}));
  exported->add_option("--out", c.out, "the file to write")->required();
}

}  // namespace

AuditCommands::AuditCommands(CLI::App& app)
    : commands_(std::make_unique<Commands>()) {
  CLI::App* audit =
      app.add_subcommand("audit", "read and verify a node's audit log");
  audit->require_subcommand(1);
  AddReading(*commands_, *audit);
  AddChecking(*commands_, *audit);
}

AuditCommands::~AuditCommands() = default;

bool AuditCommands::Parsed() const {
  if (commands_->verify->parsed()) return true;
  for (const Commands::Entry& entry : commands_->entries) {
    if (entry.command->parsed()) return true;
  }
  return false;
}

int AuditCommands::Run(const std::string& config_path, bool json) const {
  const Commands& c = *commands_;
  if (c.verify->parsed()) return RunVerify(c, config_path);

  if (config_path.empty()) {
    return Fail(
        "no client configuration: pass --config FILE or set "
        "CASELINK_CONFIG");
  }
  auto config = client::LoadClientConfig(config_path);
  if (!config.ok()) return Fail(View(config.status().message()));
  absl::StatusOr<TrustStore> trust = TrustStore::LoadPemFile(config->ca_bundle);
  if (!trust.ok()) return Fail(View(trust.status().message()));
  auto audit_client = AuditClient::Connect(*config);
  if (!audit_client.ok()) {
    return Fail(View(audit_client.status().message()));
  }
  const NodeContext context{**audit_client, *trust, config->node_code, json};
  for (const Commands::Entry& entry : c.entries) {
    if (entry.command->parsed()) return entry.run(context);
  }
  return Fail("no audit command given", kUsageExit);
}

}  // namespace caselink::cli
