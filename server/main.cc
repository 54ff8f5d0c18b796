// caselinkd: one caselink node.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "core/strings.h"
#include "grpc/support/log.h"
#include "server/config.h"
#include "server/node.h"

namespace {

std::atomic<caselink::Logger*> grpc_log_sink{nullptr};

// gRPC's own diagnostics go to the node's log at debug level: the node
// reports what matters (a peer unreachable, a refused call) itself.
void ForwardGrpcLog(gpr_log_func_args* args) {
  caselink::Logger* sink = grpc_log_sink.load();
  if (sink == nullptr) return;
  sink->Debug("grpc", {{"file", args->file},
                       {"line", caselink::Cat(args->line)},
                       {"message", args->message}});
}

// Blocks the termination signals, and SIGHUP (reload the node's keys and
// certificates), in every thread, so that the main thread alone receives
// them with sigwait.
sigset_t BlockHandledSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "caselinkd: %s\n", message.c_str());
  return 1;
}

}  // namespace

// Read by jemalloc at start-up. A node holds many small objects for a short
// time on several threads; two arenas, a background thread that returns
// freed pages and a one-second decay keep its resident memory near what it
// uses (about a quarter less than the defaults under full load) at no
// measurable cost in throughput.
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's.
const char* malloc_conf =
    "background_thread:true,narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";
}

int main(int argc, char** argv) {
  CLI::App app{"caselinkd: a caselink node"};
  std::string config_path;
  app.add_option("--config", config_path, "node configuration file (YAML)")
      ->required();
  CLI11_PARSE(app, argc, argv);

#ifdef NDEBUG
  // The system's Abseil checks every lock order for cycles unless told not
  // to, which cost a few per cent of a busy node's CPU. Debug builds keep
  // the check.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  gpr_set_log_function(ForwardGrpcLog);
  sigset_t signals = BlockHandledSignals();
  std::signal(SIGPIPE, SIG_IGN);

  auto config = caselink::server::LoadNodeConfig(config_path);
  if (!config.ok()) return Fail(std::string(config.status().message()));

  caselink::Logger log(config->code, config->log_level);
  grpc_log_sink = &log;
  auto node = caselink::server::Node::Start(*config, &log);
  if (!node.ok()) {
    grpc_log_sink = nullptr;
    return Fail(std::string(node.status().message()));
  }

  int received = 0;
  while (sigwait(&signals, &received) == 0 && received == SIGHUP) {
    (*node)->ReloadIdentity("SIGHUP");
  }
  log.Info("shutting_down",
           {{"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"}});
  (*node)->Shutdown();
  node->reset();
  grpc_log_sink = nullptr;
  return 0;
}
