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

from tests.agents.anthropic_server import anthropic_protocol_errors, serve_anthropic
from tests.agents.native_policy import NativeReference
from toolgym.agents import Conversation, RetryPolicy
from toolgym.agents.anthropic_http import (
    AnthropicAgent,
    anthropic_messages,
    anthropic_tool_choice,
    parse_message,
)
from toolgym.cli.eval import eval_command
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
