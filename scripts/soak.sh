#!/usr/bin/env bash
# Soak: the demo service under steady load while the collector (rotel) is up, killed, and
# restarted. Reports, per phase: requests served and failed, p50/p99 latency (wrk), and at the end
# the spans exported and dropped (the demo's exporter health) and the peak resident memory.
# Not part of the test run.   Usage: scripts/soak.sh [SECONDS_PER_PHASE]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
PHASE="${1:-20}"
WORK="$PWD/.e2e/soak"
rm -rf "$WORK"
mkdir -p "$WORK"
command -v wrk >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq wrk; }
install_rotel >/dev/null
cargo build --release --example payment_service
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
start_rotel "$WORK/rotel"
trap 'stop_rotel; kill "${DEMO_PID:-}" 2>/dev/null || true' EXIT

PORT=$(free_port)
OTEL_EXPORTER_OTLP_ENDPOINT="$ROTEL_ENDPOINT" "$TARGET_DIR/release/examples/payment_service" \
  --serve --port "$PORT" --seconds 0 --watchdog-ms 5000 >"$WORK/demo.out" 2>&1 &
DEMO_PID=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/metrics" >/dev/null 2>&1 && break
  sleep 0.1
done

load() { # load PHASE_NAME
  wrk -t1 -c16 -d"${PHASE}s" --latency "http://127.0.0.1:$PORT/orders/7" >"$WORK/$1.wrk" 2>&1
  local reqs p50 p99 errors
  reqs=$(awk '/requests in/{print $1}' "$WORK/$1.wrk")
  p50=$(awk '$1=="50%"{print $2}' "$WORK/$1.wrk")
  p99=$(awk '$1=="99%"{print $2}' "$WORK/$1.wrk")
  errors=$(awk '/Non-2xx|Socket errors/{print}' "$WORK/$1.wrk" | tr '\n' ' ')
  printf '| %-10s | %8s | %8s | %8s | %s |\n' "$1" "$reqs" "$p50" "$p99" "${errors:-none}"
}

echo "| phase      | requests |      p50 |      p99 | errors |"
echo "|---|---|---|---|---|"
load up
stop_rotel
load down
restart_rotel
load recovering
PEAK=$(awk '/VmHWM/{print $2, $3}' "/proc/$DEMO_PID/status")
kill -INT "$DEMO_PID"
wait "$DEMO_PID" || true
echo
echo "peak resident memory of the service: $PEAK"
grep -E '^exporter ' "$WORK/demo.out" || true
