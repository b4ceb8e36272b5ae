#!/usr/bin/env bash
# Bootstraps the toolgym base image from Debian packages, for machines that
# reach no image registry: debootstrap a minbase bookworm root with python3,
# then `docker import` it.
#
#   usage: bootstrap.sh TAG [MIRROR]
#
# MIRROR defaults to $TOOLGYM_DEBIAN_MIRROR, then http://deb.debian.org/debian.
# When $TOOLGYM_IMAGE_HASH is set, the image carries the labels
# toolgym.image.name=base and toolgym.image.hash=$TOOLGYM_IMAGE_HASH.
# Downloaded .debs are kept in /var/cache/toolgym/debootstrap, so a second
# bootstrap (after this script changed) does not download them again.
# Needs root, debootstrap and a Docker daemon; prints TAG on stdout, the rest
# goes to stderr.  `toolgym sandbox build` calls it (toolgym/sandbox/images.py).
set -euo pipefail
tag=${1:?usage: bootstrap.sh TAG [MIRROR]}
mirror=${2:-${TOOLGYM_DEBIAN_MIRROR:-http://deb.debian.org/debian}}
security=${TOOLGYM_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
suite=bookworm
# ps, top and kill for the agent; python3 for the exec supervisor and code tasks.
include=python3,ca-certificates,procps

[[ $(id -u) == 0 ]] || { echo "bootstrap.sh: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null ||
  { echo "bootstrap.sh: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }

cache=/var/cache/toolgym/debootstrap
mkdir -p "$cache"
root=$(mktemp -d "${TMPDIR:-/var/tmp}/toolgym-rootfs.XXXXXX")
cleanup() {
  # debootstrap unmounts what it mounted, but not when it is killed half way.
  grep -o " $root/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT

debootstrap --variant=minbase --include="$include" --cache-dir="$cache" \
  "$suite" "$root" "$mirror" >&2

# The same sources as a Debian host: the release, its updates and security.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Images built FROM this one install with apt-get: keep them small by default.
cat >"$root/etc/apt/apt.conf.d/90toolgym" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF

# Keep the image small: no apt lists, docs or caches.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/*

changes=(
  --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'CMD ["/bin/sh"]'
)
if [[ -n ${TOOLGYM_IMAGE_HASH:-} ]]; then
  changes+=(--change "LABEL toolgym.image.name=base toolgym.image.hash=$TOOLGYM_IMAGE_HASH")
fi
tar -C "$root" -c . | docker import "${changes[@]}" - "$tag" >&2
echo "$tag"
