# shellcheck shell=bash
# What the container scripts share (.ci/container-test.sh, .ci/inject-roots-test.sh,
# .ci/inject-pod-test.sh). Sourced, not run.

# Container storage and configuration private to one run under DIR, so a run never sees
# or leaves images on the machine: vfs (works without overlay support), runc, cgroupfs
# and a file events log (no systemd), open-file limits a CI container allows.
# Defines podman_ and buildah_, which take podman's and buildah's arguments.
private_containers() { # private_containers DIR
  PRIVATE_CONTAINERS=$1
  cat >"$PRIVATE_CONTAINERS/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  export CONTAINERS_CONF="$PRIVATE_CONTAINERS/containers.conf" PRIVATE_CONTAINERS
}
podman_() {
  podman --root "$PRIVATE_CONTAINERS/root" --runroot "$PRIVATE_CONTAINERS/runroot" \
    --storage-driver vfs --tmpdir "$PRIVATE_CONTAINERS/libpod" "$@"
}
buildah_() {
  buildah --root "$PRIVATE_CONTAINERS/root" --runroot "$PRIVATE_CONTAINERS/runroot" \
    --storage-driver vfs "$@"
}

# A Secret volume the way the kubelet writes it (its AtomicWriter, as
# tests/common/atomic_writer.rs does), in the directory $SECRET:
#   $SECRET/..<timestamp>/<key>   the real files of one version (mode 0644, the default)
#   $SECRET/..data -> ..<timestamp>  swapped with rename(2) on every update
#   $SECRET/<key> -> ..data/<key>    stable per-key symlinks
secret_write() { # secret_write KEY FILE... : publish a new version holding KEY = cat FILE...
  local key=$1; shift
  local ts old
  ts="..$(date -u +%Y_%m_%d_%H_%M_%S.%N)"
  old=$(readlink "$SECRET/..data" 2>/dev/null || true)
  mkdir "$SECRET/$ts"
  cat "$@" >"$SECRET/$ts/$key"
  chmod 0755 "$SECRET/$ts"
  chmod 0644 "$SECRET/$ts/$key"
  ln -s "$ts" "$SECRET/..data_tmp"
  mv -T "$SECRET/..data_tmp" "$SECRET/..data"
  [ -L "$SECRET/$key" ] || ln -s "..data/$key" "$SECRET/$key"
  if [ -n "$old" ]; then rm -rf "${SECRET:?}/$old"; fi
}
