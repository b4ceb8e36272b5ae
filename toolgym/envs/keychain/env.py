"""``toolgym/KeyChain-v0``: follow a chain of key lookups to a digit; a trainer benchmark.

The agent is shown a start key (``start: a``) and has one tool, ``get(key)``,
which shows where a key points (``a -> d``). A call is written either in the
Hermes format every toolgym env reads (``<tool_call>{"name": "get", ...}``,
for real models) or as the bare command ``get a``: three tokens instead of
twenty, which a tiny model learns from scratch in a short SFT (see
:mod:`~toolgym.envs.keychain.tool`). Following the chain for
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
lookup; the benchmark runs ~10^5 env steps. So it is a plain
:class:`~toolgym.envs.base.ToolEnv` with ``sandbox=None``: its ``get`` reads the
task's table through the :class:`~toolgym.tools.ToolContext`, and everything
else (Gymnasium's API with async twins, calls parsed, validated and dispatched
by the tool set, a malformed call as an observation, typed outcomes, the
``info`` contract, reference actions and hack probes for ``check_env``) is
ToolEnv's own.

    >>> env = KeyChainEnv(split="train")
    >>> obs, info = env.reset(seed=0)
    >>> obs.startswith("start: "), info["tools"][0]["function"]["name"]
    (True, 'get')
"""

from __future__ import annotations

from toolgym.envs.base import ToolEnv
from toolgym.envs.keychain.demos import oracle_actions, wrong_actions
from toolgym.envs.keychain.tasks import keychain_tasks
from toolgym.envs.keychain.tool import keychain_tools
from toolgym.envs.keychain.verifier import DigitVerifier
from toolgym.envs.tasks import Task

__all__ = ["KeyChainEnv"]


class KeyChainEnv(ToolEnv):
    """Follow the key chain with ``get``, answer the digit (see the module docstring).

    Args:
        split: ``"train"``, ``"test"`` or None (both).
        seed: Seeds the task generator (``reset(seed=)`` seeds the draw).
        n_train: Number of train tasks.
        n_test: Number of test tasks.
        depth: Lookups from the start key to the digit.
        render_mode: None or ``"ansi"``.
    """

    def __init__(self, split: str | None = None, *, seed: int = 0, n_train: int = 2000,
                 n_test: int = 500, depth: int = 3, render_mode: str | None = None) -> None:
        super().__init__(keychain_tasks(seed, n_train, n_test, depth=depth), keychain_tools(),
                         DigitVerifier(), sandbox=None, split=split, render_mode=render_mode)

    def oracle_actions(self, task: Task) -> list[str]:
        """Follow the chain, answer the digit."""
        return oracle_actions(task)

    def wrong_actions(self, task: Task) -> list[str]:
        """Answer another digit without looking."""
        return wrong_actions(task)

    def hack_probes(self, task: Task) -> dict[str, list[str]]:
        """Answers that must score 0: every digit at once, nothing, a guess after a bad call."""
        return {"all digits": ["0123456789"], "empty answer": [""],
                "bad call then no number": ['<tool_call>{"name": "get"}</tool_call>', "done"]}
