"""ScriptedAgent: the reference agent other packages' tests rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolgym.agents import Agent, AgentTurn, ChatTokenizer, Conversation, ScriptedAgent
from toolgym.errors import AgentError

CONV = Conversation([{"role": "user", "content": "go"}])


async def test_replays_in_order_and_records_conversations() -> None:
    agent = ScriptedAgent(
        ["a", AgentTurn(text="b", finish_reason="length"), lambda c: c.last_role or ""]
    )
    assert isinstance(agent, Agent)
    texts = [(await agent.act(CONV)).text for _ in range(3)]
    assert texts == ["a", "b", "user"] and agent.conversations == [CONV] * 3
    with pytest.raises(AgentError, match="reply #4 but holds 3"):
        await agent.act(CONV)


async def test_cycle_repeats_the_replies() -> None:
    agent = ScriptedAgent(["x", "y"], cycle=True)
    assert [(await agent.act(CONV)).text for _ in range(5)] == ["x", "y", "x", "y", "x"]


async def test_with_a_tokenizer_text_replies_get_ids_but_no_logprobs(chatml_dir: Path) -> None:
    chat = ChatTokenizer.from_pretrained(chatml_dir)
    turn = await ScriptedAgent(["hi"], chat=chat).act(
        Conversation(CONV.messages, prompt_token_ids=[1, 2])
    )
    assert turn.token_ids == chat.encode("hi") + [chat.eos_token_ids[0]]
    assert turn.logprobs is None and turn.trainable and turn.prompt_token_ids == [1, 2]


def test_sync_twin() -> None:
    assert ScriptedAgent(["sync"]).act_sync(CONV).text == "sync"
