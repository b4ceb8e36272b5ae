#!/usr/bin/env bash
# Sets up everything toolgym needs on a Debian machine, skipping what exists:
#
#   packages  Debian packages: docker.io, debootstrap, bubblewrap, iptables,
#             chromium, python3-venv (apt-get update only when one is missing)
#   docker    a Docker daemon (started in the background when none answers)
#   venv      .venv/ with exactly the versions in requirements.lock (hashes
#             checked; torch's CPU build and every extra but gpu and
#             integration), then
#             toolgym itself, editable, without resolving anything more
#   images    the sandbox images (`toolgym sandbox build`, skips up-to-date ones)
#
#   usage: scripts/setup.sh [STEP...]     (default: all four, in that order)
#
# Environment: PYTHON (interpreter for the venv, default python3),
# TOOLGYM_CHROMIUM (default /usr/bin/chromium), DOCKERD_LOG (default
# /var/log/dockerd.log), DOCKERD_WAIT_S (default 60), DOCKERD_ARGS (extra
# dockerd flags, e.g. "--data-root /big/disk/docker"; word-split).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
DOCKERD_WAIT_S=${DOCKERD_WAIT_S:-60}
read -r -a DOCKERD_ARGS <<<"${DOCKERD_ARGS:-}"
VENV=.venv
STAMP=$VENV/.toolgym-setup

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi; }

step_packages() {
  local missing=()
  # command -> Debian package; a command already on PATH (e.g. from docker-ce) is enough.
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker >/dev/null || missing+=(docker.io)
  command -v iptables >/dev/null || missing+=(iptables)       # dockerd's bridge network
  # With AppArmor on in the kernel (Debian's default), dockerd cannot start a
  # container without apparmor_parser (a docker.io Recommends, skipped below).
  if [[ $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null) == Y ]] &&
    ! command -v apparmor_parser >/dev/null && [[ ! -x /usr/sbin/apparmor_parser ]]; then
    missing+=(apparmor)
  fi
  command -v debootstrap >/dev/null || missing+=(debootstrap) # the base image
  command -v bwrap >/dev/null || missing+=(bubblewrap)        # the local sandbox backend
  # Debian's chromium, driven by playwright, for the GUI envs and the report tests.
  [[ -x ${TOOLGYM_CHROMIUM:-/usr/bin/chromium} ]] || missing+=(chromium fonts-liberation)
  # playwright's bundled node needs libatomic.so.1, absent from a minimal Debian.
  grep -q 'libatomic\.so\.1 ' < <(ldconfig -p 2>/dev/null) || missing+=(libatomic1)
  [[ -e /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
  command -v "$PYTHON" >/dev/null || missing+=(python3)
  if [[ ! -x $VENV/bin/python ]] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3-venv)
  fi
  if ((${#missing[@]} == 0)); then
    say "packages: all present"
    return
  fi
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

step_docker() {
  if docker info >/dev/null 2>&1; then
    say "docker: daemon answers"
    return
  fi
  local pid="" waited=0
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    say "docker: starting the docker service (systemctl)"
    as_root systemctl start docker
  else
    say "docker: no daemon answers; starting dockerd in the background (log: $DOCKERD_LOG)"
    as_root mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid: the daemon outlives this script, make and the terminal.
    as_root setsid dockerd "${DOCKERD_ARGS[@]}" </dev/null >>"$DOCKERD_LOG" 2>&1 &
    pid=$!
  fi
  until docker info >/dev/null 2>&1; do
    local exited=false
    [[ -n $pid && ! -e /proc/$pid ]] && exited=true
    if $exited || ((waited >= DOCKERD_WAIT_S)); then
      local why="did not answer within ${DOCKERD_WAIT_S} s"
      $exited && why="exited"
      echo "[setup] error: dockerd $why; last lines of $DOCKERD_LOG:" >&2
      tail -n 25 "$DOCKERD_LOG" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "docker: daemon answers after ${waited} s"
}

venv_stamp() {
  # Whatever the install depends on: a change in any of these reinstalls.
  { cat pyproject.toml requirements.lock; pwd; "$VENV/bin/python" --version; } 2>&1 |
    sha256sum | cut -c1-16
}

step_venv() {
  if [[ ! -x $VENV/bin/python ]]; then
    say "venv: creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp
  stamp=$(venv_stamp)
  if [[ -x $VENV/bin/toolgym && -f $STAMP && $(<"$STAMP") == "$stamp" ]]; then
    say "venv: up to date"
    return
  fi
  rm -f "$STAMP"
  # The lock pins every package (torch's CPU build included: an unpinned torch
  # would pull a multi-GB CUDA build); scripts/lock.sh refreshes it.
  say "venv: installing requirements.lock ($(grep -c '^[a-z0-9]' requirements.lock) packages, hashes checked)"
  "$VENV/bin/python" -m pip install -q --require-hashes -r requirements.lock
  say "venv: installing toolgym (editable, no dependency resolution)"
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
  # A dependency added to pyproject.toml but not to the lock shows up here.
  local unmet
  unmet=$("$VENV/bin/python" - <<'PY'
import importlib.metadata as md, tomllib
from packaging.requirements import Requirement
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project.get("optional-dependencies", {})
unlocked = ("gpu", "integration")  # not in the lock (scripts/lock.sh says why)
wanted = project["dependencies"] + [r for name, rs in extras.items() if name not in unlocked
                                    for r in rs]
for req in map(Requirement, wanted):
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        print(f"{req} (not installed)")
        continue
    if not req.specifier.contains(version, prereleases=True):
        print(f"{req} (locked {version})")
PY
)
  [[ -z $unmet ]] || die "requirements.lock does not satisfy pyproject.toml: $(echo $unmet); refresh it with scripts/lock.sh"
  echo "$stamp" >"$STAMP"
}

step_images() {
  say "images: toolgym sandbox build"
  "$VENV/bin/toolgym" sandbox build
}

steps=("$@")
((${#steps[@]})) || steps=(packages docker venv images)
start=$SECONDS
for step in "${steps[@]}"; do
  case $step in
    packages | docker | venv | images) "step_$step" ;;
    *) die "unknown step '$step' (packages, docker, venv, images)" ;;
  esac
done
say "done in $((SECONDS - start)) s"
