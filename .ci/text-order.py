#!/usr/bin/env python3
"""Regenerates link/text-order-x86_64.txt and link/text-order-aarch64.txt: the
functions the daemon runs, for the linker to lay out together at the start of
.text (build.rs passes the file of the target's architecture to lld as
`--symbol-ordering-file`).

Why: the kernel maps a binary's code in 64 KB fault-around windows, so a daemon
whose few hundred functions are spread through 3 MB of text keeps most of the
text resident (docs/performance.md, "Idle RSS"). Packed together they take a
fraction of the windows.

What it runs: the static musl build exactly as shipped (same profile, stripped:
Rust's symbol hashes depend on the profile, so an unstripped build would name
other symbols), in its own target directory with a link map beside it
(TRUST_INJECTOR_LINK_MAP_DIR, build.rs), under valgrind's callgrind, through what a
sidecar does in a pod: start on the system roots plus a Secret of 10 CAs,
publish, the kubelet's probes and a Prometheus scrape, three kubelet-style
rotations (the AtomicWriter sequence of benches/compare.py), idle, SIGTERM.
Callgrind records every code address that ran; the link map names the function
(input section) holding each, written in first-run order. A function missing
from the list (a path not exercised, or renamed since) only costs a page fault
in a cold window: the binary stays correct whatever the file says, which is why
a stale list is not an error.

The profile runs on amd64 only (valgrind and perf run the binary natively). Rust's
symbol hashes differ per target, so the arm64 list is the amd64 one translated:
each name, demangled without its hashes (binutils' c++filt), is matched with the
arm64 build's functions of the same name (from its link map); a generic function
whose instances share a path brings all of them.

    python3 .ci/text-order.py            # rewrites both lists (10 minutes)
    python3 .ci/text-order.py --arm64    # only translates the amd64 list again
    python3 .ci/text-order.py --coverage MAP LIST   # % of LIST's names MAP defines
                                                    # (.ci/build-static.sh's check)
Needs: valgrind (Debian `valgrind`), perf (Debian `linux-perf`; root or
perf_event_paranoid <= -1 for its tracepoint), openssl, the musl target
(bash .ci/build-static.sh installs it).
"""
import bisect
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse",
                       "--show-toplevel"], check=True, capture_output=True, text=True).stdout.strip()
sys.path.insert(0, os.path.join(ROOT, "benches"))
import compare  # noqa: E402  (AtomicWriter, free_port: the benchmark's own kubelet sequence)

TRIPLE = "x86_64-unknown-linux-musl"
ARM64 = "aarch64-unknown-linux-musl"
TARGET_DIR = os.path.join(ROOT, "target", "text-order")
OUT = os.path.join(ROOT, "link", "text-order-x86_64.txt")
ARM64_OUT = os.path.join(ROOT, "link", "text-order-aarch64.txt")


MAP_DIR = os.path.join(TARGET_DIR, "link-maps")


def need(program, package):
    if shutil.which(program) is None:
        sys.exit(f"text-order: `{program}` not found; install the Debian package `{package}`")


def map_of(triple):
    """Where build.rs writes the link map of `triple` (TRUST_INJECTOR_LINK_MAP_DIR)."""
    return os.path.join(MAP_DIR, f"{triple}.map")


def build(triple=TRIPLE):
    """Builds like .ci/build-static.sh (the same compilers), with a link map;
    returns the binary and its map."""
    os.makedirs(MAP_DIR, exist_ok=True)
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET_DIR, TRUST_INJECTOR_LINK_MAP_DIR=MAP_DIR)
    for var, default in (("CC_x86_64_unknown_linux_musl", "musl-gcc"),
                         ("CC_aarch64_unknown_linux_musl", "aarch64-linux-gnu-gcc"),
                         ("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", "aarch64-linux-gnu-gcc")):
        env.setdefault(var, default)
    map_path = map_of(triple)
    if os.path.exists(map_path):
        os.remove(map_path)  # a build that links nothing must not pass for one that did
    subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "trust-injector",
                    "--target", triple], cwd=ROOT, env=env, check=True)
    if not os.path.exists(map_path):
        sys.exit("text-order: no link map was written; is rust-lld in the toolchain? (build.rs)")
    return os.path.join(TARGET_DIR, triple, "release", "trust-injector"), map_path


def make_cas(scratch, n):
    """n RSA-2048 CA certificates (one key: the daemon never sees it)."""
    key = os.path.join(scratch, "key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", key], check=True, stderr=subprocess.DEVNULL)
    pems = []
    for i in range(n):
        crt = os.path.join(scratch, f"ca{i}.pem")
        subprocess.run(["openssl", "req", "-x509", "-new", "-key", key, "-days", "365", "-subj",
                        f"/CN=text-order CA {i}", "-addext", "basicConstraints=critical,CA:TRUE",
                        "-out", crt], check=True, stderr=subprocess.DEVNULL)
        pems.append(open(crt, "rb").read())
    return pems


def probe(port):
    for path in ("/healthz", "/readyz", "/metrics", "/status"):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30).read()
        except OSError as e:
            sys.exit(f"text-order: GET {path}: {e}")


def scenario(wrapper, binary, scratch, log_level):
    """One pod's life under `wrapper` (valgrind or perf): start, probes, three
    rotations with probes after each, SIGTERM."""
    run_dir = tempfile.mkdtemp(dir=scratch)
    pems = make_cas(run_dir, 20)
    a, b = b"".join(pems[:10]), b"".join(pems[10:])
    secret = os.path.join(run_dir, "secret")
    out = os.path.join(run_dir, "out")
    os.makedirs(out)
    aw = compare.AtomicWriter(secret)
    aw.write({"ca.crt": a})
    port = compare.free_port()
    cmd = wrapper + [binary, "run", "--source", secret, "--out-dir", out, "--base", "system",
                     "--listen", f"127.0.0.1:{port}"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, TRUST_INJECTOR_LOG=log_level))
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(out, compare.BUNDLE)):
        if p.poll() is not None or time.time() > deadline:
            sys.exit(f"text-order: the daemon did not publish under {wrapper[0]}")
        time.sleep(0.2)
    time.sleep(3)  # idle: the memory hand-back runs
    probe(port)
    for i in range(3):
        aw.write({"ca.crt": b if i % 2 == 0 else a})
        time.sleep(4)
        probe(port)
    # valgrind runs the daemon in its own process; perf runs it as a child
    # and ends when it does.
    pid = p.pid
    if wrapper[0] == "perf":
        pid = int(open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()[0])
    os.kill(pid, signal.SIGTERM)
    if p.wait(120) != 0:
        sys.exit(f"text-order: the daemon exited with {p.returncode} under {wrapper[0]}")


def text_sections(map_path):
    """The link map's input sections of .text: sorted (start, end, [symbols])."""
    sections, current, in_text = [], None, False
    for line in open(map_path, errors="replace"):
        f = line.split()
        if len(f) < 5 or not re.fullmatch(r"[0-9a-f]+", f[0]):
            continue
        if f[4].startswith("."):  # an output section
            in_text = f[4] == ".text"
            continue
        if not in_text:
            continue
        if ":(" in line:  # an input section: object:(section)
            current = [int(f[0], 16), int(f[0], 16) + int(f[2], 16), []]
            sections.append(current)
        elif current is not None:  # a symbol in it
            current[2].append(f[4])
    return [s for s in sections if s[2] and s[1] > s[0]]


def callgrind_addresses(callgrind_out):
    """Code addresses callgrind saw run (a stripped binary's functions are named
    by address), in first-seen order."""
    seen = {}
    for line in open(callgrind_out, errors="replace"):
        m = re.match(r"c?fn=(?:\(\d+\) )?0x([0-9a-f]+)", line)
        if m:
            seen.setdefault(int(m.group(1), 16), None)
    return list(seen)


def readelf(binary, flag):
    return subprocess.run(["readelf", flag, "-W", binary], check=True, capture_output=True,
                          text=True).stdout


def valgrind_base(addrs, binary, lo, hi):
    """valgrind loads a static PIE at a base of its own: the offset that puts
    the most addresses in .text, among those that map one onto the entry point."""
    entry = int(re.search(r"Entry point address:\s+0x([0-9a-f]+)", readelf(binary, "-h")).group(1), 16)
    bases = {a - entry for a in addrs if a >= entry}
    return min(bases, key=lambda b: sum(not (lo <= a - b < hi) for a in addrs))


def perf_text_faults(perf_data, binary):
    """Link-time addresses of the instruction fetches that faulted in .text
    (the first touch of each 64 KB fault-around window)."""
    out = subprocess.run(["perf", "script", "-i", perf_data, "--show-mmap-events"], check=True,
                         capture_output=True, text=True).stdout
    name = re.escape(os.path.basename(binary))
    m = re.search(r"\[(0x[0-9a-f]+)\((0x[0-9a-f]+)\) @ 0x[0-9a-f]+ [^\]]*\]: r-xp \S*" + name, out)
    if not m:
        sys.exit("text-order: perf recorded no mapping of the binary's text")
    start, length = int(m.group(1), 16), int(m.group(2), 16)
    load = next(l.split() for l in readelf(binary, "-l").splitlines()
                if l.strip().startswith("LOAD") and " R E " in l)
    bias = start - (int(load[2], 16) & ~0xfff)
    faults = []
    for line in out.splitlines():
        f = re.search(r"address=0x([0-9a-f]+) ip=0x([0-9a-f]+)", line)
        if f and f.group(1) == f.group(2) and start <= int(f.group(1), 16) < start + length:
            faults.append(int(f.group(1), 16) - bias)
    return faults


def name_addresses(addrs, sections, known):
    """Appends to `known` (a list, in order) the function holding each address
    (the first symbol of its input section: ordering one moves the section)."""
    starts = [s[0] for s in sections]
    seen, added = set(known), 0
    for a in addrs:
        i = bisect.bisect_right(starts, a) - 1
        if i >= 0 and a < sections[i][1] and sections[i][2][0] not in seen:
            seen.add(sections[i][2][0])
            known.append(sections[i][2][0])
            added += 1
    return added


HEADER = """\
# The functions the daemon runs, for lld's --symbol-ordering-file (build.rs): laid
# out together at the start of .text, they keep the resident code small. Written by
# .ci/text-order.py (rerun it after larger code changes); lld skips these # lines.
"""


def write(names, path=OUT):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(HEADER + "\n".join(names) + "\n")


def read(path=OUT):
    return [l.strip() for l in open(path) if l.strip() and not l.startswith("#")]


def text_symbols(map_path):
    """Every symbol the link map places in .text."""
    return [name for s in text_sections(map_path) for name in s[2]]


def coverage(map_path, list_path):
    """The percentage (rounded down) of the list's names that the map defines."""
    defined = set(text_symbols(map_path))
    names = read(list_path)
    return 100 * sum(n in defined for n in names) // max(len(names), 1)


def hashless(names):
    """Each name demangled by c++filt, without legacy `::h<hash>` suffixes and
    v0 `[crate hash]` disambiguators: what stays the same across targets."""
    out = subprocess.run(["c++filt"], input="\n".join(names) + "\n", check=True,
                         capture_output=True, text=True).stdout.splitlines()
    if len(out) != len(names):
        sys.exit("text-order: c++filt returned a different number of lines")
    return [re.sub(r"::h[0-9a-f]{16}$", "", re.sub(r"\[[0-9a-f]+\]", "", d)) for d in out]


def translate_to_arm64(names):
    """The amd64 list in the arm64 build's own symbol names."""
    _, map_path = build(ARM64)
    arm = text_symbols(map_path)
    by_key = {}
    for key, name in zip(hashless(arm), arm):
        by_key.setdefault(key, []).append(name)
    seen, out = set(), []
    for key in hashless(names):
        for name in by_key.get(key, []):
            if name not in seen:
                seen.add(name)
                out.append(name)
    return out


def arm64(names):
    arm = translate_to_arm64(names)
    write(arm, ARM64_OUT)
    print(f"text-order: {len(arm)} arm64 functions -> {os.path.relpath(ARM64_OUT, ROOT)}")


def main():
    if sys.argv[1:2] == ["--coverage"] and len(sys.argv) == 4:
        return print(coverage(sys.argv[2], sys.argv[3]))
    need("c++filt", "binutils")
    if sys.argv[1:] == ["--arm64"]:
        return arm64(read())
    need("valgrind", "valgrind")
    need("perf", "linux-perf")
    need("openssl", "openssl")
    need("readelf", "binutils")
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as scratch:
        # 1. Every function that runs under valgrind, at the default log level
        #    and at `warn` (the level benches/compare.py measures at).
        binary, map_path = build()
        sections = text_sections(map_path)
        lo, hi = sections[0][0], sections[-1][1]
        names = []
        for level in ("info", "warn"):
            cg = os.path.join(scratch, f"callgrind.{level}")
            scenario(["valgrind", "--tool=callgrind", "--compress-strings=no",
                      f"--callgrind-out-file={cg}"], binary, scratch, level)
            addrs = callgrind_addresses(cg)
            base = valgrind_base(addrs, binary, lo, hi)
            name_addresses([a - base for a in addrs], sections, names)
        write(names)
        print(f"text-order: {len(names)} functions ran under valgrind")
        # 2. What valgrind's CPU does not show (code chosen by CPU features, such
        #    as SHA-NI): run the linked result for real, add the functions whose
        #    first instruction fetch faulted outside the list, relink, again.
        for round_ in range(1, 7):
            binary, map_path = build()
            sections = text_sections(map_path)
            added = 0
            for level in ("info", "warn"):
                data = os.path.join(scratch, f"perf.{round_}.{level}")
                scenario(["perf", "record", "-q", "-e", "exceptions:page_fault_user", "-o", data],
                         binary, scratch, level)
                added += name_addresses(perf_text_faults(data, binary), sections, names)
            write(names)
            print(f"text-order: round {round_}: {added} more functions faulted")
            if added == 0:
                break
    print(f"text-order: {len(names)} functions -> {os.path.relpath(OUT, ROOT)}")
    arm64(names)


if __name__ == "__main__":
    main()
