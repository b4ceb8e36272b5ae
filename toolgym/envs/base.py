"""``ToolEnv``: a Gymnasium environment whose actions are assistant messages.

The action is the assistant's message text or, from a backend that parses
calls itself (the OpenAI API, vLLM, SGLang, llama.cpp), the whole OpenAI
assistant message: ``{"role": "assistant", "content": ..., "tool_calls":
[...]}``. Both go through one parser (:func:`~toolgym.tools.parsing.try_parse_action`).
A message with tool calls runs them in the episode (each call gets a
:class:`~toolgym.tools.ToolContext`: the episode's sandbox and task), and the
observation is their output; a message with no tool call is the final answer:
the verifier scores its text (``<think>`` reasoning left out) and the episode
terminates. ``info`` is a :class:`~toolgym.envs.step.StepInfo`, built by
:func:`~toolgym.envs.step.step_info`. The transcript in
``info["messages"]`` follows the OpenAI chat protocol: an assistant message
keeps its ``tool_calls`` (each with an id), and each result of a structured
call is a ``tool`` message with the matching ``tool_call_id``, in call order.
Malformed calls become observations, never exceptions. A dead
sandbox or a crashing verifier ends the episode as ``infra_error`` (truncated,
not terminated), which trainers drop instead of scoring 0.

``areset``/``astep`` are the real implementations; ``reset``/``step`` run them
on toolgym's bridge loop.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Protocol, cast

import gymnasium

from toolgym._sync import run_sync
from toolgym.envs.outcome import Outcome, Score
from toolgym.envs.spaces import AnyText
from toolgym.envs.step import Message, StepInfo, step_info
from toolgym.envs.tasks import Task, TaskSource
from toolgym.errors import ConfigError, SandboxError, SandboxSlow, ToolgymError
from toolgym.sandbox.base import Sandbox
from toolgym.sandbox.provider import OnDemandSandboxes, SandboxProvider
from toolgym.sandbox.spec import SandboxSpec
from toolgym.tools import (
    Action,
    ParsedCalls,
    ToolContext,
    ToolOutcome,
    ToolSet,
    assistant_message,
)
from toolgym.tools.parsing import visible_text

Step = tuple[str, float, bool, bool, StepInfo]
"""What ``astep`` returns: observation, reward, terminated, truncated, info."""

DEFAULT_SANDBOX = SandboxSpec()
"""The sandbox of an env that names none: the ``toolgym/python`` image, default limits."""


class Verifier(Protocol):
    """Turns a final answer into a reward, from state the agent cannot forge.

    The sandbox it gets has been reset: the agent's processes are dead and the
    work dirs are empty, so hidden tests enter only now. A verifier that needs
    no reset (it never looks at the sandbox, or reads state the agent left, as
    a page's) sets ``needs_sandbox = False`` to skip it. ``sandbox`` is None in
    an env that holds none (``ToolEnv(sandbox=None)``).
    """

    async def score(self, sandbox: Sandbox | None, task: Task, answer: str) -> Score: ...


class AsyncTextEnv(gymnasium.Env[str, str]):
    """A text ``gymnasium.Env`` whose real methods are the async twins.

    Subclasses implement ``areset``, ``astep`` and ``aclose`` and keep the
    transcript in ``self.messages``; ``reset``, ``step``, ``close`` and
    ``render`` are the thin blocking wrappers every toolgym env shares.
    """

    metadata = {"render_modes": ["ansi"]}
    render_mode: str | None = None
    messages: list[Message]

    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, StepInfo]:
        """Start an episode: the first observation and its info."""
        raise NotImplementedError

    async def astep(self, action: Action) -> Step:
        """Play one action: observation, reward, terminated, truncated, info."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the env holds (its sandbox among them)."""
        raise NotImplementedError

    def seed_rng(self, seed: int | None) -> None:
        """Seed ``self.np_random`` as ``gymnasium.Env.reset`` does. Call it from
        ``areset``: ``super().reset`` would be the blocking twin below."""
        gymnasium.Env.reset(self, seed=seed)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Blocking twin of :meth:`areset`."""
        obs, info = run_sync(self.areset(seed=seed, options=options))
        return obs, _as_dict(info)

    def step(self, action: Action) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Blocking twin of :meth:`astep`."""
        obs, reward, terminated, truncated, info = run_sync(self.astep(action))
        return obs, reward, terminated, truncated, _as_dict(info)

    def close(self) -> None:
        """Blocking twin of :meth:`aclose`."""
        run_sync(self.aclose())

    def render(self) -> str | None:
        """The transcript so far as text (render_mode "ansi")."""
        if self.render_mode != "ansi":
            return None
        return "\n\n".join(f"[{m['role']}] {m['content']}" for m in self.messages)


class ToolEnv(AsyncTextEnv):
    """A text environment with tools, a sandbox per episode and a verifiable reward.

    Subclasses choose the tasks, tools and verifier, and may override
    :meth:`setup` (prepare the sandbox for a task) and :meth:`extract_answer`.
    An env whose tools need no sandbox (``needs_sandbox = False``, as
    KeyChain-v0's lookup) passes ``sandbox=None`` and holds none.

    Example:
        >>> env = gymnasium.make("toolgym/HumanEval-v0")  # doctest: +SKIP
        >>> obs, info = env.reset(seed=0)                 # doctest: +SKIP
    """

    def __init__(
        self,
        tasks: TaskSource,
        tools: ToolSet,
        verifier: Verifier,
        *,
        sandbox: SandboxSpec | None = DEFAULT_SANDBOX,
        provider: SandboxProvider | None = None,
        system_prompt: str | None = None,
        split: str | None = None,
        render_mode: str | None = None,
    ) -> None:
        """Set up the env; its sandbox comes at the first reset.

        Args:
            tasks: where tasks come from; ``split`` narrows it (e.g. "train").
            tools: what the agent may call.
            verifier: scores final answers.
            sandbox: spec of this env's sandboxes (what :class:`EnvFactory` builds a
                provider for); None: the env holds no sandbox, and every tool must
                have ``needs_sandbox = False``.
            provider: where episodes get their sandboxes (a
                :class:`~toolgym.sandbox.pool.SandboxPool` shared with other envs, or
                any :class:`~toolgym.sandbox.provider.SandboxProvider`); the caller
                starts and closes it. Default: this env's own
                :class:`~toolgym.sandbox.provider.OnDemandSandboxes` of ``sandbox``
                on Docker, closed with the env (none if ``sandbox`` is None).
            system_prompt: instructions shown before the task.
            split: the part of ``tasks`` to play (e.g. "train"); None: all of them.
            render_mode: None or "ansi" (the transcript as text).

        Raises:
            ConfigError: no sandbox, and a tool needs one.
        """
        self.tasks = tasks.split(split) if split else tasks
        self.tools = tools
        self.verifier = verifier
        self.sandbox_spec = sandbox
        self._owns_provider = provider is None and sandbox is not None
        self.provider: SandboxProvider | None = (
            provider or (OnDemandSandboxes(sandbox) if sandbox is not None else None))
        if self.provider is None:
            needy = [name for name, t in tools.items() if t.needs_sandbox]
            if needy:
                raise ConfigError(f"{type(self).__name__} holds no sandbox (sandbox=None) but "
                                  f"its tools {needy} need one: give it a SandboxSpec.")
        self.system_prompt = system_prompt
        self.render_mode = render_mode
        self.observation_space = AnyText()
        self.action_space = AnyText()
        self.sandbox: Sandbox | None = None
        self.context = ToolContext()
        """What this episode's tool calls get: its sandbox and task."""
        self.task: Task | None = None
        self.messages: list[Message] = []
        self.turn = 0
        self.tool_counts: Counter[str] = Counter()
        self._done = True
        self._suspect = False
        self.setup_retries = 0
        """Steps :meth:`setup` had to try again this episode (reported in reset's info)."""

    # ------------------------------------------------------------- hooks
    async def setup(self, sandbox: Sandbox, task: Task) -> None:
        """Prepare a clean sandbox for ``task`` (write its files …); not called in an env
        without sandboxes. Default: nothing.

        A step that may fail on a loaded host is retried here, counted in
        ``self.setup_retries``; one that runs out of time for good raises
        :class:`~toolgym.errors.SandboxSlow`.
        """

    def extract_answer(self, text: str) -> str:
        """The part of the final message the verifier scores. Default: all of it."""
        return text

    def task_prompt(self, task: Task) -> str:
        """The first observation. Default: the task's prompt."""
        return task.prompt

    def reference_actions(self, task: Task, kind: str = "oracle") -> list[str]:
        """Scripted assistant messages for ``task``, used by reference agents and ``check-env``.

        Envs supply the two scripts by overriding :meth:`oracle_actions` and
        :meth:`wrong_actions`; this picks one.

        Args:
            task: one of this env's tasks.
            kind: ``"oracle"`` (solves the task, using a tool where it helps) or
                ``"wrong"`` (a plausible answer that must score 0).

        Raises:
            ValueError: ``kind`` is neither.
            NotImplementedError: this env ships no reference agents.
        """
        if kind == "oracle":
            return self.oracle_actions(task)
        if kind == "wrong":
            return self.wrong_actions(task)
        raise ValueError(f"unknown reference kind {kind!r}; use 'oracle' or 'wrong'")

    def oracle_actions(self, task: Task) -> list[str]:
        """Messages that solve ``task``. Default: none shipped."""
        raise NotImplementedError(f"{type(self).__name__} has no reference actions")

    def wrong_actions(self, task: Task) -> list[str]:
        """Plausible messages for ``task`` that must score 0. Default: none shipped."""
        raise NotImplementedError(f"{type(self).__name__} has no reference actions")

    def hack_probes(self, task: Task) -> dict[str, list[str]]:
        """Named action sequences that try to forge a reward; each must score 0."""
        return {}

    # ------------------------------------------------------------- reset
    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, StepInfo]:
        """Start an episode on a clean sandbox: ``options={"task_id": …}`` or a seeded draw."""
        self.seed_rng(seed)
        options = options or {}
        self.task = self._pick_task(options)
        self.turn = 0
        self.tool_counts = Counter()
        self.sandbox = await self._clean_sandbox()
        self.setup_retries = 0
        self.context = ToolContext(self.sandbox, self.task)
        if self.sandbox is not None:
            await self.setup(self.sandbox, self.task)
        prompt = self.task_prompt(self.task)
        self.messages = (
            [{"role": "system", "content": self.system_prompt}] if self.system_prompt else [])
        self.messages.append({"role": "user", "content": prompt})
        self._done = False
        info = self._info(new=list(self.messages))
        if self.setup_retries:
            info["setup_retries"] = self.setup_retries
        return prompt, info

    def _pick_task(self, options: dict[str, Any]) -> Task:
        if "task_id" in options:
            return self.tasks.get(options["task_id"])
        ids = self.tasks.ids()
        return self.tasks.get(ids[int(self.np_random.integers(len(ids)))])

    async def _clean_sandbox(self) -> Sandbox | None:
        """This episode's sandbox (none without a provider): the last one given back, then a
        clean one acquired."""
        if self.provider is None:
            return None
        if self.sandbox is not None:
            sandbox, self.sandbox = self.sandbox, None
            await self.provider.release(sandbox, recycle=self._suspect)
        self._suspect = False
        return await self.provider.acquire()

    # -------------------------------------------------------------- step
    async def astep(self, action: Action) -> Step:
        """Run the tool calls of ``action`` (text or assistant message), or score its text
        as the final answer.

        Raises:
            TypeError: ``action`` is neither a string nor an assistant message.
        """
        if self._done or self.task is None:
            raise ToolgymError("The episode is over (or never started): call reset() first.")
        message = assistant_message(action)
        self.turn += 1
        self.messages.append(message)
        parsed = self.tools.parse(message)
        try:
            if parsed.ok and not parsed.calls:
                return await self._finish(visible_text(message["content"]))
            return await self._run_tools(parsed, message)
        except asyncio.CancelledError:
            self._suspect = True
            raise
        except (SandboxError, OSError) as exc:
            return self._end_infra(f"sandbox failed: {exc!r}", slow=isinstance(exc, SandboxSlow))

    async def _run_tools(self, parsed: ParsedCalls,
                         message: Message) -> Step:
        outcomes = await self.tools.dispatch_parsed(self.context, parsed)
        if parsed.error is not None:
            new = _unreadable_call_messages(outcomes[0], message.get("tool_calls"))
        else:
            new = [self._tool_message(o) for o in outcomes]
        for o in outcomes:
            self.tool_counts[o.status.value] += 1
        self.messages.extend(new)
        obs = "\n\n".join(m["content"] for m in new)
        return obs, 0.0, False, False, self._info(new=new, turn_reward=0.0, call_form=parsed.form)

    @staticmethod
    def _tool_message(outcome: ToolOutcome) -> Message:
        name = outcome.call.name if outcome.call is not None else "error"
        message: Message = {"role": "tool", "name": name, "content": outcome.text}
        if outcome.call is not None and outcome.call.id:
            message["tool_call_id"] = outcome.call.id
        return message

    async def _finish(self, action: str) -> Step:
        """Score the final answer's text on a reset sandbox; a verifier crash is an infra error."""
        assert self.task is not None
        try:
            if self.sandbox is not None and getattr(self.verifier, "needs_sandbox", True):
                await self.sandbox.areset()
            score = await self.verifier.score(self.sandbox, self.task, self.extract_answer(action))
        except (SandboxError, OSError) as exc:
            return self._end_infra(f"sandbox failed during verification: {exc!r}",
                                   slow=isinstance(exc, SandboxSlow))
        except Exception as exc:  # noqa: BLE001 - a crashing verifier must not score 0
            return self._end_infra(f"verifier crashed: {exc!r}")
        self._done = True
        info = self._info(new=[], turn_reward=score.reward, outcome=score.outcome, score=score)
        return "", score.reward, True, False, info

    def _end_infra(self, error: str, *, slow: bool = False) -> Step:
        self._done = True
        self._suspect = True
        info = self._info(new=[], turn_reward=0.0, outcome=Outcome.INFRA_ERROR, error=error)
        if slow:
            info["infra_slow"] = True
        return "", 0.0, False, True, info

    def _info(self, *, new: list[Message], outcome: Outcome | None = None,
              turn_reward: float | None = None, call_form: str | None = None,
              score: Score | None = None, error: str | None = None) -> StepInfo:
        assert self.task is not None
        return step_info(task_id=self.task.id, turn=self.turn, tools=self.tools.schemas(),
                         messages=self.messages, new_messages=new, tool_counts=self.tool_counts,
                         outcome=outcome, turn_reward=turn_reward, call_form=call_form,
                         score=score, error=error)

    # ------------------------------------------------------------- close
    async def aclose(self) -> None:
        """Give the sandbox back (and remove this env's own ones). Safe to call twice."""
        sandbox, self.sandbox = self.sandbox, None
        self._done = True
        self.context = ToolContext()
        if sandbox is not None and self.provider is not None:
            await self.provider.release(sandbox, recycle=self._suspect or self._owns_provider)
        if self._owns_provider and self.provider is not None:
            await self.provider.aclose()


def _as_dict(info: StepInfo) -> dict[str, Any]:
    """``info`` as gymnasium's blocking API types it: the same dict, typed loosely."""
    return cast(dict[str, Any], info)


def _unreadable_call_messages(error: ToolOutcome, calls: Any) -> list[Message]:
    """What answers a message whose calls could not be read: the error, once.

    Structured calls each get a ``tool`` message with their ``tool_call_id``
    (the chat protocol rejects a call left unanswered); the first carries the
    error, the others say they did not run. Calls written in the text get one
    untagged message, as before.
    """
    ids = [c.get("id") for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
    ids = [i for i in ids if isinstance(i, str)]
    if not ids:
        return [ToolEnv._tool_message(error)]
    skipped = "Not run: a call of this message could not be used (see the error above)."
    return [{"role": "tool", "name": "error", "tool_call_id": call_id,
             "content": error.text if i == 0 else skipped} for i, call_id in enumerate(ids)]
