#!/usr/bin/env bash
# The SBOM of the trust-injector binary: CycloneDX 1.5 JSON made from Cargo.lock by
# cargo-cyclonedx (the CycloneDX project's own tool, pinned in tests/programs.tsv and
# installed by .ci/tools.sh), for the musl target the release binaries are built for,
# then checked:
#   - our own package is pkg:cargo/trust-injector@VERSION (bom-ref and purl), and no
#     file:// URL or the checkout's path is left in it: the same on every machine;
#   - it parses as CycloneDX JSON and describes the trust-injector binary;
#   - every package it lists is in Cargo.lock, at the locked version;
#   - every package the binary is built from (what Cargo resolves for that target:
#     normal dependencies of trust-injector, transitively) is listed;
#   - given the amd64 binary, every crate in its embedded audit data (cargo auditable,
#     see .ci/build-static.sh) is listed too: the SBOM and the binary agree.
#
#   bash .ci/sbom.sh OUT_FILE [AMD64_BINARY]
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
log() { printf '[sbom] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

dest=${1:?usage: bash .ci/sbom.sh OUT_FILE [AMD64_BINARY]}
binary=${2:-}
target=x86_64-unknown-linux-musl
# shellcheck source=.ci/tools.sh
source .ci/tools.sh
cyclonedx=$(cargo_tool cargo-cyclonedx)
# Its output has the creation time in it: the commit's, so the same commit gives the same file.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# cargo-cyclonedx writes <binary>_bin.cdx.json beside Cargo.toml (its --describe binaries
# refuses another name); moved away at once.
made=trust-injector_bin.cdx.json
rm -f "$made"
"$cyclonedx" cyclonedx --manifest-path Cargo.toml --format json --spec-version 1.5 \
  --describe binaries --target "$target" -qq >&2 || die "cargo cyclonedx failed"
[ -f "$made" ] || die "cargo cyclonedx did not write $made"
mv "$made" "$dest"

# cargo-cyclonedx names our own package by where it was checked out: bom-ref
# path+file:///<checkout>#trust-injector@X.Y.Z and a purl with download_url=file://., so
# the SBOM would differ between machines and tell the build path. Our component becomes
# pkg:cargo/trust-injector@X.Y.Z in both fields, and every reference to the old bom-ref
# follows (dependencies, dependsOn, anywhere). The layout of the file is kept as it was.
python3 - "$dest" <<'EOF' || die "could not normalise our component's bom-ref in $dest"
import json, sys
path = sys.argv[1]
sbom = json.load(open(path))
main = sbom["metadata"]["component"]
old, new = main["bom-ref"], f"pkg:cargo/{main['name']}@{main['version']}"
def rename(node):
    if isinstance(node, dict):
        return {k: rename(v) for k, v in node.items()}
    if isinstance(node, list):
        return [rename(v) for v in node]
    return new if node == old else node
sbom = rename(sbom)
sbom["metadata"]["component"]["purl"] = new
with open(path, "w") as f:
    f.write(json.dumps(sbom, indent=2, ensure_ascii=False))
EOF
checkout=$(pwd -P)
if grep -n -e 'file://' -e "$checkout" "$dest" >&2; then
  die "$dest names a local path (above): it would differ between checkouts"
fi

cargo metadata --format-version 1 --locked --filter-platform "$target" >"$tmp/metadata.json" \
  || die "cargo metadata failed"
python3 - "$dest" "$tmp/metadata.json" Cargo.lock <<'EOF' || die "$dest does not describe the binary (above)"
import json, sys, tomllib
sbom_path, meta_path, lock_path = sys.argv[1:]
sbom = json.load(open(sbom_path))
assert sbom.get("bomFormat") == "CycloneDX", "not a CycloneDX document"
main = sbom["metadata"]["component"]
assert main["name"] == "trust-injector", f"describes {main['name']}, not trust-injector"

def components(cs):
    for c in cs or []:
        yield c
        yield from components(c.get("components"))
listed = {(c["name"], c["version"]) for c in components(sbom.get("components"))}

lock = {(p["name"], p["version"]) for p in tomllib.load(open(lock_path, "rb"))["package"]}
unlocked = sorted(listed - lock)
assert not unlocked, f"listed but not in Cargo.lock at that version: {unlocked}"

meta = json.load(open(meta_path))
pkgs = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
root = next(i for i, p in pkgs.items() if p["name"] == "trust-injector")
seen, todo = set(), [root]
while todo:
    for dep in nodes[todo.pop()]["deps"]:
        if any(k["kind"] is None for k in dep["dep_kinds"]) and dep["pkg"] not in seen:
            seen.add(dep["pkg"])
            todo.append(dep["pkg"])
built = {(pkgs[i]["name"], pkgs[i]["version"]) for i in seen}
missing = sorted(built - listed)
assert not missing, f"in the binary's dependency graph but not in the SBOM: {missing}"
print(f"{len(listed)} components, all in Cargo.lock; covers the {len(built)} packages the binary links")
EOF
if [ -n "$binary" ]; then
  "$(cargo_tool rust-audit-info)" "$binary" >"$tmp/audit.json" || die "no cargo auditable data in $binary"
  python3 - "$dest" "$tmp/audit.json" <<'EOF' || die "$dest and the audit data of $binary disagree (above)"
import json, sys
sbom, audit = (json.load(open(p)) for p in sys.argv[1:])
def components(cs):
    for c in cs or []:
        yield c
        yield from components(c.get("components"))
listed = {(c["name"], c["version"]) for c in components(sbom.get("components"))}
inside = {(p["name"], p["version"]) for p in audit["packages"] if not p.get("root")}
missing = sorted(inside - listed)
assert not missing, f"in the binary's audit data but not in the SBOM: {missing}"
print(f"the {len(inside)} crates in the binary's audit data are all in the SBOM")
EOF
fi
log "ok: $dest ($(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["specVersion"])' "$dest"))"
