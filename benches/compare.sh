#!/usr/bin/env bash
# The whole benchmark with one command, from a clean clone:
#
#   bash benches/compare.sh            # N = 10, 500, 5000; ~10 minutes; regenerates images/bench-compare.svg
#   bash benches/compare.sh --quick    # N = 10, 500, few runs: a smoke test (no plot with --no-plot)
#
# Installs what it needs (Debian packages: hyperfine, ca-certificates, openssl,
# p11-kit, binutils, musl-tools and the x86_64-unknown-linux-musl target; matplotlib
# pinned, in a venv under target/), builds the release binary (glibc), the static musl
# binary the image ships and the certificate generator, then runs benches/compare.py,
# which prints the tables. Nothing under /etc is written (see compare.py).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v update-ca-certificates >/dev/null || need+=(ca-certificates)
command -v openssl >/dev/null || need+=(openssl)
command -v trust >/dev/null || need+=(p11-kit)
command -v strip >/dev/null || need+=(binutils)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

target="${CARGO_TARGET_DIR:-target}"
venv="$target/bench-venv"
if ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'matplotlib==3.10.3' >&2
fi

cargo build --release --quiet --bin trust-injector --example gen_cas >&2
# The image ships a static musl binary (see Dockerfile): it is timed beside the glibc
# build in the same run (run --once at every N, swap -> bundle latency, idle RSS), so
# the ratio between them is measured, not assumed. musl-gcc compiles ring's C.
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  rustup target add x86_64-unknown-linux-musl >&2 \
    || { echo "cannot add the musl target; run: rustup target add x86_64-unknown-linux-musl" >&2; exit 1; }
fi
command -v musl-gcc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >&2
CC_x86_64_unknown_linux_musl=musl-gcc \
  cargo build --release --quiet --target x86_64-unknown-linux-musl --bin trust-injector >&2
echo "tools: $(hyperfine --version); $(openssl version); ca-certificates $(dpkg-query -W -f '${Version}' ca-certificates 2>/dev/null || echo '?'); p11-kit $(dpkg-query -W -f '${Version}' p11-kit 2>/dev/null || echo '?')" >&2
exec "$venv/bin/python" benches/compare.py "$@"
