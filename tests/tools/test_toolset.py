"""Dispatch: the agent's mistakes become counted observations, infrastructure errors propagate.

These run against the host-process fake sandbox: they test the dispatch logic
above the sandbox, not the built-in tools (see test_builtins_docker.py).
"""

from __future__ import annotations

import pytest

from toolgym.envs.tasks import Task
from toolgym.errors import BadArguments, SandboxCrashed
from toolgym.tools import (
    FENCED_PYTHON_BASH,
    Tool,
    ToolCall,
    ToolContext,
    ToolOutcome,
    ToolResult,
    ToolSet,
    ToolStatus,
    default_tools,
    tool,
)


@tool
async def echo(context, text: str, times: int = 1) -> str:
    """Echo a text.

    Args:
        text: What to echo.
        times: How often.
    """
    result = await context.sandbox.aexec(["sh", "-c", 'for i in $(seq "$1"); do echo "$0"; done',
                                          text, str(times)])
    return result.stdout


@tool
async def divide(context, a: float, b: float) -> str:
    """Divide a by b."""
    if b == 0:
        raise ValueError("b must not be zero")
    return str(a / b)


@tool
async def strict(context, n: int) -> str:
    """Accept only even numbers."""
    if n % 2:
        raise BadArguments("`n` must be even")
    return "ok"


@tool
async def slow(context) -> ToolResult:
    """Pretend to time out."""
    return ToolResult("[timed out]", timed_out=True)


@tool
async def broken_sandbox(context) -> str:
    """Fail like dead infrastructure."""
    raise SandboxCrashed(context.sandbox.id, "container vanished")


@tool
async def loud(context, path: str) -> str:
    """Fail with a message that echoes the argument, as `cat` does a missing path."""
    raise FileNotFoundError(f"no such file: {path}")


TOOLS = ToolSet([echo, divide, strict, slow, broken_sandbox])


@pytest.fixture(autouse=True)
def _fresh_counts():
    TOOLS.counts.clear()


async def test_ok_call(host_context):
    outcome = await TOOLS.dispatch(host_context, ToolCall("echo", {"text": "hi", "times": 2}))
    assert outcome.text == "hi\nhi\n" and outcome.status is ToolStatus.OK and outcome.ok
    assert outcome.call == ToolCall("echo", {"text": "hi", "times": 2})
    assert outcome.duration_s > 0


@pytest.mark.parametrize(
    ("call", "status", "fragment"),
    [
        (ToolCall("ehco", {"text": "x"}), ToolStatus.UNKNOWN_TOOL, "Did you mean `echo`?"),
        (ToolCall("echo", {}), ToolStatus.BAD_ARGUMENTS, "missing required argument `text`"),
        (ToolCall("echo", {"text": "x", "times": "2"}), ToolStatus.BAD_ARGUMENTS,
         "`times` must be int"),
        (ToolCall("divide", {"a": 1, "b": 0}), ToolStatus.TOOL_ERROR,
         "Error: the tool `divide` failed: ValueError: b must not be zero"),
        (ToolCall("strict", {"n": 3}), ToolStatus.BAD_ARGUMENTS, "`n` must be even"),
        (ToolCall("slow", {}), ToolStatus.TIMEOUT, "[timed out]"),
    ],
)
async def test_agent_mistakes_become_observations(host_context, call, status, fragment, caplog):
    outcome = await TOOLS.dispatch(host_context, call)
    assert outcome.status is status and fragment in outcome.text
    assert TOOLS.counts == {status: 1}
    if status is ToolStatus.TOOL_ERROR:  # a tool's own exception is logged for its author
        assert "tool 'divide' raised" in caplog.text


async def test_sandbox_errors_propagate(host_context):
    with pytest.raises(SandboxCrashed, match="container vanished"):
        await TOOLS.dispatch(host_context, ToolCall("broken_sandbox", {}))


async def test_dispatch_text(host_context):
    assert await TOOLS.dispatch_text(host_context, "Final answer: 4") == []

    [bad] = await TOOLS.dispatch_text(host_context, "<tool_call>{nope}</tool_call>")
    assert bad.call is None and bad.status is ToolStatus.PARSE_ERROR
    assert "the JSON is invalid" in bad.text

    text = ('<tool_call>{"name": "echo", "arguments": {"text": "a"}}</tool_call>'
            '<tool_call>{"name": "divide", "arguments": {"a": 1, "b": 4}}</tool_call>')
    first, second = await TOOLS.dispatch_text(host_context, text)
    assert (first.text, second.text) == ("a\n", "0.25")
    assert TOOLS.counts == {ToolStatus.PARSE_ERROR: 1, ToolStatus.OK: 2}


async def test_dispatch_text_with_the_fenced_convention(host_context):
    tools = ToolSet([echo], fenced={"say": ("echo", "text")})
    [outcome] = await tools.dispatch_text(host_context, "```say\nhello\n```")
    assert outcome.text == "hello\n"
    assert await ToolSet([echo]).dispatch_text(host_context, "```say\nhello\n```") == []


def test_toolset_mapping_and_schemas():
    assert list(TOOLS) == ["echo", "divide", "strict", "slow", "broken_sandbox"]
    assert TOOLS["echo"] is echo and len(TOOLS) == 5 and "nope" not in TOOLS
    assert TOOLS.schemas()[0] == echo.to_schema()
    assert "echo(text: str, times: int = 1)" in repr(TOOLS)
    with pytest.raises(ValueError, match="unique"):
        ToolSet([echo, echo])


def test_default_tools():
    tools = default_tools(timeout_s=5)
    assert list(tools) == ["python", "bash", "read_file", "write_file"]
    assert all(t.timeout_s == 5 for t in tools.values())  # type: ignore[attr-defined]
    assert ToolSet(tools.values(), fenced=FENCED_PYTHON_BASH).parse(
        "```py\n1\n```").calls == [ToolCall("python", {"code": "1"})]


def test_outcome_record():
    outcome = ToolOutcome(None, "bad", ToolStatus.PARSE_ERROR)
    assert not outcome.ok and outcome.truncated is False


async def test_error_observations_are_capped_in_one_place(host_context):
    """A 1 MiB argument echoed back in an error was a 1 MiB observation, past every output cap."""
    tools = ToolSet([echo, loud])
    path = "p" * (1 << 20) + "END"
    outcome = await tools.dispatch(host_context, ToolCall("loud", {"path": path}))
    assert outcome.status is ToolStatus.TOOL_ERROR and outcome.truncated
    assert len(outcome.text) < 17_000
    assert outcome.text.startswith("Error: the tool `loud` failed: FileNotFoundError: no such file")
    assert outcome.text.endswith("pEND") and "characters cut" in outcome.text
    [refused] = await tools.dispatch_text(host_context, "<tool_call>{" + "x" * (1 << 20))
    assert refused.status is ToolStatus.PARSE_ERROR and len(refused.text) < 17_000
    ok = await tools.dispatch(host_context, ToolCall("echo", {"text": "y" * 20_000}))
    assert ok.ok and len(ok.text) == 20_001  # a tool's own output keeps its own cap


async def test_a_message_with_too_many_calls_runs_none(host_sandbox, host_context):
    """1000 calls in one message all ran (200 took 33 s in one step of a real env)."""
    call = '<tool_call>{"name": "echo", "arguments": {"text": "hi"}}</tool_call>'
    outcomes = await TOOLS.dispatch_text(host_context, call * 1000)
    assert [o.status for o in outcomes] == [ToolStatus.PARSE_ERROR]
    assert "makes 1000 tool calls; at most 32" in outcomes[0].text
    assert host_sandbox.calls == []
    assert len(await TOOLS.dispatch_text(host_context, call * 32)) == 32


class _Lookup(Tool):
    """A tool that reads the episode's task, not a sandbox (as KeyChain-v0's ``get``)."""

    name = "lookup"
    description = "Look a key up in the task's table."
    parameters = {"type": "object", "required": ["key"],
                  "properties": {"key": {"type": "string"}}}
    needs_sandbox = False

    async def run(self, context, **arguments):
        return ToolResult(str(context.task.data[arguments["key"]]))


async def test_tools_get_the_episodes_sandbox_and_task_through_their_context():
    task = Task(id="t", prompt="?", data={"a": 7})
    tools = ToolSet([_Lookup(), echo])
    [found] = await tools.dispatch_text(
        ToolContext(None, task), '<tool_call>{"name": "lookup", "arguments": {"key": "a"}}'
        '</tool_call>')
    assert (found.status, found.text) == (ToolStatus.OK, "7")
    # a sandbox tool in a context without one fails loudly in words, not with None.aexec
    no_box = await tools.dispatch(ToolContext(None, task), ToolCall("echo", {"text": "hi"}))
    assert no_box.status is ToolStatus.TOOL_ERROR and "needs a sandbox" in no_box.text
    no_task = await tools.dispatch(ToolContext(), ToolCall("lookup", {"key": "a"}))
    assert no_task.status is ToolStatus.TOOL_ERROR and "ToolContext(sandbox, task)" in no_task.text
