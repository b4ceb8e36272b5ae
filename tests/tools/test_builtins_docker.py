"""The built-in tools against the real Docker sandbox (``toolgym/python`` image)."""

from __future__ import annotations

import asyncio
import time

import pytest

from toolgym.tools import (
    BashTool,
    PythonTool,
    ReadFileTool,
    ToolCall,
    ToolSet,
    ToolStatus,
    WriteFileTool,
)
from toolgym.tools.python import RESTARTED_NOTE

pytestmark = pytest.mark.docker


# ----------------------------------------------------------------------------- python


async def test_python_state_persists_across_calls(docker_context):
    py = PythonTool(timeout_s=10)
    first = await py(docker_context, code="import math\nx = 41\ndef f(v):\n    return v + 1")
    assert first.text == "(no output)" and first.status is ToolStatus.OK
    second = await py(docker_context, code="print('x is', x)\nf(x)")
    assert second.text == "x is 41\n42"
    assert (await py(docker_context, code="math.sqrt(16)")).text == "4.0"
    assert (await py(docker_context, code="None")).text == "(no output)"


async def test_python_runs_as_a_notebook_in_the_work_dir(docker_context):
    py = PythonTool(timeout_s=10)
    code = "import os, subprocess\nos.system('echo from-shell; echo to-stderr >&2')\nos.getcwd()"
    result = await py(docker_context, code=code)
    assert result.text.splitlines() == ["from-shell", "to-stderr", "'/work'"]
    assert (await py(docker_context, code="os.getuid()")).text == "1000"


async def test_python_shows_the_traceback_of_the_cell_only(docker_context):
    py = PythonTool(timeout_s=10)
    result = await py(docker_context, code="print('before')\ndef g():\n    return 1 / 0\ng()")
    assert result.status is ToolStatus.TOOL_ERROR
    assert result.text.startswith("before\nTraceback (most recent call last):\n")
    assert 'File "<cell-1>", line 4, in <module>' in result.text
    assert "return 1 / 0" in result.text
    assert result.text.endswith("ZeroDivisionError: division by zero")
    assert "toolgym" not in result.text  # no kernel frames

    syntax = await py(docker_context, code="def broken(:\n    pass")
    assert syntax.status is ToolStatus.TOOL_ERROR and "SyntaxError" in syntax.text


async def test_python_runaway_cell_times_out_and_keeps_state(docker_context):
    py = PythonTool(timeout_s=1)
    await py(docker_context, code="kept = 'yes'")
    start = time.monotonic()
    result = await py(docker_context, code="while True:\n    pass")
    assert time.monotonic() - start < 5
    assert result.status is ToolStatus.TIMEOUT and result.timed_out
    assert "ran longer than 1 s and was interrupted" in result.text
    assert "Variables defined before that are kept" in result.text
    assert 'File "<cell-2>", line 1' in result.text
    # `except Exception` in the cell cannot swallow the interruption
    swallowed = await py(docker_context, code=(
        "import time\ntry:\n    time.sleep(30)\nexcept Exception:\n    print('swallowed')"))
    assert swallowed.status is ToolStatus.TIMEOUT and "swallowed" not in swallowed.text
    after = await py(docker_context, code="kept")
    assert after.text == "'yes'" and after.status is ToolStatus.OK


async def test_python_unresponsive_kernel_is_killed_and_restarted(docker_sandbox, docker_context):
    py = PythonTool(timeout_s=1)
    await py(docker_context, code="lost = 1")
    stuck = ("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
             "import subprocess\nsubprocess.Popen(['sleep', '1000'])\nwhile True:\n    pass")
    result = await py(docker_context, code=stuck)
    assert result.status is ToolStatus.TIMEOUT
    assert "the Python process was killed" in result.text and "are lost" in result.text
    ps = await docker_sandbox.aexec(["ps", "-eo", "args"])
    assert "sleep 1000" not in ps.stdout  # the kernel's whole process group went
    again = await py(docker_context, code="lost")
    assert "NameError" in again.text and RESTARTED_NOTE not in again.text  # already told
    assert (await py(docker_context, code="1 + 1")).text == "2"


async def test_python_kernel_that_dies_is_reported_then_restarted(docker_sandbox, docker_context):
    py = PythonTool(timeout_s=5)
    await py(docker_context, code="v = 1")
    died = await py(docker_context, code="import os\nos._exit(3)")
    assert died.status is ToolStatus.TOOL_ERROR and "exited while running this code" in died.text
    assert "NameError" in (await py(docker_context, code="v")).text

    await py(docker_context, code="w = 2")
    await docker_sandbox.aexec("pkill -f toolgym-kernel")  # killed between calls
    result = await py(docker_context, code="w")
    assert result.text.startswith(RESTARTED_NOTE) and "NameError" in result.text


async def test_python_sandbox_reset_gives_a_fresh_session(docker_sandbox, docker_context):
    py = PythonTool(timeout_s=5)
    await py(docker_context, code="secret = 42")
    killed = await docker_sandbox.areset()
    assert killed >= 1  # the kernel
    result = await py(docker_context, code="secret")
    assert "NameError" in result.text and RESTARTED_NOTE not in result.text  # a new episode


async def test_python_output_is_capped(docker_context):
    py = PythonTool(timeout_s=10, output_bytes=1000)
    result = await py(docker_context, code="for i in range(100000):\n    print(i)")
    assert result.truncated and result.status is ToolStatus.OK
    assert result.text.startswith("0\n1\n2\n")
    assert "[output truncated: only the first 1000 of 588890 bytes are shown]" in result.text
    big = await py(docker_context, code="'x' * 50000")
    assert len(big.text) < 11_000 and big.text.endswith("... [40002 more characters]")


async def test_python_input_gets_eof_and_exit_is_an_error(docker_context):
    py = PythonTool(timeout_s=5)
    assert "EOFError" in (await py(docker_context, code="input()")).text
    exited = await py(docker_context, code="import sys\nsys.exit(2)")
    assert "SystemExit: 2" in exited.text
    assert (await py(docker_context, code="'still here'")).text == "'still here'"


async def test_python_calls_on_one_sandbox_run_one_at_a_time(docker_context):
    py = PythonTool(timeout_s=5)
    await py(docker_context, code="log = []")
    cells = [f"import time\nlog.append({i})\ntime.sleep(0.2)\nlog.append({i})" for i in range(3)]
    results = await asyncio.gather(*(py(docker_context, code=c) for c in cells))
    assert all(r.status is ToolStatus.OK for r in results)
    log = (await py(docker_context, code="log")).text
    assert log in ("[0, 0, 1, 1, 2, 2]", "[0, 0, 2, 2, 1, 1]", "[1, 1, 0, 0, 2, 2]",
                   "[1, 1, 2, 2, 0, 0]", "[2, 2, 0, 0, 1, 1]", "[2, 2, 1, 1, 0, 0]")


async def test_python_call_latency(docker_context):
    py = PythonTool(timeout_s=5)
    await py(docker_context, code="1")
    start = time.monotonic()
    for _ in range(10):
        await py(docker_context, code="1")
    per_call = (time.monotonic() - start) / 10
    print(f"python tool: {per_call * 1000:.0f} ms per call (warm kernel)")
    assert per_call < 1.0


# ----------------------------------------------------------------------------- bash


async def test_bash_output_exit_status_and_merged_stderr(docker_context):
    bash = BashTool(timeout_s=5)
    result = await bash(docker_context, command="echo out; echo err >&2; echo out2; exit 3")
    assert result.text == "out\nerr\nout2\n[exit code 3]"
    assert result.status is ToolStatus.TOOL_ERROR
    ok = await bash(docker_context, command="cd /tmp && pwd && echo $HOME")
    assert ok.text == "/tmp\n/work" and ok.status is ToolStatus.OK
    assert (await bash(docker_context, command="pwd")).text == "/work"  # cd did not carry over
    assert (await bash(docker_context, command="true")).text == "(no output)"


async def test_bash_call_latency(docker_context):
    bash = BashTool()
    start = time.monotonic()
    for _ in range(10):
        await bash(docker_context, command="true")
    per_call = (time.monotonic() - start) / 10
    print(f"bash tool: {per_call * 1000:.0f} ms per call")
    assert per_call < 1.0


async def test_bash_syntax_errors_read_like_bash(docker_context):
    result = await BashTool()(docker_context, command="echo ok; foo(")
    assert "syntax error" in result.text and "exec 2>&1" not in result.text
    assert result.text.endswith("[exit code 2]")


async def test_bash_timeout_kills_the_command(docker_context):
    bash = BashTool(timeout_s=1)
    start = time.monotonic()
    result = await bash(docker_context, command="echo started; sleep 60")
    assert time.monotonic() - start < 5
    assert result.status is ToolStatus.TIMEOUT
    assert result.text == "started\n[timed out: the command ran longer than 1 s and was killed]"
    assert (await bash(docker_context, command="echo alive")).text == "alive"


async def test_bash_output_is_capped_and_signals_are_named(docker_context):
    bash = BashTool(output_bytes=100)
    result = await bash(docker_context, command="seq 1 100000")
    assert result.truncated
    assert result.text.endswith("[output truncated: only the first 100 bytes are shown]")
    killed = await bash(docker_context, command="kill -9 $$")
    assert "killed by SIGKILL" in killed.text


# ----------------------------------------------------------------------------- files


async def test_write_then_read_files(docker_context):
    write, read = WriteFileTool(), ReadFileTool()
    wrote = await write(docker_context, path="pkg/mod.py", content="def f():\n    return 1\n")
    assert wrote.text == "Wrote 22 bytes (2 lines) to pkg/mod.py."
    assert (await read(docker_context, path="/work/pkg/mod.py")).text == "def f():\n    return 1\n"
    assert (await read(docker_context, path="pkg/mod.py")).status is ToolStatus.OK
    await write(docker_context, path="empty.txt", content="")
    assert (await read(docker_context, path="empty.txt")).text == "(empty.txt is empty)"
    py = await PythonTool()(docker_context, code="from pkg.mod import f\nf()")
    assert py.text == "1"  # the session imports from the work dir


@pytest.mark.parametrize(
    ("tool", "arguments", "text"),
    [
        (ReadFileTool(), {"path": "missing.txt"},
         "Error: could not read missing.txt: No such file or directory"),
        (ReadFileTool(), {"path": "/work"}, "Error: could not read /work: Is a directory"),
        (ReadFileTool(), {"path": "/etc/shadow"},
         "Error: could not read /etc/shadow: Permission denied"),
        (WriteFileTool(), {"path": "/etc/passwd", "content": "x"},
         "Error: could not write /etc/passwd: Read-only file system"),
        (WriteFileTool(), {"path": "/work", "content": "x"},
         "Error: could not write /work: Is a directory"),
    ],
)
async def test_file_errors_are_observations(docker_context, tool, arguments, text):
    result = await tool(docker_context, **arguments)
    assert result.text == text and result.status is ToolStatus.TOOL_ERROR


async def test_read_file_caps_and_refuses_binary(docker_sandbox, docker_context):
    await docker_sandbox.aexec("seq 1 10000 > big.txt && head -c 100 /dev/urandom > blob && "
                               "printf 'a\\0b' >> blob")
    big = await ReadFileTool(output_bytes=50)(docker_context, path="big.txt")
    assert big.truncated and big.text.startswith("1\n2\n3\n")
    assert big.text.endswith("[output truncated: only the first 50 bytes are shown]")
    blob = await ReadFileTool()(docker_context, path="blob")
    assert blob.status is ToolStatus.TOOL_ERROR and "binary file" in blob.text


# ----------------------------------------------------------------------------- end to end


async def test_toolset_runs_a_model_message_end_to_end(docker_context):
    tools = ToolSet([PythonTool(timeout_s=5), BashTool(timeout_s=5), WriteFileTool()])
    message = (
        "First the data, then the sum.\n"
        '<tool_call>{"name": "write_file", "arguments": '
        '{"path": "n.txt", "content": "1\\n2\\n3\\n"}}</tool_call>\n'
        '<tool_call>{"name": "python", "arguments": {"code": '
        '"total = sum(int(l) for l in open(\'n.txt\'))\\ntotal"}}</tool_call>\n'
        '<tool_call>{"name": "bash", "arguments": {"command": "wc -l < n.txt"}}</tool_call>'
    )
    outcomes = await tools.dispatch_text(docker_context, message)
    assert [o.text for o in outcomes] == ["Wrote 6 bytes (3 lines) to n.txt.", "6", "3"]
    assert [o.call.name for o in outcomes if o.call] == ["write_file", "python", "bash"]
    [bad] = await tools.dispatch_text(
        docker_context, '<tool_call>{"name": "python", "arguments": {"source": "1"}}</tool_call>')
    assert bad.status is ToolStatus.BAD_ARGUMENTS and "did you mean `code`" not in bad.text
    assert "Expected: python(code: str)" in bad.text
    ok = await tools.dispatch(docker_context, ToolCall("python", {"code": "total * 2"}))
    assert ok.text == "12"
