#include "tests/testing/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/time/clock.h"
#include "core/strings.h"

namespace caselink::testing {
namespace {

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Execs argv in the child with stdout and stderr sent to `fd`.
[[noreturn]] void ExecChild(const std::vector<std::string>& argv, int fd) {
  dup2(fd, STDOUT_FILENO);
  dup2(fd, STDERR_FILENO);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, STDIN_FILENO);
  std::vector<char*> args;
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
  _exit(127);
}

// Polls waitpid until the child exits or the deadline passes.
bool WaitUntil(pid_t pid, absl::Time deadline, int* exit_code) {
  while (true) {
    int status = 0;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      *exit_code = DecodeWaitStatus(status);
      return true;
    }
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout) {
  CommandResult result;
  char path[] = "/tmp/caselink-cmd-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return result;
  unlink(path);
  pid_t pid = fork();
  if (pid == 0) ExecChild(argv, fd);
  if (!WaitUntil(pid, absl::Now() + timeout, &result.exit_code)) {
    kill(pid, SIGKILL);
    WaitUntil(pid, absl::InfiniteFuture(), &result.exit_code);
    result.output = "(killed: timed out)\n";
  }
  lseek(fd, 0, SEEK_SET);
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
    result.output.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return result;
}

ChildProcess::ChildProcess(std::vector<std::string> argv, std::string log_path)
    : argv_(std::move(argv)), log_path_(std::move(log_path)) {}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && Running()) Signal(SIGKILL);
}

absl::Status ChildProcess::Spawn() {
  int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0) {
    return absl::InternalError(Cat("cannot open ", log_path_));
  }
  exit_code_ = -1;
  pid_ = fork();
  if (pid_ == 0) ExecChild(argv_, fd);
  close(fd);
  if (pid_ < 0) return absl::InternalError("fork failed");
  return absl::OkStatus();
}

bool ChildProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    exit_code_ = DecodeWaitStatus(status);
    pid_ = -1;
    return false;
  }
  return true;
}

int ChildProcess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return exit_code_;
  int code = -1;
  if (!WaitUntil(pid_, absl::Now() + timeout, &code)) return -1;
  exit_code_ = code;
  pid_ = -1;
  return code;
}

int ChildProcess::Signal(int signal, absl::Duration timeout) {
  if (!Running()) return exit_code_;
  kill(pid_, signal);
  return Wait(timeout);
}

void ChildProcess::Notify(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

std::string ChildProcess::Log() const {
  std::ifstream in(log_path_);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

bool PortAcceptsConnections(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace caselink::testing
