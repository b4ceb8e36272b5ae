"""Unit-test verification of code answers, out of the agent's reach.

The verifier runs after the agent's last turn on a sandbox that was just
reset (the agent's processes killed, its files gone), so nothing the agent
left behind (a fake result file, a shadowing module, a background process)
is there. The hidden tests never enter a file: the sandbox runs
:mod:`toolgym.envs.code.harness` as the platform's uid (``trusted=True``,
``python3 -I``, cwd ``/``), which gets them
on stdin with a fresh nonce, and runs the answer in a *separate* process under
the agent's uid (see
that module for why, and for what crosses the pipe between them). The reward
is read from the harness's last stdout line, which must start with the nonce;
the candidate's process never sees the nonce, the tests or that stdout.

Only two results are not the answer's fault, and only those raise (the env
reports them as ``infra_error``): the harness says, under its nonce, that the
task's own code failed; or the sandbox failed. Anything the answer can cause
(a crash, a hang, a flood of output, a forged line, killing the harness) is a
failure scored 0.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolgym.envs.code import harness
from toolgym.envs.outcome import Score
from toolgym.envs.tasks import Task
from toolgym.sandbox.base import AGENT_UID, Sandbox

FENCE = re.compile(r"```(?:python|py)[^\n]*\n(.*?)```", re.S)
HARNESS_SOURCE = Path(harness.__file__).read_text(encoding="utf-8")
VERDICT_BYTES = 16_384
"""stdout kept of the harness: the verdict line is bounded well below this."""

FAILURES = {
    "wrong": "a hidden test failed ({message}).",
    "raised": "your function raised an exception:\n{message}",
    "load": "your program did not load:\n{message}",
    "timeout": "{message}",
    "died": "{message}",
    "too_large": "{message}",
    "not_plain": "{message}",
    "protocol": "{message}",
}
"""How each kind of failure reads in the retry feedback (never the hidden asserts)."""


def last_python_block(text: str) -> str | None:
    r"""The last ```python fenced block of ``text``, or None.

    Example:
        >>> last_python_block("x\n```python\nA\n```\n```python\nB\n```")
        'B\n'
    """
    blocks = FENCE.findall(text)
    return blocks[-1] if blocks else None


class HarnessError(RuntimeError):
    """The task's own stub or test failed in the harness: a platform fault, not the answer's."""


@dataclass(frozen=True)
class UnitTestVerifier:
    """Reward 1.0 iff the task's hidden tests pass on the answer's last python block.

    Args:
        timeout_s: Wall clock of the whole check (all calls of the function).
        memory_mb: Address-space cap of the candidate's process.
        candidate_uid: uid (and gid) the candidate runs as; the harness runs as
            the platform's (``trusted=True``), which the candidate cannot signal,
            trace, or read the memory or descriptors of. Where both are one uid
            (a bubblewrap sandbox) the harness is only made non-dumpable.
    """

    timeout_s: float = 20.0
    memory_mb: int = 1024
    candidate_uid: int = AGENT_UID

    async def score(self, sandbox: Sandbox | None, task: Task, answer: str) -> Score:
        assert sandbox is not None, "the hidden tests run in the sandbox: code envs hold one"
        program = last_python_block(answer)
        if program is None:
            return Score(0.0, passed=False, details={
                "error": "no ```python block in the answer",
                "feedback": "Your reply has no ```python block."})
        nonce = secrets.token_hex(16)
        config = {
            "nonce": nonce, "source": HARNESS_SOURCE, "program": program,
            "stub": task.data["stub"], "test": task.data["test"],
            "entry_point": task.data["entry_point"], "timeout_s": self.timeout_s,
            "memory_bytes": self.memory_mb << 20, "workdir": getattr(sandbox, "workdir", "/work"),
            "uid": self.candidate_uid, "gid": self.candidate_uid,
        }
        r = await sandbox.aexec(["python3", "-I", "-c", HARNESS_SOURCE, "harness"],
                                stdin=json.dumps(config), workdir="/", trusted=True,
                                timeout=self.timeout_s + 10.0, output_bytes=VERDICT_BYTES)
        verdict = read_verdict(r.stdout, nonce)
        if verdict is None:
            verdict = {"passed": False, "kind": "died", "calls": 0, "output": "",
                       "message": "the tests did not run to the end (time limit, memory "
                                  "limit, or the harness was stopped)"}
        if "harness_error" in verdict:
            raise HarnessError(f"{task.id}: {verdict['harness_error']}\n{r.stderr[-2000:]}")
        passed = verdict.get("passed") is True and r.exit_code == 0 and not r.timed_out
        details = {"exit_code": r.exit_code, "timed_out": r.timed_out,
                   "kind": verdict.get("kind"), "calls": verdict.get("calls", 0),
                   "output": str(verdict.get("output", "")),
                   "feedback": "" if passed else feedback(verdict)}
        return Score(1.0 if passed else 0.0, passed=passed, details=details)


def read_verdict(stdout: str, nonce: str) -> dict[str, Any] | None:
    r"""The verdict from the harness's last line, or None when no line carries the nonce.

    Example:
        >>> read_verdict('noise\nN {"passed": true}\n', "N")
        {'passed': True}
        >>> read_verdict('M {"passed": true}\n', "N") is None
        True
    """
    lines = stdout.rstrip("\n").rsplit("\n", 1)
    head, _, body = lines[-1].partition(" ")
    if head != nonce:
        return None
    try:
        verdict = json.loads(body)
    except ValueError:
        return None
    return verdict if isinstance(verdict, dict) else None


def feedback(verdict: dict[str, Any]) -> str:
    """What a failed attempt may tell the agent: the kind of failure, how many calls of
    its function had been answered, its own traceback and its own output (which may
    show the arguments it got); never the hidden tests' source, expected values or
    assertion messages.

    Example:
        >>> print(feedback({"kind": "wrong", "message": "AssertionError", "calls": 2}))
        The hidden tests failed after 2 answered calls: a hidden test failed (AssertionError).
    """
    kind = verdict.get("kind") or "died"
    text = FAILURES.get(kind, "{message}").format(message=verdict.get("message", ""))
    lines = [f"The hidden tests failed after {verdict.get('calls', 0)} answered calls: {text}"]
    if verdict.get("output"):
        lines.append(f"Your program's output (last part):\n{verdict['output']}")
    return "\n".join(lines)
