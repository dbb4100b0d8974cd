#!/usr/bin/env bash
# Everything a release publishes, built into OUT_DIR by the scripts .ci/run runs, so the
# release workflow (.github/workflows/release.yml) only adds signing and uploading:
#
#   bash .ci/release.sh OUT_DIR
#
# OUT_DIR then holds (VERSION from Cargo.toml):
#   trust-injector-VERSION-linux-amd64, -linux-arm64   static binaries (.ci/build-static.sh)
#   trust-injector-VERSION.tgz                          the Helm chart, packaged by Helm
#   trust-injector-VERSION.cdx.json                     the binary's SBOM (.ci/sbom.sh)
#   image/                                              the multi-arch image, an OCI layout
#   image.digest                                        its manifest list's digest
#   ca-certificates.crt                                 the roots the image carries
#   RELEASE_NOTES.md                                    this version's CHANGELOG.md section
#   SHA256SUMS                                          of every file above but image/ and the notes
# Checks first that Chart.yaml's version and appVersion are Cargo.toml's, that CHANGELOG.md
# has a section for it, that the image tags in k8s/ and the docs' remote kustomize bases
# (?ref=vX.Y.Z) name it and, when run for a tag (GITHUB_REF_NAME=vX.Y.Z), that the tag is
# v + that version. Runs as root (packages, buildah).
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
log() { printf '[release] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

out=${1:?usage: bash .ci/release.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
version=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "trust-injector"))')
name=trust-injector-$version
log "version $version (Cargo.toml) into $out"

# --- 1. one version everywhere ----------------------------------------------------------
chart=deploy/charts/trust-injector
chart_field() { awk -v k="$1:" '$1 == k { gsub(/"/, "", $2); print $2; exit }' "$chart/Chart.yaml"; }
[ "$(chart_field version)" = "$version" ] || die "$chart/Chart.yaml version is '$(chart_field version)', Cargo.toml says $version"
[ "$(chart_field appVersion)" = "$version" ] || die "$chart/Chart.yaml appVersion is '$(chart_field appVersion)', Cargo.toml says $version"
if [ "${GITHUB_REF_TYPE:-}" = tag ] || [[ "${GITHUB_REF_NAME:-}" == v* ]]; then
  [ "$GITHUB_REF_NAME" = "v$version" ] || die "tag $GITHUB_REF_NAME is not v$version (Cargo.toml)"
fi
python3 - "$version" "$out/RELEASE_NOTES.md" <<'EOF' || die "CHANGELOG.md has no '## [$version]' section"
import re, sys
version, dest = sys.argv[1], sys.argv[2]
text = open("CHANGELOG.md", encoding="utf-8").read()
m = re.search(r"^## \[" + re.escape(version) + r"\][^\n]*\n(.*?)(?=^## \[|^\[[^\]]+\]: |\Z)", text, re.S | re.M)
if not m:
    sys.exit(1)
open(dest, "w", encoding="utf-8").write(m.group(1).strip() + "\n")
EOF
# What users copy names this version too: the image tag in k8s/, the Dockerfile's
# default, the post-renderer plugin, and every remote kustomize base's ?ref= in the docs.
python3 - "$version" <<'EOF' || die "files above name another version than Cargo.toml's $version"
import glob, re, sys
version = sys.argv[1]
checks = [(f, r"ghcr\.io/trust-injector/trust-injector:([0-9][^\s\"']*)") for f in glob.glob("k8s/**/*.yaml", recursive=True)]
checks += [("Dockerfile", r"ARG VERSION=(\S+)"), ("deploy/helm-plugin/plugin.yaml", r"^version: (\S+)")]
checks += [(f, r"github\.com/trust-injector/trust-injector//\S+\?ref=v([^\s)]+)") for f in ["README.md"] + glob.glob("docs/*.md")]
bad = []
for path, pattern in checks:
    for m in re.finditer(pattern, open(path, encoding="utf-8").read(), re.M):
        if m.group(1) != version:
            bad.append(f"{path}: {m.group(0)}")
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
log "ok: Chart.yaml, CHANGELOG.md, k8s/ images, Dockerfile, plugin and docs' ?ref= follow $version"

# --- 2. binaries --------------------------------------------------------------------------
mapfile -t bins < <(bash .ci/build-static.sh)
[ "${#bins[@]}" = 2 ] || die ".ci/build-static.sh printed ${#bins[@]} paths, want 2"
install -m 0755 "${bins[0]}" "$out/$name-linux-amd64"
install -m 0755 "${bins[1]}" "$out/$name-linux-arm64"

# --- 3. SBOM, from Cargo.lock, checked against what the binary is built from ------------
bash .ci/sbom.sh "$out/$name.cdx.json" "$out/$name-linux-amd64"

# --- 4. image -----------------------------------------------------------------------------
# The image's roots are an input like the binaries: published, so that a rebuild on
# another machine can take the same (CA_BUNDLE=ca-certificates.crt).
install -m 0644 "${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" "$out/ca-certificates.crt"
CA_BUNDLE=$out/ca-certificates.crt AMD64_BIN=${bins[0]} ARM64_BIN=${bins[1]} bash .ci/build-image.sh "$out/image" >"$out/image.digest"
log "ok: image $(cat "$out/image.digest")"

# --- 5. chart, packaged by Helm's own code (helm-python-sdk, pinned in tests/programs.tsv) --
# The packaged chart pins the image just built by its digest (image.digest), so a
# release installs exactly the signed image, and the sidecars its webhook injects
# name it by digest too (checkov CKV_K8S_43). The chart in git keeps the tag.
venv="${TRUST_INJECTOR_TEST_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/trust-injector/test-tools}/venv"
helm_pin=$(awk -F'\t' '$1 == "pip" && $2 == "helm_python" { print $3 }' tests/programs.tsv)
if ! "$venv/bin/python" -c 'import helm_python' 2>/dev/null; then
  log "installing $helm_pin into $venv"
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "$helm_pin"; }; then
    die "could not install $helm_pin; run: python3 -m venv $venv && $venv/bin/pip install $helm_pin"
  fi
fi
rm -f "$out/$name.tgz"
staged=$(mktemp -d)
cp -a "$chart" "$staged/"
python3 - "$staged/trust-injector/values.yaml" "$(cat "$out/image.digest")" <<'EOF' \
  || die "could not pin the image digest in $chart/values.yaml"
import re, sys
path, digest = sys.argv[1], sys.argv[2].strip()
if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
    sys.exit(f"image.digest is {digest!r}, want sha256:<64 hex>")
text = open(path, encoding="utf-8").read()
# The one `digest: ""` of the top-level `image:` block.
text, n = re.subn(r'(?m)^(image:\n(?:  .*\n|\s*\n)*?  digest: )""$', rf'\g<1>"{digest}"', text, count=1)
if n != 1:
    sys.exit("no image.digest key in values.yaml")
open(path, "w", encoding="utf-8").write(text)
EOF
"$venv/bin/python" -c '
import sys
from helm_python import chart
print(chart.package(sys.argv[1], destination=sys.argv[2]))' "$staged/trust-injector" "$out" >&2 \
  || die "helm package $chart failed"
rm -rf "$staged"
[ -f "$out/$name.tgz" ] || die "helm package did not write $out/$name.tgz"
log "ok: $name.tgz (image pinned to $(cat "$out/image.digest"))"

# --- 6. checksums, last, over everything a user downloads ---------------------------------
rm -f "$out/SHA256SUMS"
(cd "$out" && find . -maxdepth 1 -type f ! -name RELEASE_NOTES.md -printf '%P\n' | LC_ALL=C sort \
  | xargs sha256sum -- >"$out.sums" && mv "$out.sums" SHA256SUMS && sha256sum --quiet -c SHA256SUMS) \
  || die "could not write or verify $out/SHA256SUMS"
log "ok: $out/SHA256SUMS lists $(wc -l <"$out/SHA256SUMS") files"
