#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer, nightly) for SECONDS each, from the
# committed corpus; new inputs go to a scratch folder, a crash fails the run.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 10 s, every target
# Exits 3 when there is no nightly toolchain (cargo-fuzz is installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-10}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <(ls fuzz/fuzz_targets | sed 's/\.rs$//')

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain (rustup toolchain install nightly)" >&2
  exit 3
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked --root "$PWD/.tools" cargo-fuzz
  export PATH="$PWD/.tools/bin:$PATH"
fi

SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
cd fuzz
# No sanitizer: the crate has no `unsafe`; a panic is what the targets look for, debug
# assertions on (dependencies assert invariants there that release builds skip).
cargo +nightly fuzz build -O -a -s none
for t in "${TARGETS[@]}"; do
  mkdir -p "$SCRATCH/$t"
  dict=()
  [ -f "dict/$t.dict" ] && dict=("-dict=dict/$t.dict")
  cargo +nightly fuzz run -O -a -s none "$t" "$SCRATCH/$t" "corpus/$t" -- \
    -max_total_time="$SECONDS_EACH" -print_final_stats=1 "${dict[@]}" 2>"$SCRATCH/$t.log" \
    || { tail -n 40 "$SCRATCH/$t.log"; echo "fuzz: $t FAILED"; exit 1; }
  echo "fuzz: $t ok, $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$SCRATCH/$t.log" | grep -o '[0-9]*$') executions in ${SECONDS_EACH} s"
done
