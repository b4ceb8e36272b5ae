"""``EnvFactory``: one registered env, described once, its episodes bound to one provider.

Whoever runs many episodes of an env (the rollout manager, ``evaluate``, SFT's
demonstrations, the CLI) needs three things: what the env is (its tasks, tools
and sandbox spec), one place its sandboxes come from, and fresh envs that use
that place. :class:`EnvFactory` gives all three: it resolves the registered
spec once, reads the description from one env it never resets (so it holds
no sandbox), builds the provider from a ``sandbox:`` config section
(:class:`~toolgym.sandbox.provider.SandboxConfig`: backend, pool size, max
size) when it is started, and makes envs bound to it. Nobody else builds a
throw-away env to read ``.unwrapped.tasks`` or builds a pool to hand it back
down through kwargs.

    >>> envs = EnvFactory("toolgym/KeyChain-v0")
    >>> len(envs.task_ids()) > 0, envs.sandbox_spec is None, list(envs.tools)
    (True, True, ['get'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gymnasium.envs.registration import EnvSpec

from toolgym._sync import run_sync
from toolgym.envs.base import ToolEnv
from toolgym.envs.registration import make_async, spec
from toolgym.envs.tasks import TaskSource
from toolgym.envs.wrappers import Budget
from toolgym.errors import ConfigError, SandboxError
from toolgym.sandbox.provider import SandboxConfig, SandboxProvider, build_provider
from toolgym.sandbox.spec import SandboxSpec
from toolgym.tools import ToolSet


@dataclass(frozen=True)
class EnvDescription:
    """What an env is, read once from an env that was never reset."""

    tasks: TaskSource
    """Every task the env's constructor arguments select (their ``split`` applied)."""
    tools: ToolSet | None
    """What the agent may call; None for an env that declares no tool set."""
    sandbox_spec: SandboxSpec | None
    """What its episodes' sandboxes must be; None for an env that holds none."""


class EnvFactory:
    """Makes envs of ``env_id`` with ``kwargs``, all bound to one sandbox provider.

    Args:
        env_id: a registered id (``toolgym/Calculator-v0``).
        sandbox: the ``sandbox:`` section the provider is built from (default: a warm
            Docker pool sized by :meth:`astart`).
        provider: use this provider instead (the caller starts and closes it).
        max_turns: the turn budget (default: the registered ``max_episode_steps``).
        **kwargs: the env constructor's arguments (``split``, ``seed``, ...).

    Raises:
        UnknownEnv: no env has that id (with close matches).
        ConfigError: both ``sandbox`` and ``provider`` are given.
    """

    def __init__(self, env_id: str, *, sandbox: SandboxConfig | None = None,
                 provider: SandboxProvider | None = None, max_turns: int | None = None,
                 **kwargs: Any) -> None:
        if sandbox is not None and provider is not None:
            raise ConfigError("pass a sandbox config or a provider, not both")
        self.env_id = env_id
        self.env_spec: EnvSpec = spec(env_id)
        self.kwargs = dict(kwargs)
        self.sandbox_config = sandbox or SandboxConfig()
        self.max_turns = max_turns
        self._provider = provider
        self._owns_provider = provider is None
        self._started = provider is not None
        self._description: EnvDescription | None = None

    # ------------------------------------------------------------ description
    async def adescribe(self) -> EnvDescription:
        """The env's tasks, tools and sandbox spec (one env built, never reset, on first call)."""
        if self._description is None:
            env = make_async(self.env_id, **self.kwargs)
            try:
                inner = env.unwrapped
                description = EnvDescription(
                    tasks=inner.tasks,  # type: ignore[attr-defined]
                    tools=getattr(inner, "tools", None),
                    sandbox_spec=inner.sandbox_spec if isinstance(inner, ToolEnv) else None)
            finally:
                await env.aclose()
            self._description = description
        return self._description

    def describe(self) -> EnvDescription:
        """Blocking twin of :meth:`adescribe` (async code awaits that one first)."""
        return self._description or run_sync(self.adescribe())

    @property
    def tasks(self) -> TaskSource:
        """See :attr:`EnvDescription.tasks`."""
        return self.describe().tasks

    @property
    def tools(self) -> ToolSet | None:
        """See :attr:`EnvDescription.tools`."""
        return self.describe().tools

    @property
    def sandbox_spec(self) -> SandboxSpec | None:
        """See :attr:`EnvDescription.sandbox_spec`."""
        return self.describe().sandbox_spec

    def task_ids(self, split: str | None = None) -> list[str]:
        """The ids of every task, or of ``split``'s, in the source's order.

        Raises:
            ConfigError: the env has no task in ``split``.
        """
        tasks = self.tasks.split(split) if split else self.tasks
        return list(tasks.ids())

    # ---------------------------------------------------------------- provider
    @property
    def provider(self) -> SandboxProvider | None:
        """Where the envs get their sandboxes (None before :meth:`astart`, or for an env
        that holds none)."""
        return self._provider

    async def astart(self, concurrency: int = 1, *, episodes: int | None = None) -> EnvFactory:
        """Build and start the provider for ``concurrency`` episodes at once (once; an env
        without a sandbox needs none).

        Args:
            concurrency: episodes in flight; sizes the pool unless ``sandbox`` does.
            episodes: how many episodes will run, when known: no more sandboxes stay warm.
        """
        if self._started:
            return self
        spec_ = (await self.adescribe()).sandbox_spec
        if spec_ is not None:
            provider = build_provider(spec_, self.sandbox_config, concurrency=concurrency,
                                      episodes=episodes)
            self._provider = await provider.astart()
        self._started = True
        return self

    def make(self, **overrides: Any) -> Budget:
        """A new env bound to the provider, for async use, with its turn budget applied.

        Args:
            **overrides: constructor arguments that replace the factory's for this env.

        Raises:
            SandboxError: the env needs sandboxes and :meth:`astart` was not awaited.
        """
        kwargs = {**self.kwargs, **overrides}
        if self.sandbox_spec is not None:
            if self._provider is None:
                raise SandboxError(f"{self.env_id} needs sandboxes: await EnvFactory.astart() "
                                   "before make()")
            kwargs["provider"] = self._provider
        return make_async(self.env_id, max_turns=self.max_turns, **kwargs)

    async def aclose(self) -> None:
        """Close the provider it built (the envs' sandboxes with it). Safe to call twice; a
        later :meth:`astart` builds a new one."""
        provider, owned = self._provider, self._owns_provider
        if owned:
            self._provider, self._started = None, False
            if provider is not None:
                await provider.aclose()

    async def __aenter__(self) -> EnvFactory:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
