// Child processes for multi-process tests: run a command to completion, or
// start a caselinkd and control its life.
#ifndef CASELINK_TESTS_TESTING_PROCESS_H_
#define CASELINK_TESTS_TESTING_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace caselink::testing {

struct CommandResult {
  // The exit code, or 128 + signal number if it was killed.
  int exit_code = -1;
  // Standard output and standard error, interleaved as written.
  std::string output;
};

// Runs `argv` with its output captured, killing it after `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout = absl::Seconds(60));

// A child process whose output goes to a log file.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::string log_path);
  ~ChildProcess();  // Kills the process if still running.

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  absl::Status Spawn();
  bool Running();
  // Sends `signal` and waits up to `timeout` for the exit; returns the exit
  // code as RunCommand does, or -1 if it did not exit in time.
  int Signal(int signal, absl::Duration timeout = absl::Seconds(20));
  // Sends `signal` without waiting, e.g. SIGSTOP or SIGCONT.
  void Notify(int signal);
  // Waits for the process to exit by itself.
  int Wait(absl::Duration timeout);
  std::string Log() const;
  pid_t pid() const { return pid_; }

 private:
  std::vector<std::string> argv_;
  std::string log_path_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

// Binds port 0 on 127.0.0.1 and returns the port the kernel chose, after
// closing it again.
int PickFreePort();

// True once something accepts TCP connections on 127.0.0.1:`port`.
bool PortAcceptsConnections(int port);

}  // namespace caselink::testing

#endif  // CASELINK_TESTS_TESTING_PROCESS_H_
