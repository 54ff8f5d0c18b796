// The caselink CLI's audit commands, over a node's AuditService, for
// auditors:
//
//   audit head [--fresh]
//   audit history CASE
//   audit events [--peer CODE] [--kind KIND] [--state S] [--from T] [--to T]
//   audit path CASE
//   audit witnessed
//   audit consistency FIRST SECOND [--first-root HEX] [--second-root HEX]
//   audit verify FILE [--ca-bundle PEM] [--as auto|events|history]
//   audit export [--case ID] --format jsonl|csv --out PATH
//
// Every answer with proofs is fetched whole (all pages) and verified
// against the CA bundle of the client config (client/audit_verify.h)
// before anything of it is printed or written; a live answer's signing
// certificate must be valid now. Then the command prints a table, or with
// --json the response as one line of JSON with every bytes field in hex
// (AuditToJson in client/audit_export.h), and says what it verified
// ("verified: 12 entries against head 350212000000 size 40") on stdout,
// or on stderr with --json. An answer that does not verify prints one
// "caselink: ..." line per problem on stderr and exits 1.
//
// `audit verify` contacts no node. It reads a file that `--json audit
// history|events|path` printed, or an export, and checks it with the CA
// bundle of --ca-bundle or else of the client config; the certificate
// must have been valid when the head was signed. It prints the verified
// line and exits 0, or one line per problem on stdout and exits 1. A plain
// answer is checked as a case's full history if every entry is of the same
// case (or with --as history), else as selected events (--as events).
//
// `audit consistency` checks the proof when it knows both roots: the
// second from --second-root or the node's latest verified head if that
// has SECOND leaves, the first from --first-root. Without a first root it
// prints the proof, says on stderr that it was not checked, and exits 0.
//
// `audit export` writes the file (mode 0600, replacing any there) only
// once the whole answer has verified; the log's export must hold every
// entry 0 .. size-1 and a case's its full history.
//
// Exit codes follow client/cli_commands.h: 0 on success, 1 for a node
// that refused or an answer or file that did not verify, 2 for a usage
// error.
#ifndef CASELINK_CLIENT_CLI_AUDIT_COMMANDS_H_
#define CASELINK_CLIENT_CLI_AUDIT_COMMANDS_H_

#include <memory>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace caselink::cli {

// Declares the audit commands on a CLI11 app and runs the one parsed. The
// app must outlive this object, which must stay where it was made: CLI11
// writes the options into it. Not thread-safe.
class AuditCommands {
 public:
  // Adds `audit` and its commands to `app`.
  explicit AuditCommands(CLI::App& app);
  ~AuditCommands();

  AuditCommands(const AuditCommands&) = delete;
  AuditCommands& operator=(const AuditCommands&) = delete;

  // True if the parsed command line named one of these commands.
  bool Parsed() const;

  // Runs the parsed command with the client config at `config_path` (which
  // `audit verify --ca-bundle` does without) and returns the exit code.
  int Run(const std::string& config_path, bool json) const;

  // The commands and the values CLI11 parses into; in the .cc.
  struct Commands;

 private:
  std::unique_ptr<Commands> commands_;
};

}  // namespace caselink::cli

#endif  // CASELINK_CLIENT_CLI_AUDIT_COMMANDS_H_
