"""Sandbox backends: the readable list of who can start a sandbox, loaded lazily.

A backend turns a :class:`~toolgym.sandbox.spec.SandboxSpec` into a running
:class:`~toolgym.sandbox.base.Sandbox`. Nothing above the sandbox package
names one: an env carries a spec, a
:class:`~toolgym.sandbox.provider.SandboxProvider` (a warm pool, or a sandbox
started per episode) is built with a backend *name* from config
(``sandbox.backend: local``), and :func:`get_backend` imports the backend's
module only then, so the Docker SDK loads only where Docker is used.

Adding a backend is one module with a class that follows
:class:`SandboxBackend` and one :func:`register_backend` line, here for a
built-in one, or from a third-party package through the
``toolgym.sandbox_backends`` entry-point group (each entry point names the
backend class)::

    [project.entry-points."toolgym.sandbox_backends"]
    firecracker = "mypkg.firecracker:FirecrackerBackend"

Example:
    >>> sorted(backend_names())[:2]
    ['docker', 'local']
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from toolgym.errors import ConfigError
from toolgym.registry import Registry, load
from toolgym.sandbox.base import Sandbox
from toolgym.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from toolgym.sandbox.budget import MemoryBudget

log = logging.getLogger(__name__)
PLUGIN_GROUP = "toolgym.sandbox_backends"

BackendFactory = Callable[..., "SandboxBackend"]
"""A backend class (or any callable) taking the backend's options as keywords."""


@runtime_checkable
class SandboxBackend(Protocol):
    """What a provider needs from a backend: start sandboxes, clean up, and size budgets."""

    name: str
    """The name it is registered under (``docker``, ``local``, ...)."""

    async def acreate(
        self, spec: SandboxSpec, *, labels: Mapping[str, str] | None = None
    ) -> Sandbox:
        """Start a sandbox for ``spec``, ready for ``aexec``.

        Raises:
            ConfigError: the backend cannot honour ``spec`` (e.g. it has no images).
            SandboxUnavailable: the backend cannot start sandboxes on this machine.
        """
        ...

    def reap_orphans(self) -> int:
        """Remove sandboxes left by owner processes that died; return how many (blocking)."""
        ...

    def memory_budget(self) -> MemoryBudget:
        """The process-wide budget that every pool on this backend's host reserves from."""
        ...

    def host_memory_mb(self) -> int:
        """Memory of the host its sandboxes run on, in MiB (a budget may not exceed it)."""
        ...


_registry: Registry[str | BackendFactory] = Registry("sandbox backend")
_plugins_loaded = False


def register_backend(name: str, entry_point: str | BackendFactory) -> None:
    """Make ``name`` selectable as ``sandbox.backend``.

    Args:
        name: the config name.
        entry_point: ``"module:Class"`` (imported on first use), or the class itself.

    Raises:
        ConfigError: ``name`` is taken by another backend.
    """
    _registry.add(name, entry_point)


register_backend("docker", "toolgym.sandbox.docker:DockerBackend")
register_backend("local", "toolgym.sandbox.local:LocalBackend")


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        try:
            register_backend(ep.name, ep.value)
        except ConfigError:
            log.exception("sandbox backend plugin %r clashes with a registered one", ep.name)


def backend_names() -> list[str]:
    """Every registered backend name, plugins included."""
    _load_plugins()
    return list(_registry)


def check_backend_name(name: str) -> str | BackendFactory:
    """The registry entry of ``name`` (plugins loaded).

    Raises:
        ConfigError: no backend has that name (with close matches).
    """
    _load_plugins()
    return _registry.lookup(name)


def get_backend(name: str, **options: Any) -> SandboxBackend:
    """A new backend named ``name``, built with ``options``.

    Raises:
        ConfigError: no backend has that name (with close matches), or it rejects
            ``options``.
    """
    factory: BackendFactory = load(check_backend_name(name))
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigError(f"sandbox backend {name!r} does not take {sorted(options)}: "
                          f"{exc}") from None

