// The caselink CLI's case commands: referrals, evidence requests, time
// limits and attachments, over the node's CaseService.
//
//   referral create --to CODE --file REFERRAL.json [--case ID] [--attach F]...
//   referral show CASE | referral list
//   referral accept CASE [--materials-to-follow] [--override REASON]
//   referral reject CASE --reason R | request-materials CASE --what W
//   referral supplement CASE --note N [--attach F]...
//   referral assign CASE [--lawyer ID]
//   referral close CASE --outcome O [--note N] | withdraw CASE --reason R
//   referral escalate CASE --reason R [--contender CODE]
//   referral route CASE --to CODE [--reason R]
//   evidence request --case CASE --to CODE --what W --from F --where P
//                    [--due-by RFC3339]
//   evidence show ID | evidence list
//   evidence accept ID | decline ID --reason R | progress ID --note N
//   evidence result ID --findings F [--attach F]... | confirm ID [--note N]
//   due [--within 2d] [--subtree]
//   attachment upload PATH | attachment download DIGEST --out PATH
//
// Exit codes and output follow client/cli_commands.h: 0 on success; 1 when
// the node refused (its message on stderr) or a file was wrong; 2 for a
// usage error, which CLI11 reports while parsing (malformed codes, times,
// durations, outcomes and digests included). With --json each command
// prints its response message as one line of JSON (see ToJson).
// `--attach` files are uploaded, resuming where an earlier try stopped,
// before the step that carries them is sent. `due --subtree` names on
// stderr the nodes that did not answer and still exits 0, since the rows
// it has are worth having. `attachment download --json` prints an
// AttachmentRef whose name is the path written.
#ifndef CASELINK_CLIENT_CLI_CASE_COMMANDS_H_
#define CASELINK_CLIENT_CLI_CASE_COMMANDS_H_

#include <memory>

#include "client/node_client.h"

namespace CLI {
class App;
}  // namespace CLI

namespace caselink::cli {

// Declares the commands on a CLI11 app and runs the one that was parsed.
// The app must outlive this object, which must stay where it was made:
// CLI11 writes the options into it. Not thread-safe.
class CaseCommands {
 public:
  // Adds the referral, evidence, due and attachment commands to `app`.
  explicit CaseCommands(CLI::App& app);
  ~CaseCommands();

  CaseCommands(const CaseCommands&) = delete;
  CaseCommands& operator=(const CaseCommands&) = delete;

  // True if the parsed command line named one of these commands.
  bool Parsed() const;

  // Runs the command that was parsed and returns the exit code; 2 if none
  // of these was.
  int Run(client::NodeClient& client, bool json) const;

  // The commands and the values CLI11 parses into; in the .cc.
  struct Commands;

 private:
  std::unique_ptr<Commands> commands_;
};

}  // namespace caselink::cli

#endif  // CASELINK_CLIENT_CLI_CASE_COMMANDS_H_
