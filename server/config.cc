#include "server/config.h"

#include <set>

#include "core/config_file.h"
#include "core/division_code.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::server {
namespace {

// Reads a division code setting and normalizes it, reporting where it was.
absl::StatusOr<std::string> ReadCode(const ConfigSection& section,
                                     std::string_view key) {
  CASELINK_ASSIGN_OR_RETURN(std::string text, section.RequiredString(key));
  auto code = NormalizeDivisionCode(text);
  if (!code.ok()) return section.Error(key, View(code.status().message()));
  return *code;
}

absl::Status ReadDelivery(const ConfigSection& section,
                          DeliveryConfig* delivery) {
  CASELINK_RETURN_IF_ERROR(section.AllowOnly(
      {"max_envelope_bytes", "max_clock_skew_seconds", "dedup_retention_hours",
       "window", "retry_initial_ms", "retry_max_ms"}));
  CASELINK_ASSIGN_OR_RETURN(
      delivery->max_envelope_bytes,
      section.UnsignedOr("max_envelope_bytes", delivery->max_envelope_bytes,
                         uint64_t{64} << 20));
  CASELINK_ASSIGN_OR_RETURN(
      uint64_t skew, section.UnsignedOr("max_clock_skew_seconds", 300, 86400));
  delivery->max_clock_skew = absl::Seconds(static_cast<int64_t>(skew));
  CASELINK_ASSIGN_OR_RETURN(
      uint64_t retention,
      section.UnsignedOr("dedup_retention_hours", 24 * 30, 24 * 3650));
  delivery->dedup_retention = absl::Hours(static_cast<int64_t>(retention));
  CASELINK_ASSIGN_OR_RETURN(uint64_t window,
                            section.UnsignedOr("window", 1024, 65536));
  if (window == 0) return section.Error("window", "must be at least 1");
  delivery->window = static_cast<uint32_t>(window);
  CASELINK_ASSIGN_OR_RETURN(uint64_t initial,
                            section.UnsignedOr("retry_initial_ms", 200, 60000));
  CASELINK_ASSIGN_OR_RETURN(uint64_t max,
                            section.UnsignedOr("retry_max_ms", 30000, 3600000));
  if (initial == 0 || max < initial) {
    return section.Error("retry_max_ms",
                         "retry_initial_ms must be at least 1 and no more "
                         "than retry_max_ms");
  }
  delivery->retry_initial = absl::Milliseconds(static_cast<int64_t>(initial));
  delivery->retry_max = absl::Milliseconds(static_cast<int64_t>(max));
  return absl::OkStatus();
}

absl::Status ReadPeers(const ConfigSection& top, NodeConfig* config) {
  std::set<std::string> seen;
  return top.ForEachInList("peers", [&](const ConfigSection& peer) {
    CASELINK_RETURN_IF_ERROR(peer.AllowOnly({"code", "address"}));
    PeerConfig entry;
    CASELINK_ASSIGN_OR_RETURN(entry.code, ReadCode(peer, "code"));
    CASELINK_ASSIGN_OR_RETURN(entry.address, peer.RequiredString("address"));
    if (entry.code == config->code) {
      return peer.Error("code", "a node cannot be its own peer");
    }
    if (!seen.insert(entry.code).second) {
      return peer.Error("code",
                        Cat("peer ", entry.code, " is listed more than once"));
    }
    config->peers.push_back(std::move(entry));
    return absl::OkStatus();
  });
}

}  // namespace

absl::StatusOr<NodeConfig> LoadNodeConfig(const std::string& path) {
  CASELINK_ASSIGN_OR_RETURN(ConfigSection top, ConfigSection::ParseFile(path));
  CASELINK_RETURN_IF_ERROR(
      top.AllowOnly({"node", "listen", "data_dir", "tls", "signing", "sealing",
                     "directory", "peers", "delivery", "log_level"}));
  NodeConfig config;

  CASELINK_ASSIGN_OR_RETURN(auto node, top.Section("node"));
  if (!node) return top.Error("node", "missing");
  CASELINK_RETURN_IF_ERROR(node->AllowOnly({"code", "name"}));
  CASELINK_ASSIGN_OR_RETURN(config.code, ReadCode(*node, "code"));
  CASELINK_ASSIGN_OR_RETURN(auto name, node->OptionalString("name"));
  config.name = name.value_or(Cat("node ", config.code));

  CASELINK_ASSIGN_OR_RETURN(config.listen, top.RequiredString("listen"));
  CASELINK_ASSIGN_OR_RETURN(config.data_dir, top.RequiredPath("data_dir"));

  CASELINK_ASSIGN_OR_RETURN(auto tls, top.Section("tls"));
  if (!tls) return top.Error("tls", "missing");
  CASELINK_RETURN_IF_ERROR(
      tls->AllowOnly({"cert", "key", "ca_bundle", "crl_bundle"}));
  CASELINK_ASSIGN_OR_RETURN(config.tls_cert, tls->RequiredPath("cert"));
  CASELINK_ASSIGN_OR_RETURN(config.tls_key, tls->RequiredPath("key"));
  CASELINK_ASSIGN_OR_RETURN(config.ca_bundle, tls->RequiredPath("ca_bundle"));
  CASELINK_ASSIGN_OR_RETURN(auto crl_bundle, tls->OptionalPath("crl_bundle"));
  config.crl_bundle = crl_bundle.value_or("");

  config.signing_cert = config.tls_cert;
  config.signing_key = config.tls_key;
  CASELINK_ASSIGN_OR_RETURN(auto signing, top.Section("signing"));
  if (signing) {
    CASELINK_RETURN_IF_ERROR(signing->AllowOnly({"cert", "key", "previous"}));
    CASELINK_ASSIGN_OR_RETURN(config.signing_cert,
                              signing->RequiredPath("cert"));
    CASELINK_ASSIGN_OR_RETURN(config.signing_key, signing->RequiredPath("key"));
    CASELINK_ASSIGN_OR_RETURN(config.previous_signing_certs,
                              signing->PathList("previous"));
  }

  CASELINK_ASSIGN_OR_RETURN(auto sealing, top.Section("sealing"));
  if (sealing) {
    CASELINK_RETURN_IF_ERROR(sealing->AllowOnly({"cert", "key"}));
    CASELINK_ASSIGN_OR_RETURN(config.sealing_cert,
                              sealing->RequiredPath("cert"));
    CASELINK_ASSIGN_OR_RETURN(config.sealing_key, sealing->RequiredPath("key"));
  }

  CASELINK_ASSIGN_OR_RETURN(auto directory, top.Section("directory"));
  if (directory) {
    CASELINK_RETURN_IF_ERROR(
        directory->AllowOnly({"publish", "refresh_seconds"}));
    CASELINK_ASSIGN_OR_RETURN(auto publish, directory->OptionalPath("publish"));
    if (publish.has_value()) {
      if (LevelOf(config.code) != DivisionLevel::kProvince) {
        return directory->Error("publish",
                                "only a province node publishes a directory");
      }
      config.directory_publish = *publish;
    }
    CASELINK_ASSIGN_OR_RETURN(
        uint64_t refresh, directory->UnsignedOr("refresh_seconds", 30, 86400));
    if (refresh == 0) {
      return directory->Error("refresh_seconds", "must be at least 1");
    }
    config.directory_refresh = absl::Seconds(static_cast<int64_t>(refresh));
  }

  CASELINK_RETURN_IF_ERROR(ReadPeers(top, &config));

  CASELINK_ASSIGN_OR_RETURN(auto delivery, top.Section("delivery"));
  if (delivery) {
    CASELINK_RETURN_IF_ERROR(ReadDelivery(*delivery, &config.delivery));
  }

  CASELINK_ASSIGN_OR_RETURN(auto level, top.OptionalString("log_level"));
  if (level && !ParseLogLevel(*level, &config.log_level)) {
    return top.Error("log_level", Cat("\"", *level,
                                      "\" is not debug, info, "
                                      "warning or error"));
  }
  return config;
}

}  // namespace caselink::server
