#!/usr/bin/env bash
# scripts/check_metric_names.sh — do the alert rules and the dashboard only use metrics paytrace really exposes?
#
# Usage:
#   scripts/check_metric_names.sh EXPOSITION.txt   # a scrape of paytrace's Prometheus endpoint (text format)
#   scripts/check_metric_names.sh --self-test      # checks this script against scripts/testdata/
#
# Collects the PromQL of alerts/paytrace.rules.yml (`expr:` values) and dashboards/paytrace.json (panel `expr`
# and template variable queries), keeps the metric names in it (identifiers starting with order_, http_server_,
# paytrace_, process_ or tokio_, after dropping string literals, label matchers in `{...}` and the label lists of
# by/without/on/ignoring/group_left/group_right) and looks each one up among the metric families the exposition
# declares with `# TYPE`. A `_bucket`, `_sum` or `_count` series is found through its histogram (or summary)
# family; a `_total` counter through `# TYPE name_total` (Prometheus text format) or `# TYPE name counter`
# (OpenMetrics). Prints every name with ok/MISSING, and exits 1 when any is missing (2 on usage errors).
#
# Files can be overridden with PAYTRACE_RULES and PAYTRACE_DASHBOARD. Needs only bash and python3's stdlib.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rules="${PAYTRACE_RULES:-$root/alerts/paytrace.rules.yml}"
dashboard="${PAYTRACE_DASHBOARD:-$root/dashboards/paytrace.json}"
testdata="$root/scripts/testdata"

usage() {
    sed -n '3,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

# check EXPOSITION [RULES DASHBOARD] — the check itself, in python3 (stdlib only).
check() {
    python3 - "$1" "${2:-$rules}" "${3:-$dashboard}" <<'PY'
import json, re, sys

PREFIXES = ("order_", "http_server_", "paytrace_", "process_", "tokio_")
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"' r"|'(?:[^'\\]|\\.)*'" r"|`[^`]*`")
BRACES = re.compile(r"\{[^{}]*\}")
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")


def rule_exprs(path):
    """`expr:` values of a Prometheus rules file: plain, quoted and block (| or >) scalars. No YAML library needed."""
    exprs = []
    lines = open(path, encoding="utf-8").read().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:-\s+)?expr:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        indent = len(m.group(1))
        value = m.group(2).strip()
        body = []
        if value[:1] in ("|", ">"):
            value = ""
        elif value:
            body.append(value)
        # Continuation: following lines indented deeper than the key (blank lines included).
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            body.append(lines[i].strip())
            i += 1
        text = "\n".join(body).strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
            text = text[1:-1]
        exprs.append(text)
    return exprs


def dashboard_exprs(path):
    """Panel target `expr`s (rows' nested panels too) and query variables' `definition`/`query`."""
    exprs = []
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    exprs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    doc = json.load(open(path, encoding="utf-8"))
    walk(doc.get("panels", []))
    for var in doc.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        for text in (var.get("definition"), query):
            if isinstance(text, str):
                exprs.append(text)
    return exprs


def metric_names(expr):
    expr = STRINGS.sub('""', expr)
    expr = re.sub(r"#[^\n]*", "", expr)  # PromQL comments
    while True:  # label matchers; nested braces cannot occur in PromQL, but loop anyway
        stripped = BRACES.sub(" ", expr)
        if stripped == expr:
            break
        expr = stripped
    expr = LABEL_LISTS.sub(" ", expr)
    return {tok for tok in IDENT.findall(expr) if tok.startswith(PREFIXES)}


def exposition_families(path):
    families = {}
    for line in open(path, encoding="utf-8"):
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "#" and parts[1] == "TYPE":
            families[parts[2]] = parts[3] if len(parts) > 3 else "untyped"
    return families


def found(name, families):
    if name in families:
        return True
    for suffix, types in (("_bucket", {"histogram"}), ("_sum", {"histogram", "summary"}),
                          ("_count", {"histogram", "summary"}), ("_total", {"counter"})):
        if name.endswith(suffix) and families.get(name[: -len(suffix)]) in types:
            return True
    return False


def family(name, families):
    """The name to report: histogram series under their family name."""
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)] if name.endswith(suffix) else None
        if base and (families.get(base) in ("histogram", "summary") or base + "_bucket" in referenced_raw):
            return base
    return name


exposition, rules_path, dashboard_path = sys.argv[1:4]
sources = [(rules_path, rule_exprs(rules_path)), (dashboard_path, dashboard_exprs(dashboard_path))]
families = exposition_families(exposition)
if not families:
    print(f"error: {exposition} declares no metric family (no '# TYPE' line): not a Prometheus text exposition?")
    sys.exit(2)

referenced_raw = set()
for path, exprs in sources:
    if not exprs:
        print(f"error: no PromQL expression found in {path}")
        sys.exit(2)
    for expr in exprs:
        referenced_raw |= metric_names(expr)

# Group by family: a family is present when every series name referenced from it resolves.
by_family = {}
for name in sorted(referenced_raw):
    by_family.setdefault(family(name, families), []).append(name)

missing = []
print(f"checked {len(by_family)} metric families referenced by {rules_path} and {dashboard_path}"
      f" against {exposition} ({len(families)} families):")
for fam in sorted(by_family):
    absent = [n for n in by_family[fam] if not found(n, families)]
    print(f"  {'MISSING' if absent else 'ok':7}  {fam}")
    if absent:
        missing.append(fam)
if missing:
    print(f"{len(missing)} metric famil{'y is' if len(missing) == 1 else 'ies are'} not in the exposition: "
          + " ".join(missing))
    sys.exit(1)
print("all referenced metric families are present")
PY
}

# self_test — runs the checker on scripts/testdata: the full exposition passes, the same exposition without two
# families fails naming exactly those two, and a rules file full of traps yields exactly the expected names.
self_test() {
    local tmp out rc
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN

    echo "self-test 1: complete exposition passes"
    check "$testdata/paytrace-exposition.txt" >"$tmp/out1" || { cat "$tmp/out1"; echo "self-test 1 FAILED"; return 1; }
    tail -n 1 "$tmp/out1"

    echo "self-test 2: exposition without order_redis_errors_total and order_pool_processing_seconds fails"
    grep -v -e '^order_redis_errors_total' -e '^# [A-Z]* order_redis_errors_total ' \
        -e '^order_pool_processing_seconds' -e '^# [A-Z]* order_pool_processing_seconds ' \
        "$testdata/paytrace-exposition.txt" >"$tmp/partial.txt"
    rc=0
    check "$tmp/partial.txt" >"$tmp/out2" || rc=$?
    out="$(grep '^  MISSING' "$tmp/out2" | awk '{print $2}' | tr '\n' ' ')"
    if [[ "$rc" != 1 || "$out" != "order_pool_processing_seconds order_redis_errors_total " ]]; then
        cat "$tmp/out2"
        echo "self-test 2 FAILED: want exit 1 and those two missing, got exit $rc and: $out"
        return 1
    fi
    tail -n 1 "$tmp/out2"

    echo "self-test 3: extraction ignores label names, label values, comments and functions"
    check "$testdata/paytrace-exposition.txt" "$testdata/tricky.rules.yml" "$testdata/tricky.dashboard.json" >"$tmp/out3" || true
    out="$(grep -E '^  (ok|MISSING)' "$tmp/out3" | awk '{print $2}' | tr '\n' ' ')"
    local want="order_pool_processed_total order_pool_processing_seconds order_queue_length paytrace_exporter_state paytrace_never_exposed_total process_open_fds tokio_workers "
    if [[ "$out" != "$want" ]]; then
        cat "$tmp/out3"
        echo "self-test 3 FAILED: want: $want"
        echo "                    got:  $out"
        return 1
    fi
    grep -q '^  MISSING  paytrace_never_exposed_total$' "$tmp/out3" || { cat "$tmp/out3"; echo "self-test 3 FAILED"; return 1; }
    echo "extracted: $out"
    echo "self-test passed"
}

case "${1:-}" in
    --self-test) self_test ;;
    -h | --help) usage ;;
    "" | -*) usage; exit 2 ;;
    *)
        [[ -r "$1" ]] || { echo "check_metric_names.sh: cannot read $1" >&2; exit 2; }
        check "$1"
        ;;
esac
