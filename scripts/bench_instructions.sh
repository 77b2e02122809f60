#!/usr/bin/env bash
# User-space instructions per request of examples/bench_server, counted by valgrind's callgrind:
# the whole process (request path, export thread, stdout writer), exporting with gzip to a real
# collector (rotel) at 100 % sampling. Unlike CPU time, an instruction count does not move with
# whatever else runs on this shared machine, so it shows small before/after changes that
# `bench_load.sh` cannot resolve. It leaves out the kernel (about two thirds of the bare server's
# CPU time), so it is a complement to the CPU-time ratios, not a replacement.
#
# Each mode serves N1 and then N2 requests (h2load, 8 connections) in two fresh processes; the
# difference of the two totals divided by N2 - N1 cancels start-up and shutdown.
#
#   scripts/bench_instructions.sh                       # all modes (~3 min)
#   MODES="bare paytrace" scripts/bench_instructions.sh
#   BIN=/path/to/other/bench_server scripts/bench_instructions.sh   # a given build, not rebuilt
#   EXTRA="--children 3 --ratio 0.1" MODES="bare paytrace" scripts/bench_instructions.sh
#   HEADER="traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" EXTRA=--public \
#     MODES=paytrace scripts/bench_instructions.sh   # every request sends the header
#   RANDOM_TRACEPARENT=1 EXTRA=--public MODES=paytrace scripts/bench_instructions.sh
#                             # each request its own sampled traceparent (one connection, python)
#   KEEP=/tmp/cg MODES=paytrace-log scripts/bench_instructions.sh
#                             # keep each run's callgrind file (KEEP/MODE.N.out) for callgrind_annotate
#
# Not part of CI or the test run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/tools.sh
source "$ROOT/scripts/tools.sh"

MODES="${MODES:-bare paytrace paytrace-log common}"
N1="${N1:-2000}"
N2="${N2:-12000}"

apt_tool valgrind valgrind
apt_tool h2load nghttp2-client

bench_server_bin

install_rotel >/dev/null
WORK="$(mktemp -d)"
start_quiet_rotel "$WORK/rotel"
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  stop_rotel
  rm -rf "$WORK"
}
trap cleanup EXIT

# random_traceparents PORT N: N requests on one connection, each with a sampled traceparent of
# its own random trace id (h2load sends one fixed header), as callers in the wild do.
random_traceparents() {
  python3 - "$1" "$2" <<'PY'
import http.client, secrets, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    tp = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    for attempt in range(2):  # a connection the slowed server dropped is opened again, once
        try:
            conn.request("GET", "/orders/42", headers={"traceparent": tp})
            response = conn.getresponse()
            response.read()
            break
        except (ConnectionError, http.client.HTTPException):
            conn.close()
            if attempt:
                raise
    if response.status != 200:
        sys.exit(1)
PY
}

# instructions MODE N: total instructions of a server process that served N requests.
instructions() {
  local mode=$1 n=$2 port
  port=$(free_port)
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
    "$BIN" --mode "$mode" --port "$port" --endpoint "$ROTEL_ENDPOINT" ${EXTRA:-} \
    >/dev/null 2>"$WORK/server.err" &
  SERVER=$!
  for _ in $(seq 1 600); do grep -qs listening "$WORK/server.err" && break; sleep 0.1; done
  grep -q listening "$WORK/server.err" || { cat "$WORK/server.err" >&2; echo "bench_instructions: server did not start" >&2; exit 1; }
  if [ -n "${RANDOM_TRACEPARENT:-}" ]; then
    random_traceparents "$port" "$n" || { echo "bench_instructions: not every request succeeded" >&2; exit 1; }
  else
    h2load --h1 -c8 -t1 -n "$n" ${HEADER:+-H "$HEADER"} "http://127.0.0.1:$port/orders/42" >"$WORK/h2load.out"
    grep -q "^requests: $n total, $n started, $n done, $n succeeded" "$WORK/h2load.out" \
      || { cat "$WORK/h2load.out" >&2; echo "bench_instructions: not every request succeeded" >&2; exit 1; }
  fi
  kill -TERM "$SERVER"
  wait "$SERVER" || { cat "$WORK/server.err" >&2; echo "bench_instructions: server failed" >&2; exit 1; }
  SERVER=
  awk '/^summary:/ {print $2}' "$WORK/cg.out"
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$WORK/cg.out" "$KEEP/$mode.$n.out"; fi
}

printf '%-14s %14s %10s %16s\n' mode "instr/request" "vs bare" "added vs common"
declare -A PER
for mode in $MODES; do
  a=$(instructions "$mode" "$N1")
  b=$(instructions "$mode" "$N2")
  PER[$mode]=$(( (b - a) / (N2 - N1) ))
done
for mode in $MODES; do
  python3 - "$mode" "${PER[$mode]}" "${PER[bare]:-}" "${PER[common]:-}" <<'EOF'
import sys
mode, per, bare, common = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ratio = f"{per / int(bare):.2f}" if bare else "-"
added = f"{(per - int(bare)) / (int(common) - int(bare)):.2f}" if bare and common and mode not in ("bare", "common") else "-"
print(f"{mode:<14} {per:>14,} {ratio:>10} {added:>16}")
EOF
done
