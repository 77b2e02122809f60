#!/usr/bin/env bash
# End-to-end suite against real third-party components, installed by scripts/tools.sh:
#   1. the demo exports to rotel (a real OTLP collector): spans, metrics and log records arrive;
#   2. the demo's Prometheus exposition passes `promtool check metrics`, every metric the alert
#      rules and the dashboard use is emitted, and the alert rules pass `promtool test rules`;
#   3. rotel is killed mid-run and restarted: the watchdog warns, health turns failing, exports
#      resume and health returns;
#   4. tail keep at a 10 % ratio; 5. exemplars scraped by a real Prometheus;
#   6. the demo exports over OTLP/HTTP (http/protobuf, gzip) to rotel's HTTP receiver;
#   7. gRPC aimed at rotel's HTTP port: one WARN naming OTEL_EXPORTER_OTLP_PROTOCOL;
#   8. examples/minimal.rs: its `#[instrument]` span arrives under the request span;
#   9. every fuzz target runs 10 s from its committed corpus (nightly; said, not failed, if absent).
# Fails loudly if a component cannot be installed or started. Not hermetic: CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh

WORK="$PWD/.e2e"
rm -rf "$WORK"
mkdir -p "$WORK"
PASSED=0
FAILED=0

check() { # check DESCRIPTION COMMAND...
  local what="$1"
  shift
  if "$@"; then
    echo "ok - $what"
    PASSED=$((PASSED + 1))
  else
    echo "FAILED - $what"
    FAILED=$((FAILED + 1))
  fi
}
count() { grep -c -- "$1" "$2" || true; }
at_least() { [ "$(count "$1" "$2")" -ge "$3" ]; }
trap 'stop_rotel' EXIT

echo "=== installing rotel $ROTEL_VERSION and promtool"
install_rotel >/dev/null
install_promtool

echo "=== building the demo and the minimal example"
cargo build --example payment_service --example minimal
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
DEMO="$TARGET_DIR/debug/examples/payment_service"

echo "=== 1. demo -> rotel"
start_rotel "$WORK/rotel1"
OTEL_EXPORTER_OTLP_ENDPOINT="$ROTEL_ENDPOINT" "$DEMO" --seconds 3 --metrics-out "$WORK/metrics.txt" \
  >"$WORK/demo1.out" 2>&1 || { cat "$WORK/demo1.out"; echo "demo exited non-zero"; exit 1; }
sleep 1
stop_rotel
cat "$WORK/demo1.out" | sed -n '/=== paytrace demo summary ===/,$p'
OUT="$WORK/rotel1/rotel.out"
check "rotel received spans" at_least '^Span #' "$OUT" 10
check "rotel received server spans with route templates" at_least 'http.route: Str(/orders/{id})' "$OUT" 1
check "rotel received log records" at_least '^LogRecord #' "$OUT" 10
check "log records carry trace ids" bash -c "grep -A12 '^LogRecord #' '$OUT' | grep -Eq 'Trace ID +: [0-9a-f]{32}'"
check "rotel received order-pool metrics" at_least 'order.pool.processed' "$OUT" 1
check "rotel received HTTP metrics" at_least 'http.server.request.duration' "$OUT" 1
check "resource carries service.name" at_least 'service.name: Str(payment-service)' "$OUT" 1
check "the demo saw healthy exports" grep -q 'exporter traces : healthy' "$WORK/demo1.out"

echo "=== 2. promtool"
check "exposition passes promtool check metrics" bash -c "promtool check metrics < '$WORK/metrics.txt'"
check "metric-name checker self-test" scripts/check_metric_names.sh --self-test
check "every metric used by alerts and dashboard is emitted" scripts/check_metric_names.sh "$WORK/metrics.txt"
check "alert rules are valid" promtool check rules alerts/paytrace.rules.yml
check "alert rule unit tests pass" promtool test rules alerts/paytrace.rules.test.yml

echo "=== 3. collector killed mid-run and restarted"
start_rotel "$WORK/rotel2"
OTEL_EXPORTER_OTLP_ENDPOINT="$ROTEL_ENDPOINT" "$DEMO" --seconds 22 --watchdog-ms 2000 --logs \
  >"$WORK/demo2.out" 2>&1 &
DEMO_PID=$!
sleep 5
stop_rotel
echo "rotel stopped"
sleep 9
restart_rotel
echo "rotel restarted"
wait "$DEMO_PID" || { tail -n 30 "$WORK/demo2.out"; echo "demo exited non-zero"; exit 1; }
sleep 1
stop_rotel
OUT2="$WORK/rotel2/rotel.out"
sed -n '/=== paytrace demo summary ===/,$p' "$WORK/demo2.out"
check "the watchdog warned while rotel was down" bash -c "grep 'paytrace::watchdog' '$WORK/demo2.out' | grep -q WARN"
check "the watchdog said exports recovered" bash -c "grep 'paytrace::watchdog' '$WORK/demo2.out' | grep -q 'recovered'"
check "spans arrived after the restart" bash -c "sed -n '/Starting Rotel/h; \${x;p}' '$OUT2' >/dev/null; awk '/Starting Rotel/{n++} n==2 && /^Span #/{c++} END{exit !(c>0)}' '$OUT2'"
check "health is back to healthy at the end" grep -q 'exporter traces : healthy' "$WORK/demo2.out"
check "no request failed while the collector was down" grep -q " 0 transport errors" "$WORK/demo2.out"

echo "=== 4. tail keep at a 10 % ratio -> rotel"
start_rotel "$WORK/rotel3"
OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1 \
  OTEL_EXPORTER_OTLP_ENDPOINT="$ROTEL_ENDPOINT" "$DEMO" --seconds 3 \
  >"$WORK/demo3.out" 2>&1 || { cat "$WORK/demo3.out"; echo "demo exited non-zero"; exit 1; }
sleep 1
stop_rotel
OUT3="$WORK/rotel3/rotel.out"
sed -n '/=== paytrace demo summary ===/,$p' "$WORK/demo3.out"
check "failed requests' traces arrived, kept by their outcome" at_least 'paytrace.sampling.reason: Str(error)' "$OUT3" 1
check "the flagged slow request's trace arrived" at_least 'paytrace.slow: Bool(true)' "$OUT3" 1
check "every 5xx server span arrived (ratio- or outcome-kept)" bash -c \
  "test \"\$(grep -c 'http.response.status_code: Int(5' '$OUT3')\" -ge \"\$(grep -Eo '500: [0-9]+|502: [0-9]+' '$WORK/demo3.out' | awk '{s+=\$2} END{print s}')\""
check "the demo reported tail keep" grep -q 'tail keep: kept' "$WORK/demo3.out"

echo "=== 5. exemplars: a real Prometheus scrapes the demo (OpenMetrics), traces go to rotel"
start_rotel "$WORK/rotel4"
DEMO_PORT=$(free_port)
OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1 \
  OTEL_EXPORTER_OTLP_ENDPOINT="$ROTEL_ENDPOINT" "$DEMO" --serve --port "$DEMO_PORT" --seconds 3 \
  >"$WORK/demo4.out" 2>&1 &
DEMO_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$DEMO_PORT/metrics" >/dev/null && break; sleep 0.2; done
PROM_PORT=$(free_port)
mkdir -p "$WORK/prom"
cat >"$WORK/prom/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: payment-service
    static_configs:
      - targets: ['127.0.0.1:$DEMO_PORT']
YAML
prometheus --config.file="$WORK/prom/prometheus.yml" --storage.tsdb.path="$WORK/prom/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --enable-feature=exemplar-storage \
  >"$WORK/prom/prometheus.log" 2>&1 &
PROM_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null && break; sleep 0.2; done
# The self-load runs 3 s; scrapes every second meanwhile and after.
sleep 8
NOW=$(date +%s)
curl -s "http://127.0.0.1:$PROM_PORT/api/v1/query?query=up" >"$WORK/prom/up.json"
for family in http_server_request_duration_seconds_bucket rpc_server_call_duration_seconds_bucket; do
  curl -s "http://127.0.0.1:$PROM_PORT/api/v1/query_exemplars?query=$family&start=$((NOW - 120))&end=$((NOW + 5))" \
    >"$WORK/prom/exemplars_$family.json"
done
kill -INT "$DEMO_PID"; wait "$DEMO_PID" || true
kill "$PROM_PID" 2>/dev/null; wait "$PROM_PID" 2>/dev/null || true
sleep 1
stop_rotel
OUT4="$WORK/rotel4/rotel.out"
check "Prometheus scrapes the demo (up == 1)" python3 -c "import json,sys; r=json.load(open('$WORK/prom/up.json'))['data']['result']; sys.exit(0 if r and r[0]['value'][1]=='1' else 1)"
for family in http_server_request_duration_seconds_bucket rpc_server_call_duration_seconds_bucket; do
  check "Prometheus holds exemplars for $family, each naming a trace rotel received" \
    python3 - "$WORK/prom/exemplars_$family.json" "$OUT4" <<'PY'
import json, re, sys
data = json.load(open(sys.argv[1]))["data"]
traces = {e["labels"]["trace_id"] for s in data for e in s["exemplars"]}
seen = set(re.findall(r"Trace ID\s*:\s*([0-9a-f]{32})", open(sys.argv[2]).read()))
missing = traces - seen
print(f"{len(traces)} exemplar traces, {len(missing)} not in rotel's output")
sys.exit(0 if traces and not missing else 1)
PY
done

echo "=== 6. OTLP/HTTP: http/protobuf with gzip -> rotel's HTTP receiver"
start_rotel "$WORK/rotel5"
OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$ROTEL_HTTP_PORT" \
  "$DEMO" --seconds 3 >"$WORK/demo5.out" 2>&1 || { cat "$WORK/demo5.out"; echo "demo exited non-zero"; exit 1; }
sleep 1
stop_rotel
OUT5="$WORK/rotel5/rotel.out"
sed -n '/=== paytrace demo summary ===/,$p' "$WORK/demo5.out"
check "rotel received spans over OTLP/HTTP" at_least '^Span #' "$OUT5" 10
check "rotel received log records over OTLP/HTTP" at_least '^LogRecord #' "$OUT5" 10
check "rotel received metrics over OTLP/HTTP" at_least 'order.pool.processed' "$OUT5" 1
check "rotel decoded every OTLP/HTTP request" bash -c "! grep -q 'Failed to decode OTLP HTTP' '$OUT5' '$WORK/rotel5/rotel-agent.log' 2>/dev/null"
check "the watchdog saw healthy exports over OTLP/HTTP" bash -c \
  "grep -q 'exporter traces : healthy' '$WORK/demo5.out' && grep -q 'exporter metrics: healthy' '$WORK/demo5.out' && grep -q 'exporter logs   : healthy' '$WORK/demo5.out'"

echo "=== 7. gRPC aimed at rotel's OTLP/HTTP port: diagnosed"
start_rotel "$WORK/rotel6"
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$ROTEL_HTTP_PORT" "$DEMO" --seconds 2 --logs \
  >"$WORK/demo6.out" 2>&1 || { cat "$WORK/demo6.out"; echo "demo exited non-zero"; exit 1; }
stop_rotel
grep 'wrong OTLP protocol' "$WORK/demo6.out" | head -n 1 || true
check "exactly one WARN names OTEL_EXPORTER_OTLP_PROTOCOL" bash -c \
  "test \"\$(grep 'wrong OTLP protocol' '$WORK/demo6.out' | grep -c 'OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf')\" -eq 1"
check "the health view says so" bash -c "grep 'exporter traces' '$WORK/demo6.out' | grep -q 'wrong protocol?'"

echo "=== 8. the minimal example -> rotel: the service's own span under the request span"
start_rotel "$WORK/rotel7"
OTEL_EXPORTER_OTLP_ENDPOINT="$ROTEL_ENDPOINT" "$TARGET_DIR/debug/examples/minimal" >"$WORK/minimal.out" 2>&1 &
MIN_PID=$!
for _ in $(seq 1 100); do grep -q listening "$WORK/minimal.out" && break; sleep 0.1; done
MIN_ADDR=$(grep -o 'http://[0-9.:]*' "$WORK/minimal.out" || true)
check "the minimal example answers an order" bash -c "[ \"\$(curl -sf '$MIN_ADDR/orders/7')\" = paid ]"
check "the minimal example serves /metrics" bash -c "curl -sf '$MIN_ADDR/metrics' | grep -q http_server_request_duration_seconds"
kill -INT "$MIN_PID"
check "the minimal example stops on Ctrl-C and flushes cleanly" wait "$MIN_PID"
sleep 1
stop_rotel
check "its #[instrument] span arrived as a child of the request span" python3 - "$WORK/rotel7/rotel.out" <<'PY'
import re, sys
spans = [dict(re.findall(r"^[ \t]*(Parent ID|ID|Name)[ \t]*:[ \t]*(.*?)[ \t]*$", block, re.M))
         for block in open(sys.argv[1]).read().split("Span #")[1:]]
request = [s.get("ID") for s in spans if s.get("Name") == "GET /orders/{id}"]
charge = [s.get("Parent ID") for s in spans if s.get("Name") == "charge"]
print(f"request spans {request}, charge's parents {charge}")
sys.exit(0 if request and charge and charge[0] == request[0] else 1)
PY

echo "=== 9. the fuzz targets, 10 s each from the committed corpora"
set +e
scripts/fuzz.sh 10 >"$WORK/fuzz.out" 2>&1
FUZZ=$?
set -e
grep '^fuzz:' "$WORK/fuzz.out" || true
if [ "$FUZZ" -eq 3 ]; then
  echo "NOT RUN - fuzz targets: no nightly toolchain on this machine (cargo test replays the corpora)"
else
  [ "$FUZZ" -eq 0 ] || tail -n 40 "$WORK/fuzz.out"
  check "every fuzz target ran without a crash" test "$FUZZ" -eq 0
fi

echo
echo "e2e: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
