#!/usr/bin/env python3
"""Runs the pod of an injected manifest with podman, the way a kubelet would, for
.ci/inject-pod-test.sh (which exports the `podman_` function with its private storage).

Usage: inject-pod-run.py MANIFEST.json POD VOLDIR SECRET-NAME=DIR...

Why a runner of our own: Kubernetes cannot run here, and `podman kube play` cannot run
native sidecars (see the test's header). Generic: everything comes from the pod spec, in the
kubelet's order: init containers one by one to completion; a native sidecar
(`restartPolicy: Always`) started and its exec startupProbe passed before the next; then
the containers. Each container runs in one podman pod (shared loopback), with its image,
command/args, env, securityContext (pod-level defaults merged), memory/CPU limits and
volumeMounts. Volumes are host dirs: an emptyDir a fresh 0777 dir under VOLDIR (the
kubelet's mode; with a pod `fsGroup` owned by that group and setgid, as the kubelet makes
it; `medium` and `sizeLimit` are not enforced), a Secret the DIR given for its
name (written by the caller with the kubelet's AtomicWriter sequence).
Strict: a field it cannot honour is an error naming the container, never silently dropped.
"""
import json, subprocess, sys, time

# Container fields honoured. `ports` needs nothing (one network namespace, as in a pod);
# `resources.requests`, `imagePullPolicy` and `terminationMessagePolicy` change nothing here.
HANDLED = {"name", "image", "command", "args", "env", "securityContext", "volumeMounts",
           "resources", "restartPolicy", "startupProbe", "livenessProbe", "readinessProbe",
           "ports", "imagePullPolicy", "workingDir", "terminationMessagePolicy"}
SC_KEYS = {"runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem",
           "allowPrivilegeEscalation", "capabilities", "seccompProfile", "privileged"}

def fail(msg):
    """Stops the test: the caller prints nothing more, so say what and where."""
    sys.exit(f"[inject-pod] FAIL: pod runner: {msg}")

def podman(*args, check=True, **kw):
    """podman with the test's private storage (the exported podman_ shell function)."""
    r = subprocess.run(["bash", "-c", 'podman_ "$@"', "podman_", *args], text=True,
                       capture_output=True, **kw)
    if check and r.returncode != 0:
        fail(f"podman {' '.join(args[:3])}...: exit {r.returncode}: {r.stderr.strip()[-800:]}")
    return r

def pod_spec(doc):
    """The pod spec of a Pod or of a workload's pod template."""
    if doc.get("kind") == "Pod":
        return doc["spec"]
    return doc["spec"]["template"]["spec"]

def volume_dirs(spec, voldir, secrets):
    """Host dir of each volume, by name."""
    fs_group = spec.get("securityContext", {}).get("fsGroup")
    dirs = {}
    for v in spec.get("volumes", []):
        name = v["name"]
        if "emptyDir" in v:
            d = f"{voldir}/{name}"
            subprocess.run(["mkdir", "-p", d], check=True)
            subprocess.run(["chmod", "0777", d], check=True)  # the kubelet's emptyDir mode
            if fs_group is not None:  # the kubelet's SetVolumeOwnership: group-owned, setgid
                subprocess.run(["chgrp", str(fs_group), d], check=True)
                subprocess.run(["chmod", "g+s", d], check=True)
            dirs[name] = d
        elif "secret" in v:
            s = v["secret"]["secretName"]
            if s not in secrets:
                fail(f"volume {name}: no directory given for Secret {s}")
            dirs[name] = secrets[s]
        else:
            fail(f"volume {name}: only emptyDir and secret volumes are supported: {v}")
    return dirs

def quantity_mem(q):
    """A Kubernetes memory quantity (16Mi, 1G, 64000000) in bytes, as podman --memory takes."""
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 10**3, "M": 10**6, "G": 10**9}
    for u, m in units.items():
        if q.endswith(u):
            return str(int(float(q[:-len(u)]) * m))
    return str(int(q))

def quantity_cpu(q):
    """A Kubernetes CPU quantity (200m, 1) in CPUs, as podman --cpus takes."""
    return str(int(q[:-1]) / 1000) if q.endswith("m") else str(q)

def security_args(c, pod_sc):
    """podman flags for the container's securityContext over the pod's."""
    sc = c.get("securityContext", {})
    unknown = set(sc) - SC_KEYS
    if unknown:
        fail(f"{c['name']}: securityContext fields not supported: {sorted(unknown)}")
    user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    group = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot", False))
    args = []
    if user is not None:
        args += ["--user", f"{user}:{group if group is not None else 0}"]
    elif non_root:
        args += ["--user", "USER-FROM-IMAGE"]  # resolved and checked by run()
    for g in pod_sc.get("supplementalGroups", []) + ([pod_sc["fsGroup"]] if "fsGroup" in pod_sc else []):
        args += ["--group-add", str(g)]
    if sc.get("readOnlyRootFilesystem"):
        # Kubernetes mounts no tmpfs of its own on a read-only root; podman would.
        args += ["--read-only", "--read-only-tmpfs=false"]
    if sc.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    caps = sc.get("capabilities", {})
    args += [a for cap in caps.get("drop", []) for a in ("--cap-drop", cap)]
    args += [a for cap in caps.get("add", []) for a in ("--cap-add", cap)]
    seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type", "RuntimeDefault")
    if seccomp == "Unconfined":
        args += ["--security-opt", "seccomp=unconfined"]
    elif seccomp != "RuntimeDefault":
        fail(f"{c['name']}: seccompProfile {seccomp} not supported")
    if sc.get("privileged"):
        args += ["--privileged"]
    return args

def container_args(c, pod, pod_sc, dirs):
    """`podman run` arguments for one container of the spec."""
    unknown = set(c) - HANDLED
    if unknown:
        fail(f"{c['name']}: container fields not supported: {sorted(unknown)}")
    args = ["--name", f"{pod}-{c['name']}", "--pod", pod]
    args += security_args(c, pod_sc)
    for e in c.get("env", []):
        if "value" not in e:
            fail(f"{c['name']}: env {e['name']}: only literal values are supported")
        args += ["-e", f"{e['name']}={e['value']}"]
    for m in c.get("volumeMounts", []):
        if m["name"] not in dirs:
            fail(f"{c['name']}: mount of unknown volume {m['name']}")
        src = dirs[m["name"]] + ("/" + m["subPath"] if m.get("subPath") else "")
        args += ["-v", f"{src}:{m['mountPath']}" + (":ro" if m.get("readOnly") else "")]
    limits = c.get("resources", {}).get("limits", {})
    if "memory" in limits:
        args += ["--memory", quantity_mem(limits["memory"])]
    if "cpu" in limits:
        args += ["--cpus", quantity_cpu(limits["cpu"])]
    if "workingDir" in c:
        args += ["-w", c["workingDir"]]
    if "command" in c:
        args += ["--entrypoint", json.dumps(c["command"])]
    return args + [c["image"]] + c.get("args", [])

def resolve_user(args, image):
    """runAsNonRoot without runAsUser: the image's user, refused if root, as the kubelet does."""
    if "USER-FROM-IMAGE" not in args:
        return args
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    if user in ("", "0", "root") or user.startswith("0:"):
        fail(f"{image}: runAsNonRoot, but the image runs as root: the kubelet refuses to start it")
    return [user if a == "USER-FROM-IMAGE" else a for a in args]

def run_probe(pod, c, probe_name):
    """An exec probe, within its failureThreshold (periods capped to keep CI short)."""
    probe = c.get(probe_name)
    if not probe:
        return
    if "exec" not in probe:
        print(f"[inject-pod] {c['name']}: {probe_name} is not exec; not run", file=sys.stderr)
        return
    period = probe.get("periodSeconds", 10)
    tries = min(probe.get("failureThreshold", 3), 60)
    time.sleep(min(probe.get("initialDelaySeconds", 0), 10))
    timeout = probe.get("timeoutSeconds", 1) + 10  # podman exec's own start-up on top
    for _ in range(tries):
        try:
            r = podman("exec", f"{pod}-{c['name']}", *probe["exec"]["command"], check=False,
                       timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(f"{c['name']}: {probe_name} did not answer within {timeout} s")
        if r.returncode == 0:
            print(f"[inject-pod] ok: {c['name']}: {probe_name} passed", file=sys.stderr)
            return
        time.sleep(min(period, 2))
    fail(f"{c['name']}: {probe_name} never passed: {r.stdout.strip()} {r.stderr.strip()}")

def main():
    manifest, pod, voldir = sys.argv[1:4]
    secrets = dict(a.split("=", 1) for a in sys.argv[4:])
    spec = pod_spec(json.load(open(manifest)))
    pod_sc = spec.get("securityContext", {})
    dirs = volume_dirs(spec, voldir, secrets)
    podman("pod", "create", "--name", pod)
    for c in spec.get("initContainers", []):
        args = resolve_user(container_args(c, pod, pod_sc, dirs), c["image"])
        if c.get("restartPolicy") == "Always":  # a native sidecar: started, then probed
            podman("run", "-d", *args)
            run_probe(pod, c, "startupProbe")
        else:
            try:
                r = podman("run", *args, check=False, timeout=120)
            except subprocess.TimeoutExpired:
                fail(f"init container {c['name']} did not finish within 120 s")
            if r.returncode != 0:
                hint = " (killed: over its memory limit?)" if r.returncode == 137 else ""
                fail(f"init container {c['name']} exited {r.returncode}{hint}: "
                     f"{r.stdout[-400:]} {r.stderr[-800:]}")
        print(f"[inject-pod] ok: init container {c['name']} " +
              ("started" if c.get("restartPolicy") == "Always" else "ran to completion"), file=sys.stderr)
    for c in spec["containers"]:
        podman("run", "-d", *resolve_user(container_args(c, pod, pod_sc, dirs), c["image"]))
        run_probe(pod, c, "startupProbe")
        print(f"[inject-pod] ok: container {c['name']} started", file=sys.stderr)
    # Everything is up: each long-running container's liveness probe, once.
    for c in spec.get("initContainers", []) + spec["containers"]:
        if c in spec["containers"] or c.get("restartPolicy") == "Always":
            run_probe(pod, c, "livenessProbe")

main()
