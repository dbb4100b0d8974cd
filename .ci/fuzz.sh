#!/usr/bin/env bash
# Bounded fuzzing of the source parser, the subject-hash canonicalisation and inject
# (libFuzzer through cargo-fuzz, on the nightly toolchain).
#   FUZZ_SECONDS   time per target (default 45; the README says how to go longer)
# New inputs go to a scratch corpus, so the committed seed corpus stays as it is;
# a crash leaves its input under fuzz/artifacts/<target>/ and fails the run.
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS=${FUZZ_SECONDS:-45}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
  exit 1
fi
if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in parse_file subject_hash inject; do
  mkdir -p "$scratch/$target"
  echo "fuzz: $target for ${FUZZ_SECONDS}s"
  cargo +nightly fuzz run "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 2>&1 |
    grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|Done)" || true
  # grep hides libFuzzer's progress lines; the exit status is the fuzzer's.
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz: $target FAILED (see fuzz/artifacts/$target)" >&2; exit 1; }
done
echo "fuzz: no crash"
