#!/usr/bin/env bash
# Real container test for trust-injector, without a Docker engine.
#
# Builds the image from the top-level Dockerfile with buildah as a multi-arch manifest
# list (linux/amd64 and linux/arm64, from the host-built static binaries of
# .ci/build-static.sh, BINARY_SOURCE=context, so no registry is contacted and nothing is
# emulated), checks that both platforms are in it, each with a binary of its own
# architecture within the size budget, then runs the amd64 image with podman the way a
# restricted Kubernetes pod would (--read-only, --user 65532, a Secret-style volume laid
# out like the kubelet's AtomicWriter, an output volume) and checks what a user relies
# on: the bundle and the hashed directory appear, /readyz answers 200, a Secret rotation
# reaches the bundle, `podman stop` ends the container cleanly, and the image stays small.
#
# Runs as root from the repository root or anywhere inside it; needs no stdin.
# Environment knobs (all optional):
#   KEEP_TMP=1               keep the temporary storage and volumes for inspection
#   IMAGE_MAX_BYTES=N        size limit of each platform's image (default 10000000, i.e. 10 MB)
#   BINARY_MAX_BYTES=N       size limit of each platform's binary (default 6000000, i.e. 6 MB)
set -euo pipefail

cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"

log() { printf '[container-test] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

IMAGE=localhost/trust-injector:ci
IMAGE_MAX_BYTES=${IMAGE_MAX_BYTES:-10000000}
BINARY_MAX_BYTES=${BINARY_MAX_BYTES:-6000000}
export BINARY_MAX_BYTES
export DEBIAN_FRONTEND=noninteractive

# --- 1. tools, pinned to the Debian 12 (bookworm) versions this was tested with -------
# Debian keeps only the newest point-release/security build of a package in its
# archive, so an exact pin can disappear; then the current bookworm build is taken and
# the difference is said loudly rather than failing the run.
PINNED_PACKAGES=(
  "buildah=1.28.2+ds1-3+deb12u1+b3"
  "podman=4.3.1+ds1-8+deb12u1+b3"
  "runc=1.1.5+ds1-1+deb12u1"
  "conmon"
  "curl"
  "openssl"
  "ca-certificates"
  "binutils"
  "musl-tools=1.2.3-1"
)
need_install=()
for spec in "${PINNED_PACKAGES[@]}"; do
  pkg=${spec%%=*}
  want=${spec#"$pkg"}; want=${want#=}
  have=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$pkg" 2>/dev/null || true)
  if [ "$have" = "installed $want" ] || { [ -z "$want" ] && [ "${have%% *}" = installed ]; }; then
    continue
  fi
  need_install+=("$spec")
done
if [ "${#need_install[@]}" -gt 0 ]; then
  log "installing ${need_install[*]}"
  apt-get update -qq
  if ! apt-get install -y -qq --no-install-recommends "${need_install[@]}" >/dev/null; then
    unpinned=("${need_install[@]%%=*}")
    log "WARNING: a pinned version is no longer in the archive; installing the current bookworm builds of: ${unpinned[*]}"
    apt-get install -y -qq --no-install-recommends "${unpinned[@]}" >/dev/null
  fi
fi
log "$(buildah --version); $(podman --version); $(runc --version | head -n1)"

# --- 2. the static binaries, built on the host -------------------------------------------
# musl rather than glibc+crt-static: the musl target links fully statically with Rust's
# self-contained musl, and its resolver works in an empty image, whereas a static glibc
# binary still wants to dlopen NSS modules for DNS (`verify` resolves backend names).
# .ci/build-static.sh builds amd64 and arm64 and checks each is static, of its
# architecture, runnable and within BINARY_MAX_BYTES; it prints the two paths.
mapfile -t bins < <(bash .ci/build-static.sh)
[ "${#bins[@]}" = 2 ] || die ".ci/build-static.sh printed ${#bins[@]} paths, want 2"

# The build context gets exactly what the Dockerfile's `context` stage copies: one
# binary per TARGETARCH and the (architecture-independent) CA bundle.
rm -rf out/image
mkdir -p out/image/amd64 out/image/arm64
cp "${bins[0]}" out/image/amd64/trust-injector
cp "${bins[1]}" out/image/arm64/trust-injector
cp /etc/ssl/certs/ca-certificates.crt out/image/ca-certificates.crt

# --- 3. private container storage and configuration -----------------------------------
WORK=$(mktemp -d /tmp/trust-injector-ctest.XXXXXX)
chmod 0755 "$WORK"
NAME="trust-injector-ci-$$"
# shellcheck source=.ci/podman-lib.sh
source .ci/podman-lib.sh
private_containers "$WORK"

status=1
cleanup() {
  set +e  # best effort from here on: every step runs even if one fails
  if [ "$status" -ne 0 ] && podman_ container exists "$NAME" 2>/dev/null; then
    log "container log:"
    podman_ logs "$NAME" >&2 || true
  fi
  podman_ rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
  # Anything podman left mounted under our storage (shm) must go before rm -rf.
  findmnt -rn -o TARGET | grep "^$WORK" | sort -r | while read -r m; do umount -l "$m" || true; done
  if [ "${KEEP_TMP:-}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  rm -rf out/image
  rmdir out 2>/dev/null
}
trap cleanup EXIT

# --- 4. build the manifest list ---------------------------------------------------------
# --pull=never proves that no stage's base image is needed: `FROM scratch` pulls
# nothing, and buildah's --skip-unused-stages (default true) never touches `build`.
# COPY is all the arm64 image's build does, so it needs no emulation.
log "buildah build --platform linux/amd64,linux/arm64 --manifest $IMAGE (BINARY_SOURCE=context)"
buildah_ build --isolation chroot --pull=never --skip-unused-stages=true \
  --build-arg BINARY_SOURCE=context --platform linux/amd64,linux/arm64 \
  --manifest "$IMAGE" . >"$WORK/build.log" 2>&1 \
  || { cat "$WORK/build.log" >&2; die "buildah build failed"; }
buildah_ manifest inspect "$IMAGE" >"$WORK/manifest.json" || die "$IMAGE is not a manifest list"
# One "os/arch digest" line per instance.
python3 -c '
import json, sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    p = m["platform"]
    print(p["os"] + "/" + p["architecture"] + (("/" + p["variant"]) if p.get("variant") else ""), m["digest"])
' "$WORK/manifest.json" | sort >"$WORK/platforms"
[ "$(cut -d' ' -f1 "$WORK/platforms" | tr '\n' ' ')" = "linux/amd64 linux/arm64 " ] \
  || die "manifest list holds [$(cut -d' ' -f1 "$WORK/platforms" | tr '\n' ' ')], want exactly linux/amd64 and linux/arm64"
log "ok: manifest list $IMAGE holds linux/amd64 and linux/arm64"

check_platform() { # check_platform ARCH DIGEST ELF_MACHINE : one instance of the list
  local arch=$1 digest=$2 machine=$3 ref ctr mnt got size bin_size user
  ref="${IMAGE%:*}@$digest"
  got=$(buildah_ inspect --type image --format '{{.OCIv1.Architecture}}' "$ref")
  [ "$got" = "$arch" ] || die "linux/$arch entry $digest is an image for '$got'"
  user=$(buildah_ inspect --type image --format '{{.OCIv1.Config.User}}' "$ref")
  [ "$user" = "65532:65532" ] || die "linux/$arch image user is '$user', want 65532:65532"
  ctr=$(buildah_ from --pull=never "$ref" 2>/dev/null)
  mnt=$(buildah_ mount "$ctr")
  got=$(readelf -h "$mnt/trust-injector" | awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}')
  [ "$got" = "$machine" ] || die "linux/$arch image's /trust-injector is built for '$got', want '$machine'"
  if readelf -l "$mnt/trust-injector" | grep -q 'Requesting program interpreter'; then
    die "linux/$arch image's /trust-injector is dynamically linked"
  fi
  [ -s "$mnt/etc/ssl/certs/ca-certificates.crt" ] || die "linux/$arch image lacks /etc/ssl/certs/ca-certificates.crt"
  bin_size=$(stat -c %s "$mnt/trust-injector")
  size=$(du -sb "$mnt" | cut -f1)
  buildah_ umount "$ctr" >/dev/null
  buildah_ rm "$ctr" >/dev/null
  [ "$bin_size" -le "$BINARY_MAX_BYTES" ] || die "linux/$arch binary is $bin_size bytes, limit $BINARY_MAX_BYTES"
  [ "$size" -le "$IMAGE_MAX_BYTES" ] || die "linux/$arch image is $size bytes, limit $IMAGE_MAX_BYTES"
  log "ok: linux/$arch: $machine static binary of $bin_size bytes (limit $BINARY_MAX_BYTES), image content $size bytes (limit $IMAGE_MAX_BYTES), user 65532:65532"
}
while read -r platform digest; do
  case "$platform" in
    linux/amd64) check_platform amd64 "$digest" "Advanced Micro Devices X86-64" ;;
    linux/arm64) check_platform arm64 "$digest" "AArch64" ;;
  esac
done <"$WORK/platforms"

# --- 5. a Secret volume the way the kubelet writes it (secret_write, .ci/podman-lib.sh) --
SECRET="$WORK/secret"
OUT="$WORK/out"
mkdir -p "$SECRET" "$OUT"
chmod 0755 "$SECRET"
chown 65532:65532 "$OUT"


pem_body() { sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/{/-----/d;p}' "$1" | tr -d '\n\r '; }
bundle_has() { # bundle_has CERT_FILE [OUT_DIR]
  local bundle="${2:-$OUT}/ca-certificates.crt"
  [ -f "$bundle" ] && tr -d '\n\r ' <"$bundle" | grep -qF "$(pem_body "$1")"
}
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local start=$SECONDS
  until "$@"; do
    [ $((SECONDS - start)) -lt "$limit" ] || die "timed out after ${limit}s waiting for: $what"
    sleep 0.2
  done
  log "ok: $what ($((SECONDS - start))s)"
}

ROOT_CA=examples/ca-secret/root-ca.crt
INTERMEDIATE_CA=examples/ca-secret/intermediate-ca.crt
secret_write ca.crt "$ROOT_CA"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"

# --- 6. run it as a restricted pod would -------------------------------------------------
log "podman run --read-only --user 65532 (listening on 127.0.0.1:$PORT)"
podman_ run -d --name "$NAME" --read-only --user 65532 --network host \
  --cap-drop ALL --security-opt no-new-privileges \
  -v "$SECRET:/etc/trust-injector/custom:ro" \
  -v "$OUT:/var/run/trust" \
  "$IMAGE" run --source /etc/trust-injector/custom --listen "127.0.0.1:$PORT" >/dev/null

# HTTP reads of the container's endpoints. Under load (2 shared cores, a parallel build) one
# request can miss a short deadline although the server is right, so a transport failure
# (timeout, refused or reset connection: no HTTP status) is retried a few times with a
# generous deadline. An HTTP status, and what the body holds, are never retried: the
# callers check them.
HTTP_TRIES=4 HTTP_MAX_TIME=10
http_get() { # http_get PATH FILE: the body into FILE; fails on an HTTP error or after HTTP_TRIES
  local try rc
  for ((try = 1; ; try++)); do
    rc=0
    curl -sS -f --max-time "$HTTP_MAX_TIME" -o "$2" "$URL$1" || rc=$?
    case $rc in
      0) return 0 ;;
      22) log "GET $1: HTTP error"; return 1 ;;
    esac
    [ "$try" -lt "$HTTP_TRIES" ] || { log "GET $1: no answer after $try tries"; return 1; }
    log "GET $1: curl exit $rc (try $try of $HTTP_TRIES), retrying"
    sleep 1
  done
}
http_code() { # http_code PATH: the status code, 000 if no answer after HTTP_TRIES
  local try code
  for ((try = 1; try <= HTTP_TRIES; try++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time "$HTTP_MAX_TIME" "$URL$1" || true)
    [ "$code" = 000 ] || break
    sleep 1
  done
  echo "$code"
}
running() { [ "$(podman_ inspect --format '{{.State.Running}}' "$NAME")" = true ] || die "container exited"; }

wait_for 30 "bundle published with the custom root CA" bundle_has "$ROOT_CA"
running
wait_for 10 "/readyz answers 200" test "$(http_code /readyz)" = 200
[ "$(http_code /healthz)" = 200 ] || die "/healthz did not answer 200"
log "ok: /healthz answers 200"

n_bundle=$(grep -c -- '-----BEGIN CERTIFICATE-----' "$OUT/ca-certificates.crt")
[ "$n_bundle" -gt 50 ] || die "bundle holds only $n_bundle certificates: the image's base roots are missing"
log "ok: bundle holds $n_bundle certificates (image roots + custom)"
root_hash=$(openssl x509 -noout -subject_hash -in "$ROOT_CA")
[ -f "$OUT/certs/$root_hash.0" ] || die "certs/$root_hash.0 (root CA by subject hash) missing"
cmp -s <(openssl x509 -outform DER -in "$OUT/certs/$root_hash.0") <(openssl x509 -outform DER -in "$ROOT_CA") \
  || die "certs/$root_hash.0 is not the root CA"
log "ok: certs/$root_hash.0 is the root CA"
unreadable=$(find "$OUT" -mindepth 1 \( \( -type f ! -perm -0004 \) -o \( -type d ! -perm -0005 \) \) -print)
[ -z "$unreadable" ] || die "published files not readable by other users (the gateway runs as another user): $unreadable"
log "ok: everything published is world-readable"
pid=$(podman_ inspect --format '{{.State.Pid}}' "$NAME")
uid=$(awk '/^Uid:/{print $2}' "/proc/$pid/status")
[ "$uid" = 65532 ] || die "process runs as uid $uid, want 65532"
# Read once the daemon is idle after its first publish.
sleep 1
log "ok: runs as uid 65532; resident memory after first publish, idle: $(awk '/^VmRSS:/{print $2, $3}' "/proc/$pid/status")"
http_get /metrics "$WORK/metrics.txt" || die "/metrics failed"
grep -q '^trust_injector_bundle_certificates' "$WORK/metrics.txt" \
  || die "/metrics lacks trust_injector_bundle_certificates"
log "ok: /metrics"
http_get /status "$WORK/status.json" || die "/status failed"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/status.json" || die "/status is not JSON"
log "ok: /status is JSON ($(wc -c <"$WORK/status.json") bytes)"

# --- 7. rotation: same key, new content, swapped through ..data --------------------------
bundle_sha=$(sha256sum "$OUT/ca-certificates.crt" | cut -d' ' -f1)
secret_write ca.crt "$ROOT_CA" "$INTERMEDIATE_CA"
wait_for 20 "rotated Secret (root + intermediate) reaches the bundle" bundle_has "$INTERMEDIATE_CA"
running
bundle_has "$ROOT_CA" || die "root CA vanished after rotation"
[ "$(sha256sum "$OUT/ca-certificates.crt" | cut -d' ' -f1)" != "$bundle_sha" ] || die "bundle unchanged"
int_hash=$(openssl x509 -noout -subject_hash -in "$INTERMEDIATE_CA")
wait_for 5 "certs/$int_hash.0 (intermediate) in the hashed directory" test -f "$OUT/certs/$int_hash.0"
[ "$(http_code /readyz)" = 200 ] || die "/readyz not 200 after rotation"

sleep 1
log "resident memory after rotation, idle: $(awk '/^VmRSS:/{print $2, $3}' "/proc/$pid/status")"

# --- 8. stop ------------------------------------------------------------------------------
t0=$(date +%s%N)
podman_ stop -t 10 "$NAME" >/dev/null || die "podman stop failed"
t1=$(date +%s%N)
exit_code=$(podman_ inspect --format '{{.State.ExitCode}}' "$NAME")
log "podman stop took $(( (t1 - t0) / 1000000 )) ms; container exit code $exit_code"
[ "$exit_code" = 0 ] || die "container exited with $exit_code after SIGTERM (want 0)"
log "published after stop: $(cd "$OUT" && find . -mindepth 1 -maxdepth 1 -printf '%P%y ' | sed 's/l /@ /g; s/d /\/ /g; s/f / /g')"

# --- 9. init-container mode: `run --once` publishes and exits 0 -----------------------
ONCE_OUT="$WORK/out-once"
mkdir -p "$ONCE_OUT"
chown 65532:65532 "$ONCE_OUT"
podman_ run --rm --read-only --user 65532 --network none --cap-drop ALL --security-opt no-new-privileges \
  -v "$SECRET:/etc/trust-injector/custom:ro" -v "$ONCE_OUT:/var/run/trust" \
  "$IMAGE" run --once --source /etc/trust-injector/custom --listen off >"$WORK/once.log" 2>&1 \
  || { cat "$WORK/once.log" >&2; die "run --once did not exit 0"; }
bundle_has "$INTERMEDIATE_CA" "$ONCE_OUT" || die "run --once did not publish the Secret's certificates"
log "ok: run --once published and exited 0"

status=0
log "PASS: manifest list $IMAGE (linux/amd64 + linux/arm64) built without registry access or emulation; the amd64 image ran read-only as 65532, published, rotated and stopped cleanly"
