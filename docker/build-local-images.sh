#!/usr/bin/env bash
# Local stand-ins for the official images docker-compose.yml uses (python:3.11-slim, redis:7,
# postgres:16) when no registry can be reached: Debian bookworm from Debian's mirror
# (debootstrap), then Debian's python3 (3.11), redis-server (7.0) and postgresql-15.
# An image that already exists is kept (delete it with `docker rmi` to rebuild it).
#
#   sudo docker/build-local-images.sh        # then use the variables it prints:
#   EVALFLEET_PYTHON_IMAGE=evalfleet-local/python:3.11 ... docker-compose up -d --build
#
# Settings (environment): EVALFLEET_LOCAL_PREFIX (evalfleet-local), DEBIAN_MIRROR
# (http://deb.debian.org/debian), DEBIAN_SUITE (bookworm). Needs root, debootstrap, docker.
set -euo pipefail

PREFIX=${EVALFLEET_LOCAL_PREFIX:-evalfleet-local}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${DEBIAN_SUITE:-bookworm}
HERE=$(cd "$(dirname "$0")" && pwd)
BASE=$PREFIX/debian:$SUITE

say() { echo "[build-local-images $(date -u +%H:%M:%S)] $*" >&2; }
have() { docker image inspect "$1" >/dev/null 2>&1; }

build_base() {
    if have "$BASE"; then say "$BASE exists, kept"; return; fi
    command -v debootstrap >/dev/null || { say "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
    local root
    root=$(mktemp -d /tmp/evalfleet-rootfs.XXXXXX)
    # The rootfs is removed however the script ends.
    trap 'rm -rf "$root"' EXIT
    say "debootstrap $SUITE from $MIRROR (a few minutes)"
    debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$root" "$MIRROR" >&2
    # As the official Debian images: no package caches, no docs, apt told it runs unattended.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\n' \
        > "$root/etc/dpkg/dpkg.cfg.d/excludes"
    tar -C "$root" --numeric-owner -c . \
        | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' - "$BASE" >&2
    rm -rf "$root"
    trap - EXIT
}

build_image() {  # tag, Dockerfile in local-images/
    if have "$1"; then say "$1 exists, kept"; return; fi
    say "building $1"
    docker build --build-arg "BASE=$BASE" -t "$1" -f "$HERE/local-images/$2" "$HERE/local-images" >&2
}

build_base
build_image "$PREFIX/python:3.11" python.Dockerfile
build_image "$PREFIX/redis:7" redis.Dockerfile
build_image "$PREFIX/postgres:15" postgres.Dockerfile

# What docker-compose.yml reads (stdout: `eval "$(docker/build-local-images.sh)"` sets them).
echo "export EVALFLEET_PYTHON_IMAGE=$PREFIX/python:3.11"
echo "export EVALFLEET_REDIS_IMAGE=$PREFIX/redis:7"
echo "export EVALFLEET_POSTGRES_IMAGE=$PREFIX/postgres:15"
