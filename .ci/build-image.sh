#!/usr/bin/env bash
# Builds the release image, the linux/amd64 + linux/arm64 manifest list, from the two
# static binaries of .ci/build-static.sh (BINARY_SOURCE=context, as .ci/container-test.sh
# does: no registry, no emulation) and writes it as an OCI image layout, so the release
# can push it unchanged and anyone can compare digests:
#
#   bash .ci/build-image.sh LAYOUT_DIR     # prints the manifest list's digest (sha256:...)
#
# The layout holds one tag, the version from Cargo.toml. Private buildah storage in a
# temporary directory: nothing is left in the machine's image store. Runs as root.
# Reproducible: every timestamp (image config, history, file times in the layers) is
# SOURCE_DATE_EPOCH, by default the commit's time, and the labels name the commit
# (org.opencontainers.image.revision, .created), so the same commit and inputs give the
# same digest; no label names the buildah version (--identity-label=false).
# Knobs: AMD64_BIN, ARM64_BIN (skip the build-static call when both are given);
# CA_BUNDLE, the roots the image carries (default: this machine's Debian bundle; the
# release publishes the one it used, so a rebuild elsewhere can use the same).
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
log() { printf '[build-image] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

layout=${1:?usage: bash .ci/build-image.sh LAYOUT_DIR}
command -v buildah >/dev/null || die "needs buildah; install it: apt-get install -y --no-install-recommends buildah"
version=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "trust-injector"))')

if [ -z "${AMD64_BIN:-}" ] || [ -z "${ARM64_BIN:-}" ]; then
  mapfile -t bins < <(bash .ci/build-static.sh)
  [ "${#bins[@]}" = 2 ] || die ".ci/build-static.sh printed ${#bins[@]} paths, want 2"
  AMD64_BIN=${bins[0]} ARM64_BIN=${bins[1]}
fi

# The build context the Dockerfile's binary-context stage copies from (see Dockerfile).
ctx=out/image
rm -rf "$ctx"
mkdir -p "$ctx/amd64" "$ctx/arm64"
cp "$AMD64_BIN" "$ctx/amd64/trust-injector"
cp "$ARM64_BIN" "$ctx/arm64/trust-injector"
cp "${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" "$ctx/ca-certificates.crt"

epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
revision=$(git rev-parse HEAD)
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

work=$(mktemp -d /tmp/trust-injector-image.XXXXXX)
cleanup() { rm -rf "$work" "$ctx"; rmdir out 2>/dev/null || true; }
trap cleanup EXIT
store=(--root "$work/root" --runroot "$work/runroot" --storage-driver vfs)
list=localhost/trust-injector:$version

# One platform at a time, added to the list in a fixed order: a multi-platform
# `buildah build --manifest` adds each image when its build ends, so the list's order,
# and with it its digest, would depend on which build finished first.
buildah "${store[@]}" manifest create "$list" >/dev/null || die "buildah manifest create failed"
for arch in amd64 arm64; do
  buildah "${store[@]}" build --isolation chroot --pull=never --skip-unused-stages=true \
    --timestamp "$epoch" --identity-label=false \
    --build-arg BINARY_SOURCE=context --build-arg "VERSION=$version" \
    --build-arg "REVISION=$revision" --build-arg "CREATED=$created" \
    --platform "linux/$arch" --tag "$list-$arch" . >"$work/build-$arch.log" 2>&1 \
    || { cat "$work/build-$arch.log" >&2; die "buildah build for linux/$arch failed"; }
  buildah "${store[@]}" manifest add "$list" "$list-$arch" >/dev/null \
    || die "could not add linux/$arch to $list"
done

rm -rf "$layout"
buildah "${store[@]}" manifest push --all --quiet "$list" "oci:$layout:$version" >&2 \
  || die "could not write the OCI layout $layout"
digest=$(python3 -c '
import json, sys
m = json.load(open(sys.argv[1] + "/index.json"))["manifests"]
assert len(m) == 1, m
print(m[0]["digest"])' "$layout") || die "$layout/index.json does not hold exactly one manifest list"
log "ok: $list ($digest) in $layout, revision $revision, created $created"
printf '%s\n' "$digest"
