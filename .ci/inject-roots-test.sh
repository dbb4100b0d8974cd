#!/usr/bin/env bash
# Issue 27, in real containers: the injected pod's trust containers run with podman as
# the pod spec says them (same commands, UID 65532, read-only root filesystem, all
# capabilities dropped, shared volumes, in order), on one small image per root layout
# (Debian/distroless/Wolfi, RHEL/UBI, SUSE, Alpine, and scratch with none):
#   1. trust-injector-install (our image) copies the static binary into trust-bin;
#   2. copy-gateway-roots runs that copy inside the layout's image (`roots --out`);
#   3. the sidecar (`run --base=system`, base mounted at /etc/ssl/certs) publishes the
#      private CA with the image's roots, or with the embedded Mozilla roots for
#      scratch, said in its log and /status; its exec probes (`probe ready|live`) pass.
# Usage: .ci/inject-roots-test.sh [STATIC-BINARY]   (default: a musl debug build)
# Needs podman (tests/programs.tsv) and openssl; no registry: the images are imported
# from directories. Storage and configuration are private to the run, as in
# .ci/container-test.sh.
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
log() { printf '[inject-roots] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
command -v podman >/dev/null || die "needs podman (Debian package podman)"
command -v openssl >/dev/null || die "needs openssl (Debian package openssl)"

BIN=${1:-${TRUST_INJECTOR_AMD64_BIN:-}}
if [ -z "$BIN" ]; then
  cargo build --quiet --target x86_64-unknown-linux-musl --bin trust-injector
  BIN=target/x86_64-unknown-linux-musl/debug/trust-injector
fi
file "$BIN" | grep -q 'static' || die "$BIN is not a static binary"

W=$(mktemp -d /tmp/trust-injector-roots.XXXXXX)
chmod 0755 "$W"
# shellcheck source=.ci/podman-lib.sh
source .ci/podman-lib.sh
private_containers "$W"
cleanup() {
  podman_ rm -f -t 0 trust-injector-roots-probe >/dev/null 2>&1 || true
  podman_ system reset -f >/dev/null 2>&1 || true
  rm -rf "$W" 2>/dev/null || true
}
trap cleanup EXIT

# An image from a directory: the layout's bundle only (a real public bundle, the
# host's), no shell, no cp.
image() { # name, bundle path inside the image or ""
  local d="$W/img-$1"
  mkdir -p "$d/tmp"
  if [ -n "$2" ]; then
    mkdir -p "$d/$(dirname "$2")"
    cp /etc/ssl/certs/ca-certificates.crt "$d/$2"
  fi
  tar -C "$d" -c . | podman_ import -q - "localhost/roots-$1:test" >/dev/null
}
mkdir -p "$W/img-ti"
cp "$BIN" "$W/img-ti/trust-injector"
tar -C "$W/img-ti" -c . | podman_ import -q - localhost/roots-ti:test >/dev/null
image debian etc/ssl/certs/ca-certificates.crt
image ubi etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem
image suse var/lib/ca-certificates/ca-bundle.pem
image alpine etc/ssl/cert.pem
image scratch ""
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/ca.key" \
  -out "$W/ca.crt" -subj /CN=inject-roots-private-ca -days 30 2>/dev/null

run_() { podman_ run --rm --read-only --user 65532:65532 --cap-drop=ALL \
  --security-opt=no-new-privileges --network=host "$@"; }
for img in debian ubi suse alpine scratch; do
  P="$W/pod-$img"
  mkdir -p "$P"/{bin,base,trust,secret}
  chmod 0777 "$P"/{bin,base,trust}
  cp "$W/ca.crt" "$P/secret/ca.crt"
  chmod -R a+rX "$P/secret"
  run_ -v "$P/bin:/var/run/trust-bin" localhost/roots-ti:test \
    /trust-injector roots --install=/var/run/trust-bin >/dev/null
  run_ -v "$P/bin:/var/run/trust-bin:ro" -v "$P/base:/var/run/trust-base" \
    "localhost/roots-$img:test" /var/run/trust-bin/trust-injector roots --out=/var/run/trust-base \
    >"$P/roots.log"
  run_ -v "$P/secret:/etc/trust-injector/custom:ro" -v "$P/base:/etc/ssl/certs:ro" \
    -v "$P/trust:/var/run/trust" localhost/roots-ti:test /trust-injector run --once \
    --source=/etc/trust-injector/custom --base=system --out-dir=/var/run/trust --listen=off \
    >"$P/sidecar.log" 2>&1
  n=$(grep -c 'BEGIN CERTIFICATE' "$P/trust/ca-certificates.crt")
  grep -qF "$(sed -n 2p "$W/ca.crt")" "$P/trust/ca-certificates.crt" || die "$img: private CA not published"
  if [ "$img" = scratch ]; then
    grep -q 'embedded Mozilla roots' "$P/roots.log" || die "$img: roots did not say the fallback"
    grep -q 'using the embedded Mozilla roots' "$P/sidecar.log" || die "$img: sidecar log does not say the fallback"
  else
    cmp -s "$P/base/ca-certificates.crt" /etc/ssl/certs/ca-certificates.crt || die "$img: the image's bundle was not copied as it is"
    grep -q 'base=/etc/ssl/certs/ca-certificates.crt' "$P/sidecar.log" || die "$img: the sidecar did not start from the image's roots"
  fi
  log "ok: $img: $(sed 's/^trust-injector roots: //' "$P/roots.log" | cut -c1-90); $n certificates published"
done

# The exec probes, and /status, of the sidecar running on the scratch layout.
P="$W/pod-scratch"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
podman_ run -d --name trust-injector-roots-probe --read-only --user 65532:65532 --cap-drop=ALL \
  --network=host -v "$P/secret:/etc/trust-injector/custom:ro" -v "$P/base:/etc/ssl/certs:ro" \
  -v "$P/trust:/var/run/trust" localhost/roots-ti:test /trust-injector run \
  --source=/etc/trust-injector/custom --base=system --out-dir=/var/run/trust \
  --listen="127.0.0.1:$PORT" >/dev/null
ready=no
for _ in $(seq 1 30); do
  if podman_ exec trust-injector-roots-probe /trust-injector probe ready --port="$PORT" 2>/dev/null; then ready=yes; break; fi
  sleep 1
done
[ "$ready" = yes ] || die "probe ready never passed"
podman_ exec trust-injector-roots-probe /trust-injector probe live --port="$PORT" || die "probe live failed"
source=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["base"]["source"])')
case "$source" in *embedded*) ;; *) die "/status base.source is $source, want the embedded roots" ;; esac
log "ok: scratch: exec probes pass; /status base.source: $source"
log "passed"
