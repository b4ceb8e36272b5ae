"""The one place toolgym creates a Docker client.

Everything that talks to the Docker engine gets its client from
:func:`docker_client`, so a missing daemon is detected once and reported with
the command that fixes it. ``host`` names another daemon (``sandbox.host``:
``tcp://gpu-box:2375``, ``ssh://user@box``); None is the one ``DOCKER_HOST``
or the local socket names.
"""

from __future__ import annotations

import functools
import os

import docker
import docker.errors

from toolgym.errors import SandboxUnavailable

START_HINT = (
    "Start one with `make docker` (or `dockerd >/var/log/dockerd.log 2>&1 &`), "
    "or set DOCKER_HOST to reach a running daemon."
)


@functools.cache
def docker_client(host: str | None = None) -> docker.DockerClient:
    """Return a connected client of ``host`` (cached per host).

    Raises:
        SandboxUnavailable: no Docker daemon answers.
    """
    try:
        client = (docker.from_env(timeout=120) if host is None
                  else docker.DockerClient(base_url=host, timeout=120))
        client.ping()
    except docker.errors.DockerException as exc:
        where = "" if host is None else f" at {host}"
        raise SandboxUnavailable(f"No Docker daemon answers{where} ({exc}). {START_HINT}") from exc
    return client


@functools.cache
def daemon_info(host: str | None = None) -> dict[str, object]:
    """``docker info`` of the daemon at ``host``, asked once (memory, cgroup driver …)."""
    return dict(docker_client(host).info())


def is_local(host: str | None = None) -> bool:
    """Whether the daemon at ``host`` runs on this machine (reached through a unix socket).

    Example:
        >>> is_local("unix:///var/run/docker.sock"), is_local("tcp://box:2375")
        (True, False)
    """
    url = host if host is not None else os.environ.get("DOCKER_HOST", "")
    return url == "" or url.startswith("unix://")
