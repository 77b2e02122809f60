#!/usr/bin/env bash
# The W3C Trace Context test suite (github.com/w3c/trace-context, folder test/, tested at commit
# acab820) against examples/w3c_service.rs — paytrace's server TraceLayer in, its ClientLayer
# out — at SPEC_LEVEL=2 STRICT_LEVEL=2, its Python harness in a venv this script creates.
#
#   W3C_SUITE=/path/to/a/checkout/of/trace-context scripts/w3c.sh
#
# The suite is published on no package registry, and this project commits none of its code, so
# the script needs a checkout; CI has none and does not run it (see the README, propagation).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/tools.sh
source "$ROOT/scripts/tools.sh"
[ -f "${W3C_SUITE:-}/test/test.py" ] || die "set W3C_SUITE to a checkout of the W3C trace-context repository" || exit 1

WORK="$(mktemp -d)"
SERVICE=
cleanup() { [ -n "$SERVICE" ] && kill "$SERVICE" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q aiohttp >&2 || die "cannot install aiohttp from PyPI" || exit 1
(cd "$ROOT" && cargo build -q --example w3c_service)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \
  "$TARGET_DIR/debug/examples/w3c_service" >"$WORK/service.out" 2>&1 &
SERVICE=$!
for _ in $(seq 1 100); do grep -q listening "$WORK/service.out" && break; sleep 0.1; done
ENDPOINT=$(grep -o 'http://[^ ]*/test' "$WORK/service.out") || { cat "$WORK/service.out"; die "the test service did not start"; exit 1; }

cd "$W3C_SUITE/test"
set +e
SPEC_LEVEL=2 STRICT_LEVEL=2 HARNESS_HOST=127.0.0.1 HARNESS_PORT="$(free_port)" \
  "$WORK/venv/bin/python" test.py "$ENDPOINT" >"$WORK/suite.out" 2>&1
status=$?
set -e
grep -E ' \.\.\. (FAIL|ERROR)' "$WORK/suite.out" || true
ran=$(grep -Eo '^Ran [0-9]+ tests' "$WORK/suite.out" | grep -Eo '[0-9]+')
failed=$(grep -Ec ' \.\.\. (FAIL|ERROR)$' "$WORK/suite.out" || true)
echo "w3c: $((ran - failed)) passed, $failed failed"
exit "$status"
