// How fast the audit log appends, and how long an auditor waits for one
// case's history with an inclusion proof for every event.
//
// Build and run (release build; the store goes to a fresh temp dir, removed
// afterwards):
//   cmake --preset release
//   cmake --build build/release -j2 --target audit_bench
//   build/release/tests/audit_bench
// Options, all optional: --events=1000000 --cases=50000 --batch=1000
// --queries=1000 --hash=sha256|sm3 --dir=/path/to/parent
//
// Appends go in synced batches of --batch events, as the committer's group
// commit writes them; case i % cases gets event i, so each case's events
// are spread over the whole log. Then --queries random cases are read back
// as the audit service would answer them: Find by case, then each event's
// bytes and its inclusion path in the tree of the current size. Every
// answer is verified after the clock stops, so a fast wrong answer cannot
// pass for a result.
//
// Each group is stamped with one time, as the committer stamps it. On the
// 2-core development machine, shared with other builds, the defaults gave
// about 21,000 events/s with SHA-256 (24,000 with SM3; the synced commits
// take four fifths of it), a peak RSS near 100 MiB, and case histories of
// 20 events with proofs in 4-8 ms at the median and 17 ms at p99.
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/crypto.h"
#include "core/merkle.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"
#include "server/audit_log.h"
#include "storage/store.h"

namespace caselink {
namespace {

using google::protobuf::util::TimeUtil;

struct BenchOptions {
  uint64_t events = 1'000'000;
  uint64_t cases = 50'000;
  uint64_t batch = 1'000;
  uint64_t queries = 1'000;
  HashAlgorithm hash = HashAlgorithm::kSha256;
  std::string parent = std::filesystem::temp_directory_path().string();
};

bool ParseOptions(int argc, char** argv, BenchOptions* options) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const size_t equals = arg.find('=');
    if (!arg.starts_with("--") || equals == std::string_view::npos) {
      return false;
    }
    const std::string_view name = arg.substr(2, equals - 2);
    const std::string value(arg.substr(equals + 1));
    if (name == "events") {
      options->events = std::stoull(value);
    } else if (name == "cases") {
      options->cases = std::stoull(value);
    } else if (name == "batch") {
      options->batch = std::stoull(value);
    } else if (name == "queries") {
      options->queries = std::stoull(value);
    } else if (name == "hash" && (value == "sha256" || value == "sm3")) {
      options->hash =
          value == "sm3" ? HashAlgorithm::kSm3 : HashAlgorithm::kSha256;
    } else if (name == "dir") {
      options->parent = value;
    } else {
      return false;
    }
  }
  return options->events > 0 && options->cases > 0 && options->batch > 0;
}

long PeakRssMiB() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

// An event shaped like the committer's: codes, ids, kinds and states only.
v1::AuditEvent SyntheticEvent(uint64_t i, const BenchOptions& options,
                              absl::Time start) {
  static constexpr v1::AuditEventKind kKinds[] = {
      v1::AUDIT_EVENT_KIND_SUBMITTED, v1::AUDIT_EVENT_KIND_ACKNOWLEDGED,
      v1::AUDIT_EVENT_KIND_RECEIVED, v1::AUDIT_EVENT_KIND_STATE_CHANGE};
  static constexpr const char* kStates[] = {"", "submitted", "accepted",
                                            "closed"};
  v1::AuditEvent event;
  // The committer stamps a whole group with one time; groups here are
  // 50 ms apart.
  const auto group = static_cast<int64_t>(i / options.batch);
  *event.mutable_at() = TimeUtil::MicrosecondsToTimestamp(
      absl::ToUnixMicros(start + absl::Milliseconds(50 * group)));
  event.set_kind(kKinds[i % 4]);
  std::string message_id(16, '\0');
  for (size_t b = 0; b < 8; ++b) {
    message_id[b] = static_cast<char>((i >> (8 * b)) & 0xff);
  }
  event.set_message_id(message_id);
  event.set_message_kind(static_cast<v1::MessageKind>(1 + i % 3));
  event.set_case_id(Cat("CL-2024-", 1'000'000 + i % options.cases));
  event.set_peer(Cat("3201", 10'000'000 + i % 40));
  event.set_state(kStates[i % 4]);
  return event;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank =
      static_cast<size_t>(p * static_cast<double>(values.size() - 1));
  return values[rank];
}

int Fail(std::string_view what, const absl::Status& status) {
  std::fprintf(stderr, "audit_bench: %.*s: %s\n", static_cast<int>(what.size()),
               what.data(), status.ToString().c_str());
  return 1;
}

int Run(const BenchOptions& options, const std::string& dir) {
  absl::StatusOr<std::unique_ptr<storage::Store>> opened =
      storage::Store::Open(dir);
  if (!opened.ok()) return Fail("open store", opened.status());
  storage::Store& store = **opened;
  server::AuditLog log(&store, options.hash, "320100000000");
  if (absl::Status loaded = log.Load(); !loaded.ok()) {
    return Fail("load", loaded);
  }

  // Appends, in synced groups.
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  absl::Duration appending;
  absl::Duration committing;
  const absl::Time began = absl::Now();
  storage::Batch batch = store.NewBatch();
  for (uint64_t i = 0; i < options.events;) {
    const absl::Time group_began = absl::Now();
    for (uint64_t n = 0; n < options.batch && i < options.events; ++n, ++i) {
      absl::StatusOr<uint64_t> index =
          log.Append(batch, SyntheticEvent(i, options, start));
      if (!index.ok()) return Fail("append", index.status());
    }
    const absl::Time group_staged = absl::Now();
    if (absl::Status written = store.Commit(batch); !written.ok()) {
      return Fail("commit", written);
    }
    log.Committed();
    appending += group_staged - group_began;
    committing += absl::Now() - group_staged;
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - began);
  std::printf(
      "append: %llu events in batches of %llu over %llu cases, %s: %.2f s, "
      "%.0f events/s (staging %.2f s, synced commits %.2f s)\n",
      static_cast<unsigned long long>(options.events),
      static_cast<unsigned long long>(options.batch),
      static_cast<unsigned long long>(options.cases),
      std::string(HashAlgorithmName(options.hash)).c_str(), seconds,
      static_cast<double>(options.events) / seconds,
      absl::ToDoubleSeconds(appending), absl::ToDoubleSeconds(committing));
  std::printf("peak RSS after appends: %ld MiB\n", PeakRssMiB());

  // Case histories with proofs, timed; verified afterwards.
  const uint64_t size = log.size();
  absl::StatusOr<std::string> root = log.Root(size);
  if (!root.ok()) return Fail("root", root.status());
  std::mt19937_64 random(20240601);
  std::vector<double> millis;
  uint64_t entries = 0;
  for (uint64_t q = 0; q < options.queries; ++q) {
    const uint64_t pick = random() % std::min(options.cases, options.events);
    const std::string case_id = Cat("CL-2024-", 1'000'000 + pick);
    struct Entry {
      uint64_t index;
      std::string bytes;
      std::vector<std::string> path;
    };
    std::vector<Entry> answer;

    server::AuditFilter filter;
    filter.case_id = case_id;
    const absl::Time asked = absl::Now();
    absl::StatusOr<std::vector<uint64_t>> found =
        log.Find(filter, std::nullopt, size, 1000);
    if (!found.ok()) return Fail("find", found.status());
    for (uint64_t index : *found) {
      absl::StatusOr<std::string> bytes = log.EventBytes(index);
      if (!bytes.ok()) return Fail("event bytes", bytes.status());
      absl::StatusOr<std::vector<std::string>> path =
          log.InclusionPath(index, size);
      if (!path.ok()) return Fail("inclusion path", path.status());
      answer.push_back({index, *std::move(bytes), *std::move(path)});
    }
    millis.push_back(absl::ToDoubleMilliseconds(absl::Now() - asked));

    for (const Entry& entry : answer) {
      absl::StatusOr<std::string> leaf = LeafHash(options.hash, entry.bytes);
      if (!leaf.ok()) return Fail("leaf hash", leaf.status());
      if (absl::Status ok = VerifyInclusion(options.hash, entry.index, size,
                                            *leaf, entry.path, *root);
          !ok.ok()) {
        return Fail("verify", ok);
      }
    }
    entries += answer.size();
  }
  std::printf(
      "case history with proofs: %llu queries, %.1f events each, p50 %.3f ms, "
      "p99 %.3f ms, max %.3f ms\n",
      static_cast<unsigned long long>(options.queries),
      options.queries
          ? static_cast<double>(entries) / static_cast<double>(options.queries)
          : 0.0,
      Percentile(millis, 0.50), Percentile(millis, 0.99),
      Percentile(millis, 1.0));
  std::printf("peak RSS at the end: %ld MiB\n", PeakRssMiB());
  return 0;
}

}  // namespace
}  // namespace caselink

int main(int argc, char** argv) {
  caselink::BenchOptions options;
  if (!caselink::ParseOptions(argc, argv, &options)) {
    std::fprintf(stderr,
                 "usage: audit_bench [--events=N] [--cases=N] [--batch=N] "
                 "[--queries=N] [--hash=sha256|sm3] [--dir=PARENT]\n");
    return 2;
  }
  std::string pattern =
      (std::filesystem::path(options.parent) / "audit_bench.XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror("audit_bench: mkdtemp");
    return 1;
  }
  const int result = caselink::Run(options, pattern + "/db");
  std::error_code ignored;
  std::filesystem::remove_all(pattern, ignored);
  return result;
}
