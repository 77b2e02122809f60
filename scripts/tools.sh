# shellcheck shell=bash
# Installs and runs the real third-party components paytrace's end-to-end suite uses.
# Source it: `source scripts/tools.sh`. Everything lands in the git-ignored .tools/ folder.
# Every function fails loudly (non-zero, a message on stderr) instead of skipping.

ROTEL_VERSION=0.0.1a15 # pinned; the binary reports itself as 0.0.1-alpha10
TOOLS_DIR="${TOOLS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools}"
ROTEL_BIN="$TOOLS_DIR/rotel-$ROTEL_VERSION/rotel/rotel-agent"

die() { echo "tools.sh: $*" >&2; return 1; }

# The bench scripts' server: `$BIN` when given (a build to compare, not rebuilt), else
# examples/bench_server built in release; sets BIN either way.
bench_server_bin() {
  [ -n "${BIN:-}" ] && return 0
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  echo "building bench_server (release)..." >&2
  (cd "$root" && cargo build --release --example bench_server >&2) || die "bench_server did not build" || return 1
  BIN="${CARGO_TARGET_DIR:-$root/target}/release/examples/bench_server"
}

# A free TCP port on 127.0.0.1 (bound and released by the kernel's choice).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Install rotel from PyPI into .tools/ (the wheel ships the rotel-agent binary).
install_rotel() {
  if [ -x "$ROTEL_BIN" ] && "$ROTEL_BIN" --version >/dev/null 2>&1; then
    echo "$ROTEL_BIN"; return 0
  fi
  local dir="$TOOLS_DIR/rotel-$ROTEL_VERSION"
  mkdir -p "$dir"
  pip download --no-deps "rotel==$ROTEL_VERSION" -d "$dir" -q >&2 || die "cannot download rotel==$ROTEL_VERSION from PyPI" || return 1
  local wheel
  wheel=$(ls "$dir"/rotel-"$ROTEL_VERSION"-*.whl 2>/dev/null | head -n 1)
  [ -n "$wheel" ] || die "no rotel wheel in $dir" || return 1
  python3 -m zipfile -e "$wheel" "$dir" || die "cannot unpack $wheel" || return 1
  chmod +x "$ROTEL_BIN" # unzipping drops the execute bit
  "$ROTEL_BIN" --version >/dev/null 2>&1 || die "rotel-agent does not run here (needs glibc >= 2.34)" || return 1
  echo "$ROTEL_BIN"
}

# Start rotel on free ports with its detailed debug log; wait until it says it started.
# Sets ROTEL_PID, ROTEL_GRPC_PORT, ROTEL_HTTP_PORT, ROTEL_ENDPOINT, ROTEL_OUT, ROTEL_DIR.
start_rotel() {
  ROTEL_DIR="$1"
  mkdir -p "$ROTEL_DIR"
  ROTEL_GRPC_PORT="${ROTEL_GRPC_PORT:-$(free_port)}"
  ROTEL_HTTP_PORT="${ROTEL_HTTP_PORT:-$(free_port)}"
  _ROTEL_LAUNCH=(env)
  _ROTEL_DEBUG=(--debug-log traces --debug-log metrics --debug-log logs --debug-log-verbosity detailed)
  _launch_rotel
}

# start_quiet_rotel DIR [CPUS]: the same without the debug log, pinned to CPUS (taskset list)
# when given. For load benchmarks: printing every span would make the collector the bottleneck.
start_quiet_rotel() {
  ROTEL_DIR="$1"
  mkdir -p "$ROTEL_DIR"
  ROTEL_GRPC_PORT="${ROTEL_GRPC_PORT:-$(free_port)}"
  ROTEL_HTTP_PORT="${ROTEL_HTTP_PORT:-$(free_port)}"
  _ROTEL_LAUNCH=(env)
  [ -n "${2:-}" ] && _ROTEL_LAUNCH=(taskset -c "$2" env)
  _ROTEL_DEBUG=()
  _launch_rotel
}

# Install a Debian package when its command is missing (root only; fails loudly otherwise).
apt_tool() { # COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "$1 missing and not root to install $2" || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2 \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2"; } >&2 \
    || die "cannot install $2" || return 1
}

_launch_rotel() {
  ROTEL_OUT="$ROTEL_DIR/rotel.out"
  ROTEL_ENDPOINT="http://127.0.0.1:$ROTEL_GRPC_PORT"
  : >>"$ROTEL_OUT"
  local before
  before=$(grep -c 'Starting Rotel' "$ROTEL_OUT" || true)
  # rotel reads ~130 ROTEL_* variables (ROTEL_DAEMON would even daemonize it): start it without
  # any, including the ones this library exports.
  local unset_rotel=()
  local name
  for name in $(compgen -e | grep '^ROTEL_' || true); do unset_rotel+=(-u "$name"); done
  "${_ROTEL_LAUNCH[@]}" "${unset_rotel[@]}" NO_COLOR=1 "$ROTEL_BIN" start \
    --otlp-grpc-endpoint "127.0.0.1:$ROTEL_GRPC_PORT" \
    --otlp-http-endpoint "127.0.0.1:$ROTEL_HTTP_PORT" \
    --exporter blackhole \
    "${_ROTEL_DEBUG[@]}" \
    --pid-file "$ROTEL_DIR/rotel.pid" --log-file "$ROTEL_DIR/rotel-agent.log" \
    >>"$ROTEL_OUT" 2>&1 &
  ROTEL_PID=$!
  local i
  for i in $(seq 1 300); do
    if ! kill -0 "$ROTEL_PID" 2>/dev/null; then
      tail -n 20 "$ROTEL_OUT" >&2
      die "rotel exited during start (port taken?)"; return 1
    fi
    if [ "$(grep -c 'Starting Rotel' "$ROTEL_OUT" || true)" -gt "$before" ]; then
      export ROTEL_PID ROTEL_GRPC_PORT ROTEL_HTTP_PORT ROTEL_ENDPOINT ROTEL_OUT ROTEL_DIR
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$ROTEL_OUT" >&2
  die "rotel did not start within 30 s"
}

# Stop rotel (by PID) and wait for it to exit.
stop_rotel() {
  [ -n "${ROTEL_PID:-}" ] || return 0
  kill "$ROTEL_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do
    kill -0 "$ROTEL_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$ROTEL_PID" 2>/dev/null || true
  wait "$ROTEL_PID" 2>/dev/null || true
  ROTEL_PID=
}

# Start rotel again on the same ports (after stop_rotel), appending to the same output.
restart_rotel() {
  _launch_rotel
}

# promtool from Debian's prometheus package, installed when missing.
install_promtool() {
  # Debian's prometheus package brings both promtool and the Prometheus server.
  if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" != 0 ]; then die "promtool missing and not root to install it"; return 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed" || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2 \
    || die "cannot install Debian's prometheus package" || return 1
  command -v promtool >/dev/null 2>&1 || die "promtool still missing after install"
  command -v prometheus >/dev/null 2>&1 || die "the prometheus server is still missing after install"
}
