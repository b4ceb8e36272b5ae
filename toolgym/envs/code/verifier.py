"""Unit-test verification of code answers, out of the agent's reach.

The verifier runs after the agent's last turn on a sandbox that was just
reset (the agent's processes killed, its files gone), so nothing the agent
left behind (a fake result file, a shadowing module, a background process)
is there. The hidden tests enter the sandbox only now. Success needs exit code
0 *and* a nonce the harness prints after ``check()`` returns; the nonce reaches
the harness on stdin and is in no file or variable of the environment, so an
answer that exits early with status 0 or prints "passed" is scored 0.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from toolgym.envs.code.tasks import build_check_script
from toolgym.envs.outcome import Score
from toolgym.envs.tasks import Task
from toolgym.sandbox.base import Sandbox

FENCE = re.compile(r"```(?:python|py)[^\n]*\n(.*?)```", re.S)
HARNESS = """\
import sys
__toolgym_nonce = sys.stdin.readline().strip()
sys.stdin.close()
exec(compile(open("check.py").read(), "check.py", "exec"), {{"__name__": "__main__"}})
print("\\n" + __toolgym_nonce)
"""


def last_python_block(text: str) -> str | None:
    """The last ```python fenced block of ``text``, or None.

    Example:
        >>> last_python_block("x\\n```python\\nA\\n```\\n```python\\nB\\n```")
        'B\\n'
    """
    blocks = FENCE.findall(text)
    return blocks[-1] if blocks else None


@dataclass(frozen=True)
class UnitTestVerifier:
    """Reward 1.0 iff the task's tests pass on the answer's last python block."""

    timeout_s: float = 20.0

    async def score(self, sandbox: Sandbox, task: Task, answer: str) -> Score:
        program = last_python_block(answer)
        if program is None:
            return Score(0.0, passed=False, details={"error": "no ```python block in the answer"})
        nonce = secrets.token_hex(16)
        await sandbox.awrite_file(".verify/check.py", build_check_script(
            program, task.data["test"], task.data["entry_point"]))
        await sandbox.awrite_file(".verify/harness.py", HARNESS.format())
        r = await sandbox.aexec(["python3", "harness.py"], stdin=nonce + "\n",
                                workdir=f"{_workdir(sandbox)}/.verify", timeout=self.timeout_s)
        passed = r.exit_code == 0 and not r.timed_out and r.stdout.rstrip().endswith(nonce)
        details = {"exit_code": r.exit_code, "timed_out": r.timed_out,
                   "output": (r.stdout.replace(nonce, "") + r.stderr)[-2000:]}
        return Score(1.0 if passed else 0.0, passed=passed, details=details)


def _workdir(sandbox: Sandbox) -> str:
    return getattr(sandbox, "workdir", "/work")
