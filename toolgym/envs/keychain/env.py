"""``toolgym/KeyChain-v0``: follow a chain of key lookups to a digit; a trainer benchmark.

The agent is shown a start key (``start: a``) and has one tool, ``get(key)``,
which shows where a key points (``a -> d``). A call is written either in the
Hermes format every toolgym env reads (``<tool_call>{"name": "get", ...}``,
for real models) or as the bare command ``get a``: three tokens instead of
twenty, which a tiny model learns from scratch in a short SFT. Following the chain for
``depth`` lookups reaches a digit; a final message without a tool call
answers, and scores 1.0 iff its last number is that digit. Lookups of the
wrong key show distractors (see :mod:`~toolgym.envs.keychain.tasks`), and the
turn budget (``max_episode_steps=5``: the oracle needs 4) leaves one turn to
waste. An outcome reward on an episode whose every turn matters is the
setting in which turn-level credit assignment should pay off, which is what
``benchmarks/credit_assignment.py`` measures.

**Why no sandbox.** Every other built-in env runs its tools in a Docker
sandbox (DESIGN.md: real parts). This one's tool is a pure dictionary lookup
on the task's hidden table: there is nothing to isolate, and a sandbox would
only add cost to a benchmark of *trainers*, which see trajectories and never
sandboxes. Measured on the 2-core machine: a sandbox exec costs ~2.7 ms p50
(plus the Docker daemon's CPU on the same two cores that generate, and
~0.75 s to start each of the pool's containers), against microseconds for the
lookup; the benchmark runs ~10^5 env steps. The env keeps ToolEnv's contract
otherwise: Gymnasium's API with async twins, Hermes tool calls parsed and
validated by a :class:`~toolgym.tools.ToolSet` (a malformed call is an
observation), typed outcomes, the same ``info`` keys, reference actions and
hack probes for ``check_env``.

    >>> env = KeyChainEnv(split="train")
    >>> obs, info = env.reset(seed=0)
    >>> obs.startswith("start: "), info["tools"][0]["function"]["name"]
    (True, 'get')
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from toolgym.envs.base import AsyncTextEnv, Step
from toolgym.envs.keychain.demos import oracle_actions, wrong_actions
from toolgym.envs.keychain.tasks import answer_of, keychain_tasks, replies
from toolgym.envs.outcome import Outcome, Score
from toolgym.envs.spaces import AnyText
from toolgym.envs.step import Message, StepInfo, step_info
from toolgym.envs.tasks import Task
from toolgym.errors import ToolgymError
from toolgym.tools import Action, Tool, ToolResult, ToolSet, assistant_message
from toolgym.tools.parsing import NATIVE, TEXT, visible_text

__all__ = ["KeyChainEnv", "get_tool"]


class GetTool(Tool):
    """``get(key)``: the schema and argument checks of the lookup (the env runs the lookup).

    Example:
        >>> GetTool().signature
        'get(key: str)'
    """

    name = "get"
    description = "Show where a key points: another key, or the digit at the end of the chain."
    parameters = {"type": "object", "required": ["key"],
                  "properties": {"key": {"type": "string", "description": "A key, a-h."}}}

    async def run(self, sandbox: Any, **arguments: Any) -> ToolResult:
        """Not dispatched: the lookup needs the episode's task, which the env holds."""
        raise ToolgymError("KeyChainEnv looks keys up itself; GetTool is never dispatched.")


def get_tool() -> GetTool:
    """A fresh ``get`` tool."""
    return GetTool()


class KeyChainEnv(AsyncTextEnv):
    """Follow the key chain with ``get``, answer the digit (see the module docstring).

    Args:
        split: ``"train"``, ``"test"`` or None (both).
        seed: Seeds the task generator (``reset(seed=)`` seeds the draw).
        n_train: Number of train tasks.
        n_test: Number of test tasks.
        depth: Lookups from the start key to the digit.
        render_mode: None or ``"ansi"``.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, split: str | None = None, *, seed: int = 0, n_train: int = 2000,
                 n_test: int = 500, depth: int = 3, render_mode: str | None = None) -> None:
        tasks = keychain_tasks(seed, n_train, n_test, depth=depth)
        self.tasks = tasks.split(split) if split else tasks
        self.tools = ToolSet([get_tool()])
        self.render_mode = render_mode
        self.observation_space = AnyText()
        self.action_space = AnyText()
        self.task: Task | None = None
        self.messages: list[Message] = []
        self.turn = 0
        self.tool_counts: Counter[str] = Counter()
        self._done = True

    def task_prompt(self, task: Task) -> str:
        """The first observation: the start key."""
        return task.prompt

    def reference_actions(self, task: Task, kind: str = "oracle") -> list[str]:
        """Oracle: follow the chain, answer. Wrong: answer another digit without looking."""
        return wrong_actions(task) if kind == "wrong" else oracle_actions(task)

    def hack_probes(self, task: Task) -> dict[str, list[str]]:
        """Answers that must score 0: every digit at once, nothing, a guess after a bad call."""
        return {"all digits": ["0123456789"], "empty answer": [""],
                "bad call then no number": ['<tool_call>{"name": "get"}</tool_call>', "done"]}

    # ------------------------------------------------------------ episode
    async def areset(self, *, seed: int | None = None,
                     options: dict[str, Any] | None = None) -> tuple[str, StepInfo]:
        """Start an episode: ``options={"task_id": ...}`` or a seeded draw."""
        self.seed_rng(seed)
        options = options or {}
        ids = self.tasks.ids()
        task_id = options.get("task_id", ids[int(self.np_random.integers(len(ids)))])
        self.task = self.tasks.get(task_id)
        self.turn, self.tool_counts, self._done = 0, Counter(), False
        prompt = self.task_prompt(self.task)
        self.messages = [{"role": "user", "content": prompt}]
        return prompt, self._info(new=list(self.messages))

    async def astep(self, action: Action) -> Step:
        """Look a key up, or score the final answer.

        Raises:
            ToolgymError: the episode is over (or never started).
            TypeError: ``action`` is neither text nor an assistant message.
        """
        if self._done or self.task is None:
            raise ToolgymError("The episode is over (or never started): call reset() first.")
        message = assistant_message(action)
        self.turn += 1
        self.messages.append(message)
        answered = replies(self.task, self.tools, message)
        if answered is None:
            return self._finish(visible_text(message["content"]))
        new = [message for message, _ in answered]
        self.tool_counts.update(status.value for _, status in answered)
        self.messages.extend(new)
        obs = "\n\n".join(m["content"] for m in new)
        form = NATIVE if message.get("tool_calls") else TEXT
        return obs, 0.0, False, False, self._info(new=new, turn_reward=0.0, call_form=form)

    def _finish(self, action: str) -> Step:
        assert self.task is not None
        given = answer_of(action)
        passed = given == self.task.data["answer"]
        self._done = True
        outcome = Outcome.SUCCESS if passed else Outcome.FAILURE
        reward = 1.0 if passed else 0.0
        score = Score(reward, passed, {"answer": given, "expected": self.task.data["answer"]})
        info = self._info(new=[], turn_reward=reward, outcome=outcome, score=score)
        return "", reward, True, False, info

    def _info(self, *, new: list[Message], outcome: Outcome | None = None,
              turn_reward: float | None = None, score: Score | None = None,
              call_form: str | None = None) -> StepInfo:
        assert self.task is not None
        return step_info(task_id=self.task.id, turn=self.turn, tools=self.tools.schemas(),
                         messages=self.messages, new_messages=new, tool_counts=self.tool_counts,
                         outcome=outcome, turn_reward=turn_reward, score=score,
                         call_form=call_form)

    async def aclose(self) -> None:
        """Nothing to release; safe to call twice."""
        self._done = True
