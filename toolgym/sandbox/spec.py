"""``SandboxSpec``: how to start a sandbox, whatever backend starts it.

A spec says what an episode's sandbox must be (image, limits, network, work
dir, environment, a background service); a
:class:`~toolgym.sandbox.backends.SandboxBackend` says how to start one. Envs
carry a spec and never name a backend, so the same env runs on Docker, on
bubblewrap or on a backend of a third party. A backend refuses, with a
:class:`~toolgym.errors.ConfigError`, a spec it cannot honour (bubblewrap has
no images and no service).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from toolgym.sandbox.limits import DEFAULT_LIMITS, Limits

SERVICE_DIR = "/run/toolgym"
"""A tmpfs the :attr:`SandboxSpec.service` may write (the agent may read, not write it)."""


@dataclass(frozen=True)
class SandboxSpec:
    """How to start a sandbox. Frozen, so pools can key on it.

    Example:
        >>> SandboxSpec(image="toolgym/python:latest", network=False).workdir
        '/work'
    """

    image: str = "toolgym/python:latest"
    """The image its file system comes from (a backend without images ignores it)."""
    limits: Limits = DEFAULT_LIMITS
    network: bool = False
    """Off by default: a sandbox reaches nothing unless a task needs it."""
    workdir: str = "/work"
    """Writable tmpfs, the agent's home; everything else is read-only."""
    env: Mapping[str, str] = field(default_factory=dict)
    wipe: tuple[str, ...] = ("/work", "/tmp", "/dev/shm", "/dev/mqueue")
    """Directories emptied when a pooled sandbox is made clean again."""
    service: tuple[str, ...] = ()
    """argv of a process the container runs from its start, beside the idle one and as
    the same user, out of the agent's reach: resets neither kill it nor wipe its
    writable dir, :data:`SERVICE_DIR`. For read-only helpers every episode may share,
    such as Search-v0's index server (it would cost each episode a reload)."""

    def base_env(self) -> dict[str, str]:
        """Environment the agent's commands start with."""
        return {
            "HOME": self.workdir,
            "LANG": "C.UTF-8",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONDONTWRITEBYTECODE": "1",
            "TMPDIR": "/tmp",
            **self.env,
        }
