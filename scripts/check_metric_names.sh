#!/usr/bin/env bash
# Checks that every metric used by alerts/paytrace.rules.yml and dashboards/paytrace.json is
# emitted in a Prometheus exposition file.   Usage: scripts/check_metric_names.sh EXPOSITION
#                                             or: scripts/check_metric_names.sh --self-test
set -euo pipefail
cd "$(dirname "$0")/.."

check() {
  python3 - "$1" <<'PY'
import json, re, sys
exposition = open(sys.argv[1]).read()
families, samples = {}, set()
for line in exposition.splitlines():
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        families[m.group(1)] = m.group(2)
    elif line and not line.startswith("#"):
        samples.add(re.split(r"[{ ]", line, maxsplit=1)[0])
exprs = [m.group(1) for m in re.finditer(r"^\s*expr:\s*(.+)$", open("alerts/paytrace.rules.yml").read(), re.M)]
# multi-line (|) expressions: take the indented block too
rules = open("alerts/paytrace.rules.yml").read()
exprs += re.findall(r"expr: \|\n((?:\s{10,}.*\n)+)", rules)
dash = json.load(open("dashboards/paytrace.json"))
exprs += [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
used = set()
for e in exprs:
    for tok in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        if tok.startswith(("order_", "http_server_", "paytrace_", "process_", "tokio_")):
            used.add(tok)
missing = []
for name in sorted(used):
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    ok = name in families or name in samples or families.get(base) == "histogram"
    print(("ok      " if ok else "MISSING ") + name)
    if not ok:
        missing.append(name)
print(f"{len(used)} metric names checked, {len(missing)} missing")
sys.exit(1 if missing or not used else 0)
PY
}

if [ "${1:-}" = "--self-test" ]; then
  check scripts/testdata/complete.prom >/dev/null || { echo "self-test: complete exposition rejected"; exit 1; }
  if check scripts/testdata/incomplete.prom >/dev/null; then echo "self-test: incomplete exposition accepted"; exit 1; fi
  echo "self-test passed"
  exit 0
fi
[ $# -eq 1 ] || { echo "usage: $0 EXPOSITION_FILE | --self-test" >&2; exit 2; }
check "$1"
