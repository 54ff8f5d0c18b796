// Leveled, structured logging: one event per line, as key=value pairs.
//
// Lines are for operators: what happened, to which message and peer, and
// what the node does next. Callers must never pass a worker's personal data
// (names, ID numbers, phone numbers) as a field; payloads are never logged.
#ifndef CASELINK_CORE_LOG_H_
#define CASELINK_CORE_LOG_H_

#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace caselink {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Parses "debug", "info", "warning" or "error"; false if it is none of them.
bool ParseLogLevel(std::string_view text, LogLevel* level);

struct LogField {
  std::string_view key;
  std::string value;
};

// Writes lines like
//   2026-12-03T08:49:08.123Z level=info node=350212000000 event=peer_up
//   peer=350200000000
// to a stdio stream. Thread-safe; lines from many threads never interleave.
class Logger {
 public:
  // `node` is stamped on every line. The logger does not own `sink`.
  Logger(std::string node, LogLevel min_level, std::FILE* sink = stderr);

  void set_node(std::string node);

  void Log(LogLevel level, std::string_view event,
           std::initializer_list<LogField> fields = {});
  void Debug(std::string_view event,
             std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kDebug, event, fields);
  }
  void Info(std::string_view event,
            std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kInfo, event, fields);
  }
  void Warning(std::string_view event,
               std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kWarning, event, fields);
  }
  void Error(std::string_view event,
             std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kError, event, fields);
  }

 private:
  absl::Mutex mu_;
  std::string node_ ABSL_GUARDED_BY(mu_);
  const LogLevel min_level_;
  std::FILE* const sink_;
};

}  // namespace caselink

#endif  // CASELINK_CORE_LOG_H_
