#!/usr/bin/env bash
# Bursts: how many spans a burst of requests loses, paytrace against the OpenTelemetry SDK's
# batch processor with the stock OTLP exporter, exporting to a real collector (rotel, blackhole).
#
# examples/bench_server (release) is pinned to core 0 with its export thread, so handlers and
# export share one core; h2load and rotel run on core 1. Each burst is N requests as fast as 8
# connections go, then a quiet pause so whatever is queued can leave; the server then reports
# requests served, spans exported, dropped (counted) and failed. Lost = served - exported.
#
#   scripts/bench_burst.sh                          # bursts of 3,000, 10,000 and 20,000, 3 runs each
#   BURSTS="20000" RUNS=5 scripts/bench_burst.sh
#   BIN=/path/to/other/bench_server scripts/bench_burst.sh   # a given build, not rebuilt
#
# Not part of CI or the test run (it needs two cores, a release build, h2load and rotel).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/tools.sh
source "$ROOT/scripts/tools.sh"

BURSTS="${BURSTS:-3000 10000 20000}"
MODES="${MODES:-paytrace common}"
RUNS="${RUNS:-3}"
PAUSE="${PAUSE:-5}"
OUT="${OUT:-$ROOT/target/bench_burst}"
mkdir -p "$OUT"

apt_tool h2load nghttp2-client
command -v taskset >/dev/null || { echo "bench_burst: taskset missing (util-linux)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "bench_burst: needs two cores" >&2; exit 1; }

bench_server_bin
install_rotel >/dev/null
start_quiet_rotel "$OUT/rotel" 1
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  stop_rotel
}
trap cleanup EXIT

printf '%-10s %7s %4s %9s %9s %9s %8s %8s %10s\n' mode burst run served exported dropped failed lost "req/s"
for burst in $BURSTS; do
  for mode in $MODES; do
    for run in $(seq 1 "$RUNS"); do
      port=$(free_port)
      err="$OUT/$mode.$burst.$run.err"
      taskset -c 0 "$BIN" --mode "$mode" --port "$port" --endpoint "$ROTEL_ENDPOINT" >/dev/null 2>"$err" &
      SERVER=$!
      for _ in $(seq 1 100); do grep -qs listening "$err" && break; sleep 0.05; done
      grep -q listening "$err" || { cat "$err" >&2; echo "bench_burst: server did not start" >&2; exit 1; }
      taskset -c 1 h2load --h1 -c8 -t1 -n "$burst" "http://127.0.0.1:$port/orders/42" >"$OUT/h2load.out"
      rps=$(awk '/^finished in/ {print $4}' "$OUT/h2load.out")
      sleep "$PAUSE"
      kill -TERM "$SERVER"
      wait "$SERVER" || { cat "$err" >&2; echo "bench_burst: server failed" >&2; exit 1; }
      SERVER=
      summary=$(grep '^bench_server mode=' "$err")
      python3 - "$mode" "$burst" "$run" "$rps" "$summary" <<'EOF'
import sys
mode, burst, run, rps, summary = sys.argv[1:6]
kv = dict(x.split("=", 1) for x in summary.split()[1:])
served, exported = int(kv["requests"]), int(kv["exported"])
dropped, failed = int(kv["dropped"]), int(kv["failed"])
print(f"{mode:<10} {burst:>7} {run:>4} {served:>9} {exported:>9} {dropped:>9} {failed:>8} {served - exported:>8} {rps:>10}")
EOF
    done
  done
done
