"""Trajectories from recorded chat transcripts (demonstrations, logs of another agent).

SFT data often exists as messages only. :func:`trajectory_from_messages`
tokenises them the way an episode would have been tokenised: the template
renders the opening prompt, each assistant message becomes its ids plus the
end-of-turn token (as if sampled), each environment reply is appended as the
template renders it. The result trains with the same masking as a rollout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from toolgym.agents.templates import ChatTokenizer, IncrementalPrompt
from toolgym.rollout.trajectory import Trajectory, Turn


def trajectory_from_messages(
    chat: ChatTokenizer,
    messages: Sequence[dict[str, Any]],
    *,
    env_id: str,
    task_id: str,
    tools: list[dict[str, Any]] | None = None,
    outcome: str | None = None,
    final_reward: float = 0.0,
) -> Trajectory:
    """Tokenise a transcript (system/user opening, then assistant and tool/user messages).

    Raises:
        ValueError: the transcript has no assistant message after its opening.
    """
    first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), None)
    if first is None:
        raise ValueError("transcript has no assistant message")
    prompt = IncrementalPrompt(chat, list(messages[:first]), tools)
    traj = Trajectory(env_id=env_id, task_id=task_id, outcome=outcome, final_reward=final_reward)
    pending = prompt.prompt_token_ids
    i = first
    while i < len(messages):
        action = messages[i]
        ids = chat.encode(action["content"]) + list(chat.eos_token_ids[:1])
        turn = Turn(action_text=action["content"], action_ids=ids, action_logprobs=[0.0] * len(ids),
                    prompt_ids=pending)
        traj.turns.append(turn)
        replies = []
        i += 1
        while i < len(messages) and messages[i]["role"] != "assistant":
            replies.append(messages[i])
            i += 1
        pending = []
        if replies:
            prompt.add_action(ids, action)
            before = prompt.sample_index
            obs = prompt.add_observation(*replies)
            turn.observation = "\n\n".join(str(m["content"]) for m in replies)
            if prompt.sample_index != before:
                pending = obs
            else:
                turn.obs_ids = obs
    return traj
