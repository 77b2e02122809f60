#!/usr/bin/env bash
# The cargo features: the library builds warning-free with no features and with each one alone,
# the default tree has one deflate backend, and README.md's feature table matches `cargo tree`.
#   scripts/check_features.sh          check (CI)
#   scripts/check_features.sh --write  rewrite README.md's table from `cargo tree`
set -euo pipefail
cd "$(dirname "$0")/.."
FEATURES=(axum grpc metrics-endpoint otlp-http tls testing)

crates() { # crates compiled (normal and build dependencies), paytrace included
  cargo tree -e normal,build --prefix none -f '{p}' "$@" | sed 's/ (.*//' | sort -u | wc -l
}

table() {
  echo "| features | crates compiled |"
  echo "|---|---|"
  echo "| default | $(crates) |"
  echo "| none (\`default-features = false\`) | $(crates --no-default-features) |"
  for f in "${FEATURES[@]}"; do
    echo "| \`$f\` alone | $(crates --no-default-features --features "$f") |"
  done
  echo "| all | $(crates --all-features) |"
}

readme_with() { # README.md with the table between the markers replaced by $1
  python3 - "$1" <<'PY'
import sys
s = open("README.md").read()
b, e = "<!-- features:begin -->\n", "<!-- features:end -->"
i, j = s.index(b) + len(b), s.index(e)
sys.stdout.write(s[:i] + sys.argv[1] + "\n" + s[j:])
PY
}

TABLE="$(table)"
if [ "${1:-}" = "--write" ]; then
  readme_with "$TABLE" >README.md.new && mv README.md.new README.md
  echo "$TABLE"
  exit 0
fi

FAILED=0
if ! diff <(readme_with "$TABLE") README.md >/dev/null; then
  echo "README.md's feature table is stale; scripts/check_features.sh --write gives:"
  echo "$TABLE"
  FAILED=1
fi
if cargo tree -e normal -i miniz_oxide 2>/dev/null | grep -q miniz_oxide; then
  echo "a second deflate backend (miniz_oxide) is in the default tree:"
  cargo tree -e normal -i miniz_oxide
  FAILED=1
fi
for f in "" "${FEATURES[@]}"; do
  out="$(cargo check --lib --no-default-features ${f:+--features "$f"} --message-format short 2>&1)" || {
    echo "$out" | tail -n 30
    echo "FAILED: cargo check --no-default-features ${f:+--features $f}"
    FAILED=1
    continue
  }
  if grep -E '^(src|warning)' <<<"$out" | grep -q 'warning'; then
    grep 'warning' <<<"$out"
    echo "FAILED: warnings with --no-default-features ${f:+--features $f}"
    FAILED=1
  else
    echo "ok - the library builds with ${f:-no} feature${f:+ alone}"
  fi
done
exit "$FAILED"
