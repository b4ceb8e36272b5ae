"""Native tool calls end to end: a server answering ``content: null`` + ``tool_calls``.

The server is the strict stand-in (it refuses what the OpenAI API refuses),
playing the env's own reference answers as native calls; the env runs real
HumanEval episodes in Docker. Before native calls reached the env, every such
episode ended on its first turn as an empty final answer and scored 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.agents.native_policy import NativeReference
from tests.agents.openai_server import Reply, ScriptedServer, openai_protocol_errors, serve
from toolgym.agents import Conversation, OpenAIAgent, RetryPolicy
from toolgym.agents.openai_http import wire_messages
from toolgym.cli.eval import eval_command
from toolgym.envs.registration import make_async
from toolgym.errors import AgentHTTPError
from toolgym.eval import evaluate
from toolgym.eval.run import TRAJECTORIES
from toolgym.rollout.trajectory import Trajectory

ENV = "toolgym/HumanEval-v0"
TASKS = [f"HumanEval/{i}" for i in range(3)]
FAST = RetryPolicy(max_retries=3, backoff_s=0.01, backoff_max_s=0.02)
docker = pytest.mark.docker


@pytest.fixture
def native_server(
        request: pytest.FixtureRequest) -> Iterator[tuple[ScriptedServer, NativeReference]]:
    kind, chaos = request.param
    policy = NativeReference(ENV, kind, chaos=chaos)
    try:
        with serve(policy) as server:
            yield server, policy
    finally:
        policy.close()


def trajectories(out: Path) -> list[Trajectory]:
    return [Trajectory.from_json(line) for line in (out / TRAJECTORIES).read_text().splitlines()]


@docker
@pytest.mark.parametrize(("native_server", "expected"), [
    (("oracle", False), 1.0), (("wrong", False), 0.0),
    (("oracle", True), 1.0), (("wrong", True), 0.0),
], indirect=["native_server"], ids=["oracle", "wrong", "oracle-chaos", "wrong-chaos"])
async def test_humaneval_through_native_tool_calls(
        tmp_path: Path, native_server: tuple[ScriptedServer, NativeReference],
        expected: float) -> None:
    server, policy = native_server
    async with OpenAIAgent(server.url, "tiny", request_token_ids=False, retry=FAST) as agent:
        s = await evaluate(ENV, agent, samples=1, concurrency=3, out_dir=tmp_path,
                           task_ids=TASKS)
    assert s.pass_at_k == {1: expected} and s.infra_errors == 0 and s.complete
    assert server.rejected == []  # every request kept the OpenAI protocol
    if policy.chaos:
        assert policy.statuses > 0 and policy.malformed == len(TASKS)
        assert agent.stats.by_reason.keys() == {"429", "500"}
    if policy.reference.kind == "oracle":  # it calls python, then answers
        for traj in trajectories(tmp_path):
            first = traj.turns[-2]
            assert first.info["call_form"] == "native"
            assert first.info["tool_calls"][0]["function"]["name"] == "python"
            assert first.action_text == ""


@docker
@pytest.mark.parametrize("native_server", [("oracle", False)], indirect=True)
def test_toolgym_eval_command_scores_native_calls(
        tmp_path: Path, native_server: tuple[ScriptedServer, NativeReference]) -> None:
    server, _ = native_server
    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, [
        "eval", "--env", ENV, "--agent", f"openai:{server.url}/v1#tiny", "--tasks", "2",
        "--tool-choice", "python", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "summary.json").read_text())["pass_at_k"] == {"1": 1.0}
    follow_up = next(r["messages"] for r in server.requests if len(r["messages"]) > 3)
    assistant, tool = follow_up[2], follow_up[3]
    assert assistant["content"] == "" and assistant["tool_calls"][0]["id"] == "call_0_0"
    assert tool == {"role": "tool", "tool_call_id": "call_0_0", "content": tool["content"]}
    assert server.requests[0]["tool_choice"] == {"type": "function", "function": {"name": "python"}}
    assert server.rejected == []


@pytest.mark.parametrize(("flag", "empty"), [([], ""), (["--null-content"], None)])
def test_toolgym_eval_sends_the_empty_content_asked_for(
        tmp_path: Path, flag: list[str], empty: str | None) -> None:
    """KeyChain needs no sandbox: one native ``get`` call, then an answer, through the CLI."""
    def policy(body: dict) -> Reply:
        if len(body["messages"]) == 1:
            return Reply(content=None, finish_reason="tool_calls", tool_calls=[{
                "id": "k1", "type": "function",
                "function": {"name": "get", "arguments": '{"key": "a"}'}}])
        return Reply(content="7")

    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("other")(lambda: None)
    with serve(policy) as server:
        result = CliRunner().invoke(app, [
            "eval", "--env", "toolgym/KeyChain-v0", "--agent", f"openai:{server.url}/v1#tiny",
            "--tasks", "1", *flag, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assistant, tool = server.requests[1]["messages"][1:]
    assert assistant["content"] == empty and assistant["tool_calls"][0]["id"] == "k1"
    assert tool["tool_call_id"] == "k1" and server.rejected == []


# ------------------------------------------------------------------- the strict stand-in

CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
USER = {"role": "user", "content": "hi"}


@pytest.mark.parametrize(("messages", "error"), [
    ([USER, {"role": "tool", "tool_call_id": "c1", "content": "x"}], "must be a response"),
    ([USER, {"role": "assistant", "content": None}], "needs 'content' or 'tool_calls'"),
    ([{"role": "robot", "content": "x"}], "Invalid value for 'messages[0].role'"),
    ([USER, {"role": "assistant", "content": None, "tool_calls": [CALL]}, USER],
     "did not have response messages: c1"),
    ([USER, {"role": "assistant", "content": None, "tool_calls": [CALL]},
      {"role": "tool", "tool_call_id": "c2", "content": "x"}], "tool_call_id 'c2'"),
    ([USER, {"role": "assistant", "content": "", "tool_calls": [
        {**CALL, "function": {"name": "f", "arguments": {}}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "x"}], "expected a string"),
])
def test_strict_server_refuses_what_the_openai_api_refuses(messages: list, error: str) -> None:
    errors = openai_protocol_errors({"model": "m", "messages": messages})
    assert any(error in e for e in errors), errors


def test_strict_server_accepts_a_correct_tool_round_trip() -> None:
    two = [CALL, {**CALL, "id": "c2"}]
    messages = [USER, {"role": "assistant", "content": None, "tool_calls": two},
                {"role": "tool", "tool_call_id": "c1", "content": "1"},
                {"role": "tool", "tool_call_id": "c2", "content": "2"},
                {"role": "assistant", "content": "done"}, USER]
    assert openai_protocol_errors({"model": "m", "messages": messages}) == []
    assert openai_protocol_errors({"model": "m", "messages": [USER], "top_k": 3},
                                  extras=frozenset()) == [
        "Unrecognized request argument supplied: top_k"]


async def test_a_rejected_request_is_a_typed_error_not_a_retry() -> None:
    unanswered = Conversation([USER, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                               USER])
    with serve([Reply()]) as server:
        async with OpenAIAgent(server.url, "m", retry=FAST) as agent:
            with pytest.raises(AgentHTTPError, match="HTTP 400 after 1 attempt.*response messa"):
                await agent.act(unanswered)
    assert len(server.rejected) == 1


# ------------------------------------------------------------------- what the agent sends

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


async def test_tool_choice_and_parallel_tool_calls_pass_through_when_set() -> None:
    with serve([Reply(), Reply()]) as server:
        async with OpenAIAgent(server.url, "m", tool_choice="required",
                               parallel_tool_calls=False, retry=FAST) as agent:
            await agent.act(Conversation([USER], TOOLS))
            await agent.act(Conversation([USER]))  # no tools: neither option is sent
        async with OpenAIAgent(server.url, "m", retry=FAST) as plain:
            assert "tool_choice" not in plain.request_body(Conversation([USER], TOOLS))
    first, second = server.requests
    assert first["tool_choice"] == "required" and first["parallel_tool_calls"] is False
    assert "tool_choice" not in second and "parallel_tool_calls" not in second


def test_results_of_text_calls_go_back_as_user_messages() -> None:
    """A call written in the text has no id to answer, so its result cannot be a tool message."""
    messages = [USER, {"role": "assistant", "content": "<tool_call>{...}</tool_call>"},
                {"role": "tool", "name": "python", "content": "42"}]
    wired = wire_messages(messages)
    assert wired[2] == {"role": "user", "content": "<tool_response>\n42\n</tool_response>"}
    assert openai_protocol_errors({"model": "m", "messages": wired}) == []


def test_parallel_calls_keep_their_order_and_ids() -> None:
    calls = [{"id": f"c{i}", "function": {"name": "f", "arguments": {"i": i}}} for i in range(3)]
    messages = [USER, {"role": "assistant", "content": "", "tool_calls": calls},
                *({"role": "tool", "name": "f", "tool_call_id": f"c{i}", "content": str(i)}
                  for i in range(3))]
    wired = wire_messages(messages)
    assert [c["id"] for c in wired[1]["tool_calls"]] == ["c0", "c1", "c2"]
    assert [m["tool_call_id"] for m in wired[2:]] == ["c0", "c1", "c2"]
    assert openai_protocol_errors({"model": "m", "messages": wired}) == []


@pytest.mark.parametrize("empty", ["", None])
def test_a_message_that_only_calls_tools_goes_back_with_the_chosen_empty_content(
        empty: str | None) -> None:
    """``""`` by default: every server we know takes it, while llama-cpp-python 0.3 and SGLang
    before April 2025 refuse ``null`` (README, Pointing toolgym at a model server); ``null`` on
    request. The OpenAI API takes both, and so does the strict stand-in."""
    messages = [USER, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                {"role": "tool", "name": "f", "tool_call_id": "c1", "content": "1"}]
    wired = wire_messages(messages, **({} if empty == "" else {"empty_content": empty}))
    assert wired[1] == {"role": "assistant", "content": empty, "tool_calls": [CALL]}
    assert openai_protocol_errors({"model": "m", "messages": wired}) == []
    said = wire_messages([USER, {"role": "assistant", "content": "let me see",
                                 "tool_calls": [CALL]}], empty_content=empty)
    assert said[1]["content"] == "let me see"
    agent = OpenAIAgent("http://127.0.0.1:1", "m", empty_content=empty)
    assert agent.request_body(Conversation(messages))["messages"][1]["content"] == empty


def test_empty_content_other_than_empty_or_null_is_refused() -> None:
    with pytest.raises(ValueError, match="empty_content must be '' or None"):
        OpenAIAgent("http://127.0.0.1:1", "m", empty_content="-")  # type: ignore[arg-type]


# ------------------------------------------------------------------- the env's side


def python_call(call_id: str, arguments: str) -> dict:
    return {"id": call_id, "type": "function",
            "function": {"name": "python", "arguments": arguments}}


@docker
async def test_env_answers_each_native_call_by_id_in_order() -> None:
    env = make_async(ENV)
    try:
        await env.areset(options={"task_id": "HumanEval/0"})
        both = {"role": "assistant", "content": None, "tool_calls": [
            python_call("a", '{"code": "print(6 * 7)"}'), python_call("b", '{"code": "print(2)"}')]}
        obs, _, terminated, _, info = await env.astep(both)
        assert not terminated and info["call_form"] == "native"
        assert [m["tool_call_id"] for m in info["new_messages"]] == ["a", "b"]
        assert "42" in info["new_messages"][0]["content"]
        assert "2" in info["new_messages"][1]["content"]
        broken = {"role": "assistant", "content": "trying", "tool_calls": [
            python_call("c", '{"code": "print(1)"}'), python_call("d", '{"code": ')]}
        obs, _, terminated, _, info = await env.astep(broken)
        first, second = info["new_messages"]
        assert not terminated and (first["tool_call_id"], second["tool_call_id"]) == ("c", "d")
        assert "tool call 2 of 2" in first["content"] and second["content"].startswith("Not run")
        assert info["tool_counts"] == {"ok": 2, "parse_error": 1}
        assert openai_protocol_errors({"model": "m", "messages": wire_messages(
            info["messages"])}) == []
        _, reward, terminated, _, info = await env.astep({"role": "assistant", "content": None})
        assert terminated and reward == 0.0  # null content is an empty final answer
    finally:
        await env.aclose()
