#!/usr/bin/env bash
# Makes the base OS image ann-bench-os:bookworm locally, for machines whose Docker engine can
# pull nothing from a registry: debootstrap a minimal Debian bookworm with Python, then
# `docker import` it. Skipped when the image exists (--force rebuilds it).
#
# Usage: install/base-os.sh [--force]
# Environment: ANN_BENCH_OS_IMAGE (default ann-bench-os:bookworm), DEBIAN_MIRROR
#   (default http://deb.debian.org/debian), TMPDIR (where the root is made; removed after).
#
# On a machine that can reach a registry this script is not needed: build the base image
# with `python install.py --build-arg BASE_IMAGE=debian:bookworm-slim`.
set -euo pipefail

image=${ANN_BENCH_OS_IMAGE:-ann-bench-os:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
packages=python3,python3-venv,python3-pip,ca-certificates

if [ "${1:-}" != "--force" ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image exists; not rebuilding (pass --force to rebuild)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "debootstrap needs root: run this script as root (or with sudo)" >&2
  exit 1
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "installing debootstrap with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

start=$(date +%s)
root=$(mktemp -d "${TMPDIR:-/var/tmp}/ann-bench-os.XXXXXX")
chmod 755 "$root"  # it becomes the image's /, which every user must be able to enter

cleanup() {
  set +e
  # debootstrap mounts /proc and /sys inside the root; an interrupted run can leave them
  # mounted, and rm -rf must never walk into them.
  grep -o " $root/[^ ]*" /proc/mounts | sort -r | while read -r mnt; do
    umount -l "$mnt"
  done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT

echo "debootstrap $suite (minbase + $packages) from $mirror into $root"
debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror"

# Only what an image needs: no package caches, lists, manuals or logs.
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log \
       "$root"/var/cache/debconf/*-old "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root"/usr/share/doc -type f ! -name copyright -delete 2>/dev/null || true
echo "deb $mirror $suite main" > "$root"/etc/apt/sources.list
: > "$root"/etc/hostname
: > "$root"/etc/resolv.conf

tar --numeric-owner -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap --variant=minbase $suite + $packages" \
  - "$image"
echo "built $image in $(( $(date +%s) - start )) s"
