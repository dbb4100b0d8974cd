#!/usr/bin/env bash
# The two binaries the image ships: static musl builds for linux/amd64 and linux/arm64,
# cross-compiled on this (amd64) host in one cargo invocation, then checked: statically
# linked, of the right ELF architecture, runnable (the arm64 one under qemu-aarch64-static,
# emulated: a smoke test, not a speed figure) and within the size budget.
#
#   bash .ci/build-static.sh             # build and check both; prints the two paths
#   bash .ci/build-static.sh --env       # the same, printing `export ...` lines instead:
#                                        #   eval "$(bash .ci/build-static.sh --env)"
#
# Used by .ci/run (before the tests, so tests/emulated_arm64.rs takes the binaries from
# TRUST_INJECTOR_ARM64_BIN / TRUST_INJECTOR_AMD64_BIN instead of building its own) and by
# .ci/container-test.sh (the image's contents). A second call finds both fresh and only
# re-checks them. Installs its Debian packages and rustup targets when run as root.
# Writes SHA256SUMS of both binaries into the target directory once they pass.
# The binaries carry their dependency list (crate names, versions, sources) in a
# `.dep-v0` section, compressed JSON written by `cargo auditable` (rust-secure-code's
# cargo-auditable, pinned in tests/programs.tsv, installed once into the test-tools
# cache by .ci/tools.sh), so scanners (cargo audit bin, Trivy, Grype, Syft) read what is
# inside a binary; each check reads it back with rust-audit-info.
# Knobs: BINARY_MAX_BYTES (default 6000000, the README's 6 MB budget).
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"

log() { printf '[build-static] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

BINARY_MAX_BYTES=${BINARY_MAX_BYTES:-6000000}
AMD64=x86_64-unknown-linux-musl
ARM64=aarch64-unknown-linux-musl
export DEBIAN_FRONTEND=noninteractive

# --- tools ---------------------------------------------------------------------------------
# musl-tools: musl-gcc compiles ring's C for amd64. For arm64, Debian's glibc cross
# compiler is enough: ring's C needs only a few freestanding headers (libc6-dev-arm64-cross)
# and the link is done against Rust's self-contained musl. qemu-user-static runs the
# arm64 binary here; binutils' readelf reads both architectures' headers.
need=()
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -d /usr/aarch64-linux-gnu/include ] || need+=(libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v readelf >/dev/null || need+=(binutils)
if [ "${#need[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing packages; as root run: apt-get install -y --no-install-recommends ${need[*]}"
  log "installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
installed=$(rustup target list --installed 2>/dev/null || true)
for t in "$AMD64" "$ARM64"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t" >&2 \
    || die "could not add the Rust target; run: rustup target add $t"
done

# cargo auditable and the reader, cached outside the clone (a first install takes minutes).
# shellcheck source=.ci/tools.sh
source .ci/tools.sh
auditable=$(cargo_tool cargo-auditable)
audit_info=$(cargo_tool rust-audit-info)
PATH="$(dirname "$auditable"):$PATH"
export PATH

# --- build -----------------------------------------------------------------------------------
export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}"
export CC_aarch64_unknown_linux_musl="${CC_aarch64_unknown_linux_musl:-aarch64-linux-gnu-gcc}"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER="${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER:-aarch64-linux-gnu-gcc}"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
log "cargo auditable build --release --locked --bin trust-injector --target $AMD64 --target $ARM64"
start=$SECONDS
cargo auditable build --release --locked --bin trust-injector --target "$AMD64" --target "$ARM64" >&2
log "built in $((SECONDS - start)) s"

# --- check -----------------------------------------------------------------------------------
check() { # check TRIPLE ELF_MACHINE RUNNER... : verify one binary, print its path
  local triple=$1 machine=$2; shift 2
  local bin="$target_dir/$triple/release/trust-injector" size got
  [ -x "$bin" ] || die "no binary at $bin"
  got=$(readelf -h "$bin" | awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}')
  [ "$got" = "$machine" ] || die "$bin is built for '$got', want '$machine'"
  if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
    die "$bin is dynamically linked; the image has no libc"
  fi
  size=$(stat -c %s "$bin")
  [ "$size" -le "$BINARY_MAX_BYTES" ] || die "$bin is $size bytes, over the $BINARY_MAX_BYTES-byte budget"
  "$@" "$bin" --version >/dev/null || die "$* $bin --version failed"
  deps=$(audit_deps "$bin")
  log "ok: $triple: $machine, static, $size bytes (budget $BINARY_MAX_BYTES), $deps crates in its audit data${1:+, ran --version under $1 (emulated)}"
  printf '%s\n' "$bin"
}
# The embedded dependency list, read back as a scanner would: it must name this crate at
# Cargo.toml's version and the TLS stack, each crate at its Cargo.lock version.
audit_deps() { # audit_deps BINARY : prints how many crates it lists
  "$audit_info" "$1" | python3 -c '
import json, sys, tomllib
pkgs = json.load(sys.stdin)["packages"]
lock = {(p["name"], p["version"]) for p in tomllib.load(open("Cargo.lock", "rb"))["package"]}
names = {p["name"] for p in pkgs}
assert {"trust-injector", "rustls", "ring"} <= names, f"audit data lacks crates: {sorted(names)}"
wrong = sorted((p["name"], p["version"]) for p in pkgs if (p["name"], p["version"]) not in lock)
assert not wrong, f"audit data lists crates not in Cargo.lock: {wrong}"
print(len(pkgs))' || die "$1 has no readable cargo auditable data (.dep-v0)"
}
# SHA256SUMS beside the binaries (paths relative to the target directory), so whoever
# downloads them can check what they got: `cd target && sha256sum -c SHA256SUMS`.
# Written only after every check passed, and verified once written.
write_sums() { # write_sums DIR RELATIVE_PATH...
  local dir=$1; shift
  (cd "$dir" && sha256sum -- "$@" >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS \
    && sha256sum --quiet -c SHA256SUMS) || die "could not write or verify $dir/SHA256SUMS"
  log "ok: $dir/SHA256SUMS lists $# binaries"
}
amd64_bin=$(check "$AMD64" "Advanced Micro Devices X86-64")
arm64_bin=$(check "$ARM64" "AArch64" qemu-aarch64-static)
write_sums "$target_dir" "$AMD64/release/trust-injector" "$ARM64/release/trust-injector"
if [ "${1:-}" = --env ]; then
  printf 'export TRUST_INJECTOR_AMD64_BIN=%q\nexport TRUST_INJECTOR_ARM64_BIN=%q\n' "$amd64_bin" "$arm64_bin"
else
  printf '%s\n%s\n' "$amd64_bin" "$arm64_bin"
fi
