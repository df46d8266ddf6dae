# Sourced (sh) by the tests that run containers for real (make systemd-test, make compose-test, make demo-image
# users): installs podman and its helpers from Debian when missing, points podman at a configuration that works
# on these machines (runc, cgroupfs, explicit ulimits; ../shared/RECIPES.md) and makes sure the base image
# localhost/debian:bookworm exists, built from Debian's mirror with mmdebstrap (no registry is reachable).
# After sourcing: $CONTAINERS_CONF is exported, $AEGIS_PODMAN_DIR holds the configuration and the base image's
# tarball cache. Idempotent; safe to source from several tests in turn.
AEGIS_PODMAN_DIR=${AEGIS_PODMAN_DIR:-/var/tmp/aegis-podman}
mkdir -p "$AEGIS_PODMAN_DIR"
export AEGIS_PODMAN_DIR
if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v docker-compose >/dev/null \
    || ! command -v runc >/dev/null; then
    echo "podman-env: installing podman, buildah, mmdebstrap, docker-compose, runc (Debian packages)"
    apt-get update -qq || return 1
    # --no-install-recommends: docker-compose recommends docker.io, which is not needed (podman serves the
    # Docker API) and must not be installed; nothing is removed either (a workstation may run Docker). The
    # recommended packages podman needs here are named: netavark and aardvark-dns (its network stack, with
    # the DNS that lets compose services find each other by name), catatonit (podman run --init).
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman buildah mmdebstrap \
        docker-compose slirp4netns fuse-overlayfs uidmap runc netavark aardvark-dns catatonit gpg >/dev/null \
        || return 1
fi
cat > "$AEGIS_PODMAN_DIR/containers.conf" <<'X'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
X
export CONTAINERS_CONF="$AEGIS_PODMAN_DIR/containers.conf"
if ! podman image exists localhost/debian:bookworm; then
    echo "podman-env: building localhost/debian:bookworm with mmdebstrap (about 75 s)"
    mmdebstrap --quiet --variant=minbase bookworm "$AEGIS_PODMAN_DIR/rootfs.tar" || return 1
    podman import -q "$AEGIS_PODMAN_DIR/rootfs.tar" localhost/debian:bookworm >/dev/null || return 1
    rm -f "$AEGIS_PODMAN_DIR/rootfs.tar"
fi
