#include "server/config.h"

#include <charconv>
#include <set>

#include "core/config_file.h"
#include "core/division_code.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "server/case_type.h"

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

// Longer than any time limit the law sets, and short enough that no
// arithmetic on the result can overflow.
constexpr uint64_t kMaxDurationSeconds = uint64_t{3650} * 24 * 3600;

// Seconds in the unit a duration ends with, or 0 for no known unit.
uint64_t UnitSeconds(char unit) {
  switch (unit) {
    case 'd':
      return 24 * 3600;
    case 'h':
      return 3600;
    case 'm':
      return 60;
    case 's':
      return 1;
    default:
      return 0;
  }
}

// Parses a positive whole number followed by one unit: d, h, m or s. The
// error names the text but not where it came from.
absl::StatusOr<absl::Duration> ParseDurationText(std::string_view text) {
  const absl::Status invalid = absl::InvalidArgumentError(
      Cat("\"", text, "\" is not a duration such as 7d, 36h, 90m or 45s"));
  if (text.size() < 2) return invalid;
  const uint64_t unit_seconds = UnitSeconds(text.back());
  if (unit_seconds == 0) return invalid;
  std::string_view digits = text.substr(0, text.size() - 1);
  uint64_t count = 0;
  auto [end, ec] =
      std::from_chars(digits.data(), digits.data() + digits.size(), count);
  if (ec == std::errc::result_out_of_range ||
      (ec == std::errc() && end == digits.data() + digits.size() &&
       count > kMaxDurationSeconds / unit_seconds)) {
    return absl::InvalidArgumentError(
        Cat("\"", text, "\" is longer than 3650 days"));
  }
  if (ec != std::errc() || end != digits.data() + digits.size()) {
    return invalid;
  }
  if (count == 0) {
    return absl::InvalidArgumentError(
        Cat("\"", text, "\" must be longer than zero"));
  }
  return absl::Seconds(static_cast<int64_t>(count * unit_seconds));
}

// A duration setting, or `fallback` if it is absent.
absl::StatusOr<absl::Duration> ReadDuration(const ConfigSection& section,
                                            std::string_view key,
                                            absl::Duration fallback) {
  CASELINK_ASSIGN_OR_RETURN(auto text, section.OptionalString(key));
  if (!text.has_value()) return fallback;
  auto duration = ParseDurationText(*text);
  if (!duration.ok()) {
    return section.Error(key, View(duration.status().message()));
  }
  return *duration;
}

// Overrides the stages the section names; the others keep their values.
absl::Status ReadStageLimits(const ConfigSection& section,
                             StageLimits* limits) {
  CASELINK_RETURN_IF_ERROR(
      section.AllowOnly({"decision", "assignment", "materials", "evidence"}));
  CASELINK_ASSIGN_OR_RETURN(
      limits->decision, ReadDuration(section, "decision", limits->decision));
  CASELINK_ASSIGN_OR_RETURN(
      limits->assignment,
      ReadDuration(section, "assignment", limits->assignment));
  CASELINK_ASSIGN_OR_RETURN(
      limits->materials, ReadDuration(section, "materials", limits->materials));
  CASELINK_ASSIGN_OR_RETURN(
      limits->evidence, ReadDuration(section, "evidence", limits->evidence));
  return absl::OkStatus();
}

// Parses a positive amount of yuan with at most two decimals, such as "800"
// or "900.50", into fen. Twelve whole digits keep twice the amount, which
// the hardship test computes, far inside int64_t.
absl::StatusOr<int64_t> ParseYuanText(std::string_view text) {
  const absl::Status invalid = absl::InvalidArgumentError(
      Cat("\"", text,
          "\" is not an amount of yuan with at most 2 decimals, such as "
          "\"900.50\""));
  const size_t point = text.find('.');
  std::string_view whole = text.substr(0, point);
  std::string_view decimals =
      point == std::string_view::npos ? "" : text.substr(point + 1);
  const bool has_point = point != std::string_view::npos;
  if (whole.empty() || whole.size() > 12 || (has_point && decimals.empty()) ||
      decimals.size() > 2) {
    return invalid;
  }
  int64_t fen = 0;
  for (char c : whole) {
    if (c < '0' || c > '9') return invalid;
    fen = fen * 10 + (c - '0');
  }
  for (size_t i = 0; i < 2; ++i) {
    const char c = i < decimals.size() ? decimals[i] : '0';
    if (c < '0' || c > '9') return invalid;
    fen = fen * 10 + (c - '0');
  }
  if (fen == 0) {
    return absl::InvalidArgumentError(
        Cat("\"", text, "\" must be more than zero"));
  }
  return fen;
}

absl::Status ReadLawyers(const ConfigSection& workflow,
                         WorkflowConfig* config) {
  std::set<std::string> seen;
  return workflow.ForEachInList("lawyers", [&](const ConfigSection& entry) {
    CASELINK_RETURN_IF_ERROR(entry.AllowOnly({"id", "name", "case_types"}));
    Lawyer lawyer;
    CASELINK_ASSIGN_OR_RETURN(lawyer.id, entry.RequiredString("id"));
    if (!seen.insert(lawyer.id).second) {
      return entry.Error(
          "id", Cat("lawyer ", lawyer.id, " is listed more than once"));
    }
    CASELINK_ASSIGN_OR_RETURN(lawyer.name, entry.RequiredString("name"));
    CASELINK_ASSIGN_OR_RETURN(std::vector<std::string> names,
                              entry.StringList("case_types"));
    if (names.empty()) {
      return entry.Error("case_types", "must name at least one case type");
    }
    for (const std::string& name : names) {
      auto type = ParseCaseTypeName(name);
      if (!type.ok()) {
        return entry.Error("case_types", View(type.status().message()));
      }
      for (v1::CaseType earlier : lawyer.case_types) {
        if (earlier == *type) {
          return entry.Error("case_types",
                             Cat(name, " is listed more than once"));
        }
      }
      lawyer.case_types.push_back(*type);
    }
    config->lawyers.push_back(std::move(lawyer));
    return absl::OkStatus();
  });
}

absl::Status ReadAllowances(const ConfigSection& workflow,
                            WorkflowConfig* config) {
  std::set<std::string> seen;
  return workflow.ForEachInList(
      "minimum_living_allowance", [&](const ConfigSection& entry) {
        CASELINK_RETURN_IF_ERROR(entry.AllowOnly({"region", "yuan"}));
        LivingAllowance allowance;
        CASELINK_ASSIGN_OR_RETURN(allowance.region, ReadCode(entry, "region"));
        if (!seen.insert(allowance.region).second) {
          return entry.Error("region", Cat("region ", allowance.region,
                                           " is listed more than once"));
        }
        CASELINK_ASSIGN_OR_RETURN(std::string yuan,
                                  entry.RequiredString("yuan"));
        auto fen = ParseYuanText(yuan);
        if (!fen.ok()) return entry.Error("yuan", View(fen.status().message()));
        allowance.monthly_fen = *fen;
        config->allowances.push_back(std::move(allowance));
        return absl::OkStatus();
      });
}

absl::Status ReadWorkflow(const ConfigSection& section,
                          WorkflowConfig* config) {
  CASELINK_RETURN_IF_ERROR(section.AllowOnly(
      {"time_limits", "due_soon", "check_interval", "max_attachment_bytes",
       "lawyers", "minimum_living_allowance"}));

  CASELINK_ASSIGN_OR_RETURN(auto limits, section.Section("time_limits"));
  if (limits) {
    CASELINK_RETURN_IF_ERROR(limits->AllowOnly({"ordinary", "green_channel"}));
    CASELINK_ASSIGN_OR_RETURN(auto ordinary, limits->Section("ordinary"));
    if (ordinary) {
      CASELINK_RETURN_IF_ERROR(ReadStageLimits(*ordinary, &config->ordinary));
    }
    CASELINK_ASSIGN_OR_RETURN(auto green, limits->Section("green_channel"));
    if (green) {
      CASELINK_RETURN_IF_ERROR(ReadStageLimits(*green, &config->green_channel));
    }
  }

  CASELINK_ASSIGN_OR_RETURN(
      config->due_soon, ReadDuration(section, "due_soon", config->due_soon));
  CASELINK_ASSIGN_OR_RETURN(
      config->check_interval,
      ReadDuration(section, "check_interval", config->check_interval));
  CASELINK_ASSIGN_OR_RETURN(
      config->max_attachment_bytes,
      section.UnsignedOr("max_attachment_bytes", config->max_attachment_bytes,
                         uint64_t{4} << 30));
  if (config->max_attachment_bytes == 0) {
    return section.Error("max_attachment_bytes", "must be at least 1");
  }

  CASELINK_RETURN_IF_ERROR(ReadLawyers(section, config));
  return ReadAllowances(section, config);
}

}  // namespace

absl::StatusOr<NodeConfig> LoadNodeConfig(const std::string& path) {
  CASELINK_ASSIGN_OR_RETURN(ConfigSection top, ConfigSection::ParseFile(path));
  CASELINK_RETURN_IF_ERROR(top.AllowOnly(
      {"node", "listen", "data_dir", "tls", "signing", "sealing", "directory",
       "peers", "delivery", "workflow", "audit", "log_level"}));
  NodeConfig config;
  config.path = path;

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
    CASELINK_RETURN_IF_ERROR(sealing->AllowOnly({"cert", "key", "previous"}));
    CASELINK_ASSIGN_OR_RETURN(config.sealing_cert,
                              sealing->RequiredPath("cert"));
    CASELINK_ASSIGN_OR_RETURN(config.sealing_key, sealing->RequiredPath("key"));
    CASELINK_ASSIGN_OR_RETURN(config.previous_sealing_keys,
                              sealing->PathList("previous"));
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

  CASELINK_ASSIGN_OR_RETURN(auto workflow, top.Section("workflow"));
  if (workflow) {
    CASELINK_RETURN_IF_ERROR(ReadWorkflow(*workflow, &config.workflow));
  }

  CASELINK_ASSIGN_OR_RETURN(auto audit, top.Section("audit"));
  if (audit) {
    CASELINK_RETURN_IF_ERROR(audit->AllowOnly({"head_interval_seconds"}));
    CASELINK_ASSIGN_OR_RETURN(
        uint64_t seconds,
        audit->UnsignedOr("head_interval_seconds", 60, 86400));
    if (seconds == 0) {
      return audit->Error("head_interval_seconds", "must be at least 1");
    }
    config.audit_head_interval = absl::Seconds(static_cast<int64_t>(seconds));
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
