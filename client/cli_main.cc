// caselink: the operator's command line for a caselink node.
//
// This file declares the command line and dispatches; the commands are in
// client/cli_commands.cc, for cases client/cli_case_commands.cc and for
// audits client/cli_audit_commands.cc.
#include <cstdlib>
#include <string>

#include "CLI/CLI.hpp"
#include "client/cli_audit_commands.h"
#include "client/cli_case_commands.h"
#include "client/cli_commands.h"
#include "client/cli_format.h"
#include "client/client_config.h"
#include "client/node_client.h"
#include "core/strings.h"

namespace {

using caselink::cli::Fail;

// Exit code of every error the parser catches (CLI11 has its own codes,
// 100 and up; scripts expect 2 for a usage error).
constexpr int kUsageExit = 2;

struct Command {
  CLI::App* status = nullptr;
  CLI::App* send = nullptr;
  CLI::App* sent = nullptr;
  CLI::App* inbox = nullptr;
  CLI::App* read = nullptr;
  CLI::App* handled = nullptr;
};

struct Arguments {
  std::string config_path;
  bool json = false;
  caselink::cli::SendOptions send;
  caselink::cli::SentOptions sent;
  bool unhandled_only = false;
  std::string id;
  bool payload_only = false;
};

void AddSend(CLI::App& app, Arguments& args, Command& command) {
  CLI::App* send = command.send =
      app.add_subcommand("send", "submit a message for delivery");
  send->add_option("--to", args.send.to,
                   "division code of the recipient (2 to 12 digits)")
      ->required();
  send->add_option("--kind", args.send.kind,
                   caselink::Cat("what the message is: ",
                                 caselink::cli::SendableKindNames()))
      ->required();
  send->add_option("--case", args.send.case_id, "the case it belongs to");
  send->add_flag("--green", args.send.green,
                 "green channel: overtakes ordinary traffic");
  send->add_option("--reply-to", args.send.reply_to,
                   "id of the message this one answers");
  send->add_option("--deadline", args.send.deadline,
                   "when the recipient should have acted (RFC 3339)");
  CLI::Option_group* payload =
      send->add_option_group("payload", "the content, exactly one of");
  payload->add_option("--payload", args.send.payload, "the payload as text");
  payload->add_option("--payload-file", args.send.payload_file,
                      "read the payload from a file (- for stdin)");
  payload->require_option(1);
}

void AddFollowing(CLI::App& app, Arguments& args, Command& command) {
  CLI::App* sent = command.sent = app.add_subcommand(
      "sent", "messages sent from this node, or one of them");
  sent->add_option("id", args.sent.id, "message id (32 hex digits)");
  sent->add_flag("--wait", args.sent.wait,
                 "poll until the message is delivered (exit 0) or rejected "
                 "(exit 1)");
  sent->add_option("--timeout", args.sent.timeout_seconds,
                   "give up waiting after this many seconds (exit 1)")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();

  CLI::App* inbox = command.inbox =
      app.add_subcommand("inbox", "messages that arrived at this node");
  inbox->add_flag("--unhandled", args.unhandled_only,
                  "leave out those marked handled");

  CLI::App* read = command.read =
      app.add_subcommand("read", "one arrived message and its payload");
  read->add_option("id", args.id, "message id (32 hex digits)")->required();
  read->add_flag("--payload-only", args.payload_only,
                 "write the raw payload bytes alone to stdout");

  CLI::App* handled = command.handled =
      app.add_subcommand("handled", "mark an arrived message handled");
  handled->add_option("id", args.id, "message id (32 hex digits)")->required();
}

int Dispatch(const Command& command, const caselink::cli::CaseCommands& cases,
             const Arguments& args, caselink::client::NodeClient& client) {
  namespace cli = caselink::cli;
  if (cases.Parsed()) return cases.Run(client, args.json);
  if (command.status->parsed()) return cli::RunStatus(client, args.json);
  if (command.send->parsed()) return cli::RunSend(client, args.send, args.json);
  if (command.sent->parsed()) return cli::RunSent(client, args.sent, args.json);
  if (command.inbox->parsed()) {
    return cli::RunInbox(client, args.unhandled_only, args.json);
  }
  if (command.read->parsed()) {
    return cli::RunRead(client, args.id, args.payload_only, args.json);
  }
  if (command.handled->parsed()) {
    return cli::RunHandled(client, args.id, args.json);
  }
  return Fail("no command given", kUsageExit);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"caselink: talk to your caselink node"};
  app.require_subcommand(1);
  // Global options may also follow the command: caselink inbox --json.
  app.fallthrough();
  app.failure_message([](const CLI::App*, const CLI::Error& error) {
    return caselink::Cat("caselink: ", error.what(),
                         "\nRun with --help for more information.\n");
  });

  Arguments args;
  if (const char* env = std::getenv("CASELINK_CONFIG")) args.config_path = env;
  app.add_option("--config", args.config_path,
                 "client configuration file (YAML); default $CASELINK_CONFIG");
  app.add_flag("--json", args.json, "print machine-readable JSON");

  Command command;
  command.status = app.add_subcommand("status", "the node and its peers");
  AddSend(app, args, command);
  AddFollowing(app, args, command);
  caselink::cli::CaseCommands cases(app);
  caselink::cli::AuditCommands audit(app);

  // CLI11 reports parse errors, --help included, by throwing; this is the
  // one place they are caught.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : kUsageExit;
  }

  // Audit commands talk to the AuditService, and `audit verify` to no node
  // at all, so they read the configuration themselves.
  if (audit.Parsed()) return audit.Run(args.config_path, args.json);

  if (args.config_path.empty()) {
    return Fail(
        "no client configuration: pass --config FILE or set "
        "CASELINK_CONFIG");
  }
  auto config = caselink::client::LoadClientConfig(args.config_path);
  if (!config.ok()) return Fail(caselink::View(config.status().message()));
  auto client = caselink::client::NodeClient::Connect(*config);
  if (!client.ok()) return Fail(caselink::View(client.status().message()));
  return Dispatch(command, cases, args, **client);
}
