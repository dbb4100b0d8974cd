# trust-injector container image: one static binary and a CA bundle on an empty base,
# for linux/amd64 and linux/arm64 (the binary is a static musl build for each).
#
# Two ways to get the binary into the image, picked with --build-arg BINARY_SOURCE:
#   source  (default) compile it in the `build` stage; needs registry access for the
#           Rust image and crates.io. The stage runs on the build machine's own
#           platform and cross-compiles for each target platform, so a multi-arch
#           build needs no emulation:
#             docker buildx build --platform linux/amd64,linux/arm64 \
#               -t registry.example.com/trust-injector:0.1.0 --push .
#   context copy static binaries built on the host from ${PREBUILT_DIR}/<arch>/ in the
#           build context (<arch> is amd64 or arm64, the platform's TARGETARCH), with
#           the CA bundle in ${PREBUILT_DIR}/; pulls no image at all, so it works on
#           machines without registry access:
#             bash .ci/build-static.sh     # both static binaries (see the script)
#             mkdir -p out/image/amd64 out/image/arm64
#             cp target/x86_64-unknown-linux-musl/release/trust-injector out/image/amd64/
#             cp target/aarch64-unknown-linux-musl/release/trust-injector out/image/arm64/
#             cp /etc/ssl/certs/ca-certificates.crt out/image/
#             buildah build --build-arg BINARY_SOURCE=context \
#               --platform linux/amd64,linux/arm64 --manifest trust-injector .
#           (`FROM scratch` plus COPY runs nothing, so the arm64 image needs no
#           emulation either; .ci/container-test.sh does exactly this.)
# Stages the chosen one does not use are skipped (BuildKit, and buildah's default
# --skip-unused-stages), so the `build` stage's base image is never pulled in context mode.
#
# Reproducible: the release builds (.ci/build-image.sh) pass REVISION (the commit) and
# CREATED (its commit time, SOURCE_DATE_EPOCH) and set every timestamp to that time, so
# the same commit gives the same image digest; .ci/reproducible-image.sh checks it.

ARG BINARY_SOURCE=source

# rust:1.95-slim-bookworm (Rust 1.95.0 on Debian 12), by digest: a tag moves with every
# rebuild, a digest is one image. Where it comes from: docs/container-image.md.
FROM --platform=$BUILDPLATFORM docker.io/library/rust:1.95-slim-bookworm@sha256:b8ecdb97c5b9c1ae058249f72710dbe33d4da19f7b8d911bd3c72e5f048af251 AS build
# Set by BuildKit and buildah for each --platform: the build runs natively on
# BUILDARCH and cross-compiles for TARGETARCH.
ARG TARGETARCH
ARG BUILDARCH
SHELL ["/bin/bash", "-eo", "pipefail", "-c"]
# The musl targets link statically with Rust's self-contained musl. ring (TLS for
# `verify`) compiles C and assembly for the target: musl-tools' musl-gcc when the
# target is the build machine's own architecture, else Debian's cross gcc, which
# needs only freestanding headers from libc6-dev-*-cross (the link is against Rust's
# musl, with that gcc as the linker). The Debian release is fixed by the base image
# tag; exact package builds are not kept in Debian's archive, so none is pinned.
# hadolint ignore=DL3008
RUN case "${TARGETARCH}" in \
      amd64) target=x86_64-unknown-linux-musl; gcc=x86_64-linux-gnu-gcc; \
             pkgs=(gcc-x86-64-linux-gnu libc6-dev-amd64-cross) ;; \
      arm64) target=aarch64-unknown-linux-musl; gcc=aarch64-linux-gnu-gcc; \
             pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;; \
      *) echo "unsupported TARGETARCH '${TARGETARCH}' (amd64 or arm64)" >&2; exit 1 ;; \
    esac \
 && triple=${target//-/_} \
 && if [ "${TARGETARCH}" = "${BUILDARCH}" ]; then \
      pkgs=(musl-tools); cc_env="CC_${triple}=musl-gcc"; \
    else \
      cc_env="CC_${triple}=${gcc} CARGO_TARGET_${triple^^}_LINKER=${gcc}"; \
    fi \
 && apt-get update \
 && apt-get install -y --no-install-recommends "${pkgs[@]}" \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "${target}" \
 && printf 'export TARGET=%s %s\n' "${target}" "${cc_env}" >/target.env
WORKDIR /src
COPY . .
RUN source /target.env \
 && cargo build --release --locked --target "${TARGET}" \
 && install -D -m 0755 "target/${TARGET}/release/trust-injector" /out/trust-injector \
 && install -D -m 0644 /etc/ssl/certs/ca-certificates.crt /out/ca-certificates.crt

FROM scratch AS binary-source
COPY --from=build /out/trust-injector /trust-injector
COPY --from=build /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

FROM scratch AS binary-context
ARG PREBUILT_DIR=out/image
ARG TARGETARCH
COPY ${PREBUILT_DIR}/${TARGETARCH}/trust-injector /trust-injector
COPY ${PREBUILT_DIR}/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

# binary-${BINARY_SOURCE} names one of the two stages above, not an image, so a tag
# makes no sense here.
# hadolint ignore=DL3006
FROM binary-${BINARY_SOURCE}
ARG VERSION=0.1.0
# The commit and its time; "unknown" only for a hand-made build that does not pass them.
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="trust-injector" \
      org.opencontainers.image.description="Sidecar that merges private CAs from a mounted Secret with public roots and publishes one OpenSSL-style trust bundle" \
      org.opencontainers.image.source="https://github.com/trust-injector/trust-injector" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0"
# /etc/ssl/certs/ca-certificates.crt is where `--base system` looks first, so the
# image's own roots are the default merge base. Nothing in the image is writable.
USER 65532:65532
EXPOSE 9898
ENTRYPOINT ["/trust-injector"]
CMD ["run"]
