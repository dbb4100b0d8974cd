#!/usr/bin/env bash
# Issue 27, in real containers: a workload injected by `trust-injector inject` runs with
# podman as its pod spec says, on a real Debian userland, and its application's own curl
# trusts a private backend and follows a Secret rotation.
#   1. A Debian rootfs (debootstrap: curl, openssl, ca-certificates) is built once per
#      machine and cached as a tarball under ~/.cache/trust-injector/debootstrap/, keyed
#      by suite, variant, mirror and package list; it is imported with `podman import`
#      (no registry) and tagged with the image names the Deployment below uses, as is our
#      static binary (ENTRYPOINT and USER as the Dockerfile's).
#   2. `inject` (native layout) adds our containers to a Deployment whose app container
#      runs a loop of curl against a private HTTPS backend, next to an `istio-proxy`
#      stand-in. The pod runner, .ci/inject-pod-run.py, reads the injected JSON and, generically, runs each
#      container in one podman pod (shared loopback): same image, command/args, env,
#      securityContext (user, read-only root filesystem without podman's extra tmpfs,
#      no-new-privileges, capabilities, seccomp), memory/CPU limits, volumes as shared host
#      dirs, in the kubelet's order: init containers to completion, native sidecars
#      (`restartPolicy: Always`) started and their exec startupProbe passed, then the
#      containers. The Secret volume is a host dir written with the kubelet's AtomicWriter
#      sequence (secret_write below, as tests/common/atomic_writer.rs: a new timestamped
#      dir, `..data_tmp` symlink renamed over `..data`, per-key symlinks into `..data`).
#   3. Checks: the app's curl (only the injected SSL_CERT_FILE/SSL_CERT_DIR) trusts the
#      backend (root -> intermediate -> leaf, `openssl s_server` in the pod), and so does
#      `openssl s_client -CApath $SSL_CERT_DIR`; every unexpired root of the Debian image is
#      still in the bundle, and one is found through the hashed dir (no internet); the
#      backend switches to a leaf of a new CA (root + intermediate), which the app's curl
#      first rejects, then, once the Secret is rotated to that CA, the same running app
#      container's curl trusts; istio-proxy gets no SSL_CERT_* and no trust mount, and runs.
#   4. `podman kube play` of the classic layout (`inject --mode classic`): the sidecar
#      publishes, the app's curl trusts the backend and follows a rotation. What kube play
#      (podman 4.3 here) cannot do, and what the played copy changes because of it (section 5 below):
#      - native sidecars: an init container with `restartPolicy: Always` is run to
#        completion like any other (podman#25157), so the pod would never start: the
#        native layout is run by the pod runner only (2.);
#      - before 4.6, init containers get the pod's restartPolicy (podman#15631): a
#        finished one is restarted and kube play fails; the copy says `OnFailure`;
#      - Secret volumes crash 4.3's kube play (nil pointer in VolumeFromSecret) and are
#        never updated in any version: the copy mounts the AtomicWriter dir as a hostPath;
#      - httpGet probes become podman healthchecks, which need systemd timers: not run;
#      - every containerPort is published on the host: the sidecar's port must be free.
#   5. The `inject --openshift` layout as OpenShift's restricted-v2 SCC runs it (section 6
#      below): the workload without fixed UIDs, admitted as the SCC would (every container
#      the range's first UID, primary group 0, the pod's fsGroup owning the emptyDirs), run
#      by the pod runner; the sidecar publishes and follows a rotation, the app trusts.
# Usage: .ci/inject-pod-test.sh [STATIC-BINARY]   (default: a musl release build)
# INJECT_POD_KEEP=1 keeps the work dir, its containers and storage for debugging.
# Needs the programs below (tests/programs.tsv names their packages); root for debootstrap.
# Storage and configuration are private to the run, as in .ci/inject-roots-test.sh.
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
log() { printf '[inject-pod] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
need() { # need PROGRAM: fail naming its package from tests/programs.tsv
  command -v "$1" >/dev/null && return 0
  local pkg
  pkg=$(awk -F'\t' -v p="$1" '$2 == p { print $3; exit }' tests/programs.tsv)
  die "needs $1 (Debian package ${pkg:-unknown: add it to tests/programs.tsv})"
}
for p in podman runc catatonit debootstrap openssl python3 file; do need "$p"; done
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, podman's private storage)"
T0=$SECONDS

BIN=${1:-${TRUST_INJECTOR_AMD64_BIN:-}}
if [ -z "$BIN" ]; then
  # Release, as the image ships it: a debug build is too big for the injected memory limits.
  cargo build --quiet --release --target x86_64-unknown-linux-musl --bin trust-injector
  BIN=target/x86_64-unknown-linux-musl/release/trust-injector
fi
file "$BIN" | grep -q 'static' || die "$BIN is not a static binary"

# --- 1. the Debian userland, cached ----------------------------------------------------
SUITE=bookworm VARIANT=minbase PACKAGES=curl,openssl,ca-certificates
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${TRUST_INJECTOR_CACHE:-$HOME/.cache/trust-injector}/debootstrap
# FORMAT changes when what is done to the rootfs below changes, so old tarballs are not reused.
FORMAT=1
key=$(printf '%s %s %s %s %s' "$FORMAT" "$SUITE" "$VARIANT" "$MIRROR" "$PACKAGES" | sha256sum | cut -c1-12)
ROOTFS_TAR="$CACHE/debian-$SUITE-$VARIANT-$key.tar"
if [ ! -f "$ROOTFS_TAR" ]; then
  log "debootstrap $SUITE ($PACKAGES) into the cache, once per machine"
  mkdir -p "$CACHE"
  rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  t=$SECONDS
  debootstrap --variant="$VARIANT" --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" \
    >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; rm -rf "$rootfs" "$rootfs.log"; die "debootstrap failed"; }
  chmod 0755 "$rootfs" # mktemp's 0700 would become the image's /
  # What a slim image leaves out: package caches, indexes, docs.
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/{doc,man,info,locale}/*
  tar -C "$rootfs" --numeric-owner -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$rootfs" "$rootfs.log"
  log "debootstrap took $((SECONDS - t)) s; cached $(du -h "$ROOTFS_TAR" | cut -f1) as $ROOTFS_TAR"
fi

W=$(mktemp -d /tmp/trust-injector-pod.XXXXXX)
chmod 0755 "$W"
# shellcheck source=.ci/podman-lib.sh
source .ci/podman-lib.sh
private_containers "$W"
export -f podman_
export W
cleanup() {
  if [ -n "${INJECT_POD_KEEP:-}" ]; then log "kept $W (INJECT_POD_KEEP)"; return; fi
  podman_ pod rm -f -t 0 -a >/dev/null 2>&1 || true
  podman_ system reset -f >/dev/null 2>&1 || true
  rm -rf "$W" 2>/dev/null || true
}
trap cleanup EXIT

# The images the Deployment names, all local.
APP_IMAGE=docker.io/library/debian:bookworm
PROXY_IMAGE=docker.io/istio/proxyv2:1.24.0
TI_IMAGE=ghcr.io/trust-injector/trust-injector:test
# PATH and CMD as the official debian image has them (kube play sets no default PATH).
podman_ import -q --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' "$ROOTFS_TAR" "$APP_IMAGE" >/dev/null
podman_ tag "$APP_IMAGE" "$PROXY_IMAGE"
mkdir -p "$W/img-ti/tmp"
cp "$BIN" "$W/img-ti/trust-injector"
tar -C "$W/img-ti" -c . | podman_ import -q --change 'ENTRYPOINT ["/trust-injector"]' \
  --change 'USER 65532:65532' - "$TI_IMAGE" >/dev/null
log "images ready ($((SECONDS - T0)) s)"

# --- 2. PKI: two CAs (root -> intermediate -> leaf for localhost) ----------------------
pki() { # pki NAME
  local d="$W/pki/$1"
  mkdir -p "$d"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$d/root.key" -out "$d/root.crt" -days 30 \
    -subj "/CN=$1 root" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -new "${ec[@]}" -keyout "$d/int.key" -out "$d/int.csr" -subj "/CN=$1 intermediate" 2>/dev/null
  printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$d/int.ext"
  openssl x509 -req -in "$d/int.csr" -CA "$d/root.crt" -CAkey "$d/root.key" -CAcreateserial \
    -days 30 -extfile "$d/int.ext" -out "$d/int.crt" 2>/dev/null
  openssl req -new "${ec[@]}" -keyout "$d/leaf.key" -out "$d/leaf.csr" -subj /CN=localhost 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$d/leaf.ext"
  openssl x509 -req -in "$d/leaf.csr" -CA "$d/int.crt" -CAkey "$d/int.key" -CAcreateserial \
    -days 30 -extfile "$d/leaf.ext" -out "$d/leaf.crt" 2>/dev/null
  chmod -R a+rX "$W/pki"
}
pki old
pki new

# The Secret volume, written as the kubelet does (secret_write, .ci/podman-lib.sh).
SECRET="$W/secret"
mkdir -p "$SECRET"
chmod 0755 "$SECRET"
secret_write ca.crt "$W/pki/old/root.crt"

# --- 3. the workload, injected ----------------------------------------------------------
BACKEND_PORT=8443
URL="https://localhost:$BACKEND_PORT/"
cat >"$W/deploy.json" <<EOF
{
  "apiVersion": "apps/v1",
  "kind": "Deployment",
  "metadata": {"name": "shop", "labels": {"app": "shop"}},
  "spec": {
    "replicas": 1,
    "selector": {"matchLabels": {"app": "shop"}},
    "template": {
      "metadata": {"labels": {"app": "shop"}},
      "spec": {
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
          {
            "name": "shop",
            "image": "$APP_IMAGE",
            "command": ["sh", "-c", "while :; do if out=\$(curl -sS --max-time 3 -o /dev/null -w '%{http_code}' $URL 2>&1); then echo \"ok \$out\"; else echo \"fail \$out\"; fi; sleep 1; done"],
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "readOnlyRootFilesystem": true,
              "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
          },
          {
            "name": "istio-proxy",
            "image": "$PROXY_IMAGE",
            "command": ["sh", "-c", "while :; do sleep 1; done"],
            "securityContext": {"runAsUser": 1337, "runAsGroup": 1337, "readOnlyRootFilesystem": true,
              "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
          }
        ]
      }
    }
  }
}
EOF
"$BIN" inject --image "$TI_IMAGE" --secret shop-ca "$W/deploy.json" >"$W/native.json" 2>"$W/inject.log" \
  || { cat "$W/inject.log" >&2; die "inject failed"; }
log "ok: inject: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["spec"]["template"]["spec"]; print("init", [c["name"] for c in s["initContainers"]], "containers", [c["name"] for c in s["containers"]])' "$W/native.json")"

# --- 4. the pod runner: the injected pod spec, run with podman as a kubelet would ----------
# .ci/inject-pod-run.py; it calls podman_ (exported above) for the private storage.

backend() { # backend POD CA-NAME [--cert_chain]: (re)start openssl s_server on the pod's loopback
  local pod=$1 d=/pki/$2 chain=()
  [ "${3:-}" = --cert_chain ] && chain=(-cert_chain "$d/int.crt")
  podman_ rm -f -t 0 "$pod-backend" >/dev/null 2>&1 || true
  podman_ run -d --name "$pod-backend" --pod "$pod" --user 1000:1000 --read-only --cap-drop ALL \
    -v "$W/pki:/pki:ro" "$APP_IMAGE" openssl s_server -quiet -www -accept "127.0.0.1:$BACKEND_PORT" \
    -cert "$d/leaf.crt" -key "$d/leaf.key" "${chain[@]}" >/dev/null
}
APP=shop-shop # the app container the checks use: the runner's, then kube play's
in_app() { podman_ exec "$APP" "$@"; }
app_rejects() { ! in_app curl -sS --max-time 3 -o /dev/null "$URL"; }
app_trusts() { [ "$(in_app curl -sS --max-time 3 -o /dev/null -w '%{http_code}' "$URL")" = 200 ]; }
app_loop_ok_after() { podman_ logs "$APP" 2>&1 | tail -n +"$(($1 + 1))" | grep -q '^ok 200'; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - start)) -lt "$limit" ] || die "timed out after ${limit}s waiting for: $what"
    sleep 0.5
  done
  log "ok: $what ($((SECONDS - start)) s)"
}

t=$SECONDS
python3 .ci/inject-pod-run.py "$W/native.json" shop "$W/vol" "shop-ca=$SECRET"
log "pod up ($((SECONDS - t)) s)"
backend shop old --cert_chain

# The app's environment is what inject gave it, and nothing else sets the trust; the image's
# own /etc/ssl/certs lacks the private CA, so curl succeeds only through these variables.
# s_client and verify get -no-CAfile -no-CAstore: only the hashed dir is read.
env_app=$(in_app env)
grep -qx 'SSL_CERT_FILE=/var/run/trust/ca-certificates.crt' <<<"$env_app" || die "app: no injected SSL_CERT_FILE"
grep -qx 'SSL_CERT_DIR=/var/run/trust/certs' <<<"$env_app" || die "app: no injected SSL_CERT_DIR"
! grep -qE '^(CURL_CA_BUNDLE|REQUESTS_CA_BUNDLE)=' <<<"$env_app" || die "app: unexpected CA variable"
wait_for 30 "app container's curl trusts the private backend (root -> intermediate -> leaf)" \
  app_trusts
wait_for 10 "app container's own curl loop reports success" \
  app_loop_ok_after 0
# shellcheck disable=SC2016 # $SSL_CERT_DIR is the app container's, expanded there
in_app sh -c 'openssl s_client -connect 127.0.0.1:'"$BACKEND_PORT"' -servername localhost \
  -verify_return_error -no-CAfile -no-CAstore -CApath "$SSL_CERT_DIR" </dev/null' >"$W/s_client.log" 2>&1 \
  || { tail -5 "$W/s_client.log" >&2; die "openssl s_client -CApath \$SSL_CERT_DIR from the app failed"; }
grep -q 'Verify return code: 0 (ok)' "$W/s_client.log" || die "s_client did not verify"
log "ok: openssl s_client -CApath \$SSL_CERT_DIR from the app container verifies the backend"

# The image's public roots: every unexpired one in the bundle (the sidecar drops expired
# roots, as docs/configuration.md says), and one found through certs/.
podman_ run --rm "$APP_IMAGE" cat /etc/ssl/certs/ca-certificates.crt >"$W/image-roots.pem"
python3 - "$W/image-roots.pem" "$W/vol/trust/ca-certificates.crt" <<'PY' || die "image roots missing from the bundle"
import subprocess, sys
def certs(p):
    t = open(p).read().replace("\r", "")
    return [b.split("-----END CERTIFICATE-----")[0] for b in t.split("-----BEGIN CERTIFICATE-----")[1:]]
def expired(body):
    pem = "-----BEGIN CERTIFICATE-----" + body + "-----END CERTIFICATE-----\n"
    return subprocess.run(["openssl", "x509", "-noout", "-checkend", "0"], input=pem, text=True,
                          capture_output=True).returncode != 0
image = certs(sys.argv[1])
published = {b.replace("\n", "") for b in certs(sys.argv[2])}
missing = [b for b in image if b.replace("\n", "") not in published]
gone = [b for b in missing if expired(b)]
if len(missing) > len(gone) or not image:
    sys.exit(f"{len(missing) - len(gone)} unexpired roots of {len(image)} missing")
print(f"[inject-pod] ok: all {len(image) - len(gone)} unexpired roots of the Debian image are in the "
      f"published bundle ({len(gone)} expired ones dropped; {len(published)} certificates)", file=sys.stderr)
PY
# shellcheck disable=SC2016 # as above
in_app sh -c 'openssl verify -no-CAfile -no-CAstore -CApath "$SSL_CERT_DIR" /usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt' >/dev/null \
  || die "a public root (ISRG Root X1) is not found through \$SSL_CERT_DIR"
log "ok: a public root of the image (ISRG Root X1) verifies through the app's \$SSL_CERT_DIR"

# Rotation: the Secret swapped to a new root + intermediate; the backend now serves only a
# leaf of the new CA, so the app must find the new intermediate in the bundle too.
started=$(podman_ inspect --format '{{.State.StartedAt}}' shop-shop)
backend shop new
wait_for 30 "before the rotation, the app's curl rejects the new CA's leaf" app_rejects
secret_write ca.crt "$W/pki/new/root.crt" "$W/pki/new/int.crt"
mark=$(podman_ logs shop-shop 2>&1 | wc -l)
wait_for 60 "after the Secret rotation, the same app container's curl trusts the new CA's leaf" \
  app_trusts
wait_for 10 "the app's own curl loop follows the rotation" \
  app_loop_ok_after "$mark"
[ "$(podman_ inspect --format '{{.State.StartedAt}} {{.State.Status}}' shop-shop)" = "$started running" ] \
  || die "the app container was restarted"
! grep -qF "$(sed -n 2p "$W/pki/old/root.crt")" "$W/vol/trust/ca-certificates.crt" || die "old root still in the bundle"
log "ok: the app container was not restarted; the old root left the bundle"

# The mesh-proxy stand-in: untouched in the spec, and running without our trust.
python3 - "$W/native.json" <<'PY' || die "istio-proxy was changed by inject"
import json, sys
s = json.load(open(sys.argv[1]))["spec"]["template"]["spec"]
p = next(c for c in s["containers"] if c["name"] == "istio-proxy")
bad = [e["name"] for e in p.get("env", []) if e["name"].startswith("SSL_CERT")] + \
      [m["mountPath"] for m in p.get("volumeMounts", [])]
sys.exit(f"istio-proxy got {bad}" if bad else 0)
PY
[ "$(podman_ inspect --format '{{.State.Status}}' shop-istio-proxy)" = running ] || die "istio-proxy is not running"
! podman_ exec shop-istio-proxy env | grep -q '^SSL_CERT_' || die "istio-proxy has SSL_CERT_*"
! podman_ exec shop-istio-proxy test -e /var/run/trust || die "istio-proxy has the trust mount"
log "ok: istio-proxy stand-in: no SSL_CERT_*, no /var/run/trust, running"
podman_ pod rm -f -t 0 shop >/dev/null 2>&1

# --- 5. podman kube play of the classic layout -------------------------------------------
"$BIN" inject --mode classic --image "$TI_IMAGE" --secret shop-ca "$W/deploy.json" >"$W/classic.json" \
  2>"$W/inject-classic.log" || { cat "$W/inject-classic.log" >&2; die "inject --mode classic failed"; }
# Two podman limits make the played copy differ from inject's output, in these two fields:
# - podman before 4.6 gives init containers the pod's restartPolicy, so with `Always` it
#   restarts a finished init container and kube play fails (podman#15631, fixed by #18481):
#   there, and only there, the copy says `OnFailure`;
# - a Secret volume crashes podman 4.3's kube play (nil secrets manager in VolumeFromSecret)
#   and is, in any version, copied once, never updated: the copy mounts the same
#   AtomicWriter directory as a hostPath instead, which updates as the kubelet's would.
version=$(podman_ version --format '{{.Client.Version}}')
policy=Always
[ "$(printf '%s\n4.6.0\n' "$version" | sort -V | head -1)" = 4.6.0 ] || policy=OnFailure
python3 - "$W/classic.json" "$SECRET" "$policy" >"$W/classic-play.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
spec = d["spec"]["template"]["spec"]
spec["restartPolicy"] = sys.argv[3]
for v in spec["volumes"]:
    if v.get("secret", {}).get("secretName") == "shop-ca":
        del v["secret"]
        v["hostPath"] = {"path": sys.argv[2], "type": "Directory"}
print(json.dumps(d))
PY
log "kube play copy: restartPolicy $policy (podman $version), Secret volume as hostPath $SECRET"
# podman 4 publishes every containerPort on the host while the pod runs (no --publish to
# change that, and --network=none refuses port mappings): the sidecar's port must be free.
port=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(*[p["containerPort"] for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])])' "$W/classic.json")
for p in $port; do
  python3 -c 'import socket,sys; socket.socket().bind(("0.0.0.0", int(sys.argv[1])))' "$p" 2>/dev/null \
    || die "kube play needs host port $p free (podman publishes containerPorts); it is in use"
done
t=$SECONDS
# shellcheck disable=SC2016 # $1 is the inner bash's argument
timeout 180 bash -c 'podman_ kube play "$1"' _ "$W/classic-play.json" >"$W/play.log" 2>&1 \
  || { tail -20 "$W/play.log" >&2; die "podman kube play of the classic layout failed"; }
log "ok: podman kube play started the classic layout ($((SECONDS - t)) s): $(podman_ ps --format '{{.Names}}' | grep -v infra | sort | tr '\n' ' ')"
kpod=shop-pod-0
APP=$kpod-shop
wait_for 30 "kube play: the sidecar published the Secret's CA for the app" \
  in_app grep -qF "$(sed -n 2p "$W/pki/new/int.crt")" /var/run/trust/ca-certificates.crt
backend "$kpod" new
wait_for 30 "kube play: the app container's curl trusts the private backend" app_trusts
wait_for 10 "kube play: the app's own curl loop reports success" app_loop_ok_after 0
started=$(podman_ inspect --format '{{.State.StartedAt}}' "$APP")
backend "$kpod" old --cert_chain
wait_for 30 "kube play: before the rotation, the app's curl rejects the other CA's leaf" app_rejects
secret_write ca.crt "$W/pki/old/root.crt"
mark=$(podman_ logs "$APP" 2>&1 | wc -l)
wait_for 60 "kube play: after a Secret rotation the app's curl trusts the other CA" app_trusts
wait_for 10 "kube play: the app's own curl loop follows the rotation" app_loop_ok_after "$mark"
[ "$(podman_ inspect --format '{{.State.StartedAt}} {{.State.Status}}' "$APP")" = "$started running" ] \
  || die "kube play: the app container was restarted"
[ "$(podman_ inspect --format '{{.State.Status}}' "$kpod-trust-injector")" = running ] || die "kube play: the sidecar is not running"
log "ok: kube play: the app was not restarted; the classic sidecar keeps running next to it"
podman_ pod rm -f -t 0 "$kpod" >/dev/null 2>&1 # (podman logs that it has no systemd for healthcheck timers)

# --- 6. the `--openshift` layout, as OpenShift's restricted-v2 SCC runs it ---------------
# restricted-v2 (openshift/cluster-kube-apiserver-operator, scc-restricted-v2.yaml):
# runAsUser MustRunAsRange, fsGroup MustRunAs, supplementalGroups RunAsAny, drop ALL, no
# privilege escalation, seccomp runtime/default. Its admission gives every container without
# a runAsUser the first UID of the namespace's range (annotation openshift.io/sa.scc.uid-range),
# rejects a fixed one outside it, and sets the pod's fsGroup to the first group of
# openshift.io/sa.scc.supplemental-groups; it sets no runAsGroup, so the process's primary
# group is 0 (the UID is in no /etc/passwd). The images' USER (65532 for ours) is overridden.
OC_UID=1000680000 OC_RANGE=10000
t=$SECONDS
# The same workload as OpenShift users write it: no fixed UID or GID anywhere.
python3 - "$W/deploy.json" >"$W/deploy-oc.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["spec"]["template"]["spec"]["containers"]:
    for k in ("runAsUser", "runAsGroup"):
        c["securityContext"].pop(k)
print(json.dumps(d))
PY
"$BIN" inject --openshift --image "$TI_IMAGE" --secret shop-ca "$W/deploy-oc.json" >"$W/openshift.json" \
  2>"$W/inject-oc.log" || { cat "$W/inject-oc.log" >&2; die "inject --openshift failed"; }
# The SCC's admission, on the pod spec: what it assigns, and what it would refuse.
python3 - "$W/openshift.json" "$OC_UID" "$OC_RANGE" >"$W/openshift-admitted.json" <<'PY' \
  || die "restricted-v2 would not admit the --openshift pod"
import json, sys
d = json.load(open(sys.argv[1]))
first, size = int(sys.argv[2]), int(sys.argv[3])
spec = d["spec"]["template"]["spec"]
psc = spec.setdefault("securityContext", {})
errors = []
def in_range(what, v):
    if not first <= v < first + size:
        errors.append(f"{what} {v} is outside the namespace's range {first}/{size}")
for k in ("runAsUser", "fsGroup"):
    if k in psc:
        in_range(f"pod {k}", psc[k])
psc.setdefault("fsGroup", first)
for c in spec.get("initContainers", []) + spec["containers"]:
    sc = c.setdefault("securityContext", {})
    if "runAsUser" in sc:
        in_range(f"{c['name']}: runAsUser", sc["runAsUser"])
    elif "runAsUser" not in psc:
        sc["runAsUser"] = first
    if sc.get("privileged") or sc.get("allowPrivilegeEscalation", False):
        errors.append(f"{c['name']}: privileged or allowPrivilegeEscalation")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        errors.append(f"{c['name']}: capabilities do not drop ALL")
if errors:
    sys.exit("\n".join(f"[inject-pod] restricted-v2: {e}" for e in errors))
print(json.dumps(d))
PY
log "ok: inject --openshift: restricted-v2 admits the pod; every container gets UID $OC_UID (group 0), the pod fsGroup $OC_UID"
python3 .ci/inject-pod-run.py "$W/openshift-admitted.json" oc "$W/vol-oc" "shop-ca=$SECRET"
log "openshift pod up ($((SECONDS - t)) s)"
APP=oc-shop
backend oc old --cert_chain
for c in oc-trust-injector oc-shop; do # the credentials of each main process, from /proc
  id=$(awk '/^(Uid|Gid|Groups):/ { $1 = $1; print }' "/proc/$(podman_ inspect --format '{{.State.Pid}}' "$c")/status" | tr '\n' ' ')
  [ "$id" = "Uid: $OC_UID $OC_UID $OC_UID $OC_UID Gid: 0 0 0 0 Groups: 0 $OC_UID " ] || die "$c runs as: $id"
done
owner=$(stat -c '%u:%g' "$W/vol-oc/trust/ca-certificates.crt")
[ "$owner" = "$OC_UID:$OC_UID" ] || die "openshift: the bundle is owned by $owner, not by the range UID and fsGroup"
log "ok: openshift: sidecar and app run as uid $OC_UID, gid 0, groups 0 $OC_UID; the sidecar's bundle is $owner in the fsGroup's emptyDir"
env_app=$(in_app env)
grep -qx 'SSL_CERT_FILE=/var/run/trust/ca-certificates.crt' <<<"$env_app" || die "openshift app: no injected SSL_CERT_FILE"
grep -qx 'SSL_CERT_DIR=/var/run/trust/certs' <<<"$env_app" || die "openshift app: no injected SSL_CERT_DIR"
in_app grep -qF "$(sed -n 2p "$W/pki/old/root.crt")" /var/run/trust/ca-certificates.crt \
  || die "openshift: the sidecar did not publish the Secret's CA"
wait_for 30 "openshift: the app container's curl trusts the private backend" app_trusts
wait_for 10 "openshift: the app's own curl loop reports success" app_loop_ok_after 0
# shellcheck disable=SC2016 # as above
in_app sh -c 'openssl s_client -connect 127.0.0.1:'"$BACKEND_PORT"' -servername localhost \
  -verify_return_error -no-CAfile -no-CAstore -CApath "$SSL_CERT_DIR" </dev/null' >"$W/s_client-oc.log" 2>&1 \
  || { tail -5 "$W/s_client-oc.log" >&2; die "openshift: openssl s_client -CApath \$SSL_CERT_DIR failed"; }
grep -q 'Verify return code: 0 (ok)' "$W/s_client-oc.log" || die "openshift: s_client did not verify"
log "ok: openshift: openssl s_client -CApath \$SSL_CERT_DIR from the app container verifies the backend"
started=$(podman_ inspect --format '{{.State.StartedAt}}' "$APP")
backend oc new
wait_for 30 "openshift: before the rotation, the app's curl rejects the new CA's leaf" app_rejects
secret_write ca.crt "$W/pki/new/root.crt" "$W/pki/new/int.crt"
wait_for 60 "openshift: after a Secret rotation the app's curl trusts the new CA's leaf" app_trusts
[ "$(podman_ inspect --format '{{.State.StartedAt}} {{.State.Status}}' "$APP")" = "$started running" ] \
  || die "openshift: the app container was restarted"
log "ok: openshift: the sidecar under the range UID follows a rotation; the app was not restarted"
podman_ pod rm -f -t 0 oc >/dev/null 2>&1
log "openshift run: $((SECONDS - t)) s"
log "passed ($((SECONDS - T0)) s)"
