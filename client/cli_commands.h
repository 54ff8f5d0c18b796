// The caselink CLI's commands, one function each, run against a connected
// node. Each returns the process exit code: 0 on success, 1 when the node
// refused or could not be reached or the input was wrong (after one
// "caselink: ..." line on stderr), 2 for a usage error the parser cannot
// catch.
//
// Output is a table or a detail view on stdout, or with `json` one line of
// JSON (see ToJson in client/cli_format.h). Payloads are personal data:
// only RunRead prints one.
#ifndef CASELINK_CLIENT_CLI_COMMANDS_H_
#define CASELINK_CLIENT_CLI_COMMANDS_H_

#include <string>

#include "client/node_client.h"

namespace caselink::cli {

// `caselink status`: the node and its peer links.
int RunStatus(client::NodeClient& client, bool json);

struct SendOptions {
  std::string to;
  std::string kind;
  std::string case_id;
  bool green = false;
  std::string reply_to;  // Hex message id, or empty.
  std::string deadline;  // RFC 3339, or empty.
  // Exactly one of the two is used: the file if `payload_file` is set
  // ("-" reads stdin), else `payload`.
  std::string payload;
  std::string payload_file;
};

// `caselink send`: submits one message and prints its id.
int RunSend(client::NodeClient& client, const SendOptions& options, bool json);

struct SentOptions {
  std::string id;  // Hex; empty lists every sent message.
  bool wait = false;
  double timeout_seconds = 60;
};

// `caselink sent [ID]` and `caselink sent --wait ID`. Waiting exits 0 once
// the message is delivered and 1 if it is rejected or the timeout passes.
int RunSent(client::NodeClient& client, const SentOptions& options, bool json);

// `caselink inbox [--unhandled]`: the messages that arrived here.
int RunInbox(client::NodeClient& client, bool unhandled_only, bool json);

// `caselink read ID [--payload-only]`: one arrived message and its payload.
// With `payload_only` the raw payload bytes alone go to stdout, whatever
// `json` says.
int RunRead(client::NodeClient& client, const std::string& id,
            bool payload_only, bool json);

// `caselink handled ID`: marks an arrived message handled.
int RunHandled(client::NodeClient& client, const std::string& id, bool json);

}  // namespace caselink::cli

#endif  // CASELINK_CLIENT_CLI_COMMANDS_H_
