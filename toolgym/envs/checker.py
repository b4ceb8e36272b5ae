"""``check_env``: Gymnasium's checker plus what text tool environments need.

Every built-in env passes it, and CI runs it over the registry. Checks:
gymnasium's ``check_env``; sync and async paths agree; a seed picks the same
task and first observation; nothing of one episode is visible in the next; a
tool's limit comes back as an observation; every reward-hack probe (the env's
own and the format-wide ones of :mod:`toolgym.envs.probes`) scores 0 and none
ends as ``infra_error``;
the oracle succeeds on ≥ 95 % of tasks and the wrong agent on none; ``close``
twice is harmless. ``backend`` picks who starts the sandboxes (``local`` checks
an env on bubblewrap): the async checks share one warm pool of that backend
through an :class:`~toolgym.envs.factory.EnvFactory`, the sync ones run on
their own envs with sandboxes of the same backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, SupportsFloat, TypeVar

import gymnasium
from gymnasium.utils.env_checker import check_env as gymnasium_check_env

from toolgym._sync import run_sync
from toolgym.envs.base import ToolEnv
from toolgym.envs.factory import EnvFactory
from toolgym.envs.outcome import Outcome
from toolgym.envs.probes import Action, generic_probes
from toolgym.sandbox.provider import OnDemandSandboxes, SandboxConfig
from toolgym.tools import render_tool_call
from toolgym.tools.call import ToolCall

T = TypeVar("T")
PARALLEL_ENVS = 3
"""Envs the per-task checks play at once: their time is mostly waiting on sandboxes."""


@dataclass
class CheckResult:
    """One named check: passed or not, and what was seen."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class CheckReport:
    """All checks of one env."""

    env_id: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.results.append(CheckResult(name, ok, detail))


async def run_actions(env: Any, actions: Sequence[Action],
                      **reset_kwargs: Any) -> tuple[float, Outcome | None, list[str]]:
    """Play scripted actions on an async env; return (reward, outcome, observations).

    An action that is a function gets the last observation and returns the message.
    """
    obs, _ = await env.areset(**reset_kwargs)
    observations, reward, outcome = [obs], 0.0, None
    for action in actions:
        message = action(obs) if callable(action) else action
        obs, reward, terminated, truncated, info = await env.astep(message)
        observations.append(obs)
        if terminated or truncated:
            outcome = Outcome(info["outcome"]) if info.get("outcome") else Outcome.TRUNCATED
            break
    return float(reward), outcome, observations


async def check_env(env_id: str, *, n_tasks: int = 20, seed: int = 0, backend: str = "docker",
                    progress: Callable[[str], None] = lambda _: None) -> CheckReport:
    """Run every check on ``env_id``; ``n_tasks`` tasks for the oracle / wrong / probe runs,
    in sandboxes of ``backend``.

    Raises:
        UnknownEnv: no such env.
        ConfigError: no such backend.
    """
    report = CheckReport(env_id)
    sandbox = SandboxConfig(backend=backend, pool_size=PARALLEL_ENVS, max_size=PARALLEL_ENVS + 1)
    envs = EnvFactory(env_id, sandbox=sandbox)
    await envs.adescribe()
    progress("gymnasium check_env")
    report.add("gymnasium check_env", *await asyncio.to_thread(_gymnasium_check, envs))
    async with envs:
        env = envs.make()
        try:
            tool_env: ToolEnv = env.unwrapped  # type: ignore[assignment]
            task_ids = tool_env.tasks.ids()[:: max(1, len(tool_env.tasks) // n_tasks)][:n_tasks]
            for name, check in _CHECKS:
                progress(name)
                try:
                    ok, detail = await check(envs, env, tool_env, task_ids, seed)
                except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check
                    ok, detail = False, f"raised {exc!r}"
                report.add(name, ok, detail)
            await env.aclose()
            await env.aclose()
            report.add("close twice is harmless", True)
        finally:
            await env.aclose()
    return report


@contextlib.contextmanager
def _sync_env(envs: EnvFactory, **kwargs: Any) -> Iterator[Any]:
    """A ``gymnasium.make`` env of ``envs``' id with sandboxes of its backend, for blocking
    use in a thread (its own provider: a pool belongs to the loop it started on)."""
    spec = envs.sandbox_spec
    provider = (OnDemandSandboxes(spec, envs.sandbox_config.backend) if spec is not None
                else None)
    options: dict[str, Any] = {**kwargs, **({"provider": provider} if provider else {})}
    env = gymnasium.make(envs.env_id, disable_env_checker=True, **options)
    try:
        yield env
    finally:
        env.close()
        if provider is not None:
            run_sync(provider.aclose())


def _gymnasium_check(envs: EnvFactory) -> tuple[bool, str]:
    with _sync_env(envs, max_episode_steps=-1) as env:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                gymnasium_check_env(env.unwrapped, skip_render_check=True)
            return True, "; ".join(str(w.message)[:120] for w in caught)
        except Exception as exc:  # noqa: BLE001
            return False, repr(exc)


async def _sync_async_agree(envs: EnvFactory, env: Any, tool_env: ToolEnv, ids: list[str],
                            seed: int) -> tuple[bool, str]:
    task = tool_env.tasks.get(ids[0])
    actions = tool_env.reference_actions(task)
    a = await run_actions(env, actions, options={"task_id": task.id})

    def sync_run() -> tuple[float, list[str]]:
        with _sync_env(envs) as sync_env:
            obs, _ = sync_env.reset(options={"task_id": task.id})
            seen: list[str] = [obs]
            reward: SupportsFloat = 0.0
            for action in actions:
                obs, reward, terminated, truncated, _ = sync_env.step(action)
                seen.append(obs)
                if terminated or truncated:
                    break
            return float(reward), seen

    reward, seen = await asyncio.to_thread(sync_run)
    return (a[0], a[2]) == (reward, seen), f"async reward {a[0]}, sync reward {reward}"


async def _seed_determinism(envs: EnvFactory, env: Any, tool_env: ToolEnv, ids: list[str],
                            seed: int) -> tuple[bool, str]:
    first = await env.areset(seed=seed)
    second = await env.areset(seed=seed)
    other = await env.areset(seed=seed + 1)
    same = (first[0], first[1]["task_id"]) == (second[0], second[1]["task_id"])
    return same, f"seed {seed} → {first[1]['task_id']}, seed {seed + 1} → {other[1]['task_id']}"


async def _reset_isolation(envs: EnvFactory, env: Any, tool_env: ToolEnv, ids: list[str],
                           seed: int) -> tuple[bool, str]:
    if "bash" not in tool_env.tools:
        return True, "no bash tool: nothing to leave behind"
    bash = lambda cmd: render_tool_call(ToolCall("bash", {"command": cmd}))  # noqa: E731
    await env.areset(options={"task_id": ids[0]})
    await env.astep(
        bash("echo leak > /work/leak; echo leak > /tmp/leak; sleep 600 >/dev/null 2>&1 &"))
    await env.areset(options={"task_id": ids[0]})
    obs, *_ = await env.astep(bash("cat /work/leak /tmp/leak 2>&1; pgrep -fc 'sleep 600' || true"))
    return "leak\n" not in obs and obs.rstrip().endswith("0"), obs[-200:]


async def _limit_is_observation(envs: EnvFactory, env: Any, tool_env: ToolEnv, ids: list[str],
                                seed: int) -> tuple[bool, str]:
    if "bash" not in tool_env.tools:
        return True, "no bash tool"
    await env.areset(options={"task_id": ids[0]})
    limit = getattr(tool_env.tools["bash"], "timeout_s", 10.0)
    call = render_tool_call(ToolCall("bash", {"command": f"sleep {limit + 3}"}))
    obs, _, terminated, truncated, info = await env.astep(call)
    ok = "time" in obs.lower() and not terminated and not truncated
    return ok, obs[-200:]


async def _hack_probes(envs: EnvFactory, env: Any, tool_env: ToolEnv, ids: list[str],
                       seed: int) -> tuple[bool, str]:
    async def probe_task(task_env: Any, task_id: str) -> list[str]:
        task = tool_env.tasks.get(task_id)
        probes: dict[str, Sequence[Action]] = {**tool_env.hack_probes(task), **generic_probes(task)}
        scored = []
        for name, actions in probes.items():
            reward, outcome, _ = await run_actions(task_env, actions, options={"task_id": task_id})
            if reward != 0.0 or outcome is Outcome.INFRA_ERROR:
                scored.append(f"{name} on {task_id}: reward {reward}, {outcome}")
        return scored

    scored = [s for per_task in await _per_task(envs, env, ids[:3], probe_task) for s in per_task]
    return not scored, "; ".join(scored) or "every probe scored 0"


async def _oracle_and_wrong(envs: EnvFactory, env: Any, tool_env: ToolEnv, ids: list[str],
                            seed: int) -> tuple[bool, str]:
    async def both(task_env: Any, task_id: str) -> tuple[bool, bool]:
        task = tool_env.tasks.get(task_id)
        oracle = await run_actions(task_env, tool_env.reference_actions(task),
                                   options={"task_id": task_id})
        wrong = await run_actions(task_env, tool_env.reference_actions(task, "wrong"),
                                  options={"task_id": task_id})
        return oracle[0] > 0, wrong[0] > 0

    results = await _per_task(envs, env, ids, both)
    oracle, wrong, n = sum(r[0] for r in results), sum(r[1] for r in results), len(ids)
    return oracle >= 0.95 * n and wrong == 0, f"oracle {oracle}/{n}, wrong {wrong}/{n}"


async def _per_task(envs: EnvFactory, env: Any, ids: list[str],
                    play: Callable[[Any, str], Awaitable[T]]) -> list[T]:
    """``play(an_env, task_id)`` for every task, in order of ``ids``; up to
    :data:`PARALLEL_ENVS` tasks at once, each env (``env`` and fresh ones of the factory)
    playing its episodes one after another."""
    players = [env] + [envs.make() for _ in range(min(PARALLEL_ENVS, len(ids)) - 1)]
    queue, results = list(ids), {}

    async def worker(task_env: Any) -> None:
        while queue:
            task_id = queue.pop(0)
            results[task_id] = await play(task_env, task_id)

    try:
        await asyncio.gather(*(worker(e) for e in players))
    finally:
        for extra in players[1:]:
            await extra.aclose()
    return [results[task_id] for task_id in ids]


_CHECKS = [
    ("sync and async paths agree", _sync_async_agree),
    ("same seed, same task and observation", _seed_determinism),
    ("nothing leaks from one episode to the next", _reset_isolation),
    ("a tool's timeout is an observation", _limit_is_observation),
    ("reward-hack probes score 0", _hack_probes),
    ("oracle ≥ 95 %, wrong agent 0", _oracle_and_wrong),
]
