#!/usr/bin/env bash
# End-to-end load figure over loopback: server CPU time per request of examples/bench_server.rs
# under load, each instrumented mode as a paired ratio to bare, exporting to a real collector
# (rotel, blackhole exporter) with gzip at 100 % sampling.
#
# Two kinds of load:
# - default: `wrk -t1 -c32`, closed loop: every mode runs as fast as its core allows. A slower
#   server leaves the load generator idle more often, and waking it costs the server's kernel
#   more per response, so this inflates the ratio of whatever is slower.
# - RATE=N: `h2load --h1 -c32 --rps`, a fixed offered rate in req/s for both sides of a pair:
#   the same work for the kernel, so the ratio is the instrumentation's own cost. Runs whose
#   server could not keep up are flagged `saturated`.
#
#   scripts/bench_load.sh                      # all modes, 3 pairs of 10 s runs (~5 min)
#   RATE=30000 scripts/bench_load.sh           # the same at a fixed 30 k req/s
#   MODES="paytrace" PAIRS=5 DURATION=10 scripts/bench_load.sh
#   BIN=/path/to/other/bench_server scripts/bench_load.sh   # a given build (before/after), not rebuilt
#   EXTRA="--children 3 --ratio 0.1" MODES=paytrace scripts/bench_load.sh   # flags for bench_server
#
# Server pinned to core 0 (taskset -c 0); wrk and rotel to core 1. Runs alternate bare, X,
# bare, X, ... so drift on this shared machine hits both sides of each pair. CPU per request is
# utime+stime of the server process (from /proc/PID/stat) over the measured wrk window divided by
# the requests wrk completed in it. At exit the server prints its own totals: requests served,
# spans exported, dropped (counted) and failed; the script flags any span that is unaccounted for.
# Not part of CI or the test run (it needs two cores, a release build, wrk and rotel).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/tools.sh
source "$ROOT/scripts/tools.sh"

MODES="${MODES:-paytrace paytrace-log common}"
PAIRS="${PAIRS:-3}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNS="${CONNS:-32}"
OUT="${OUT:-$ROOT/target/bench_load}"

mkdir -p "$OUT"
RESULTS="$OUT/results.tsv"
: >"$RESULTS"

apt_tool wrk wrk
[ -n "${RATE:-}" ] && apt_tool h2load nghttp2-client
command -v taskset >/dev/null || { echo "bench_load: taskset missing (util-linux)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "bench_load: needs two cores" >&2; exit 1; }

bench_server_bin

install_rotel >/dev/null
start_quiet_rotel "$OUT/rotel" 1
ENDPOINT="$ROTEL_ENDPOINT"
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  stop_rotel
}
trap cleanup EXIT

ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# run MODE PAIR: one measured run; appends a line to results.tsv.
run() {
  local mode=$1 pair=$2 port err wrk_out
  port=$(free_port)
  err="$OUT/$mode.$pair.err"
  wrk_out="$OUT/$mode.$pair.wrk"
  # shellcheck disable=SC2086 # EXTRA holds several flags
  taskset -c 0 "$BIN" --mode "$mode" --port "$port" --endpoint "$ENDPOINT" ${EXTRA:-} >/dev/null 2>"$err" &
  SERVER=$!
  for _ in $(seq 1 100); do grep -qs listening "$err" && break; sleep 0.05; done
  grep -q listening "$err" || { cat "$err" >&2; echo "bench_load: server did not start" >&2; exit 1; }
  local before after requests rps latency errors summary
  if [ -n "${RATE:-}" ]; then
    local per_client=$((RATE / CONNS))
    taskset -c 1 h2load --h1 -c"$CONNS" -t1 --rps="$per_client" -D "$WARMUP" "http://127.0.0.1:$port/orders/42" >/dev/null
    before=$(ticks "$SERVER")
    taskset -c 1 h2load --h1 -c"$CONNS" -t1 --rps="$per_client" -D "$DURATION" "http://127.0.0.1:$port/orders/42" >"$wrk_out"
    after=$(ticks "$SERVER")
    requests=$(awk '/^requests:/ {print $8}' "$wrk_out")
    rps=$(awk '/^finished in/ {print $4}' "$wrk_out")
    latency=$(awk '/^time for request:/ {print $6}' "$wrk_out")
    errors=$(awk '/^requests:/ {print ($10 + $12 + $14 > 0)}' "$wrk_out")
  else
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$port/orders/42" >/dev/null
    before=$(ticks "$SERVER")
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$port/orders/42" >"$wrk_out"
    after=$(ticks "$SERVER")
    requests=$(awk '/requests in/ {print $1}' "$wrk_out")
    rps=$(awk '/Requests\/sec/ {print $2}' "$wrk_out")
    latency=$(awk '$1 == "99%" {print $2}' "$wrk_out")
    errors=$(grep -c 'Non-2xx\|Socket errors' "$wrk_out" || true)
  fi
  kill -TERM "$SERVER"
  wait "$SERVER" || { cat "$err" >&2; echo "bench_load: server failed" >&2; exit 1; }
  SERVER=
  summary=$(grep '^bench_server mode=' "$err")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$pair" "$((after - before))" "$requests" "$rps" "$latency" "$errors" "$summary" >>"$RESULTS"
  echo "  $mode #$pair: $requests requests, $((after - before)) ticks, $rps req/s, latency $latency | $summary" >&2
}

for mode in $MODES; do
  for pair in $(seq 1 "$PAIRS"); do
    run bare "$mode-$pair"
    run "$mode" "$pair"
  done
done

python3 - "$RESULTS" "${RATE:-}" <<'EOF'
import re, statistics, sys

rate = float(sys.argv[2]) if sys.argv[2] else None
# wrk reports p99; h2load only mean, sd and max.
latency_label = "mean µs" if rate else "p99 µs"

def latency_us(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]

rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
runs = {}
for mode, pair, ticks, requests, rps, latency, errors, summary in rows:
    served = dict(kv.split("=", 1) for kv in summary.split()[1:])
    runs[(mode, pair)] = dict(
        cpu_us=int(ticks) * 1e4 / int(requests),  # ticks are 10 ms
        rps=float(rps), latency=latency_us(latency), errors=int(errors), **served)

modes = []
for mode, pair in runs:
    if mode != "bare" and mode not in modes:
        modes.append(mode)
load = f"fixed rate {rate:.0f} req/s (h2load)" if rate else "closed loop (wrk -c32)"
print(f"\nload: {load}")
print(f"{'mode':<14}{'CPU µs/req':>12}{'bare':>8}{'ratio':>8}{'req/s':>10}{'bare':>10}{latency_label:>9}{'bare':>8}  spans exported/dropped/failed of served")
lost = False
for mode in modes:
    pairs = sorted(p for m, p in runs if m == mode)
    ratios = []
    for p in pairs:
        x, b = runs[(mode, p)], runs[("bare", f"{mode}-{p}")]
        ratios.append(x["cpu_us"] / b["cpu_us"])
        served, exported = int(x["requests"]), int(x["exported"])
        dropped, failed = int(x["dropped"]), int(x["failed"])
        spans, not_kept = int(x.get("spans", 1)), int(x.get("not_kept", 0))
        unaccounted = served * spans - exported - dropped - failed - not_kept
        lost |= unaccounted != 0 or x["errors"] or b["errors"]
        print(f"{mode + ' #' + p:<14}{x['cpu_us']:>12.2f}{b['cpu_us']:>8.2f}{ratios[-1]:>8.2f}"
              f"{x['rps']:>10.0f}{b['rps']:>10.0f}{x['latency']:>9.0f}{b['latency']:>8.0f}"
              f"  {exported}/{dropped}/{failed} of {served}" + (f" UNACCOUNTED {unaccounted}" if unaccounted else "")
              + (" saturated" if rate and x["rps"] < 0.98 * rate else ""))
    print(f"{mode + ' median':<14}{'':>12}{'':>8}{statistics.median(ratios):>8.2f}")
if lost:
    print("WARNING: spans unaccounted for or wrk errors (see above)")
EOF
