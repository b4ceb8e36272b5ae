#!/usr/bin/env bash
# Bootstraps the toolgym base image from Debian packages, for machines that
# reach no image registry: debootstrap a minbase bookworm root with python3,
# then `docker import` it.  Usage: bootstrap.sh TAG [MIRROR]
set -euo pipefail
tag=${1:?usage: bootstrap.sh TAG [MIRROR]}
mirror=${2:-http://deb.debian.org/debian}
root=$(mktemp -d /tmp/toolgym-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,ca-certificates \
  bookworm "$root" "$mirror" >&2
# Keep the image small: no apt lists, docs or caches.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/sh"]' - "$tag" >&2
echo "$tag"
