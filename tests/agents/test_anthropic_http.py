"""AnthropicAgent against a strict Messages API stand-in: real HumanEval episodes in Docker.

The stand-in refuses what the API refuses, so a message translated wrongly
(a tool_use left unanswered, results split over two user messages, a system
role inside messages) fails the run instead of passing unnoticed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.agents.anthropic_server import (
    anthropic_protocol_errors,
    anthropic_reply,
    serve_anthropic,
    thinking_block,
)
from tests.agents.native_policy import NativeReference
from tests.agents.openai_server import Reply, Step, serve
from toolgym.agents import Conversation, RetryPolicy, SamplingParams
from toolgym.agents.anthropic_http import (
    AnthropicAgent,
    anthropic_messages,
    anthropic_tool_choice,
    parse_message,
)
from toolgym.cli.eval import AgentSpec, build_agent, eval_command
from toolgym.errors import AgentHTTPError, ConfigError
from toolgym.eval import evaluate

ENV = "toolgym/HumanEval-v0"
TASKS = [f"HumanEval/{i}" for i in range(3)]
KEY = "sk-ant-test-7c1f9e0b2d"
FAST = RetryPolicy(max_retries=3, backoff_s=0.01, backoff_max_s=0.02)
BAD_ARGUMENTS = '{"cod": "print(1)"}'  # a tool_use input is always an object: a wrong key
docker = pytest.mark.docker


@pytest.fixture
def policy(request: pytest.FixtureRequest) -> Iterator[NativeReference]:
    kind, chaos = request.param
    p = NativeReference(ENV, kind, chaos=chaos, bad_arguments=BAD_ARGUMENTS)
    yield p
    p.close()


@docker
@pytest.mark.parametrize(("policy", "expected"), [
    (("oracle", False), 1.0), (("wrong", False), 0.0),
    (("oracle", True), 1.0), (("wrong", True), 0.0),
], indirect=["policy"], ids=["oracle", "wrong", "oracle-chaos", "wrong-chaos"])
async def test_humaneval_through_the_messages_api(
        tmp_path: Path, policy: NativeReference, expected: float) -> None:
    with serve_anthropic(policy, KEY) as server:
        async with AnthropicAgent(server.url, "claude-test", api_key=KEY, retry=FAST) as agent:
            s = await evaluate(ENV, agent, samples=1, concurrency=3, out_dir=tmp_path,
                               task_ids=TASKS)
    assert s.pass_at_k == {1: expected} and s.infra_errors == 0 and s.complete
    assert server.rejected == []
    if policy.chaos:
        assert policy.statuses > 0 and policy.malformed == len(TASKS)
    if policy.reference.kind == "oracle":
        results = [b for r in server.requests for m in r["messages"] for b in m["content"]
                   if b["type"] == "tool_result"]
        assert results and all(b["tool_use_id"].startswith(("call_", "bad_")) for b in results)


@docker
def test_cli_reads_the_key_from_the_environment_and_never_writes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-must-not-be-sent")
    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("other")(lambda: None)
    policy = NativeReference(ENV, "oracle")
    caplog.set_level(logging.DEBUG)
    try:
        with serve_anthropic(policy, KEY) as server:
            result = CliRunner().invoke(app, [
                "eval", "--env", ENV, "--agent", f"anthropic:{server.url}#claude-test",
                "--tasks", "2", "--out", str(tmp_path)])
    finally:
        policy.close()
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "summary.json").read_text())["pass_at_k"] == {"1": 1.0}
    assert {h["x-api-key"] for h in server.headers} == {KEY} and server.rejected == []
    written = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 4  # meta, trajectories, summary, report
    assert not any(KEY.encode() in data for data in written)
    assert KEY not in result.output and KEY not in caplog.text


async def test_a_wrong_key_is_one_typed_error_that_does_not_echo_the_key() -> None:
    policy = NativeReference(ENV, "oracle")
    try:
        with serve_anthropic(policy, KEY) as server:
            async with AnthropicAgent(server.url, "m", api_key="sk-wrong", retry=FAST) as agent:
                with pytest.raises(AgentHTTPError, match="HTTP 400 after 1 attempt") as err:
                    await agent.act(Conversation([{"role": "user", "content": "hi"}]))
    finally:
        policy.close()
    assert "sk-wrong" not in str(err.value) and len(server.requests) == 1


def test_no_key_is_a_config_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicAgent("https://api.anthropic.com", "m")


def test_parallel_results_go_back_together_in_call_order() -> None:
    calls = [{"id": f"c{i}", "type": "function",
              "function": {"name": "f", "arguments": json.dumps({"i": i})}} for i in range(2)]
    system, messages = anthropic_messages([
        {"role": "system", "content": "S"}, {"role": "user", "content": "go"},
        {"role": "assistant", "content": "", "tool_calls": calls},
        {"role": "tool", "name": "f", "tool_call_id": "c0", "content": "0"},
        {"role": "tool", "name": "error", "tool_call_id": "c1", "content": "bad"},
        {"role": "assistant", "content": "<tool_call>{}</tool_call>"},
        {"role": "tool", "name": "error", "content": "unreadable"},
    ])
    assert system == "S"
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert [b["input"] for b in messages[1]["content"]] == [{"i": 0}, {"i": 1}]
    assert [(b["tool_use_id"], b["is_error"]) for b in messages[2]["content"]] == [
        ("c0", False), ("c1", True)]
    assert messages[4]["content"][0]["text"].startswith("<tool_response>")
    body = {"model": "m", "max_tokens": 5, "messages": messages}
    assert anthropic_protocol_errors(body, {"x-api-key": "k", "anthropic-version": "v"}, "k") == []


def test_strict_stand_in_refuses_an_unanswered_tool_use() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f",
                                           "input": {}}]},
        {"role": "user", "content": [{"type": "text", "text": "and?"}]},
        {"role": "system", "content": "late"}]}
    errors = anthropic_protocol_errors(body, {"x-api-key": "k", "anthropic-version": "v"}, "k")
    assert any("without tool_result blocks immediately after: t1" in e for e in errors)
    assert any("Unexpected role 'system'" in e for e in errors)


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    (None, None, None),
    ("auto", None, {"type": "auto"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("none", False, {"type": "none"}),
    ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
])
def test_tool_choice_translates(choice, parallel, expected) -> None:
    assert anthropic_tool_choice(choice, parallel) == expected


def test_thinking_becomes_reasoning_and_max_tokens_length() -> None:
    turn = parse_message({"content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                                      {"type": "text", "text": "4"}], "stop_reason": "max_tokens"})
    assert (turn.text, turn.reasoning, turn.finish_reason, turn.tool_calls) == (
        "4", "hmm", "length", None)


# ------------------------------------------------------------------- extended thinking

HEADERS = {"x-api-key": "k", "anthropic-version": "v"}
THINKING = {"type": "enabled", "budget_tokens": 1024}
GO = {"role": "user", "content": [{"type": "text", "text": "go"}]}
USE = {"type": "tool_use", "id": "t1", "name": "get", "input": {"key": "a"}}
RESULT = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                       "content": "a -> 7"}]}


def thinking_body(assistant: list[dict], **fields: object) -> dict:
    return {"model": "m", "max_tokens": 2048, "thinking": THINKING,
            "messages": [GO, {"role": "assistant", "content": assistant}, RESULT], **fields}


@pytest.mark.parametrize(("assistant", "fields", "error"), [
    ([USE], {}, "Expected `thinking` or `redacted_thinking`, but found `tool_use`"),
    ([{"type": "text", "text": "a"}, USE], {}, "but found `text`"),
    ([{"type": "thinking", "thinking": "t"}, USE], {}, "signature: Field required"),
    ([{"type": "thinking", "thinking": "t", "signature": "forged"}, USE], {},
     "Invalid `signature`"),
    ([thinking_block("t"), USE], {"temperature": 0.0}, "`temperature` may only be set to 1"),
    ([thinking_block("t"), USE], {"tool_choice": {"type": "any"}}, "forces tool use"),
    ([thinking_block("t"), USE], {"max_tokens": 1024}, "must be greater than"),
])
def test_strict_stand_in_refuses_what_extended_thinking_refuses(
        assistant: list[dict], fields: dict, error: str) -> None:
    errors = anthropic_protocol_errors(thinking_body(assistant, **fields), HEADERS, "k")
    assert any(error in e for e in errors), errors


def test_strict_stand_in_accepts_signed_thinking_first_and_none_when_thinking_is_off() -> None:
    for first in (thinking_block("t"), {"type": "redacted_thinking", "data": "opaque"}):
        assert anthropic_protocol_errors(thinking_body([first, USE]), HEADERS, "k") == []
    off = thinking_body([USE])
    del off["thinking"]
    assert anthropic_protocol_errors(off, HEADERS, "k") == []


async def test_thinking_goes_back_signed_and_first_on_tool_use_turns(tmp_path: Path) -> None:
    """With extended thinking on, the API refuses a tool-use turn sent back without its
    thinking block (and its signature, unmodified). A KeyChain episode: a lookup, an answer."""
    def answer(body: dict) -> Step:
        if len(body["messages"]) == 1:
            return Reply(content=None, reasoning="look a up", finish_reason="tool_calls",
                         tool_calls=[{"id": "t1", "type": "function",
                                      "function": {"name": "get", "arguments": '{"key": "a"}'}}])
        return Reply(content="7", reasoning="the chain ends")

    check = lambda body, headers: anthropic_protocol_errors(body, headers, KEY)  # noqa: E731
    with serve(answer, path="/v1/messages", render=anthropic_reply, check=check) as server:
        async with AnthropicAgent(server.url, "m", api_key=KEY, retry=FAST, thinking_budget=1024,
                                  sampling=SamplingParams(max_new_tokens=2048)) as agent:
            s = await evaluate("toolgym/KeyChain-v0", agent, samples=1, concurrency=1,
                               out_dir=tmp_path, task_ids=["kc-train-0000"])
    assert server.rejected == [] and s.complete and s.infra_errors == 0
    first, second = server.requests
    assert first["thinking"] == THINKING and "temperature" not in first
    assert second["messages"][1]["content"] == [thinking_block("look a up"),
                                                {**USE, "id": "t1"}]


def test_forced_tools_or_a_budget_past_max_tokens_are_refused_up_front() -> None:
    with pytest.raises(ConfigError, match="forces tool use"):
        AnthropicAgent("https://api.anthropic.com", "m", api_key="k", thinking_budget=1024,
                       tool_choice="required", sampling=SamplingParams(max_new_tokens=4096))
    with pytest.raises(ConfigError, match="budget_tokens.*below max_tokens"):
        AnthropicAgent("https://api.anthropic.com", "m", api_key="k", thinking_budget=1024,
                       sampling=SamplingParams(max_new_tokens=512))


def test_redacted_thinking_is_kept_for_the_way_back() -> None:
    blocks = [{"type": "redacted_thinking", "data": "opaque"}, USE]
    turn = parse_message({"content": blocks, "stop_reason": "tool_use"})
    assert turn.structured and turn.reasoning is None
    _, messages = anthropic_messages([{"role": "user", "content": "go"}, turn.message()])
    assert messages[1]["content"] == blocks


def test_cli_thinking_budget_reaches_the_agent_and_a_bad_one_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    spec = AgentSpec("anthropic", "https://api.anthropic.com", "m")
    agent, _ = build_agent(spec, "toolgym/KeyChain-v0", seed=0, thinking_budget=1024,
                           sampling=SamplingParams(max_new_tokens=2048))
    assert agent.thinking_budget == 1024
    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, [
        "eval", "--env", "toolgym/KeyChain-v0", "--agent", "anthropic:http://127.0.0.1:9#m",
        "--thinking-budget", "1024", "--max-new-tokens", "512", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "below max_tokens (512)" in result.output
