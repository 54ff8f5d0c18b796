#include "core/log.h"

#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/strings.h"

namespace caselink {
namespace {

std::string_view LevelText(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// Quotes a value when it would otherwise break key=value parsing.
void AppendValue(std::string* line, std::string_view value) {
  bool plain = !value.empty();
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' ||
        static_cast<unsigned char>(c) < 0x20) {
      plain = false;
      break;
    }
  }
  if (plain) {
    line->append(value);
    return;
  }
  line->push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') {
      line->push_back('\\');
      line->push_back(c);
    } else if (c == '\n') {
      line->append("\\n");
    } else if (static_cast<unsigned char>(c) < 0x20) {
      line->push_back('?');
    } else {
      line->push_back(c);
    }
  }
  line->push_back('"');
}

}  // namespace

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  for (LogLevel candidate : {LogLevel::kDebug, LogLevel::kInfo,
                             LogLevel::kWarning, LogLevel::kError}) {
    if (text == LevelText(candidate)) {
      *level = candidate;
      return true;
    }
  }
  return false;
}

Logger::Logger(std::string node, LogLevel min_level, std::FILE* sink)
    : node_(std::move(node)), min_level_(min_level), sink_(sink) {}

void Logger::set_node(std::string node) {
  absl::MutexLock lock(&mu_);
  node_ = std::move(node);
}

void Logger::Log(LogLevel level, std::string_view event,
                 std::initializer_list<LogField> fields) {
  if (level < min_level_) return;
  std::string line = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                      absl::UTCTimeZone());
  line += Cat(" level=", LevelText(level));
  absl::MutexLock lock(&mu_);
  if (!node_.empty()) line += Cat(" node=", node_);
  line += Cat(" event=", event);
  for (const LogField& field : fields) {
    line += Cat(" ", field.key, "=");
    AppendValue(&line, field.value);
  }
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), sink_);
  std::fflush(sink_);
}

}  // namespace caselink
