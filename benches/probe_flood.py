#!/usr/bin/env python3
"""The probe server under a flood of half-open connections (issue 24 item 6).

    python3 benches/probe_flood.py BINARY [CONNECTIONS]

Starts `BINARY run --source SECRET --base none --listen 127.0.0.1:PORT` on an
empty Secret directory, opens CONNECTIONS (default 6000) TCP connections to
the probe port that never send a byte, checks that /healthz still answers
while they are open, and prints the sidecar's VmRSS and VmHWM (KiB) idle,
under the flood, and after the flood closed. Loopback only; the descriptor
limit of this script is raised to fit the connections.
"""

import os
import resource
import socket
import subprocess
import sys
import tempfile
import time


def memory(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def healthz(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        start = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        return data.split(b"\r\n", 1)[0].decode(), (time.monotonic() - start) * 1e3


def main():
    binary = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 6000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 256), hard))
    with tempfile.TemporaryDirectory() as tmp:
        secret, out = os.path.join(tmp, "secret"), os.path.join(tmp, "out")
        os.mkdir(secret)
        os.mkdir(out)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        daemon = subprocess.Popen(
            [binary, "run", "--source", secret, "--base", "none", "--out-dir", out,
             "--listen", f"127.0.0.1:{port}"],
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(200):
                try:
                    healthz(port)
                    break
                except OSError:
                    time.sleep(0.05)
            time.sleep(1)
            idle = memory(daemon.pid)
            flood = []
            for _ in range(count):
                flood.append(socket.create_connection(("127.0.0.1", port)))
            status, ms = healthz(port)
            during = memory(daemon.pid)
            for s in flood:
                s.close()
            time.sleep(2)
            after = memory(daemon.pid)
            print(f"{count} half-open connections: /healthz {status!r} in {ms:.1f} ms")
            print(f"VmRSS idle {idle[0]} KiB, under the flood {during[0]} KiB, "
                  f"2 s after it closed {after[0]} KiB; peak (VmHWM) {after[1]} KiB")
        finally:
            daemon.terminate()
            daemon.wait()


if __name__ == "__main__":
    main()
