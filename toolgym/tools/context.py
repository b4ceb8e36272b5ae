"""``ToolContext``: what one tool call may use, the episode's sandbox and task.

A tool runs against the episode it is called in, never against the env: the
env builds one context per episode and hands it to every call, so a tool
cannot reach into env state, and an env with no sandbox at all (KeyChain-v0,
whose ``get`` is a lookup in the task's hidden table) runs its tools through
the same dispatch as every other env. Tools sit below envs, so the task is
typed by what a tool may read of it (:class:`ToolTask`), which an env's
:class:`~toolgym.envs.tasks.Task` is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from toolgym.errors import ConfigError
from toolgym.sandbox.base import Sandbox

__all__ = ["ToolContext", "ToolTask"]


class ToolTask(Protocol):
    """What a tool may read of the episode's task."""

    @property
    def id(self) -> str:
        """The task's id."""
        ...

    @property
    def data(self) -> Mapping[str, Any]:
        """The task's hidden material (a lookup table, a database name ...)."""
        ...


class ToolContext:
    """The sandbox and task of the episode a call is made in; either may be absent.

    ``sandbox`` and ``task`` raise, naming the fix, when the context has none:
    an env without sandboxes accepts only tools with ``needs_sandbox = False``,
    so a tool that reads ``sandbox`` there is a bug, not the agent's mistake.

    Args:
        sandbox: The episode's sandbox; None in an env that holds none.
        task: The episode's task; None outside an episode (a tool tested alone).

    Example:
        >>> context = ToolContext(None)
        >>> context.sandbox  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        toolgym.errors.ConfigError: This tool needs a sandbox and its env holds none: ...
    """

    __slots__ = ("_sandbox", "_task")

    def __init__(self, sandbox: Sandbox | None = None, task: ToolTask | None = None) -> None:
        self._sandbox = sandbox
        self._task = task

    @property
    def sandbox(self) -> Sandbox:
        """The episode's sandbox.

        Raises:
            ConfigError: the context has none.
        """
        if self._sandbox is None:
            raise ConfigError("This tool needs a sandbox and its env holds none: give the env a "
                              "SandboxSpec (ToolEnv(sandbox=...)), or set needs_sandbox = False "
                              "on a tool that does not use it.")
        return self._sandbox

    @property
    def task(self) -> ToolTask:
        """The episode's task.

        Raises:
            ConfigError: the context has none.
        """
        if self._task is None:
            raise ConfigError("This tool reads the episode's task and was called without one: "
                              "dispatch it with ToolContext(sandbox, task).")
        return self._task

    def __repr__(self) -> str:
        sandbox = self._sandbox.id if self._sandbox is not None else None
        task = self._task.id if self._task is not None else None
        return f"ToolContext(sandbox={sandbox!r}, task={task!r})"
