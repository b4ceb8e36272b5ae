"""Who owns a container: labels written at start, checked by the reaper.

Every container toolgym starts carries the owner's run id, pid, the pid's start
time (so a recycled pid is not mistaken for the owner) and the host's boot id
(so a daemon shared by several machines never reaps another machine's
containers). :func:`owner_alive` decides from those labels alone.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from collections.abc import Mapping

LABEL_PREFIX = "toolgym."
RUN_ID = uuid.uuid4().hex[:12]
"""This process's run id; every container it starts is labelled with it."""


@functools.lru_cache(maxsize=1)
def host_id() -> str:
    """Hostname + boot id: the same for every process on this boot of this machine."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        boot = "unknown"
    return f"{socket.gethostname()}/{boot}"


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` in clock ticks, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def labels() -> dict[str, str]:
    """Labels that tie a new container to this process."""
    pid = os.getpid()
    return {
        "toolgym.owner.run": RUN_ID,
        "toolgym.owner.pid": str(pid),
        "toolgym.owner.start": process_start_time(pid) or "",
        "toolgym.owner.host": host_id(),
    }


def owner_alive(container_labels: Mapping[str, str]) -> bool:
    """True unless the labels prove the owner process is dead on this host.

    Containers of another host, or without owner labels, count as alive: the
    reaper never removes what it cannot prove is orphaned.
    """
    if container_labels.get("toolgym.owner.host") != host_id():
        return True
    try:
        pid = int(container_labels["toolgym.owner.pid"])
    except (KeyError, ValueError):
        return True
    return process_start_time(pid) == container_labels.get("toolgym.owner.start")
