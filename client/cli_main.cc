// caselink: the operator's command line for a caselink node.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "CLI/CLI.hpp"
#include "core/strings.h"
#include "absl/strings/str_format.h"
#include "client/client_config.h"
#include "client/node_client.h"
#include "google/protobuf/util/json_util.h"

namespace {

using caselink::client::NodeClient;

std::string LinkStateName(caselink::v1::LinkState state) {
  switch (state) {
    case caselink::v1::LINK_STATE_CONNECTED:
      return "connected";
    case caselink::v1::LINK_STATE_UNREACHABLE:
      return "unreachable";
    case caselink::v1::LINK_STATE_CONNECTING:
      return "connecting";
    default:
      return "unknown";
  }
}

int Fail(std::string_view message) {
  std::fprintf(stderr, "caselink: %.*s\n", static_cast<int>(message.size()),
               message.data());
  return 1;
}

int PrintJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return Fail("cannot render the answer as JSON");
  }
  std::printf("%s\n", json.c_str());
  return 0;
}

int RunStatus(NodeClient& client, bool json) {
  auto status = client.GetStatus();
  if (!status.ok()) return Fail(status.status().ToString());
  if (json) return PrintJson(*status);
  std::printf("node %s  %s\n", status->code().c_str(), status->name().c_str());
  std::printf("%-12s  %-12s  %-7s  %-22s  %s\n", "PEER", "STATE", "QUEUED",
              "ADDRESS", "NAME / ERROR");
  for (const auto& peer : status->peers()) {
    const std::string& detail =
        peer.state() == caselink::v1::LINK_STATE_CONNECTED ? peer.name()
                                                           : peer.last_error();
    std::printf("%-12s  %-12s  %-7llu  %-22s  %s\n", peer.code().c_str(),
                LinkStateName(peer.state()).c_str(),
                static_cast<unsigned long long>(peer.queued()),
                peer.address().c_str(), detail.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"caselink: talk to your caselink node"};
  app.require_subcommand(1);
  std::string config_path;
  if (const char* env = std::getenv("CASELINK_CONFIG")) config_path = env;
  app.add_option("--config", config_path,
                 "client configuration file (YAML); default $CASELINK_CONFIG");
  bool json = false;
  app.add_flag("--json", json, "print machine-readable JSON");

  CLI::App* status = app.add_subcommand("status", "the node and its peers");
  CLI11_PARSE(app, argc, argv);

  if (config_path.empty()) {
    return Fail("no client configuration: pass --config FILE or set "
                "CASELINK_CONFIG");
  }
  auto config = caselink::client::LoadClientConfig(config_path);
  if (!config.ok()) return Fail(caselink::View(config.status().message()));
  auto client = NodeClient::Connect(*config);
  if (!client.ok()) return Fail(caselink::View(client.status().message()));

  if (status->parsed()) return RunStatus(**client, json);
  return Fail("no command given");
}
