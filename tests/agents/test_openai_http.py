"""OpenAIAgent against a real local HTTP server playing scripted answers."""

from __future__ import annotations

import random
import socket
import time
from email.utils import formatdate

import httpx
import pytest

from tests.agents.openai_server import Drop, Reply, Slow, Status, serve
from toolgym.agents import Conversation, OpenAIAgent, RetryPolicy
from toolgym.agents.openai_http import parse_chat_completion, wire_messages
from toolgym.agents.retry import parse_retry_after
from toolgym.errors import AgentHTTPError, AgentTimeout

FAST = RetryPolicy(max_retries=2, backoff_s=0.01, backoff_max_s=0.05)
CONV = Conversation([{"role": "user", "content": "2+2?"}])
TOOLS = [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}]


def agent_for(url: str, **kwargs: object) -> OpenAIAgent:
    kwargs.setdefault("retry", FAST)
    return OpenAIAgent(url, "tiny", **kwargs)  # type: ignore[arg-type]


async def test_plain_reply_is_not_trainable_and_request_asks_for_ids() -> None:
    with serve([Reply(content="4")]) as server:
        async with agent_for(server.url, api_key="sk-test") as agent:
            turn = await agent.act(Conversation(CONV.messages, tools=TOOLS))
    assert (turn.text, turn.finish_reason, turn.token_ids, turn.trainable) == (
        "4",
        "stop",
        None,
        False,
    )
    sent = server.requests[0]
    assert sent["messages"] == [{"role": "user", "content": "2+2?"}]
    assert sent["tools"] == TOOLS and sent["model"] == "tiny"
    assert sent["logprobs"] is True and sent["return_token_ids"] is True
    assert sent["return_tokens_as_token_ids"] is True
    assert server.headers[0]["authorization"] == "Bearer sk-test"
    assert turn.info["attempts"] == 1 and turn.usage == {"prompt_tokens": 3, "completion_tokens": 2}


async def test_vllm_token_ids_and_logprobs_make_the_turn_trainable() -> None:
    reply = Reply(
        content="4", token_ids=[52, 3], prompt_token_ids=[1, 2, 9], logprobs=[-0.25, -0.5]
    )
    with serve([reply]) as server:
        async with agent_for(server.url) as agent:
            agent.policy_version = 7
            turn = await agent.act(CONV)
    assert turn.trainable
    assert (turn.token_ids, turn.logprobs, turn.prompt_token_ids) == (
        [52, 3],
        [-0.25, -0.5],
        [1, 2, 9],
    )
    assert turn.policy_version == 7


def test_logprobs_that_do_not_line_up_are_dropped_not_trusted() -> None:
    data = Reply(token_ids=[5, 6, 7], logprobs=[-1.0, -2.0], content="x").body()
    turn = parse_chat_completion(data)
    assert turn.token_ids == [5, 6, 7] and turn.logprobs is None
    assert "2 logprobs for 3 tokens" in turn.info["logprobs_dropped"]


def test_ids_are_recovered_from_logprob_tokens_alone() -> None:
    data = Reply(token_ids=[8, 9], logprobs=[-1.0, -2.0]).body()
    del data["choices"][0]["token_ids"]
    assert parse_chat_completion(data).token_ids == [8, 9]


async def test_structured_tool_calls_come_back() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "calc", "arguments": '{"x": 1}'}}
    with serve([Reply(content=None, tool_calls=[call], finish_reason="tool_calls")]) as server:
        async with agent_for(server.url) as agent:
            turn = await agent.act(CONV)
    assert turn.text == "" and turn.tool_calls == [call] and turn.finish_reason == "tool_calls"
    assert turn.message() == {"role": "assistant", "content": "", "tool_calls": [call]}


def test_wire_messages_sends_arguments_as_json_strings() -> None:
    msgs = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}],
        }
    ]
    out = wire_messages(msgs)
    assert out[0]["tool_calls"][0] == {
        "type": "function",
        "id": "c",
        "function": {"name": "f", "arguments": '{"a": 1}'},
    }
    assert msgs[0]["tool_calls"][0]["function"]["arguments"] == {"a": 1}  # input untouched


async def test_429_and_500_are_retried_then_succeed() -> None:
    script = [Status(429, {"Retry-After": "0.3"}), Status(500), Reply(content="ok")]
    with serve(script) as server:
        async with agent_for(server.url) as agent:
            start = time.perf_counter()
            turn = await agent.act(CONV)
            elapsed = time.perf_counter() - start
    assert turn.text == "ok" and turn.info["attempts"] == 3 and len(server.requests) == 3
    assert agent.stats.retries == 2 and agent.stats.by_reason == {"429": 1, "500": 1}
    assert elapsed >= 0.3, "Retry-After was not honoured"
    assert agent.stats.failed == 0 and agent.stats.exhausted == 0


async def test_exhausted_retries_raise_agent_http_error() -> None:
    with serve([Status(503)] * 3) as server:
        async with agent_for(server.url) as agent:
            with pytest.raises(AgentHTTPError, match="HTTP 503 after 3 attempt") as info:
                await agent.act(CONV)
    assert len(server.requests) == 3
    assert info.value.status_code == 503  # type: ignore[attr-defined]
    assert (agent.stats.exhausted, agent.stats.failed, agent.stats.retries) == (1, 1, 2)


async def test_client_errors_are_not_retried() -> None:
    with serve([Status(400), Reply()]) as server:
        async with agent_for(server.url) as agent:
            with pytest.raises(AgentHTTPError, match="rejected"):
                await agent.act(CONV)
    assert len(server.requests) == 1 and agent.stats.retries == 0


async def test_read_timeout_is_retried() -> None:
    timeout = httpx.Timeout(0.3, connect=1.0)
    with serve([Slow(3.0), Reply(content="late but fine")]) as server:
        async with agent_for(server.url, timeout=timeout) as agent:
            turn = await agent.act(CONV)
    assert turn.text == "late but fine" and agent.stats.by_reason == {"ReadTimeout": 1}


async def test_timeouts_exhausted_raise_agent_timeout() -> None:
    timeout = httpx.Timeout(0.2, connect=1.0)
    with serve([Slow(3.0)] * 3) as server:
        async with agent_for(server.url, timeout=timeout) as agent:
            start = time.perf_counter()
            with pytest.raises(AgentTimeout, match="after 3 attempts"):
                await agent.act(CONV)
    assert time.perf_counter() - start < 2.0
    assert agent.stats.by_reason == {"ReadTimeout": 2} and agent.stats.exhausted == 1


async def test_dropped_connection_is_retried() -> None:
    with serve([Drop(), Reply(content="back")]) as server:
        async with agent_for(server.url) as agent:
            turn = await agent.act(CONV)
    assert turn.text == "back" and agent.stats.by_reason == {"RemoteProtocolError": 1}


async def test_refused_connection_raises_after_retries() -> None:
    with socket.socket() as sock:  # a port that nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with agent_for(f"http://127.0.0.1:{port}/v1") as agent:
        with pytest.raises(AgentHTTPError, match="ConnectError"):
            await agent.act(CONV)
    assert agent.stats.by_reason == {"ConnectError": 2}


async def test_request_token_ids_off_sends_plain_openai_body() -> None:
    with serve([Reply()]) as server:
        async with agent_for(server.url, request_token_ids=False, extra_body={"top_k": 5}) as agent:
            await agent.act(CONV)
    sent = server.requests[0]
    assert "return_token_ids" not in sent and "logprobs" not in sent and sent["top_k"] == 5


async def test_closed_agent_refuses_work() -> None:
    agent = agent_for("http://127.0.0.1:9")
    await agent.aclose()
    await agent.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await agent.act(CONV)


def test_act_sync_runs_on_the_bridge_loop() -> None:
    with serve([Reply(content="sync")]) as server:
        agent = agent_for(server.url)
        assert agent.act_sync(CONV).text == "sync"
        agent.close()


def test_backoff_grows_is_capped_and_jittered() -> None:
    policy = RetryPolicy(backoff_s=1.0, backoff_max_s=5.0, jitter=0.5)
    rng = random.Random(0)
    delays = [policy.delay(r, rng=rng) for r in range(6)]
    for retry, delay in enumerate(delays):
        base = min(5.0, 2.0**retry)
        assert base * 0.5 <= delay <= base
    assert policy.delay(0, retry_after=500.0) == policy.retry_after_max_s


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = time.time()
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(formatdate(now + 10, usegmt=True), now=now) == pytest.approx(10, abs=1)
    assert parse_retry_after(None) is None and parse_retry_after("later") is None
