"""Leave no container behind: the exit hook, the orphan reaper and signal handling.

Three layers, each covering what the one before cannot:

1. Sandboxes remove their container on ``aclose`` (also under cancellation).
2. :func:`register_exit_hook` removes, at interpreter exit, every container
   labelled with this process's run id: normal exit, an uncaught exception,
   Ctrl-C (SIGINT), and SIGTERM once :func:`exit_on_sigterm` is installed.
3. After ``kill -9``, nothing in the dead process can run; :func:`reap_orphans`
   (called when a pool starts, and by ``toolgym sandbox prune``) removes
   containers whose labelled owner is provably dead, and such owners' parent
   cgroups and channel socket directories.
"""

from __future__ import annotations

import atexit
import signal
import threading
from dataclasses import dataclass
from typing import Any

import docker.errors

from toolgym.sandbox import cgroup, host_socket, owner
from toolgym.sandbox.docker_client import docker_client

_hook_lock = threading.Lock()
_hook_installed = False
_hook_hosts: set[str | None] = set()


@dataclass(frozen=True)
class ContainerInfo:
    """A toolgym container as ``toolgym sandbox ls`` shows it."""

    id: str
    image: str
    status: str
    run_id: str
    owner_pid: str
    owner_alive: bool


def _find(label_filter: str, host: str | None = None) -> list[dict[str, Any]]:
    """Container summaries (id, labels, state) from one list call: no per-container
    inspect, so containers removed meanwhile by someone else cause no errors."""
    return docker_client(host).api.containers(all=True, filters={"label": label_filter})


def list_containers() -> list[ContainerInfo]:
    """Every container toolgym started on this daemon, with its owner's liveness."""
    return [
        ContainerInfo(
            id=c["Id"],
            image=c["Labels"].get("toolgym.image", c.get("Image", "?")),
            status=c.get("State", "?"),
            run_id=c["Labels"].get("toolgym.owner.run", "?"),
            owner_pid=c["Labels"].get("toolgym.owner.pid", "?"),
            owner_alive=owner.owner_alive(c["Labels"]),
        )
        for c in _find("toolgym.owner.run")
    ]


def _remove_all(ids: list[str], host: str | None = None) -> int:
    api = docker_client(host).api
    removed = 0
    for cid in ids:
        try:
            api.remove_container(cid, force=True)
            removed += 1
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise
    return removed


def reap_orphans(host: str | None = None) -> int:
    """Remove containers (on the daemon at ``host``) whose owner process is provably dead,
    then those owners' empty parent cgroups (:mod:`toolgym.sandbox.cgroup`) and socket
    directories (:mod:`toolgym.sandbox.host_socket`).

    Returns:
        how many containers were removed.
    """
    removed = _remove_all(
        [c["Id"] for c in _find("toolgym.owner.pid", host) if not owner.owner_alive(c["Labels"])],
        host,
    )
    cgroup.reap_orphan_parents()
    host_socket.reap_orphan_dirs()
    return removed


def remove_run(run_id: str = owner.RUN_ID, host: str | None = None) -> int:
    """Remove every container labelled with ``run_id`` (default: this process's)."""
    return _remove_all([c["Id"] for c in _find(f"toolgym.owner.run={run_id}", host)], host)


def register_exit_hook(host: str | None = None) -> None:
    """Make interpreter exit remove this process's containers on ``host``'s daemon
    (idempotent)."""
    global _hook_installed
    with _hook_lock:
        _hook_hosts.add(host)
        if not _hook_installed:
            atexit.register(_exit_hook)
            _hook_installed = True


def _exit_hook() -> None:
    for host in list(_hook_hosts):
        try:
            remove_run(host=host)
        except Exception:  # noqa: BLE001 - best effort at exit; the reaper is the backstop
            pass
    cgroup.remove_own()


def exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit`` so ``finally`` blocks and the exit hook run.

    Call it from a program's entry point (the CLI does); library code never
    installs signal handlers behind the caller's back.
    """

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
