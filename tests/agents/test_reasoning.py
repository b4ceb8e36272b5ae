"""Reasoning models: returned reasoning is kept, shown, and sent back by a chosen convention.

Servers return reasoning beside the answer (vLLM's ``reasoning_content``, its
newer ``reasoning``) or inline as ``<think>`` blocks. Either way the trajectory
keeps it; tool calls and the scored answer come from what the model *said*,
never from what it thought.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.agents.native_policy import NativeReference
from tests.agents.openai_server import Reply, ScriptedServer, Step, serve
from toolgym.agents import OpenAIAgent, RetryPolicy
from toolgym.agents.openai_http import parse_chat_completion, wire_messages
from toolgym.envs.registration import make_async
from toolgym.eval import evaluate
from toolgym.eval.run import TRAJECTORIES
from toolgym.rollout.trajectory import Trajectory
from toolgym.tools import PythonTool, ToolSet

ENV = "toolgym/HumanEval-v0"
FAST = RetryPolicy(max_retries=2, backoff_s=0.01, backoff_max_s=0.02)
THOUGHT = "The reference should do; run it first."


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_both_reasoning_fields_are_read(field: str) -> None:
    body = Reply(content="4").body()
    body["choices"][0]["message"][field] = "2+2"
    turn = parse_chat_completion(body)
    assert turn.reasoning == "2+2" and turn.text == "4"
    assert turn.message()["reasoning_content"] == "2+2"


@pytest.mark.parametrize(("convention", "expected"), [
    ("template", {"role": "assistant", "content": "4", "reasoning_content": "2+2"}),
    ("drop", {"role": "assistant", "content": "4"}),
    ("inline", {"role": "assistant", "content": "<think>2+2</think>4"}),
])
def test_reasoning_goes_back_by_the_chosen_convention(convention: str, expected: dict) -> None:
    message = {"role": "assistant", "content": "4", "reasoning_content": "2+2"}
    assert wire_messages([message], reasoning=convention) == [expected]  # type: ignore[arg-type]


def test_a_bad_convention_is_refused() -> None:
    with pytest.raises(ValueError, match="reasoning must be"):
        OpenAIAgent("http://127.0.0.1:9", "m", reasoning="keep")  # type: ignore[arg-type]


def test_calls_inside_think_blocks_are_not_calls() -> None:
    tools = ToolSet([PythonTool()])
    call = '<tool_call>{"name": "python", "arguments": {"code": "1"}}</tool_call>'
    assert tools.parse(f"<think>maybe {call}?</think>No call needed: 1.").calls == []
    assert len(tools.parse(f"<think>run it</think>{call}").calls) == 1
    assert tools.parse(f"<think>unclosed {call}").calls == []


class Thinking:
    """The native reference policy, with reasoning beside every answer."""

    def __init__(self, policy: NativeReference) -> None:
        self.policy = policy

    def __call__(self, body: dict[str, Any]) -> Step:
        step = self.policy(body)
        return replace(step, reasoning=THOUGHT) if isinstance(step, Reply) else step


@pytest.fixture
def thinking_server() -> Iterator[ScriptedServer]:
    policy = NativeReference(ENV, "oracle")
    try:
        with serve(Thinking(policy)) as server:
            yield server
    finally:
        policy.close()


@pytest.mark.docker
@pytest.mark.parametrize("convention", ["template", "drop"])
async def test_reasoning_is_kept_in_the_trajectory_and_sent_back_by_convention(
        tmp_path: Path, thinking_server: ScriptedServer, convention: str) -> None:
    async with OpenAIAgent(thinking_server.url, "m", request_token_ids=False, retry=FAST,
                           reasoning=convention) as agent:  # type: ignore[arg-type]
        s = await evaluate(ENV, agent, samples=1, concurrency=1, out_dir=tmp_path,
                           task_ids=["HumanEval/0"])
    assert s.pass_at_k == {1: 1.0} and thinking_server.rejected == []
    (traj,) = [Trajectory.from_json(x) for x in (tmp_path / TRAJECTORIES).read_text().splitlines()]
    assert [t.info["reasoning"] for t in traj.turns] == [THOUGHT, THOUGHT]
    sent_back = thinking_server.requests[-1]["messages"][2]
    assert sent_back["role"] == "assistant" and sent_back["tool_calls"]
    assert sent_back.get("reasoning_content") == (THOUGHT if convention == "template" else None)


@pytest.mark.docker
async def test_code_only_inside_think_is_not_the_answer() -> None:
    env = make_async(ENV)
    try:
        await env.areset(options={"task_id": "HumanEval/0"})
        program = env.unwrapped.tasks.get("HumanEval/0").data["reference_program"]
        thought = f"<think>Maybe:\n```python\n{program}\n```</think>I cannot say."
        *_, reward, terminated, _, info = await env.astep(thought)
        assert terminated and reward == 0.0 and info["outcome"].value == "failure"
        await env.areset(options={"task_id": "HumanEval/0"})
        said = f"<think>Thinking.</think>Here:\n```python\n{program}\n```"
        _, reward, terminated, *_ = await env.astep(said)
        assert terminated and reward == 1.0
    finally:
        await env.aclose()
