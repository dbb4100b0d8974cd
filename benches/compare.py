#!/usr/bin/env python3
"""trust-injector against the tools people use today, plus footprint and latency.

Run through benches/compare.sh (installs what this needs, builds, then runs this).
Everything happens in a scratch directory; nothing under /etc is written:
update-ca-certificates gets every one of its paths pointed into the scratch
directory (checked below), runs inside a private mount namespace in which /etc is
read-only when the kernel allows one, and /etc's trust files are fingerprinted
before and after (the script aborts if they changed).
"""

import argparse
import ctypes
import glob
import hashlib
import json
import os
import platform
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
BIN = os.path.join(TARGET, "release", "trust-injector")
GEN = os.path.join(TARGET, "release", "examples", "gen_cas")
# The shipped image's binary (static, musl; compare.sh builds it): timed beside the
# glibc build in the same run, so the ratio between them holds on any machine.
MUSL_BIN = os.path.join(TARGET, "x86_64-unknown-linux-musl", "release", "trust-injector")
ROOTS_DIR = "/usr/share/ca-certificates/mozilla"
ETC_WATCH = ["/etc/ssl/certs", "/etc/ca-certificates.conf", "/etc/ca-certificates"]
BUNDLE = "ca-certificates.crt"
RO_ETC = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


# ---------------------------------------------------------------- safety
def etc_fingerprint():
    h = hashlib.sha256()
    for top in ETC_WATCH:
        for dirpath, dirs, files in os.walk(top) if os.path.isdir(top) else [("", [], [top])]:
            dirs.sort()
            for name in sorted(files + dirs):
                p = os.path.join(dirpath, name)
                try:
                    st = os.lstat(p)
                    h.update(f"{p} {st.st_mtime_ns} {st.st_size} {st.st_ino}\n".encode())
                except FileNotFoundError:
                    h.update(f"{p} missing\n".encode())
    return h.hexdigest()


def ro_etc_available():
    """Whether we can run commands in a mount namespace where /etc is read-only."""
    try:
        r = subprocess.run(
            # Checked in mountinfo rather than by trying a write: a probe file
            # must never land in the real /etc if the remount silently failed.
            RO_ETC + ["mount --bind /etc /etc && mount -o remount,bind,ro /etc && "
                      "awk '$5 == \"/etc\" && $6 ~ /(^|,)ro(,|$)/ {ok=1} END {exit !ok}' "
                      "/proc/self/mountinfo"],
            capture_output=True, timeout=10)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def under(path, scratch):
    real = os.path.realpath(path)
    return real == scratch or real.startswith(scratch + os.sep)


# ---------------------------------------------------------------- inputs
def prepare_inputs(scratch, ns):
    """System roots as files + certsconf + one bundle; N generated CAs per N."""
    share = os.path.join(scratch, "share")
    os.makedirs(os.path.join(share, "mozilla"))
    roots = sorted(glob.glob(os.path.join(ROOTS_DIR, "*.crt")))
    if not roots:
        sys.exit(f"no system roots in {ROOTS_DIR} (apt-get install ca-certificates)")
    conf_lines, pem = [], b""
    for r in roots:
        name = os.path.basename(r)
        dst = os.path.join(share, "mozilla", name)
        shutil.copyfile(r, dst)
        conf_lines.append("mozilla/" + name)
        data = open(dst, "rb").read()
        pem += data if data.endswith(b"\n") else data + b"\n"
    with open(os.path.join(scratch, "ca-certificates.conf"), "w") as f:
        f.write("\n".join(conf_lines) + "\n")
    with open(os.path.join(scratch, "roots.pem"), "wb") as f:
        f.write(pem)
    for d in ("hooks", "tmp"):
        os.makedirs(os.path.join(scratch, d))

    key = os.path.join(scratch, "key.pem")
    run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
         "-out", key], stderr=subprocess.DEVNULL)
    allc = os.path.join(scratch, "generated")
    t = time.perf_counter()
    run([GEN, allc, str(max(ns) + 20), key])
    log(f"generated {max(ns) + 20} RSA-2048 CAs in {time.perf_counter() - t:.1f} s (not timed)")
    gen = sorted(glob.glob(os.path.join(allc, "part-*", "*.crt")))
    for n in ns:
        base = os.path.join(scratch, f"n{n}")
        local = os.path.join(base, "local")
        flat = os.path.join(base, "flat")
        os.makedirs(flat)
        for src in gen[:n]:
            rel = os.path.relpath(src, allc)
            os.makedirs(os.path.join(local, os.path.dirname(rel)), exist_ok=True)
            os.link(src, os.path.join(local, rel))
            os.link(src, os.path.join(flat, os.path.basename(src)))
        for r in roots:
            os.link(os.path.join(share, "mozilla", os.path.basename(r)),
                    os.path.join(flat, os.path.basename(r)))
        # p11-kit reads its own copy (openssl rehash adds symlinks to flat/). Files
        # directly in a directory on its trust path are not anchors; those in its
        # anchors/ subdirectory are (trust/token.c), so that is where they go.
        p11in = os.path.join(base, "p11in")
        shutil.copytree(flat, os.path.join(p11in, "anchors"), copy_function=os.link)
    return len(roots), key, gen


# ---------------------------------------------------------------- comparison
def hyperfine(name, cmd, prepare, runs, warmup, scratch, ro_etc, env_extra=None):
    out = os.path.join(scratch, "hf-" + name.replace(" ", "_") + ".json")
    hf = ["hyperfine", "-N", "--style", "none", "--runs", str(runs), "--warmup", str(warmup),
          "--prepare", "sh -c " + shlex.quote(prepare), "--export-json", out, "--command-name", name, cmd]
    env = dict(os.environ, TMPDIR=os.path.join(scratch, "tmp"), **(env_extra or {}))
    subprocess.run(["sh", "-c", prepare], check=True)  # hyperfine skips it before warm-ups
    if ro_etc:
        hf = RO_ETC + [ro_etc + ' && exec "$@"', "sh"] + hf
    run(hf, env=env, stdout=subprocess.DEVNULL)
    res = json.load(open(out))["results"][0]
    return {"median": res["median"], "times": res["times"], "runs": len(res["times"])}


def alternated_once(cmds, out, pairs):
    """`run --once` of the glibc and the musl binary alternately, `pairs` times
    (after one warm-up each), from an empty out-dir: both see the same machine
    load, so their ratio is the median of the pairs' ratios."""
    times = {label: [] for label in cmds}
    env = dict(os.environ, TRUST_INJECTOR_LOG="warn")
    for i in range(pairs + 1):
        for label, cmd in cmds.items():
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            t0 = time.perf_counter()
            run(shlex.split(cmd), env=env, stdout=subprocess.DEVNULL)
            if i:
                times[label].append(time.perf_counter() - t0)
    g, m = times["glibc"], times["musl"]
    return {"glibc_median": statistics.median(g), "musl_median": statistics.median(m),
            "ratio": statistics.median(b / a for a, b in zip(g, m)), "pairs": pairs}


def count_pem(path):
    return open(path, "rb").read().count(b"-----BEGIN CERTIFICATE-----")


def hashed_entries(d):
    """Entries named like OpenSSL's hashed directory: <8 hex>.<n>."""
    return sum(1 for e in os.listdir(d) if re.fullmatch(r"[0-9a-f]{8}\.[0-9]+", e))


def compare(scratch, ns, nroots, ro_etc, quick):
    rows = []
    share = os.path.join(scratch, "share")
    conf = os.path.join(scratch, "ca-certificates.conf")
    hooks = os.path.join(scratch, "hooks")
    roots_pem = os.path.join(scratch, "roots.pem")
    have_trust = shutil.which("trust") is not None
    for n in ns:
        base = os.path.join(scratch, f"n{n}")
        local, flat, p11in = (os.path.join(base, d) for d in ("local", "flat", "p11in"))
        out, etc = os.path.join(base, "out"), os.path.join(base, "etc")
        parts = sorted(glob.glob(os.path.join(local, "part-*")))
        heavy = n >= 5000
        r_fast = 5 if quick else (10 if heavy else 20)
        r_uca = 2 if quick else (3 if heavy else 5)
        log(f"N={n}: trust-injector")
        ti_cmd = (f"{BIN} run --once --listen off --base {roots_pem} --out-dir {out} "
                  + " ".join(f"--source {p}" for p in parts))
        ti = hyperfine(f"trust-injector N={n}", ti_cmd, f"rm -rf {out} && mkdir {out}",
                       r_fast, 2, scratch, None, {"TRUST_INJECTOR_LOG": "warn"})
        ti["bundle"] = count_pem(os.path.join(out, BUNDLE))
        ti["dir"] = hashed_entries(os.path.join(out, "certs"))
        musl = None
        if os.path.exists(MUSL_BIN):
            log(f"N={n}: trust-injector, static musl binary (the image's)")
            musl = hyperfine(f"trust-injector musl N={n}", ti_cmd.replace(BIN, MUSL_BIN, 1),
                             f"rm -rf {out} && mkdir {out}", r_fast, 2, scratch, None,
                             {"TRUST_INJECTOR_LOG": "warn"})
            musl["bundle"] = count_pem(os.path.join(out, BUNDLE))
            musl["dir"] = hashed_entries(os.path.join(out, "certs"))
            log(f"N={n}: run --once, glibc and musl alternated")
            musl["alternated"] = alternated_once(
                {"glibc": ti_cmd, "musl": ti_cmd.replace(BIN, MUSL_BIN, 1)}, out,
                10 if quick else 15)

        log(f"N={n}: update-ca-certificates (scratch dirs only)")
        args = {"--certsconf": conf, "--certsdir": share, "--localcertsdir": local,
                "--etccertsdir": etc, "--hooksdir": hooks}
        for flag, path in args.items():
            if not under(path, scratch):
                sys.exit(f"refusing: {flag} {path} is outside the scratch directory")
        uca_cmd = "update-ca-certificates " + " ".join(f"{k} {v}" for k, v in args.items()) + \
            f" --certbundle {BUNDLE}"
        before = etc_fingerprint()
        uca = hyperfine(f"update-ca-certificates N={n}", uca_cmd, f"rm -rf {etc} && mkdir {etc}",
                        r_uca, 0 if heavy else 1, scratch, ro_etc)
        if etc_fingerprint() != before:
            sys.exit("ABORT: /etc trust files changed during update-ca-certificates")
        uca["bundle"] = count_pem(os.path.join(etc, BUNDLE))
        uca["dir"] = hashed_entries(etc)

        log(f"N={n}: openssl rehash")
        rh = hyperfine(f"openssl rehash N={n}", f"openssl rehash {flat}",
                       f"find {flat} -type l -delete", r_fast, 2, scratch, None)
        rh["dir"] = hashed_entries(flat)
        rh["bundle"] = None

        p11 = None
        if have_trust and ro_etc:
            log(f"N={n}: p11-kit trust extract (bundle + hashed directory)")
            mods = os.path.join(base, "p11-modules")
            os.makedirs(mods, exist_ok=True)
            with open(os.path.join(mods, "p11-kit-trust.module"), "w") as f:
                f.write(f"module: p11-kit-trust.so\npriority: 1\ntrust-policy: yes\n"
                        f"x-init-reserved: paths={p11in}\n")
            pout = os.path.join(base, "p11out")
            script = os.path.join(base, "p11.sh")
            with open(script, "w") as f:
                f.write("#!/bin/sh -e\n"
                        f"trust extract --purpose server-auth --filter ca-anchors "
                        f"--format pem-bundle {pout}/{BUNDLE}\n"
                        f"trust extract --purpose server-auth --filter ca-anchors "
                        f"--format pem-directory-hash {pout}/certs\n")
            os.chmod(script, 0o755)
            # The module config lives in a system path only (p11-kit skips the user
            # config for root): bind ours over it in the private namespace.
            ns_setup = (f"{ro_etc} && mount --bind {mods} /usr/share/p11-kit/modules")
            p11 = hyperfine(f"p11-kit trust extract N={n}", script,
                            f"rm -rf {pout} && mkdir {pout}", r_fast, 1, scratch, ns_setup)
            p11["bundle"] = count_pem(os.path.join(pout, BUNDLE))
            p11["dir"] = hashed_entries(os.path.join(pout, "certs"))
        rows.append({"n": n, "inputs": nroots + n, "trust-injector": ti,
                     "trust-injector (static musl, shipped)": musl,
                     "update-ca-certificates": uca, "openssl rehash": rh,
                     "p11-kit trust extract": p11})
    return rows


# ---------------------------------------------------------------- daemon metrics
IN_MOVED_TO, IN_CLOSE_WRITE = 0x80, 0x08


class Inotify:
    def __init__(self, path):
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.libc.inotify_add_watch(self.fd, path.encode(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")

    def wait_name(self, name, deadline):
        """Waits for an event on `name`; returns its time or None at the deadline."""
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            t = time.perf_counter()
            buf = os.read(self.fd, 65536)
            i, hit = 0, False
            while i < len(buf):
                _, mask, _, ln = struct.unpack_from("iIII", buf, i)
                ev = buf[i + 16:i + 16 + ln].rstrip(b"\0").decode()
                hit |= ev == name
                i += 16 + ln
            if hit:
                return t

    def close(self):
        os.close(self.fd)


class AtomicWriter:
    """The kubelet's AtomicWriter sequence, as tests/common/atomic_writer.rs does it."""

    seq = 0

    def __init__(self, d):
        self.d = d
        os.makedirs(d, exist_ok=True)

    def write(self, payload):
        d = self.d
        data = os.path.join(d, "..data")
        old_ts = os.readlink(data) if os.path.islink(data) else None
        old_keys = set()
        if old_ts:
            for dp, _, files in os.walk(os.path.join(d, old_ts)):
                old_keys |= {os.path.relpath(os.path.join(dp, f), os.path.join(d, old_ts))
                             for f in files}
        AtomicWriter.seq += 1
        ts = time.strftime("..%Y_%m_%d_%H_%M_%S", time.gmtime()) + \
            f".{time.time_ns() % 10**9}{AtomicWriter.seq % 10000:04d}"
        tsdir = os.path.join(d, ts)
        os.mkdir(tsdir)
        os.chmod(tsdir, 0o755)
        for key, data_bytes in payload.items():
            p = os.path.join(tsdir, key)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data_bytes)
            os.close(fd)
            os.chmod(p, 0o644)
        tmp = os.path.join(d, "..data_tmp")
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        t0 = time.perf_counter()  # the switch: new content becomes visible now
        os.symlink(ts, tmp)
        os.rename(tmp, data)
        new_top = {k.split("/")[0] for k in payload}
        for name in new_top:
            if not os.path.lexists(os.path.join(d, name)):
                os.symlink(os.path.join("..data", name), os.path.join(d, name))
        for name in {k.split("/")[0] for k in old_keys} - new_top:
            try:
                os.remove(os.path.join(d, name))
            except FileNotFoundError:
                pass
        if old_ts:
            shutil.rmtree(os.path.join(d, old_ts))
        return t0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_daemon(secret, out, extra, binary=BIN):
    os.makedirs(out, exist_ok=True)
    cmd = [binary, "run", "--source", secret, "--out-dir", out] + extra
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, TRUST_INJECTOR_LOG="warn"))
    deadline = time.time() + 20
    while not os.path.exists(os.path.join(out, BUNDLE)):
        if p.poll() is not None or time.time() > deadline:
            sys.exit(f"daemon did not publish: {' '.join(cmd)}")
        time.sleep(0.01)
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def proc_status(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def cpu(pid):
    """(utime+stime in clock ticks, on-CPU ns summed over the threads' schedstat)."""
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = int(fields[11]) + int(fields[12])
    ns = 0
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            ns += int(open(f"{task}/schedstat").read().split()[0])
        except FileNotFoundError:
            pass
    return ticks, ns


def threads_switches(pid):
    total = 0
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            for line in open(f"{task}/status"):
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def cpu_over(pid, seconds):
    (t0, n0), s0 = cpu(pid), threads_switches(pid)
    time.sleep(seconds)
    (t1, n1), s1 = cpu(pid), threads_switches(pid)
    hz = os.sysconf("SC_CLK_TCK")
    return {"ticks_ms": (t1 - t0) * 1000 / hz, "cpu_ms": (n1 - n0) / 1e6, "wakeups": s1 - s0}


def swap_latency(scratch, aw, pems, binary, debounce, swaps, name, gap=None):
    """Median/p99 from a kubelet ..data swap to the renamed bundle holding it;
    `gap` seconds between swaps (default: 30 ms after the debounce)."""
    pem_a, pem_b = pems
    out = os.path.join(scratch, name)
    p = start_daemon(aw.d, out, ["--base", "system", "--listen", "off", "--resync", "0",
                                 "--debounce", str(debounce)], binary)
    time.sleep(0.5)
    ino = Inotify(out)
    lat, missed = [], 0
    for i in range(swaps):
        pem = pem_b if i % 2 == 0 else pem_a
        marker = pem.split(b"\n")[1]  # a base64 line unique to this payload's first CA
        t0 = aw.write({"ca.crt": pem})
        deadline = t0 + 5
        while True:
            t1 = ino.wait_name(BUNDLE, deadline)
            if t1 is None:
                missed += 1
                break
            if marker in open(os.path.join(out, BUNDLE), "rb").read():
                lat.append((t1 - t0) * 1000)
                break
        time.sleep(gap if gap is not None else 0.03 + debounce / 1000)
    ino.close()
    stop(p)
    # Back to A, so the next daemon starts from the same Secret.
    if swaps % 2:
        aw.write({"ca.crt": pem_a})
    return summarize(lat, swaps, missed)


def summarize(lat, swaps, missed):
    lat = sorted(lat)
    return {"median_ms": statistics.median(lat),
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "max_ms": lat[-1], "swaps": swaps, "missed": missed, "lat": lat}


def interleaved_latency(scratch, aw, pems, rounds, swaps, gap, name):
    """The glibc and the musl binary alternately, `rounds` times `swaps` swaps
    each: both see the same machine load, so their ratio is the median of the
    rounds' ratios (a noisy neighbour hits one round of both, not one binary)."""
    runs = {"glibc": [], "musl": []}
    for r in range(rounds):
        for label, binary in (("glibc", BIN), ("musl", MUSL_BIN)):
            runs[label].append(swap_latency(scratch, aw, pems, binary, 0, swaps,
                                            f"{name}-{label}-{r}", gap))
    res = {}
    for label, rs in runs.items():
        pooled = [x for r in rs for x in r["lat"]]
        res[label] = summarize(pooled, sum(r["swaps"] for r in rs), sum(r["missed"] for r in rs))
        res[label]["round_medians_ms"] = [r["median_ms"] for r in rs]
    res["ratio"] = statistics.median(m["median_ms"] / g["median_ms"]
                                     for g, m in zip(runs["glibc"], runs["musl"]))
    res["rounds"] = rounds
    return res


def footprint(scratch, gen, quick):
    res = {}
    secret = os.path.join(scratch, "secret")
    aw = AtomicWriter(secret)
    pem_a = b"".join(open(p, "rb").read() for p in gen[:10])
    pem_b = b"".join(open(p, "rb").read() for p in gen[10:20])
    aw.write({"ca.crt": pem_a})

    # Idle RSS, system roots + 10 CAs, probes on loopback (and without the server);
    # the static musl binary of the image too when it was built.
    runs = [("listen", BIN, f"127.0.0.1:{free_port()}"), ("off", BIN, "off")]
    if os.path.exists(MUSL_BIN):
        runs.append(("musl", MUSL_BIN, f"127.0.0.1:{free_port()}"))
    for label, binary, listen in runs:
        out = os.path.join(scratch, f"fp-{label}")
        p = start_daemon(secret, out, ["--base", "system", "--listen", listen], binary)
        time.sleep(3)
        st = proc_status(p.pid)
        # What the pod pays alone is its anonymous memory: file pages (the binary's
        # code) are shared by every sidecar started from the same image on a node.
        res[f"rss_{label}"] = {k: st[k] for k in ("VmRSS", "RssAnon", "RssFile", "VmHWM")}
        for line in open(f"/proc/{p.pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                res[f"rss_{label}"]["Pss"] = line.split(":")[1].strip()
        if label == "musl":
            # The shipped binary again after three kubelet-style rotations, idle:
            # what a pod that has seen its Secret change holds.
            for i in range(3):
                aw.write({"ca.crt": pem_b if i % 2 == 0 else pem_a})
                time.sleep(1.5)
            time.sleep(1.5)
            st = proc_status(p.pid)
            res["rss_musl_rotated"] = {k: st[k] for k in ("VmRSS", "RssAnon", "RssFile")}
            aw.write({"ca.crt": pem_a})
        stop(p)
    if os.path.exists(MUSL_BIN):
        res["musl_binary_bytes"] = os.path.getsize(MUSL_BIN)

    secs = 5 if quick else 10
    out = os.path.join(scratch, "fp-idle")
    p = start_daemon(secret, out, ["--base", "system", "--listen", "off", "--resync", "0"])
    time.sleep(1)
    res["idle_resync0"] = dict(cpu_over(p.pid, secs), seconds=secs)
    stop(p)
    # Cost of one resync: --resync 1 over `secs` seconds, less the idle figure.
    out = os.path.join(scratch, "fp-resync")
    p = start_daemon(secret, out, ["--base", "system", "--listen", "off", "--resync", "1"])
    time.sleep(1.5)
    r = cpu_over(p.pid, secs)
    r["per_resync_ms"] = r["cpu_ms"] / secs
    r["default_60s_pct"] = r["per_resync_ms"] / 60000 * 100
    res["resync1"] = dict(r, seconds=secs)
    stop(p)

    # Latency from the ..data switch to the new bundle on disk. With the shipped
    # musl binary built, glibc and musl alternate round by round for a same-run
    # ratio: swaps 30 ms apart (a burst), and 1.2 s apart, after each daemon has
    # gone idle, as most real rotations find it.
    pems = (pem_a, pem_b)
    if os.path.exists(MUSL_BIN):
        rounds, swaps = (4, 20) if quick else (6, 50)
        pair = interleaved_latency(scratch, aw, pems, rounds, swaps, None, "lat0")
        res["latency_0"], res["latency_0_musl"] = pair["glibc"], pair["musl"]
        res["latency_0_ratio"] = pair["ratio"]
        rounds, swaps = (2, 8) if quick else (3, 15)
        res["latency_idle"] = interleaved_latency(scratch, aw, pems, rounds, swaps, 1.2, "lat-idle")
    else:
        res["latency_0"] = swap_latency(scratch, aw, pems, BIN, 0, 40 if quick else 300, "latency-0")
    res["latency_50"] = swap_latency(scratch, aw, pems, BIN, 50, 20 if quick else 100, "latency-50")
    aw.write({"ca.crt": pem_a})

    size = os.path.getsize(BIN)
    stripped = os.path.join(scratch, "stripped")
    run(["strip", "-o", stripped, BIN])
    res["binary_bytes"] = size
    res["binary_stripped_bytes"] = os.path.getsize(stripped)
    tar = os.environ.get("TI_IMAGE_TAR")
    res["image_bytes"] = os.path.getsize(tar) if tar and os.path.exists(tar) else None
    return res


# ---------------------------------------------------------------- in-process
def inprocess(scratch, key, quick):
    out = os.path.join(scratch, "inprocess.json")
    env = dict(os.environ, TI_BENCH_KEY=key, TI_BENCH_JSON=out)
    if quick:
        env["TI_BENCH_QUICK"] = "1"
    run(["cargo", "bench", "--quiet", "--bench", "pipeline"], cwd=ROOT, env=env,
        stdout=sys.stderr)
    return json.load(open(out))


# ---------------------------------------------------------------- report
def machine():
    model = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "load": os.getloadavg()}


def fmt_ms(s):
    return f"{s * 1000:.1f} ms" if s < 10 else f"{s:.1f} s"


def table(rows):
    tools = ["trust-injector", "trust-injector (static musl, shipped)", "update-ca-certificates",
             "openssl rehash", "p11-kit trust extract"]
    lines = ["| N custom CAs (+ roots) | tool | median | runs | × trust-injector | bundle certs | hashed entries |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        ti = r["trust-injector"]["median"]
        for t in tools:
            x = r.get(t)
            if x is None:
                continue
            ratio = x["median"] / ti
            lines.append(f"| {r['n']} (+{r['inputs'] - r['n']}) | {t} | {fmt_ms(x['median'])} | "
                         f"{x['runs']} | {ratio:.1f}× | {x['bundle'] if x['bundle'] is not None else '—'} | "
                         f"{x['dir']} |")
    return "\n".join(lines)


def once_table(rows):
    """The shipped musl binary's `run --once` against glibc's, alternated."""
    lines = ["| N custom CAs | `run --once` glibc | static musl (shipped) | musl ÷ glibc | target |",
             "|---|---:|---:|---:|---|"]
    for r in rows:
        a = (r.get("trust-injector (static musl, shipped)") or {}).get("alternated")
        if a:
            lines.append(f"| {r['n']} | {fmt_ms(a['glibc_median'])} | {fmt_ms(a['musl_median'])} | "
                         f"{a['ratio']:.2f}× (median of {a['pairs']} alternated pairs) | ≤ 1× |")
    return "\n".join(lines) if len(lines) > 2 else "static musl binary not built: no `run --once` ratio"


def plot(rows, inproc):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    matplotlib.rcParams["svg.hashsalt"] = "trust-injector-bench"
    matplotlib.rcParams["svg.fonttype"] = "none"
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    ns = [r["n"] for r in rows]
    for t, m in (("trust-injector", "o-"), ("update-ca-certificates", "s-"),
                 ("openssl rehash", "^-"), ("p11-kit trust extract", "d-")):
        pts = [(r["n"], r[t]["median"] * 1000) for r in rows if r[t]]
        if pts:
            a.plot([p[0] for p in pts], [p[1] for p in pts], m, label=t)
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("custom CAs (plus the system roots)")
    a.set_ylabel("median wall time, ms (log)")
    a.set_title("Publish bundle + hashed directory from scratch")
    a.grid(True, which="both", alpha=0.3)
    a.legend(fontsize=8)
    a.set_xticks(ns)
    a.set_xticklabels([str(n) for n in ns])
    pts = inproc["points"]
    xs = [p["certs"] for p in pts]
    for stage in ("parse", "assemble", "hashed_names"):
        b.plot(xs, [p[stage + "_us"] / 1000 for p in pts], "o-", label=stage)
    b.plot(xs, [p["total_us"] / 1000 for p in pts], "k.-", label="total")
    b.set_xlabel("certificates in one Secret file (largest: a full 1 MiB Secret)")
    b.set_ylabel("median time, ms")
    b.set_title(f"In process: {inproc['per_cert_us']:.1f} µs per certificate (R² {inproc['r2']:.4f})")
    b.grid(True, alpha=0.3)
    b.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.join(ROOT, "images"), exist_ok=True)
    path = os.path.join(ROOT, "images", "bench-compare.svg")
    fig.savefig(path, metadata={"Date": None})
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 10 and 500, few runs: a smoke test")
    ap.add_argument("--workdir", help="where the scratch directory goes (default /dev/shm if "
                    "it is a tmpfs, else the system temp dir)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    ns = [10, 500] if args.quick else [10, 500, 5000]
    parent = args.workdir or ("/dev/shm" if os.path.isdir("/dev/shm") and
                              os.access("/dev/shm", os.W_OK) else None)
    scratch = os.path.realpath(tempfile.mkdtemp(prefix="ti-bench-", dir=parent))
    fstype = subprocess.run(["stat", "-f", "-c", "%T", scratch], capture_output=True,
                            text=True).stdout.strip()
    log(f"scratch: {scratch} ({fstype})")
    try:
        etc_before = etc_fingerprint()
        ro = ro_etc_available()
        ro_etc = "mount --bind /etc /etc && mount -o remount,bind,ro /etc" if ro else None
        if not ro:
            log("note: no private mount namespace here; relying on the path check and the "
                "/etc fingerprint (p11-kit is skipped: its config can only be redirected there)")
        m = machine()
        nroots, key, gen = prepare_inputs(scratch, ns)
        rows = compare(scratch, ns, nroots, ro_etc, args.quick)
        fp = footprint(scratch, gen, args.quick)
        ip = inprocess(scratch, key, args.quick)
        if etc_fingerprint() != etc_before:
            sys.exit("ABORT: /etc trust files changed")
        m["load_after"] = os.getloadavg()
        result = {"machine": m, "fs": fstype, "rows": rows, "footprint": fp, "inprocess": ip,
                  "etc_readonly_namespace": ro}
        os.makedirs(TARGET, exist_ok=True)
        json.dump(result, open(os.path.join(TARGET, "bench-results.json"), "w"), indent=1)
        plot_path = None if args.no_plot else plot(rows, ip)
        print(report(result, plot_path))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def report(r, plot_path):
    m, fp, ip = r["machine"], r["footprint"], r["inprocess"]
    out = [f"Machine: {m['nproc']} × {m['cpu']}, Linux {m['kernel']}; load average before "
           f"{m['load'][0]:.2f}, after {m['load_after'][0]:.2f}; scratch on {r['fs']}; /etc "
           f"read-only namespace: {'yes' if r['etc_readonly_namespace'] else 'no'}", "",
           table(r["rows"]), "", once_table(r["rows"]), ""]
    lat0, lat50 = fp["latency_0"], fp["latency_50"]
    out += ["| footprint / latency | measured | target |", "|---|---:|---|",
            f"| idle RSS, system roots + 10 CAs, probes on 127.0.0.1 | {fp['rss_listen']['VmRSS']} "
            f"(anon {fp['rss_listen']['RssAnon']}, file {fp['rss_listen']['RssFile']}) | |",
            f"| idle RSS, same, `--listen off` | {fp['rss_off']['VmRSS']} (anon {fp['rss_off']['RssAnon']}) | |",
            f"| idle PSS (shared pages divided among their users), probes on | {fp['rss_listen']['Pss']} | |",
            (f"| idle private (anonymous) memory, static musl binary (what the image ships), "
             f"probes on | {fp['rss_musl']['RssAnon']} (VmRSS {fp['rss_musl']['VmRSS']}, "
             f"file {fp['rss_musl']['RssFile']}) | anon ≤ 1 MiB |"
             if "rss_musl" in fp else "| idle RSS, static musl binary | not built (rustup target add x86_64-unknown-linux-musl; musl-tools) | |"),
            (f"| the same after three rotations, idle | {fp['rss_musl_rotated']['RssAnon']} "
             f"(VmRSS {fp['rss_musl_rotated']['VmRSS']}, file {fp['rss_musl_rotated']['RssFile']}) | anon ≤ 1 MiB |"
             if "rss_musl_rotated" in fp else "| idle RSS after rotations, static musl binary | not built | |"),
            f"| CPU between events, `--resync 0`, {fp['idle_resync0']['seconds']} s | "
            f"{fp['idle_resync0']['cpu_ms']:.3f} ms CPU, {fp['idle_resync0']['wakeups']} wakeups | 0 |",
            f"| CPU per resync (roots + 10 CAs) | {fp['resync1']['per_resync_ms']:.2f} ms "
            f"(default 60 s: {fp['resync1']['default_60s_pct']:.4f} % of a core) | |",
            f"| ..data swap → new bundle, `--debounce 0` ({lat0['swaps']} swaps) | median "
            f"{lat0['median_ms']:.2f} ms, p99 {lat0['p99_ms']:.2f} ms, missed {lat0['missed']} | median ≤ 5 ms |",
            (f"| the same, static musl binary (the image's) ({fp['latency_0_musl']['swaps']} swaps, "
             f"{len(fp['latency_0_musl']['round_medians_ms'])} rounds "
             f"alternated with glibc) | median {fp['latency_0_musl']['median_ms']:.2f} ms "
             f"({fp['latency_0_ratio']:.2f}× glibc, median of the rounds' ratios), "
             f"p99 {fp['latency_0_musl']['p99_ms']:.2f} ms, missed {fp['latency_0_musl']['missed']} | ≤ 1.3× glibc |"
             if "latency_0_musl" in fp else "| the same, static musl binary | not built | |"),
            (f"| swaps 1.2 s apart (each daemon idle), glibc / musl "
             f"({fp['latency_idle']['glibc']['swaps']} swaps each) | median "
             f"{fp['latency_idle']['glibc']['median_ms']:.2f} / {fp['latency_idle']['musl']['median_ms']:.2f} ms "
             f"({fp['latency_idle']['ratio']:.2f}×) | ≤ 1.3× glibc |"
             if "latency_idle" in fp else "| swaps after idle, musl | not built | |"),
            f"| ..data swap → new bundle, `--debounce 50` ({lat50['swaps']} swaps) | median "
            f"{lat50['median_ms']:.2f} ms, p99 {lat50['p99_ms']:.2f} ms, missed {lat50['missed']} | |",
            f"| release binary (profile strips it) | {fp['binary_bytes'] / 1e6:.2f} MB "
            f"(strip again: {fp['binary_stripped_bytes'] / 1e6:.2f} MB) | ≤ 6 MB |",
            (f"| static musl binary (the image's) | {fp['musl_binary_bytes'] / 1e6:.2f} MB | ≤ 6 MB |"
             if "musl_binary_bytes" in fp else "| static musl binary | not built | |"),
            f"| image tarball | {'%.2f MB' % (fp['image_bytes'] / 1e6) if fp['image_bytes'] else 'not measured (set TI_IMAGE_TAR)'} | |",
            "", "In process (parse + policy + merge + subject hash + render + hashed names), "
            f"one Secret file on top of the {ip['roots']} embedded Mozilla roots:", "",
            "| certificates | Secret bytes | parse | assemble | hashed names | total | per custom cert |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for p in ip["points"]:
        out.append(f"| {p['certs']} | {p['bytes']} | {p['parse_us'] / 1000:.2f} ms | "
                   f"{p['assemble_us'] / 1000:.2f} ms | {p['hashed_names_us'] / 1000:.2f} ms | "
                   f"{p['total_us'] / 1000:.2f} ms | {p['total_us'] / p['certs']:.1f} µs |")
    out += ["", f"Linear fit of total time against certificates: {ip['per_cert_us']:.2f} µs per "
            f"certificate + {ip['intercept_us'] / 1000:.2f} ms fixed (the roots), R² = {ip['r2']:.5f}"]
    if plot_path:
        out.append(f"Plot: {os.path.relpath(plot_path, ROOT)}")
    return "\n".join(out)


if __name__ == "__main__":
    main()
