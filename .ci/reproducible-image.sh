#!/usr/bin/env bash
# The release image is reproducible: two builds of the same commit (.ci/build-image.sh,
# each from freshly copied binaries, so every file time differs) must give the same
# manifest list digest, and the image must name its commit and time in its OCI labels.
#
#   bash .ci/reproducible-image.sh     # prints the digest both builds gave
#
# Runs as root (buildah); builds the static binaries first unless AMD64_BIN/ARM64_BIN.
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
log() { printf '[reproducible-image] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

if [ -z "${AMD64_BIN:-}" ] || [ -z "${ARM64_BIN:-}" ]; then
  mapfile -t bins < <(bash .ci/build-static.sh)
  [ "${#bins[@]}" = 2 ] || die ".ci/build-static.sh printed ${#bins[@]} paths, want 2"
  export AMD64_BIN=${bins[0]} ARM64_BIN=${bins[1]}
fi
work=$(mktemp -d /tmp/trust-injector-repro.XXXXXX)
trap 'rm -rf "$work"' EXIT

first=$(bash .ci/build-image.sh "$work/first")
sleep 1 # a second apart, so a timestamp that leaks in shows as a different digest
second=$(bash .ci/build-image.sh "$work/second")
[ "$first" = "$second" ] || die "two builds of $(git rev-parse --short HEAD) differ: $first, then $second"

# The labels, read from the layout's amd64 image config.
python3 - "$work/first" "$(git rev-parse HEAD)" "$(date -u -d "@$(git log -1 --format=%ct)" +%Y-%m-%dT%H:%M:%SZ)" <<'PY' \
  || die "the image's OCI labels do not name the commit (above)"
import json, sys
layout, revision, created = sys.argv[1:]
blob = lambda d: json.load(open(f"{layout}/blobs/{d.replace(':', '/')}"))
index = blob(json.load(open(f"{layout}/index.json"))["manifests"][0]["digest"])
order = [m["platform"]["architecture"] for m in index["manifests"]]
assert order == ["amd64", "arm64"], f"the list holds {order}, want amd64 then arm64 (a fixed order)"
for m in index["manifests"]:
    config = blob(blob(m["digest"])["config"]["digest"])
    labels = config["config"].get("Labels", {})
    arch = m["platform"]["architecture"]
    assert labels.get("org.opencontainers.image.revision") == revision, f"{arch}: revision {labels.get('org.opencontainers.image.revision')}, want {revision}"
    assert labels.get("org.opencontainers.image.created") == created, f"{arch}: created {labels.get('org.opencontainers.image.created')}, want {created}"
    assert config.get("created", "").startswith(created[:-1]), f"{arch}: config created {config.get('created')}, want {created}"
    assert "io.buildah.version" not in labels, f"{arch}: labelled with the buildah version"
print(f"labels: revision {revision}, created {created}, on {len(index['manifests'])} platforms")
PY
log "ok: two builds of $(git rev-parse --short HEAD) gave the same manifest list $first"
printf '%s\n' "$first"
