"""``run_episode``: the one token-in/token-out loop between an env and an agent."""

from __future__ import annotations

import time
from typing import Any

from toolgym.agents.base import Agent, AgentTurn, Conversation
from toolgym.agents.templates import ChatTokenizer, IncrementalPrompt
from toolgym.envs.outcome import Outcome, episode_outcome
from toolgym.envs.step import AsyncEnv, Message, StepInfo
from toolgym.errors import AgentError
from toolgym.rollout.trajectory import Trajectory, Turn


async def run_episode(
    env: AsyncEnv,
    agent: Agent,
    *,
    chat: ChatTokenizer | None = None,
    task_id: str | None = None,
    seed: int | None = None,
    group_id: str | None = None,
    policy_version: int | None = None,
) -> Trajectory:
    """Play one episode of ``env`` (an async env, e.g. from ``make_async``) with ``agent``.

    What it reads of the env is the :class:`~toolgym.envs.step.StepInfo` contract.

    The trajectory's ``policy_version`` is the oldest version the agent stamped
    on a turn, else ``policy_version`` (the version when the episode started).

    With ``chat`` the prompt ids are built incrementally (the template renders
    the first prompt, each observation is appended as exactly the tokens the
    template produces for it, the sampled ids are kept verbatim) and passed to
    the agent; without it the agent renders the messages itself and the
    trajectory is trainable only if the agent returns ids.

    A turn with structured tool calls or reasoning reaches the env as its
    assistant message (:meth:`AgentTurn.message`), a plain turn as its text, so
    string-only envs keep Gymnasium's contract; the turn's record keeps the
    structured calls (``info["tool_calls"]``), the form its calls came in
    (``info["call_form"]``: ``"native"`` or ``"text"``) and its reasoning.

    An :class:`~toolgym.errors.AgentError` ends the episode as ``agent_error``;
    infrastructure failures come back from the env as ``infra_error``.
    """
    start = time.perf_counter()
    env_s = model_s = 0.0
    options = {"task_id": task_id} if task_id is not None else None
    t0 = time.perf_counter()
    obs, info = await env.areset(seed=seed, options=options)
    env_s += time.perf_counter() - t0
    traj = Trajectory(env_id=_env_id(env), task_id=info["task_id"], seed=seed, group_id=group_id)
    if info.get("setup_retries"):
        traj.info["setup_retries"] = info["setup_retries"]
    tools = info["tools"]
    prompt = IncrementalPrompt(chat, info["messages"], tools) if chat else None
    pending_prompt = prompt.prompt_token_ids if prompt else []
    while True:
        conversation = (
            prompt.conversation() if prompt else Conversation(list(info["messages"]), tools)
        )
        t0 = time.perf_counter()
        try:
            turn: AgentTurn = await agent.act(conversation)
        except AgentError as exc:
            traj.outcome, traj.info["error"] = Outcome.AGENT_ERROR.value, repr(exc)
            break
        finally:
            model_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        action = turn.message() if turn.structured else turn.text
        obs, reward, terminated, truncated, info = await env.astep(action)
        env_s += time.perf_counter() - t0
        record = Turn(
            action_text=turn.text, action_ids=turn.token_ids, action_logprobs=turn.logprobs,
            prompt_ids=pending_prompt if prompt else list(turn.prompt_token_ids or []),
            observation=obs, reward=float(info.get("turn_reward", 0.0)),
            policy_version=turn.policy_version, finish_reason=turn.finish_reason,
            info=_turn_info(turn, info),
        )
        traj.turns.append(record)
        _note_version(traj, turn.policy_version)
        if terminated or truncated:
            outcome = episode_outcome(terminated, truncated, info)
            traj.outcome = (outcome or Outcome.TRUNCATED).value
            if traj.outcome == Outcome.TRUNCATED.value and prompt and info.get("new_messages"):
                # a budget cut the episode, not the task: keep the state the policy would
                # act from next (the env's reply and the generation prompt) to bootstrap from
                _append_observation(prompt, turn, record, info["new_messages"])
                traj.next_prompt_ids = prompt.prompt_token_ids
            traj.final_reward = float(reward)
            if "error" in info:
                traj.info["error"] = info["error"]
            if info.get("infra_slow"):
                traj.info["infra_slow"] = True
            if "score" in info:
                traj.info["score"] = dict(info["score"].details)
            break
        pending_prompt = _append_observation(prompt, turn, record, info["new_messages"])
    if traj.policy_version is None:  # the agent stamps no versions: the one at the start
        traj.policy_version = policy_version
    traj.timings = {"env_s": env_s, "model_s": model_s, "wall_s": time.perf_counter() - start}
    return traj


def _append_observation(prompt: IncrementalPrompt | None, turn: AgentTurn, record: Turn,
                        new_messages: list[Message]) -> list[int]:
    """Extend the token prompt by this step; return the ids that start a new sample, if any."""
    if prompt is None:
        return []
    prompt.add_turn(turn)
    before = prompt.sample_index
    ids = prompt.add_observation(*new_messages)
    if prompt.sample_index != before:  # the template rewrote history: a new sample starts
        return ids
    record.obs_ids = ids
    return []


def _turn_info(turn: AgentTurn, info: StepInfo) -> dict[str, Any]:
    """What a turn's record keeps beside its text: tool counts, and the call form and
    reasoning when there are some."""
    out: dict[str, Any] = {"tool_counts": info.get("tool_counts", {})}
    if info.get("call_form"):
        out["call_form"] = info["call_form"]
    if turn.tool_calls:
        out["tool_calls"] = turn.tool_calls
    if turn.reasoning is not None:
        out["reasoning"] = turn.reasoning
    return out


def _note_version(traj: Trajectory, version: int | None) -> None:
    if version is not None and (traj.policy_version is None or version < traj.policy_version):
        traj.policy_version = version


def _env_id(env: AsyncEnv) -> str:
    spec = getattr(env, "spec", None) or getattr(getattr(env, "unwrapped", env), "spec", None)
    return spec.id if spec is not None else type(env).__name__
