# trust-injector container image: one static binary and a CA bundle on an empty base.
#
# Two ways to get the binary into the image, picked with --build-arg BINARY_SOURCE:
#   source  (default) compile it in the `build` stage; needs registry access for the
#           Rust image and crates.io.
#   context copy a static binary built on the host, with the CA bundle next to it, from
#           ${PREBUILT_DIR} in the build context; pulls no image at all, so it works on
#           machines without registry access:
#             apt-get install musl-tools   # musl-gcc, for ring's C code
#             CC_x86_64_unknown_linux_musl=musl-gcc \
#               cargo build --release --locked --target x86_64-unknown-linux-musl
#             mkdir -p out/image
#             cp target/x86_64-unknown-linux-musl/release/trust-injector out/image/
#             cp /etc/ssl/certs/ca-certificates.crt out/image/
#             buildah build --build-arg BINARY_SOURCE=context -t trust-injector .
# Stages the chosen one does not use are skipped (BuildKit, and buildah's default
# --skip-unused-stages), so the `build` stage's base image is never pulled in context mode.

ARG BINARY_SOURCE=source
ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-slim AS build
ARG TARGET=x86_64-unknown-linux-musl
# The musl target links statically with Rust's self-contained musl. ring (TLS for
# `verify`) compiles C and assembly, which needs a musl C compiler: musl-tools' musl-gcc.
# The Debian release is fixed by the base image tag; exact package builds are not kept
# in Debian's archive, so the package is not pinned to one.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "${TARGET}"
ENV CC_x86_64_unknown_linux_musl=musl-gcc
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target "${TARGET}" \
 && install -D -m 0755 "target/${TARGET}/release/trust-injector" /out/trust-injector \
 && install -D -m 0644 /etc/ssl/certs/ca-certificates.crt /out/ca-certificates.crt

FROM scratch AS binary-source
COPY --from=build /out/trust-injector /trust-injector
COPY --from=build /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

FROM scratch AS binary-context
ARG PREBUILT_DIR=out/image
COPY ${PREBUILT_DIR}/trust-injector /trust-injector
COPY ${PREBUILT_DIR}/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

# binary-${BINARY_SOURCE} names one of the two stages above, not an image, so a tag
# makes no sense here.
# hadolint ignore=DL3006
FROM binary-${BINARY_SOURCE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="trust-injector" \
      org.opencontainers.image.description="Sidecar that merges private CAs from a mounted Secret with public roots and publishes one OpenSSL-style trust bundle" \
      org.opencontainers.image.source="https://github.com/trust-injector/trust-injector" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# /etc/ssl/certs/ca-certificates.crt is where `--base system` looks first, so the
# image's own roots are the default merge base. Nothing in the image is writable.
USER 65532:65532
EXPOSE 9898
ENTRYPOINT ["/trust-injector"]
CMD ["run"]
