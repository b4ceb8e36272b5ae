"""A memory-capped parent cgroup for this process's containers: the kernel keeps the budget.

The memory budget (:mod:`toolgym.sandbox.budget`) is admission control: a
provider does not *start* a sandbox whose cap would take the process past it.
It does not stop memory that no container cap covers, or a sandbox started
around the providers (a bug, a plugin calling the backend directly). So on a
local Docker daemon every container of this process starts in a parent cgroup
of its own, ``/toolgym/<pid>-<start>-<limit>m``, whose memory limit is the
budget: whatever the containers do together, the kernel OOM-kills inside that
cgroup before the host runs out.

Where this works: a daemon on this machine (no ``host``, ``DOCKER_HOST`` unset
or a ``unix://`` socket) with the ``cgroupfs`` cgroup driver and cgroup v1,
and a process that may write ``/sys/fs/cgroup/memory`` (root). Elsewhere the
budget is admission control only, said once in the log: with the ``systemd``
driver a parent must be a systemd slice whose limit only systemd sets (over
D-Bus), a remote daemon's cgroups are another machine's, and cgroup v2 parents
(``memory.max``, subtree delegation) are not written yet. The first container
confirms that the daemon sees the same cgroup tree (its cgroup must appear
under the parent); if it does not, the parent is dropped with a warning.

Parents are removed at exit (:func:`remove_own`, after the containers) and,
after ``kill -9``, by the orphan reaper (:func:`reap_orphan_parents`): only
empty ones, of owners provably dead.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from toolgym.sandbox import owner

log = logging.getLogger(__name__)

MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
"""cgroup v1's memory hierarchy, as the local daemon's runc sees it."""
TOP = "toolgym"
"""The folder under the hierarchy's root that holds every toolgym process's parent."""
_LIMIT_FILES = ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
"""Memory, then memory + swap (absent without swap accounting): the order a lower limit
must be written in."""

_lock = threading.Lock()
_made: dict[int, str] = {}
"""limit in MiB -> the parent made for it by this process."""
_confirmed: set[str] = set()
_unusable: str | None = None
"""Why this process makes no parents (logged once); None while it may."""


def parent_for(limit_mb: int, info: dict[str, object], local: bool) -> str | None:
    """The ``cgroup_parent`` for a container of this process under a ``limit_mb`` budget,
    made (and capped) on first use; None where no capped parent is possible (see the module).

    Args:
        limit_mb: the budget the parent enforces.
        info: the daemon's ``docker info`` (its cgroup driver and version).
        local: whether the daemon runs on this machine.
    """
    global _unusable
    with _lock:
        if _unusable is not None:
            return None
        if limit_mb in _made:
            return _made[limit_mb]
        why = _why_not(info, local)
        if why is None:
            path = f"/{TOP}/{_own_prefix()}{limit_mb}m"
            try:
                _make(MEMORY_ROOT / path.lstrip("/"), limit_mb)
            except OSError as exc:
                why = f"cannot write {MEMORY_ROOT}: {exc}"
            else:
                _made[limit_mb] = path
                return path
        _unusable = why
    log.info("sandbox memory: no capped parent cgroup (%s); the memory budget is enforced by "
             "admission control only", why)
    return None


def confirm(parent: str, container_id: str) -> bool:
    """Whether the container's cgroup is under ``parent`` (the daemon shares this machine's
    cgroup tree); if not, stop making parents and say so. Checked once per parent."""
    global _unusable
    if parent in _confirmed:
        return True
    if (MEMORY_ROOT / parent.lstrip("/") / container_id).is_dir():
        _confirmed.add(parent)
        return True
    with _lock:
        _unusable = "the daemon does not place containers in this machine's cgroup tree"
        _made.clear()
    log.warning("sandbox memory: container %s is not in the parent cgroup %s (%s); the memory "
                "budget is enforced by admission control only", container_id[:12], parent,
                _unusable)
    return False


def remove_own() -> None:
    """Remove this process's parents that are empty (at exit, after its containers)."""
    prefix = _own_prefix()
    for folder in _parents():
        if folder.name.startswith(prefix):
            _rmdir(folder)


def reap_orphan_parents() -> int:
    """Remove the empty parents of owners that are provably dead; return how many."""
    removed = 0
    for folder in _parents():
        pid, _, rest = folder.name.partition("-")
        start = rest.rsplit("-", 1)[0]
        if pid.isdigit() and owner.process_start_time(int(pid)) != start:
            removed += _rmdir(folder)
    return removed


def _why_not(info: dict[str, object], local: bool) -> str | None:
    if not local:
        return "the Docker daemon is on another machine"
    if info.get("CgroupDriver") != "cgroupfs":
        return (f"the daemon's cgroup driver is {info.get('CgroupDriver')!r}: a parent must be "
                "a systemd slice, whose limit only systemd can set")
    if str(info.get("CgroupVersion", "1")) != "1":
        return "cgroup v2 parents are not written yet"
    if not os.access(MEMORY_ROOT, os.W_OK):
        return f"{MEMORY_ROOT} is not writable by this process"
    return None


def _make(folder: Path, limit_mb: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in _LIMIT_FILES:
        limit_file = folder / name
        if limit_file.exists():
            limit_file.write_text(str(limit_mb << 20))


def _own_prefix() -> str:
    pid = os.getpid()
    return f"{pid}-{owner.process_start_time(pid) or ''}-"


def _parents() -> list[Path]:
    try:
        return [p for p in (MEMORY_ROOT / TOP).iterdir() if p.is_dir()]
    except OSError:
        return []


def _rmdir(folder: Path) -> int:
    try:
        folder.rmdir()  # a cgroup with processes or children refuses (EBUSY): kept
    except OSError:
        return 0
    with _lock:
        for limit, path in list(_made.items()):
            if path.endswith(folder.name):
                del _made[limit]
    return 1
