"""Registering and making toolgym environments on top of Gymnasium's registry.

Built-in envs are registered on ``import toolgym`` (see ``envs/__init__.py``).
Third-party packages add envs through the ``toolgym.envs`` entry-point group:
each entry point names a callable (or a module) that registers its envs.
Gymnasium 1.x no longer loads plugins itself, so :func:`load_plugins` does.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import logging
from typing import Any

import gymnasium
from gymnasium.envs.registration import EnvSpec, load_env_creator

from toolgym.envs.wrappers import Budget
from toolgym.errors import RegistryError, UnknownEnv

log = logging.getLogger(__name__)
NAMESPACE = "toolgym"
PLUGIN_GROUP = "toolgym.envs"
_plugins_loaded = False
_plugin_ids: set[str] = set()


def load_plugins() -> list[str]:
    """Run every ``toolgym.envs`` entry point once; return the names loaded.

    A broken plugin is logged and skipped: it must not take the built-ins down.
    The ids a plugin registers are remembered, whatever their namespace.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return []
    _plugins_loaded = True
    loaded = []
    for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        before = set(gymnasium.registry)
        try:
            target = ep.load()
            if callable(target):
                target()
            loaded.append(ep.name)
        except Exception:  # noqa: BLE001 - report and go on
            log.exception("toolgym env plugin %r failed to load", ep.name)
        _plugin_ids.update(set(gymnasium.registry) - before)
    return loaded


def env_ids() -> list[str]:
    """Ids of the built-in envs and of those the ``toolgym.envs`` plugins registered."""
    load_plugins()
    return sorted(env_id for env_id, env_spec in gymnasium.registry.items()
                  if env_spec.namespace == NAMESPACE or env_id in _plugin_ids)


def spec(env_id: str) -> EnvSpec:
    """The registered spec of ``env_id``.

    Raises:
        UnknownEnv: nothing is registered under that id (with close matches).
    """
    load_plugins()
    try:
        return gymnasium.spec(env_id)
    except gymnasium.error.Error:
        matches = difflib.get_close_matches(env_id, list(gymnasium.registry), n=3, cutoff=0.5)
        raise UnknownEnv(env_id, matches) from None


def make(env_id: str, **kwargs: Any) -> gymnasium.Env[str, str]:
    """``gymnasium.make`` with toolgym's plugins loaded and a helpful unknown-id error."""
    spec(env_id)
    return gymnasium.make(env_id, **kwargs)


def make_async(env_id: str, *, max_turns: int | None = None, max_tokens: int | None = None,
               **kwargs: Any) -> Budget:
    """Make an env for async use (``areset``/``astep``) with its turn budget applied.

    ``max_turns`` defaults to the registered ``max_episode_steps``.

    Raises:
        UnknownEnv: no such id.
        RegistryError: the id is not a toolgym ``ToolEnv``.
    """
    env_spec = spec(env_id)
    # Not gymnasium.make: it deep-copies kwargs into the spec, and live objects
    # such as a SandboxPool (bound to an event loop) must be passed, not copied.
    creator = (load_env_creator(env_spec.entry_point) if isinstance(env_spec.entry_point, str)
               else env_spec.entry_point)
    if creator is None:
        raise RegistryError(f"{env_id} is registered without an entry point")
    env = creator(**{**env_spec.kwargs, **kwargs})
    if not isinstance(env, gymnasium.Env) or not hasattr(env, "astep"):
        env.close()
        raise RegistryError(f"{env_id} is not a toolgym ToolEnv: it has no async twins")
    env.unwrapped.spec = env_spec
    turns = max_turns if max_turns is not None else env_spec.max_episode_steps
    return Budget(env, max_turns=turns, max_tokens=max_tokens)
