#!/usr/bin/env bash
# Measures caselink delivery and the JetStream baseline in one go on this
# machine, so that the figures can be compared as a ratio:
#   1. delivery_bench unpaced: the most messages per second two nodes take;
#   2. delivery_bench paced at half that rate, then at half the target
#      rate (5,000 msg/s; CASELINK_TARGET_RATE sets the target, 10000):
#      latency when not saturated;
#   3. ../shared/bench/jetstream-baseline.sh with the same messages, size
#      and window;
#   4. with --queued, the queued mode: a million messages held while the
#      receiver is down, then drained.
#
# Usage: tests/bench/run-delivery-bench.sh [--queued] [messages] [bytes]
#                                          [window] [batch]
# Defaults: 100000 messages of 1024 bytes, 256 in flight, one message per
# SubmitMessage call; a batch above 1 has the client hand over that many
# per SubmitMessages call. CASELINK_JOBS
# sets the build's parallelism (2 unless told), CASELINK_QUEUED_MESSAGES
# the size of the queued run (1000000). CASELINK_BENCH_BUILD_DIR names an
# already built tree to use instead of building the release preset.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)

queued=0
positional=()
for arg in "$@"; do
  case $arg in
    --queued) queued=1 ;;
    -h | --help)
      awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
      exit 0
      ;;
    *) positional+=("$arg") ;;
  esac
done
messages=${positional[0]:-100000}
bytes=${positional[1]:-1024}
window=${positional[2]:-256}
batch=${positional[3]:-1}
queued_messages=${CASELINK_QUEUED_MESSAGES:-1000000}
jobs=${CASELINK_JOBS:-2}
target_rate=${CASELINK_TARGET_RATE:-10000}

cd "$repo"
if [ -n "${CASELINK_BENCH_BUILD_DIR:-}" ]; then
  echo "== using the build in $CASELINK_BENCH_BUILD_DIR"
  bench="$CASELINK_BENCH_BUILD_DIR/tests/delivery_bench"
else
  echo "== building (release preset, $jobs jobs)"
  cmake --preset release >/dev/null
  cmake --build --preset release -j "$jobs" --target delivery_bench caselinkd
  bench="$repo/build/release/tests/delivery_bench"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The value of a numeric field in the JSON summary of a run's output.
json_field() {
  grep '^{' "$1" | tail -1 | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p"
}

# Runs delivery_bench with a bound on its runtime, keeping its output.
run_bench() {
  local name=$1 limit=$2
  shift 2
  echo
  echo "== $name: delivery_bench $*"
  # The run before removed its nodes' files; let the disk finish with
  # that before this run is timed.
  sync
  timeout --signal=TERM --kill-after=30 "$limit" "$bench" "$@" |
    tee "$out/$name.txt"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo |
  cut -d: -f2 | sed 's/^ //')"
started=$SECONDS

run_bench max 900 --messages "$messages" --bytes "$bytes" --window "$window" \
  --batch "$batch"
max_rate=$(json_field "$out/max.txt" throughput_per_s)
half_rate=$(awk -v r="$max_rate" 'BEGIN { printf "%.0f", r / 2 }')

run_bench half 900 --messages "$messages" --bytes "$bytes" \
  --window "$window" --batch "$batch" --rate "$half_rate"

target_half=$(awk -v r="$target_rate" 'BEGIN { printf "%.0f", r / 2 }')
run_bench target-half 900 --messages "$messages" --bytes "$bytes" \
  --window "$window" --batch "$batch" --rate "$target_half"

baseline="$repo/../shared/bench/jetstream-baseline.sh"
js_rate=""
echo
if [ -f "$baseline" ]; then
  echo "== jetstream: $baseline $messages $bytes $window"
  timeout 900 bash "$baseline" "$messages" "$bytes" "$window" |
    tee "$out/jetstream.txt"
  js_rate=$(sed -n 's/^throughput \([0-9.]*\) msg\/s.*/\1/p' \
    "$out/jetstream.txt" | tail -1)
else
  echo "== jetstream: $baseline is missing; no baseline this run"
fi

if [ "$queued" = 1 ]; then
  run_bench queued 3600 --queued-mode --messages "$queued_messages" \
    --bytes "$bytes" --window "$window" --batch "$batch"
fi

echo
echo "== summary ($messages messages of $bytes bytes, window $window," \
  "batch $batch, $((SECONDS - started)) s)"
echo "caselink max throughput:  $max_rate msg/s" \
  "(p50 $(json_field "$out/max.txt" p50_ms) ms," \
  "p99 $(json_field "$out/max.txt" p99_ms) ms)"
for run in half target-half; do
  f="$out/$run.txt"
  echo "caselink at $(json_field "$f" rate | cut -d. -f1) msg/s:" \
    "p50 $(json_field "$f" p50_ms) ms, p99 $(json_field "$f" p99_ms) ms;" \
    "$(json_field "$f" slow_messages) messages over 50 ms; disk syncs" \
    "beside it: p99 $(json_field "$f" disk_sync_p99_ms) ms," \
    "max $(json_field "$f" disk_sync_max_ms) ms"
done
echo "peak RSS at max: sender $(json_field "$out/max.txt" \
  sender_peak_rss_mib) MiB, receiver $(json_field "$out/max.txt" \
  receiver_peak_rss_mib) MiB"
if [ -n "$js_rate" ]; then
  echo "jetstream throughput:     $js_rate msg/s"
  awk -v c="$max_rate" -v j="$js_rate" \
    'BEGIN { printf "ratio caselink/jetstream: %.3f\n", c / j }'
fi
if [ "$queued" = 1 ]; then
  q="$out/queued.txt"
  echo "queued $(json_field "$q" queued): sender RSS" \
    "$(json_field "$q" queued_sender_rss_mib) MiB (peak" \
    "$(json_field "$q" queued_sender_peak_rss_mib) MiB), data" \
    "$(json_field "$q" sender_data_mib) MiB, drain" \
    "$(json_field "$q" drain_s) s"
fi
