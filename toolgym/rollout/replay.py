"""Deterministic replay: continue a recorded episode from one of its turn boundaries.

VinePPO estimates ``V(s_k)`` by sampling continuations from each turn
boundary ``s_k`` of an episode. For a text-only task the state is the token
prefix; for a tool env it is also the sandbox (files written, rows inserted,
pages opened), and that has to be restored before a continuation can start.

Two ways to get it back: snapshot the sandbox at every boundary
(``docker commit`` takes seconds and leaves an image layer, for every turn of
every episode) or *replay*: reset the env with the episode's seed and task
and send its recorded actions again. toolgym replays. For deterministic tools
replay costs what the original tool calls cost (microseconds for KeyChain,
milliseconds for a calculator or SQLite), needs nothing from the sandbox
layer, runs on any sandbox backend, and rebuilds the *token* prefix too: the
recorded action ids go through the same incremental prompt, so the
continuation's context is exactly the ids the policy saw.

A continuation is an ordinary :func:`~toolgym.rollout.episode.run_episode`
with a :class:`PrefixAgent`, which answers the first ``k`` turns with the
recorded ones and hands over to the policy after that.
:func:`check_prefix` then compares the replayed observations with the
recorded ones and raises :class:`~toolgym.errors.ReplayDiverged` at the first
difference, so a non-deterministic tool is reported, never silently used
from a wrong state.
"""

from __future__ import annotations

from collections.abc import Sequence

from toolgym.agents.base import Agent, AgentTurn, Conversation
from toolgym.errors import ReplayDiverged
from toolgym.rollout.trajectory import Trajectory, Turn

__all__ = ["PrefixAgent", "check_prefix"]


class PrefixAgent:
    """Answers with the recorded ``turns`` first, then lets ``agent`` continue.

    Args:
        agent: The policy that samples from the boundary on.
        turns: The recorded turns to replay (their text, exact ids and logprobs).

    Example:
        >>> from toolgym._sync import run_sync
        >>> from toolgym.agents.base import AgentBase
        >>> agent = PrefixAgent(AgentBase(), [Turn("get a", [7])])
        >>> run_sync(agent.act(Conversation([]))).token_ids
        [7]
    """

    def __init__(self, agent: Agent, turns: Sequence[Turn]) -> None:
        self.agent, self.turns = agent, list(turns)
        self.replayed = 0

    async def act(self, conversation: Conversation) -> AgentTurn:
        if self.replayed < len(self.turns):
            turn = self.turns[self.replayed]
            self.replayed += 1
            return AgentTurn(text=turn.action_text, token_ids=turn.action_ids,
                             logprobs=turn.action_logprobs, finish_reason=turn.finish_reason,
                             policy_version=turn.policy_version)
        return await self.agent.act(conversation)


def check_prefix(continuation: Trajectory, recorded: Trajectory, turn: int) -> None:
    """Raise unless ``continuation`` replayed ``recorded``'s first ``turn`` turns faithfully.

    Faithful: the same observation after each replayed action, and the
    episode still running at the boundary (there is a turn ``turn`` to continue).

    Raises:
        ReplayDiverged: the first turn whose observation differs, or where the
            replayed episode ended early.
    """
    replayed = continuation.turns[:turn]
    for k, step in enumerate(replayed):
        if step.observation != recorded.turns[k].observation:
            raise ReplayDiverged(recorded.id, k, recorded.turns[k].observation, step.observation)
    # The env must still be running after the replayed turns: the continuation
    # has a turn ``turn``, or the agent failed there (an agent error, not divergence).
    n = len(continuation.turns)
    if turn and (n < turn or (n == turn and continuation.outcome != "agent_error")):
        k = max(len(replayed) - 1, 0)
        raise ReplayDiverged(recorded.id, k, recorded.turns[k].observation, "<episode ended>")
