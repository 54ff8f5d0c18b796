// Named event counters for operators: refusals by reason, deliveries and
// so on. Reported by GetStatus.
#ifndef CASELINK_SERVER_COUNTERS_H_
#define CASELINK_SERVER_COUNTERS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace caselink::server {

// Thread-safe.
class Counters {
 public:
  void Add(std::string_view name, uint64_t n = 1) {
    std::atomic<uint64_t>* counter;
    {
      absl::MutexLock lock(&mu_);
      auto& slot = counters_[std::string(name)];
      if (slot == nullptr) slot = std::make_unique<std::atomic<uint64_t>>(0);
      counter = slot.get();
    }
    counter->fetch_add(n, std::memory_order_relaxed);
  }

  uint64_t Get(std::string_view name) const {
    absl::MutexLock lock(&mu_);
    auto it = counters_.find(std::string(name));
    return it == counters_.end() ? 0 : it->second->load();
  }

  std::map<std::string, uint64_t> Snapshot() const {
    absl::MutexLock lock(&mu_);
    std::map<std::string, uint64_t> out;
    for (const auto& [name, value] : counters_) out[name] = value->load();
    return out;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<std::atomic<uint64_t>>> counters_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_COUNTERS_H_
