// A load test of delivery between two real caselinkd nodes on loopback:
// Tong'an (350212) sends to Xiamen (350200) over mutual TLS, with durable
// storage as a node configures it by default (synced write-ahead log),
// batch signatures and signed receipts.
//
// The default run submits N messages from Tong'an's operator client with W
// SubmitMessage calls in flight, optionally paced to R per second, waits
// until Tong'an has verified N receipts, and then reads every sent record
// back. A message's latency is the time Tong'an verified its receipt (the
// record's updated_at, node clock) minus the time the client started its
// SubmitMessage call; both clocks are this machine's wall clock.
//
// Beside the default run a separate thread appends 4 KiB to a file of its
// own on the nodes' disk and syncs it, every 10 ms unless --disk-probe-ms
// says otherwise, timing each sync: what any writer there would have seen. The
// run reports those times, and the spells in which messages were slow, so that
// a latency tail can be set against a stall of the disk itself.
//
// --queued-mode stops Xiamen first, submits N messages (a million unless
// told otherwise) into Tong'an's outbox, reports what that costs Tong'an in
// memory and disk, then starts Xiamen again and times the drain.
//
// Every wait is bounded; the program stops by itself and exits non-zero
// with a reason when a phase fails or stalls. The last line of output is a
// JSON summary for scripts.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "caselink/v1/operator.grpc.pb.h"
#include "client/node_client.h"
#include "core/grpc_status.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "tests/testing/network.h"

namespace caselink::bench {
namespace {

using testing::TestNetwork;

constexpr char kTongan[] = "350212000000";
constexpr char kXiamen[] = "350200000000";

constexpr int64_t kDefaultMessages = 100000;
constexpr int64_t kDefaultQueuedMessages = 1000000;
constexpr absl::Duration kCallDeadline = absl::Seconds(60);
constexpr absl::Duration kPollInterval = absl::Milliseconds(100);
constexpr absl::Duration kProgressInterval = absl::Seconds(5);
// How often a closed-loop submitter reads the sender's receipt count.
constexpr absl::Duration kUndeliveredPoll = absl::Milliseconds(2);
constexpr uint32_t kListPageSize = 1000;

// While the receiver is down in queued mode the sender's link backs off;
// a short cap lets the drain start soon after the receiver is back. This
// is delivery tuning only: durability stays as configured by default.
constexpr char kQueuedModeRetry[] =
    "delivery:\n  retry_initial_ms: 100\n  retry_max_ms: 1000\n";

// Set by SIGINT or SIGTERM, so that every loop ends and the nodes are
// stopped by the network's destructor instead of being left behind.
std::atomic<bool> interrupted{false};

void OnSignal(int /*signal*/) { interrupted.store(true); }

absl::Status CheckInterrupted() {
  if (interrupted.load()) return absl::CancelledError("interrupted");
  return absl::OkStatus();
}

struct BenchOptions {
  int64_t messages = 0;  // 0: the mode's default.
  size_t bytes = 1024;
  int window = 256;
  // Messages per call: 1 uses SubmitMessage, more use SubmitMessages.
  int batch = 1;
  // With U > 0, a closed loop: no call starts while U messages or more are
  // submitted without a verified receipt, so that no backlog builds up in
  // the sender's outbox and the rate is what delivery sustains.
  int64_t max_undelivered = 0;
  double rate = 0;  // Submissions per second; 0 means as fast as possible.
  bool queued_mode = false;
  bool drain = true;
  std::string sign_alg = "ecdsa-p256";
  // Bound on each phase (submitting, waiting for receipts, draining).
  absl::Duration phase_timeout = absl::Minutes(15);
  // A wait for receipts fails when the count stops moving this long.
  absl::Duration stall_timeout = absl::Seconds(60);
  // How often the disk probe syncs; zero turns it off.
  absl::Duration disk_probe_interval = absl::Milliseconds(10);
};

constexpr char kUsage[] =
    "usage: delivery_bench [--messages N] [--bytes S] [--window W]\n"
    "                      [--batch B] [--max-undelivered U] [--rate R]\n"
    "                      [--queued-mode] [--no-drain]\n"
    "                      [--sign-alg ecdsa-p256|ed25519|sm2]\n"
    "                      [--timeout-s T] [--stall-timeout-s T]\n"
    "                      [--disk-probe-ms P]\n";

template <typename T>
absl::StatusOr<T> ParseNumber(std::string_view flag, std::string_view text) {
  T value{};
  const char* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || ptr != end || value < T{0}) {
    return absl::InvalidArgumentError(
        Cat(flag, ": \"", text, "\" is not a non-negative number"));
  }
  return value;
}

// Applies one flag that takes a value.
absl::Status ApplyValueFlag(std::string_view flag, std::string_view value,
                            BenchOptions& options) {
  if (flag == "--messages") {
    CASELINK_ASSIGN_OR_RETURN(options.messages,
                              ParseNumber<int64_t>(flag, value));
  } else if (flag == "--bytes") {
    CASELINK_ASSIGN_OR_RETURN(options.bytes, ParseNumber<size_t>(flag, value));
  } else if (flag == "--window") {
    CASELINK_ASSIGN_OR_RETURN(options.window, ParseNumber<int>(flag, value));
    if (options.window == 0) options.window = 1;
  } else if (flag == "--batch") {
    CASELINK_ASSIGN_OR_RETURN(options.batch, ParseNumber<int>(flag, value));
    if (options.batch == 0) options.batch = 1;
    if (options.batch > 1000) {
      return absl::InvalidArgumentError("--batch: at most 1000");
    }
  } else if (flag == "--max-undelivered") {
    CASELINK_ASSIGN_OR_RETURN(options.max_undelivered,
                              ParseNumber<int64_t>(flag, value));
  } else if (flag == "--rate") {
    CASELINK_ASSIGN_OR_RETURN(options.rate, ParseNumber<double>(flag, value));
  } else if (flag == "--sign-alg") {
    if (value != "ecdsa-p256" && value != "ed25519" && value != "sm2") {
      return absl::InvalidArgumentError(Cat("--sign-alg: unknown ", value));
    }
    options.sign_alg = std::string(value);
  } else if (flag == "--timeout-s") {
    CASELINK_ASSIGN_OR_RETURN(int64_t seconds,
                              ParseNumber<int64_t>(flag, value));
    options.phase_timeout = absl::Seconds(seconds);
  } else if (flag == "--stall-timeout-s") {
    CASELINK_ASSIGN_OR_RETURN(int64_t seconds,
                              ParseNumber<int64_t>(flag, value));
    options.stall_timeout = absl::Seconds(seconds);
  } else if (flag == "--disk-probe-ms") {
    CASELINK_ASSIGN_OR_RETURN(int64_t ms, ParseNumber<int64_t>(flag, value));
    options.disk_probe_interval = absl::Milliseconds(ms);
  } else {
    return absl::InvalidArgumentError(Cat("unknown flag ", flag));
  }
  return absl::OkStatus();
}

absl::StatusOr<BenchOptions> ParseFlags(int argc, char** argv) {
  BenchOptions options;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view flag = args[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (flag == "--queued-mode") {
      options.queued_mode = true;
      continue;
    }
    if (flag == "--no-drain") {
      options.drain = false;
      continue;
    }
    std::string_view value;
    if (size_t eq = flag.find('='); eq != std::string_view::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(Cat(flag, " needs a value"));
    }
    CASELINK_RETURN_IF_ERROR(ApplyValueFlag(flag, value, options));
  }
  if (options.messages == 0) {
    options.messages =
        options.queued_mode ? kDefaultQueuedMessages : kDefaultMessages;
  }
  if (options.max_undelivered > 0 && options.batch > options.max_undelivered) {
    return absl::InvalidArgumentError(
        Cat("--batch ", options.batch, " is more than --max-undelivered ",
            options.max_undelivered, ": no call would fit"));
  }
  if (options.batch > options.window) {
    return absl::InvalidArgumentError(
        Cat("--batch ", options.batch, " is more than --window ",
            options.window, ": no call would fit"));
  }
  return options;
}

// Figures of a sample, in the sample's unit.
struct Percentiles {
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double max = 0;
};

// Nearest-rank percentiles.
Percentiles Summarize(std::vector<double> values) {
  Percentiles out;
  if (values.empty()) return out;
  std::sort(values.begin(), values.end());
  auto rank = [&](double p) {
    double n = std::ceil(p * static_cast<double>(values.size()));
    size_t index = n < 1 ? 0 : static_cast<size_t>(n) - 1;
    return values[std::min(index, values.size() - 1)];
  };
  out.p50 = rank(0.50);
  out.p90 = rank(0.90);
  out.p99 = rank(0.99);
  out.max = values.back();
  return out;
}

// Memory and CPU time of one process from /proc; -1 when unreadable.
struct ProcessUsage {
  int64_t peak_kib = -1;     // VmHWM
  int64_t current_kib = -1;  // VmRSS
  double cpu_seconds = -1;   // User and system time since it started.
};

// Reads utime and stime from /proc/<pid>/stat; the fields after the
// command name, which is in parentheses and may hold spaces.
double ReadCpuSeconds(pid_t pid) {
  std::ifstream stat(Cat("/proc/", static_cast<int64_t>(pid), "/stat"));
  std::string text((std::istreambuf_iterator<char>(stat)),
                   std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(text.substr(paren + 1));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::strtod(field.c_str(), nullptr);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

ProcessUsage ReadProcessUsage(pid_t pid) {
  ProcessUsage usage;
  if (pid <= 0) return usage;
  std::ifstream status(Cat("/proc/", static_cast<int64_t>(pid), "/status"));
  std::string line;
  while (std::getline(status, line)) {
    int64_t* field = nullptr;
    if (line.starts_with("VmHWM:")) field = &usage.peak_kib;
    if (line.starts_with("VmRSS:")) field = &usage.current_kib;
    if (field == nullptr) continue;
    size_t digits = line.find_first_of("0123456789");
    if (digits == std::string::npos) continue;
    std::from_chars(line.data() + digits, line.data() + line.size(), *field);
  }
  usage.cpu_seconds = ReadCpuSeconds(pid);
  return usage;
}

// CPU time this benchmark process (the operator client) has used.
double OwnCpuSeconds() {
  struct rusage own;
  if (getrusage(RUSAGE_SELF, &own) != 0) return -1;
  auto seconds = [](const struct timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(own.ru_utime) + seconds(own.ru_stime);
}

double Mib(int64_t kib) { return static_cast<double>(kib) / 1024.0; }

// Bytes the files under a directory hold, and the blocks they take.
struct DiskUsage {
  uint64_t apparent_bytes = 0;
  uint64_t allocated_bytes = 0;
};

DiskUsage MeasureDisk(const std::string& dir) {
  DiskUsage usage;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    struct stat info;
    if (lstat(it->path().c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
      continue;
    }
    usage.apparent_bytes += static_cast<uint64_t>(info.st_size);
    usage.allocated_bytes += static_cast<uint64_t>(info.st_blocks) * 512;
  }
  return usage;
}

// Random bytes that payloads are cut from, so that neither gRPC nor
// RocksDB's block compression sees unrealistically repetitive data.
// The disk probe described at the top. Sampling starts with Start() and
// ends with Stop(); the file is restarted from empty every 64 MiB.
class DiskProbe {
 public:
  struct Sample {
    absl::Time started;
    double sync_ms;
  };

  DiskProbe(std::string path, absl::Duration interval)
      : path_(std::move(path)), interval_(interval) {}
  DiskProbe(const DiskProbe&) = delete;
  DiskProbe& operator=(const DiskProbe&) = delete;
  ~DiskProbe() { Join(); }

  absl::Status Start() {
    fd_ = open(path_.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      return absl::InternalError(
          Cat("disk probe: cannot create ", path_, ": ", strerror(errno)));
    }
    thread_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

  // Returns the samples; a failed write or sync ends them early and is
  // reported as the error.
  absl::StatusOr<std::vector<Sample>> Stop() {
    Join();
    if (!error_.ok()) return error_;
    return std::move(samples_);
  }

 private:
  void Join() {
    if (thread_.joinable()) {
      stop_.store(true);
      thread_.join();
    }
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

  static constexpr off_t kRestartBytes = off_t{64} << 20;

  void Loop() {
    const std::string block(4096, 'p');
    off_t written = 0;
    absl::Time next = absl::Now();
    while (!stop_.load()) {
      if (written >= kRestartBytes) {
        // Truncating is metadata work of its own: not a sample.
        if (ftruncate(fd_, 0) != 0 || lseek(fd_, 0, SEEK_SET) != 0) {
          error_ = absl::InternalError(Cat("disk probe: cannot truncate ",
                                           path_, ": ", strerror(errno)));
          return;
        }
        written = 0;
      }
      absl::Time started = absl::Now();
      if (write(fd_, block.data(), block.size()) !=
              static_cast<ssize_t>(block.size()) ||
          fdatasync(fd_) != 0) {
        error_ = absl::InternalError(
            Cat("disk probe: cannot write ", path_, ": ", strerror(errno)));
        return;
      }
      samples_.push_back(
          {started, absl::ToDoubleMilliseconds(absl::Now() - started)});
      written += static_cast<off_t>(block.size());
      next = std::max(next + interval_, absl::Now());
      absl::SleepFor(next - absl::Now());
    }
  }

  std::string path_;
  absl::Duration interval_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<Sample> samples_;
  absl::Status error_;
};

class PayloadSource {
 public:
  explicit PayloadSource(size_t payload_bytes)
      : payload_bytes_(payload_bytes),
        pool_(std::max<size_t>(size_t{64} << 20, 2 * payload_bytes), '\0') {
    std::mt19937_64 random(20240611);
    for (size_t i = 0; i + 8 <= pool_.size(); i += 8) {
      uint64_t word = random();
      for (size_t b = 0; b < 8; ++b) {
        pool_[i + b] = static_cast<char>((word >> (8 * b)) & 0xff);
      }
    }
  }

  // The payload of submission `index`: a slice of the pool.
  std::string_view Payload(int64_t index) const {
    size_t slots = pool_.size() - payload_bytes_ + 1;
    size_t offset = (static_cast<size_t>(index) * payload_bytes_) % slots;
    return std::string_view(pool_).substr(offset, payload_bytes_);
  }

 private:
  size_t payload_bytes_;
  std::string pool_;
};

// What the client saw of one submission.
struct SubmitRecord {
  std::string message_id;
  absl::Time started;
  absl::Time answered;
};

struct SubmitRun {
  std::vector<SubmitRecord> records;  // By submission index.
  absl::Time first_start;
  absl::Time last_answer;
};

// Submits with up to `window` messages in flight on one completion queue,
// driven from the calling thread: one SubmitMessage call each, or with
// --batch B, SubmitMessages calls of B messages. When paced, submission i
// starts no earlier than t0 + i / rate; a full window delays it further,
// and its recorded start is when its call actually started.
class AsyncSubmitter {
 public:
  // How many receipts the sender has verified so far, for
  // --max-undelivered; it may be null without that option.
  using DeliveredCount = std::function<absl::StatusOr<uint64_t>()>;

  AsyncSubmitter(v1::OperatorService::Stub* stub, const BenchOptions& options,
                 DeliveredCount delivered = nullptr)
      : stub_(stub),
        options_(options),
        payloads_(options.bytes),
        delivered_count_(std::move(delivered)) {
    request_.set_recipient(kXiamen);
    request_.set_kind(v1::MESSAGE_KIND_REFERRAL);
    request_.set_priority(v1::PRIORITY_ORDINARY);
  }

  // Fails with the first call that failed, once the calls still in flight
  // have ended; or DeadlineExceeded after the phase timeout.
  absl::StatusOr<SubmitRun> Run(int64_t count);

 private:
  struct Call {
    // The submissions [index, index + count).
    int64_t index = 0;
    int64_t count = 1;
    grpc::ClientContext context;
    v1::SubmitMessageResponse response;
    v1::SubmitMessagesResponse batch_response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::SubmitMessageResponse>>
        reader;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::SubmitMessagesResponse>>
        batch_reader;
  };

  absl::Time Due(int64_t index) const {
    if (options_.rate <= 0) return absl::InfinitePast();
    return t0_ + absl::Seconds(static_cast<double>(index) / options_.rate);
  }
  // Starts the call of submissions [index, index + count).
  void StartCall(int64_t index, int64_t count, SubmitRun& run);
  // Records a finished call; false if it failed.
  bool TakeCompletion(std::unique_ptr<Call> call, SubmitRun& run);
  void ReportProgress(int64_t count);

  v1::OperatorService::Stub* const stub_;
  const BenchOptions& options_;
  const PayloadSource payloads_;
  const DeliveredCount delivered_count_;
  // The last count read, and when to read it again while it holds back.
  uint64_t delivered_ = 0;
  absl::Time next_poll_;
  v1::SubmitMessageRequest request_;
  grpc::CompletionQueue queue_;
  absl::Time t0_;
  int64_t in_flight_ = 0;
  int64_t answered_ = 0;
  absl::Time next_report_;
  absl::Status failure_;
};

void AsyncSubmitter::StartCall(int64_t index, int64_t count, SubmitRun& run) {
  auto call = std::make_unique<Call>();
  call->index = index;
  call->count = count;
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + kCallDeadline));
  auto fill = [this](int64_t i, v1::SubmitMessageRequest& request) {
    request = request_;
    request.set_case_id(Cat("bench-", i));
    std::string_view payload = payloads_.Payload(i);
    request.set_payload(payload.data(), payload.size());
  };
  // Requests are serialized when the call is prepared, so they may be
  // reused at once.
  if (options_.batch > 1) {
    v1::SubmitMessagesRequest request;
    for (int64_t i = index; i < index + count; ++i) {
      fill(i, *request.add_messages());
    }
    call->batch_reader =
        stub_->PrepareAsyncSubmitMessages(&call->context, request, &queue_);
  } else {
    v1::SubmitMessageRequest request;
    fill(index, request);
    call->reader =
        stub_->PrepareAsyncSubmitMessage(&call->context, request, &queue_);
  }
  const absl::Time started = absl::Now();
  for (int64_t i = index; i < index + count; ++i) {
    run.records[static_cast<size_t>(i)].started = started;
  }
  Call* tag = call.release();
  if (tag->batch_reader != nullptr) {
    tag->batch_reader->StartCall();
    tag->batch_reader->Finish(&tag->batch_response, &tag->status, tag);
  } else {
    tag->reader->StartCall();
    tag->reader->Finish(&tag->response, &tag->status, tag);
  }
  in_flight_ += count;
}

bool AsyncSubmitter::TakeCompletion(std::unique_ptr<Call> call,
                                    SubmitRun& run) {
  in_flight_ -= call->count;
  auto fail = [this](int64_t index, const absl::Status& status) {
    if (failure_.ok()) {
      failure_ = absl::Status(
          status.code(),
          Cat("submission #", index, " failed: ", View(status.message())));
    }
    return false;
  };
  if (!call->status.ok()) {
    return fail(call->index, FromGrpcStatus(call->status));
  }
  if (call->batch_reader != nullptr &&
      call->batch_response.results_size() != call->count) {
    return fail(call->index, absl::InternalError(Cat(
                                 call->batch_response.results_size(),
                                 " results for ", call->count, " messages")));
  }
  const absl::Time answered = absl::Now();
  for (int64_t k = 0; k < call->count; ++k) {
    SubmitRecord& record = run.records[static_cast<size_t>(call->index + k)];
    if (call->batch_reader != nullptr) {
      v1::SubmitResult& result =
          *call->batch_response.mutable_results(static_cast<int>(k));
      if (result.code() != 0) {
        return fail(call->index + k,
                    absl::Status(static_cast<absl::StatusCode>(result.code()),
                                 result.error()));
      }
      record.message_id = std::move(*result.mutable_message_id());
    } else {
      record.message_id = std::move(*call->response.mutable_message_id());
    }
    record.answered = answered;
  }
  run.last_answer = std::max(run.last_answer, answered);
  answered_ += call->count;
  return true;
}

void AsyncSubmitter::ReportProgress(int64_t count) {
  absl::Time now = absl::Now();
  if (now < next_report_) return;
  next_report_ = now + kProgressInterval;
  std::printf("  submitted %lld/%lld (%lld in flight)\n",
              static_cast<long long>(answered_), static_cast<long long>(count),
              static_cast<long long>(in_flight_));
  std::fflush(stdout);
}

absl::StatusOr<SubmitRun> AsyncSubmitter::Run(int64_t count) {
  SubmitRun run;
  run.records.resize(static_cast<size_t>(count));
  t0_ = absl::Now();
  next_report_ = t0_ + kProgressInterval;
  const absl::Time give_up = t0_ + options_.phase_timeout;
  int64_t next = 0;
  while (in_flight_ > 0 || (failure_.ok() && next < count)) {
    // Start what the window and the schedule allow.
    // A call waits until the window has room for all of its messages.
    auto next_size = [&] {
      return std::min<int64_t>(options_.batch, count - next);
    };
    auto room = [&] {
      if (in_flight_ + next_size() > options_.window) return false;
      if (options_.max_undelivered <= 0) return true;
      const auto undelivered = next - static_cast<int64_t>(delivered_);
      if (undelivered + next_size() <= options_.max_undelivered) return true;
      // Held back: read the count again, a few times a millisecond at most.
      if (absl::Now() >= next_poll_) {
        next_poll_ = absl::Now() + kUndeliveredPoll;
        absl::StatusOr<uint64_t> read = delivered_count_();
        if (!read.ok()) {
          if (failure_.ok()) failure_ = read.status();
          return false;
        }
        delivered_ = *read;
      }
      return next - static_cast<int64_t>(delivered_) + next_size() <=
             options_.max_undelivered;
    };
    while (failure_.ok() && next < count && room() &&
           absl::Now() >= Due(next)) {
      const int64_t n = next_size();
      StartCall(next, n, run);
      next += n;
    }
    // Never earlier than now: an infinitely past deadline is taken by gRPC
    // as no deadline at all.
    const absl::Time now = absl::Now();
    absl::Time wake = now + absl::Seconds(1);
    if (failure_.ok() && next < count) {
      if (room()) {
        wake = std::max(now, std::min(wake, Due(next)));
      } else if (options_.max_undelivered > 0) {
        wake = std::max(now, std::min(wake, next_poll_));
      }
    }
    void* tag = nullptr;
    bool ok = false;
    auto event = queue_.AsyncNext(&tag, &ok, absl::ToChronoTime(wake));
    if (event == grpc::CompletionQueue::GOT_EVENT) {
      TakeCompletion(std::unique_ptr<Call>(static_cast<Call*>(tag)), run);
    }
    if (failure_.ok()) failure_ = CheckInterrupted();
    if (failure_.ok() && absl::Now() > give_up) {
      failure_ = absl::DeadlineExceededError(
          Cat("submitting took longer than ",
              absl::FormatDuration(options_.phase_timeout)));
    }
    ReportProgress(count);
  }
  queue_.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (queue_.Next(&tag, &ok)) {
  }
  if (!failure_.ok()) return failure_;
  run.first_start = run.records.empty() ? t0_ : run.records.front().started;
  return run;
}

// One poll of the sender: receipts verified so far and its link to Xiamen.
struct SenderProgress {
  uint64_t delivered = 0;
  uint64_t rejected = 0;
  uint64_t queued = 0;
  std::string link;
};

absl::StatusOr<SenderProgress> PollSender(client::NodeClient& sender) {
  CASELINK_ASSIGN_OR_RETURN(v1::GetStatusResponse status,
                            sender.GetStatus(absl::Seconds(10)));
  SenderProgress progress;
  auto counter = [&](const std::string& name) -> uint64_t {
    auto it = status.counters().find(name);
    return it == status.counters().end() ? 0 : it->second;
  };
  progress.delivered = counter("delivered");
  progress.rejected = counter("rejected_by_next_hop");
  if (status.peers_size() > 0) {
    const v1::PeerStatus& peer = status.peers(0);
    progress.queued = peer.queued();
    progress.link = v1::LinkState_Name(peer.state());
    if (!peer.last_error().empty()) {
      progress.link = Cat(progress.link, " (", peer.last_error(), ")");
    }
  }
  return progress;
}

// Polls the sender every 100 ms until it has verified `target` receipts.
// Returns when the count was first seen at the target. Fails when the
// next hop rejected something, when the count stops moving for the stall
// timeout, or after the phase timeout.
absl::StatusOr<absl::Time> WaitDelivered(client::NodeClient& sender,
                                         uint64_t target,
                                         const BenchOptions& options) {
  const absl::Time start = absl::Now();
  absl::Time last_move = start;
  absl::Time next_report = start + kProgressInterval;
  uint64_t last_count = 0;
  while (true) {
    CASELINK_RETURN_IF_ERROR(CheckInterrupted());
    CASELINK_ASSIGN_OR_RETURN(SenderProgress progress, PollSender(sender));
    const absl::Time now = absl::Now();
    if (progress.delivered >= target) return now;
    if (progress.rejected > 0) {
      return absl::FailedPreconditionError(
          Cat("the next hop rejected ", progress.rejected, " messages"));
    }
    if (progress.delivered != last_count) {
      last_count = progress.delivered;
      last_move = now;
    }
    std::string where =
        Cat("delivered ", progress.delivered, "/", target, ", queued ",
            progress.queued, ", link ", progress.link);
    if (now - last_move > options.stall_timeout) {
      return absl::DeadlineExceededError(
          Cat("no receipt for ", absl::FormatDuration(options.stall_timeout),
              ": ", where));
    }
    if (now - start > options.phase_timeout) {
      return absl::DeadlineExceededError(
          Cat("receipts took longer than ",
              absl::FormatDuration(options.phase_timeout), ": ", where));
    }
    if (now >= next_report) {
      next_report = now + kProgressInterval;
      std::printf("  %s\n", where.c_str());
      std::fflush(stdout);
    }
    absl::SleepFor(kPollInterval);
  }
}

// Per-message delivery latencies, from the sender's sent records.
struct DeliveryFigures {
  std::vector<double> latency_ms;
  std::vector<absl::Time> started;  // Of the same messages, in order.
  absl::Time last_delivery = absl::InfinitePast();
};

absl::StatusOr<DeliveryFigures> CollectDeliveries(client::NodeClient& sender,
                                                  const SubmitRun& run) {
  absl::flat_hash_map<std::string, absl::Time> started;
  started.reserve(run.records.size());
  for (const SubmitRecord& record : run.records) {
    started.emplace(record.message_id, record.started);
  }
  DeliveryFigures figures;
  figures.latency_ms.reserve(run.records.size());
  size_t not_delivered = 0;
  std::string token;
  do {
    CASELINK_RETURN_IF_ERROR(CheckInterrupted());
    CASELINK_ASSIGN_OR_RETURN(
        v1::ListSentResponse page,
        sender.ListSent(kListPageSize, token, absl::Seconds(60)));
    for (const v1::SentMessage& message : page.messages()) {
      auto it = started.find(message.message_id());
      if (it == started.end()) continue;
      if (message.state() != v1::DELIVERY_STATE_DELIVERED) {
        ++not_delivered;
        continue;
      }
      absl::Time delivered = absl::FromUnixMicros(
          google::protobuf::util::TimeUtil::TimestampToMicroseconds(
              message.updated_at()));
      figures.last_delivery = std::max(figures.last_delivery, delivered);
      figures.latency_ms.push_back(
          absl::ToDoubleMilliseconds(delivered - it->second));
      figures.started.push_back(it->second);
    }
    token = page.next_page_token();
  } while (!token.empty());
  if (not_delivered > 0 || figures.latency_ms.size() != started.size()) {
    return absl::InternalError(
        Cat("of ", started.size(), " submitted messages, ",
            figures.latency_ms.size(), " are listed as delivered and ",
            not_delivered, " are listed in another state"));
  }
  return figures;
}

// The final line: one flat JSON object.
class JsonSummary {
 public:
  void Add(std::string_view key, double value, int decimals) {
    char text[64];
    std::snprintf(text, sizeof(text), "%.*f", decimals, value);
    Field(key, text);
  }
  void Add(std::string_view key, int64_t value) { Field(key, Cat(value)); }
  void Add(std::string_view key, std::string_view value) {
    Field(key, Cat("\"", value, "\""));
  }
  std::string Text() const { return Cat("{", fields_, "}"); }

 private:
  void Field(std::string_view key, std::string_view value) {
    if (!fields_.empty()) fields_ += ",";
    fields_ += Cat("\"", key, "\":", value);
  }
  std::string fields_;
};

void AddRunSettings(const BenchOptions& options, JsonSummary& json) {
  json.Add("mode", options.queued_mode ? "queued" : "delivery");
  json.Add("messages", options.messages);
  json.Add("bytes", static_cast<int64_t>(options.bytes));
  json.Add("window", static_cast<int64_t>(options.window));
  json.Add("batch", static_cast<int64_t>(options.batch));
  json.Add("max_undelivered", options.max_undelivered);
  json.Add("rate", options.rate, 1);
  json.Add("sign_alg", options.sign_alg);
}

void PrintUsage(const char* who, const ProcessUsage& usage) {
  std::printf(
      "%s caselinkd: peak RSS (VmHWM) %.1f MiB, RSS now %.1f MiB, CPU "
      "%.1f s\n",
      who, Mib(usage.peak_kib), Mib(usage.current_kib), usage.cpu_seconds);
}

absl::StatusOr<std::unique_ptr<TestNetwork>> StartNetwork(
    const BenchOptions& options) {
  std::string extra = options.queued_mode ? kQueuedModeRetry : "";
  testing::NetworkOptions network_options;
  network_options.sign_alg = options.sign_alg;
  CASELINK_ASSIGN_OR_RETURN(
      std::unique_ptr<TestNetwork> network,
      TestNetwork::Create(
          {{kTongan, "Tong'an County Justice Bureau", {kXiamen}, extra},
           {kXiamen, "Xiamen City Justice Bureau", {kTongan}, extra}},
          network_options));
  CASELINK_RETURN_IF_ERROR(network->StartAll());
  if (!network->WaitForPeersConnected(kTongan) ||
      !network->WaitForPeersConnected(kXiamen)) {
    return absl::UnavailableError("the two nodes did not connect in 20 s");
  }
  std::printf("nodes up under %s: sender %s pid %d, receiver %s pid %d\n",
              network->root().c_str(), kTongan,
              static_cast<int>(network->Process(kTongan).pid()), kXiamen,
              static_cast<int>(network->Process(kXiamen).pid()));
  std::fflush(stdout);
  return network;
}

void PrintSubmitFigures(const SubmitRun& run, int64_t count,
                        JsonSummary& json) {
  std::vector<double> reply_ms;
  reply_ms.reserve(run.records.size());
  for (const SubmitRecord& record : run.records) {
    reply_ms.push_back(
        absl::ToDoubleMilliseconds(record.answered - record.started));
  }
  Percentiles reply = Summarize(std::move(reply_ms));
  double seconds = absl::ToDoubleSeconds(run.last_answer - run.first_start);
  double rate = static_cast<double>(count) / seconds;
  std::printf(
      "submit: %lld replies in %.2f s = %.0f msg/s; reply latency p50 "
      "%.2f ms, p99 %.2f ms, max %.2f ms\n",
      static_cast<long long>(count), seconds, rate, reply.p50, reply.p99,
      reply.max);
  json.Add("submit_throughput_per_s", rate, 1);
  json.Add("submit_p50_ms", reply.p50, 3);
  json.Add("submit_p99_ms", reply.p99, 3);
}

// CPU time all processes on this machine have used since boot, from the
// first line of /proc/stat (user, nice, system, irq and softirq).
double MachineBusySeconds() {
  std::ifstream stat("/proc/stat");
  std::string label;
  double ticks[7] = {};
  stat >> label;
  for (double& field : ticks) stat >> field;
  if (!stat || label != "cpu") return -1;
  double busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6];
  return busy / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Both nodes' memory and CPU time, the client's CPU time and the whole
// machine's, at one moment.
struct RunUsage {
  ProcessUsage sender;
  ProcessUsage receiver;
  double client_cpu_seconds = -1;
  double machine_busy_seconds = -1;
  absl::Time taken;
};

RunUsage ReadRunUsage(TestNetwork& network) {
  return RunUsage{ReadProcessUsage(network.Process(kTongan).pid()),
                  ReadProcessUsage(network.Process(kXiamen).pid()),
                  OwnCpuSeconds(), MachineBusySeconds(), absl::Now()};
}

// CPU seconds between two readings; a process that was not running at
// the first reading counts from zero.
double CpuBetween(double before, double after) {
  return after - std::max(before, 0.0);
}

// Reports memory at `after` and the CPU time used between the readings,
// per message and against what else ran on the machine meanwhile.
void ReportUsage(const RunUsage& before, const RunUsage& after,
                 int64_t messages, JsonSummary& json) {
  PrintUsage("sender", after.sender);
  PrintUsage("receiver", after.receiver);
  const double sender =
      CpuBetween(before.sender.cpu_seconds, after.sender.cpu_seconds);
  const double receiver =
      CpuBetween(before.receiver.cpu_seconds, after.receiver.cpu_seconds);
  const double client =
      CpuBetween(before.client_cpu_seconds, after.client_cpu_seconds);
  const double n = static_cast<double>(messages);
  std::printf(
      "CPU per message: sender %.0f us, receiver %.0f us, client %.0f us\n",
      sender * 1e6 / n, receiver * 1e6 / n, client * 1e6 / n);

  const double wall = absl::ToDoubleSeconds(after.taken - before.taken);
  const double busy =
      CpuBetween(before.machine_busy_seconds, after.machine_busy_seconds);
  const double ours = (sender + receiver + client) / wall;
  const double other = std::max(busy / wall - ours, 0.0);
  std::printf(
      "cores busy: %.2f of %ld; nodes and client %.2f, other processes "
      "%.2f\n",
      busy / wall, sysconf(_SC_NPROCESSORS_ONLN), ours, other);
  if (other > 0.1) {
    std::printf(
        "WARNING: other processes used %.2f cores meanwhile; the "
        "figures of this run are disturbed\n",
        other);
  }
  json.Add("sender_peak_rss_mib", Mib(after.sender.peak_kib), 1);
  json.Add("receiver_peak_rss_mib", Mib(after.receiver.peak_kib), 1);
  json.Add("sender_rss_mib", Mib(after.sender.current_kib), 1);
  json.Add("receiver_rss_mib", Mib(after.receiver.current_kib), 1);
  json.Add("sender_cpu_us_per_msg", sender * 1e6 / n, 1);
  json.Add("receiver_cpu_us_per_msg", receiver * 1e6 / n, 1);
  json.Add("client_cpu_us_per_msg", client * 1e6 / n, 1);
  json.Add("other_load_cores", other, 2);
}

void ReportDeliveries(const DeliveryFigures& figures, const SubmitRun& run,
                      int64_t messages, JsonSummary& json) {
  double seconds =
      absl::ToDoubleSeconds(figures.last_delivery - run.first_start);
  double rate = static_cast<double>(messages) / seconds;
  Percentiles latency = Summarize(figures.latency_ms);
  std::printf(
      "delivery: %lld receipts verified in %.2f s = %.0f msg/s\n"
      "submit-to-receipt latency: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, "
      "max %.2f ms\n",
      static_cast<long long>(messages), seconds, rate, latency.p50, latency.p90,
      latency.p99, latency.max);
  json.Add("throughput_per_s", rate, 1);
  json.Add("p50_ms", latency.p50, 3);
  json.Add("p90_ms", latency.p90, 3);
  json.Add("p99_ms", latency.p99, 3);
  json.Add("max_ms", latency.max, 3);
}

// Messages slower than the latency target, and disk syncs slow enough to
// count next to it.
constexpr double kSlowMessageMs = 50;
constexpr double kSlowSyncMs = 30;
constexpr absl::Duration kSpell = absl::Milliseconds(250);
constexpr size_t kMaxListed = 8;

// Which spells of the run (by when a message was submitted) held messages
// slower than kSlowMessageMs, and how slow the worst of each was. An
// unpaced run builds a backlog from the start, so there only the count
// says anything.
void ReportSlowSpells(const DeliveryFigures& figures, absl::Time t0, bool list,
                      JsonSummary& json) {
  struct Spell {
    int64_t slow = 0;
    double worst_ms = 0;
  };
  std::map<int64_t, Spell> spells;
  int64_t slow = 0;
  for (size_t i = 0; i < figures.latency_ms.size(); ++i) {
    if (figures.latency_ms[i] <= kSlowMessageMs) continue;
    ++slow;
    Spell& spell = spells[(figures.started[i] - t0) / kSpell];
    ++spell.slow;
    spell.worst_ms = std::max(spell.worst_ms, figures.latency_ms[i]);
  }
  std::printf("messages over %.0f ms: %lld", kSlowMessageMs,
              static_cast<long long>(slow));
  if (list && !spells.empty()) {
    std::printf(", submitted at");
    size_t listed = 0;
    for (const auto& [index, spell] : spells) {
      if (listed++ == kMaxListed) {
        std::printf(", ...");
        break;
      }
      double from = absl::ToDoubleSeconds(index * kSpell);
      std::printf("%s %.2f-%.2f s: %lld, worst %.0f ms", listed == 1 ? "" : ";",
                  from, from + absl::ToDoubleSeconds(kSpell),
                  static_cast<long long>(spell.slow), spell.worst_ms);
    }
  }
  std::printf("\n");
  json.Add("slow_messages", static_cast<double>(slow), 0);
}

void ReportDisk(const std::vector<DiskProbe::Sample>& samples,
                absl::Duration interval, absl::Time t0, JsonSummary& json) {
  std::vector<double> sync_ms;
  sync_ms.reserve(samples.size());
  std::string slow_list;
  size_t slow = 0;
  for (const DiskProbe::Sample& sample : samples) {
    sync_ms.push_back(sample.sync_ms);
    if (sample.sync_ms < kSlowSyncMs) continue;
    if (++slow <= kMaxListed) {
      char text[64];
      std::snprintf(text, sizeof(text), "%s %.0f ms at %.2f s",
                    slow == 1 ? ":" : ",", sample.sync_ms,
                    absl::ToDoubleSeconds(sample.started - t0));
      slow_list += text;
    } else if (slow == kMaxListed + 1) {
      slow_list += ", ...";
    }
  }
  Percentiles disk = Summarize(std::move(sync_ms));
  std::printf(
      "disk, as a separate writer saw it (4 KiB appended and synced every "
      "%lld ms, %zu times): p50 %.2f ms, p99 %.2f ms, max %.2f ms; %zu "
      "syncs of %.0f ms or more%s\n",
      static_cast<long long>(absl::ToInt64Milliseconds(interval)),
      samples.size(), disk.p50, disk.p99, disk.max, slow, kSlowSyncMs,
      slow_list.c_str());
  json.Add("disk_sync_p50_ms", disk.p50, 3);
  json.Add("disk_sync_p99_ms", disk.p99, 3);
  json.Add("disk_sync_max_ms", disk.max, 3);
  json.Add("disk_slow_syncs", static_cast<double>(slow), 0);
}

// The default mode: submit, wait for every receipt, report latencies.
absl::Status RunDelivery(const BenchOptions& options, TestNetwork& network) {
  CASELINK_ASSIGN_OR_RETURN(std::unique_ptr<client::NodeClient> sender,
                            network.OperatorClient(kTongan));
  JsonSummary json;
  AddRunSettings(options, json);

  AsyncSubmitter submitter(
      sender->stub(), options, [&sender]() -> absl::StatusOr<uint64_t> {
        CASELINK_ASSIGN_OR_RETURN(SenderProgress progress, PollSender(*sender));
        return progress.delivered;
      });
  std::optional<DiskProbe> probe;
  if (options.disk_probe_interval > absl::ZeroDuration()) {
    probe.emplace(network.root() + "/disk-probe", options.disk_probe_interval);
    CASELINK_RETURN_IF_ERROR(probe->Start());
  }
  const RunUsage before = ReadRunUsage(network);
  CASELINK_ASSIGN_OR_RETURN(SubmitRun run, submitter.Run(options.messages));
  PrintSubmitFigures(run, options.messages, json);

  CASELINK_RETURN_IF_ERROR(
      WaitDelivered(*sender, static_cast<uint64_t>(options.messages), options)
          .status());
  // Usage before reading the records back, which costs the sender too.
  const RunUsage after = ReadRunUsage(network);
  std::vector<DiskProbe::Sample> disk_samples;
  if (probe.has_value()) {
    CASELINK_ASSIGN_OR_RETURN(disk_samples, probe->Stop());
  }
  CASELINK_ASSIGN_OR_RETURN(DeliveryFigures figures,
                            CollectDeliveries(*sender, run));
  ReportDeliveries(figures, run, options.messages, json);
  ReportSlowSpells(figures, run.first_start, options.rate > 0, json);
  if (probe.has_value()) {
    ReportDisk(disk_samples, options.disk_probe_interval, run.first_start,
               json);
  }
  ReportUsage(before, after, options.messages, json);
  std::printf("%s\n", json.Text().c_str());
  return absl::OkStatus();
}

// Waits until the sender counts `target` entries in its outbox for Xiamen;
// the count is raised just after the submit replies go out.
absl::StatusOr<uint64_t> WaitQueued(client::NodeClient& sender,
                                    uint64_t target) {
  uint64_t queued = 0;
  absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (absl::Now() < give_up) {
    CASELINK_RETURN_IF_ERROR(CheckInterrupted());
    CASELINK_ASSIGN_OR_RETURN(SenderProgress progress, PollSender(sender));
    queued = progress.queued;
    if (queued >= target) return queued;
    absl::SleepFor(kPollInterval);
  }
  return absl::DeadlineExceededError(
      Cat("the outbox holds ", queued, " entries, not ", target));
}

// Starts Xiamen again and times until every receipt is verified.
absl::Status Drain(const BenchOptions& options, TestNetwork& network,
                   client::NodeClient& sender, JsonSummary& json) {
  std::printf("starting the receiver; draining\n");
  std::fflush(stdout);
  const RunUsage before = ReadRunUsage(network);
  const absl::Time start = before.taken;
  CASELINK_RETURN_IF_ERROR(network.Start(kXiamen));
  CASELINK_ASSIGN_OR_RETURN(
      absl::Time done,
      WaitDelivered(sender, static_cast<uint64_t>(options.messages), options));
  double seconds = absl::ToDoubleSeconds(done - start);
  double rate = static_cast<double>(options.messages) / seconds;
  const RunUsage after = ReadRunUsage(network);
  std::printf(
      "drain: %lld receipts verified %.2f s after the receiver was started "
      "= %.0f msg/s (polled every 100 ms)\n"
      "(peak RSS: the sender's over the whole run, the receiver's over the "
      "drain; CPU: the drain only)\n",
      static_cast<long long>(options.messages), seconds, rate);
  json.Add("drain_s", seconds, 2);
  json.Add("drain_throughput_per_s", rate, 1);
  ReportUsage(before, after, options.messages, json);
  return absl::OkStatus();
}

// --queued-mode: fill the outbox with the receiver down, then drain it.
absl::Status RunQueued(const BenchOptions& options, TestNetwork& network) {
  CASELINK_ASSIGN_OR_RETURN(std::unique_ptr<client::NodeClient> sender,
                            network.OperatorClient(kTongan));
  JsonSummary json;
  AddRunSettings(options, json);

  int stopped = network.Stop(kXiamen);
  if (stopped != 0) {
    return absl::InternalError(
        Cat("the receiver exited with ", stopped, " when stopped"));
  }
  AsyncSubmitter submitter(sender->stub(), options);
  CASELINK_ASSIGN_OR_RETURN(SubmitRun run, submitter.Run(options.messages));
  PrintSubmitFigures(run, options.messages, json);

  // What holding the whole backlog costs the sender.
  CASELINK_ASSIGN_OR_RETURN(
      uint64_t queued,
      WaitQueued(*sender, static_cast<uint64_t>(options.messages)));
  ProcessUsage memory = ReadProcessUsage(network.Process(kTongan).pid());
  DiskUsage disk = MeasureDisk(network.DataDir(kTongan));
  std::printf("queued for the receiver: %llu\n",
              static_cast<unsigned long long>(queued));
  PrintUsage("sender (backlog held)", memory);
  std::printf("sender data directory: %.1f MiB on disk (%.1f MiB apparent)\n",
              static_cast<double>(disk.allocated_bytes) / (1 << 20),
              static_cast<double>(disk.apparent_bytes) / (1 << 20));
  json.Add("queued", static_cast<int64_t>(queued));
  json.Add("queued_sender_peak_rss_mib", Mib(memory.peak_kib), 1);
  json.Add("queued_sender_rss_mib", Mib(memory.current_kib), 1);
  json.Add("sender_data_mib",
           static_cast<double>(disk.allocated_bytes) / (1 << 20), 1);

  if (options.drain) {
    CASELINK_RETURN_IF_ERROR(Drain(options, network, *sender, json));
  } else {
    json.Add("sender_peak_rss_mib", Mib(memory.peak_kib), 1);
  }
  std::printf("%s\n", json.Text().c_str());
  return absl::OkStatus();
}

void PrintLogTail(const char* who, const std::string& log) {
  size_t start = log.size();
  for (int lines = 0; lines < 15 && start > 0; ++lines) {
    start = log.rfind('\n', start - 1);
    if (start == std::string::npos) {
      start = 0;
      break;
    }
  }
  std::fprintf(stderr, "--- last lines of the %s log ---\n%s\n", who,
               log.substr(start).c_str());
}

int Main(int argc, char** argv) {
  auto options = ParseFlags(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "delivery_bench: %s\n%s",
                 std::string(View(options.status().message())).c_str(), kUsage);
    return 2;
  }
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  std::printf(
      "delivery_bench: %lld messages of %zu bytes, window %d, batch %d, %s, "
      "%s%s\n",
      static_cast<long long>(options->messages), options->bytes,
      options->window, options->batch,
      options->rate > 0 ? Cat("paced at ", options->rate, "/s").c_str()
                        : "unpaced",
      options->sign_alg.c_str(), options->queued_mode ? ", queued mode" : "");
  auto network = StartNetwork(*options);
  absl::Status status = network.status();
  if (status.ok()) {
    status = options->queued_mode ? RunQueued(*options, **network)
                                  : RunDelivery(*options, **network);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "delivery_bench: FAILED: %s\n",
                 status.ToString().c_str());
    if (network.ok()) {
      PrintLogTail("sender", (*network)->Process(kTongan).Log());
      PrintLogTail("receiver", (*network)->Process(kXiamen).Log());
    }
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace caselink::bench

int main(int argc, char** argv) { return caselink::bench::Main(argc, argv); }
