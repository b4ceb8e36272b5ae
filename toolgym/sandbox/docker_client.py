"""The one place toolgym creates a Docker client.

Everything that talks to the Docker engine gets its client from
:func:`docker_client`, so a missing daemon is detected once and reported with
the command that fixes it.
"""

from __future__ import annotations

import functools

import docker
import docker.errors

from toolgym.errors import SandboxUnavailable

START_HINT = (
    "Start one with `make docker` (or `dockerd >/var/log/dockerd.log 2>&1 &`), "
    "or set DOCKER_HOST to reach a running daemon."
)


@functools.lru_cache(maxsize=1)
def docker_client() -> docker.DockerClient:
    """Return a connected client (cached).

    Raises:
        SandboxUnavailable: no Docker daemon answers.
    """
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(f"No Docker daemon answers ({exc}). {START_HINT}") from exc
    return client
