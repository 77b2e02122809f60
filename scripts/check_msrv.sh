#!/usr/bin/env bash
# The crate's declared MSRV holds: no dependency the library builds with (normal and build
# dependencies, every feature on, as locked) declares a `rust-version` above the crate's own;
# and, when that toolchain is installed (`rustup toolchain list`), the library builds with it.
#
#   scripts/check_msrv.sh          # exits 1 naming the dependencies above the declared MSRV
set -euo pipefail
cd "$(dirname "$0")/.."

cargo metadata --format-version 1 --locked --all-features | python3 -c '
import json, sys
meta = json.load(sys.stdin)
pkgs = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
root = meta["resolve"]["root"]
def version(v):
    parts = [int(x) for x in (v or "0").split(".")]
    return tuple(parts + [0] * (3 - len(parts)))
# What the library needs: normal and build edges from the crate, never dev edges.
seen, stack = set(), [root]
while stack:
    node = nodes[stack.pop()]
    for dep in node["deps"]:
        kinds = {k["kind"] for k in dep["dep_kinds"]}
        if node["id"] == root and kinds <= {"dev"}:
            continue
        if dep["pkg"] not in seen:
            seen.add(dep["pkg"])
            stack.append(dep["pkg"])
crate = pkgs[root]
msrv = crate.get("rust_version")
if not msrv:
    sys.exit("check_msrv: Cargo.toml declares no rust-version")
above = sorted((version(pkgs[p].get("rust_version")), pkgs[p]["name"], pkgs[p]["version"]) for p in seen
               if version(pkgs[p].get("rust_version")) > version(msrv))
needed = max((version(pkgs[p].get("rust_version")) for p in seen), default=(0,))
dotted = lambda v: ".".join(map(str, v[:2] if v[2] == 0 else v))
print(f"check_msrv: rust-version {msrv}; the highest a dependency declares: {dotted(needed)} ({len(seen)} crates)")
if above:
    for v, name, ver in above:
        print(f"  {name} {ver} declares rust-version {dotted(v)}")
    sys.exit(1)
print(msrv)
' > target/msrv.txt || { cat target/msrv.txt; exit 1; }
cat target/msrv.txt | head -1
msrv=$(tail -n 1 target/msrv.txt)
if rustup toolchain list 2>/dev/null | grep -q "^$msrv"; then
  echo "check_msrv: building the library with $msrv"
  cargo "+$msrv" check --locked --lib --all-features
else
  echo "check_msrv: toolchain $msrv not installed here; the declared-versions check above stands alone"
fi
