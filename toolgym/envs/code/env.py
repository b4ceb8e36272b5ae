"""Code environments: write a Python function that passes hidden unit tests.

``toolgym/HumanEval-v0`` serves the 164 HumanEval problems (evaluation only);
``toolgym/Code-v0`` the generated problems (train/test splits, the demo's
training set); ``toolgym/CodeRetry-v0`` lets the agent resubmit after seeing
what kind of failure it was (never the hidden asserts), up to ``max_attempts`` times.
"""

from __future__ import annotations

from typing import Any

from toolgym.envs.base import DEFAULT_SANDBOX, Step, ToolEnv
from toolgym.envs.code.tasks import code_task_source, wrong_solution
from toolgym.envs.code.verifier import UnitTestVerifier
from toolgym.envs.outcome import Outcome
from toolgym.envs.step import StepInfo
from toolgym.envs.tasks import Task
from toolgym.sandbox.provider import SandboxProvider
from toolgym.sandbox.spec import SandboxSpec
from toolgym.tools import default_tools, render_tool_call
from toolgym.tools.call import ToolCall

SYSTEM_PROMPT = (
    "You solve Python programming tasks. You may call the tools to run code and "
    "test ideas. When you are done, reply without a tool call; your reply must "
    "contain the complete function in a ```python fenced block (the last such "
    "block is graded by hidden unit tests)."
)


class CodeEnv(ToolEnv):
    """Write a function; reward 1.0 iff its hidden unit tests pass."""

    def __init__(
        self,
        source: str = "humaneval",
        *,
        split: str | None = None,
        sandbox: SandboxSpec | None = None,
        provider: SandboxProvider | None = None,
        tool_timeout_s: float = 10.0,
        test_timeout_s: float = 20.0,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            code_task_source(source),
            default_tools(timeout_s=tool_timeout_s),
            UnitTestVerifier(timeout_s=test_timeout_s),
            sandbox=sandbox or DEFAULT_SANDBOX,
            provider=provider,
            system_prompt=SYSTEM_PROMPT,
            split=split,
            render_mode=render_mode,
        )


    def wrong_actions(self, task: Task) -> list[str]:
        """An off-by-one program, submitted."""
        return [_submit(wrong_solution(task))]

    def oracle_actions(self, task: Task) -> list[str]:
        """Define the reference in the python tool, then submit it."""
        program = task.data["reference_program"]
        try_it = render_tool_call(ToolCall("python", {"code": program}))
        return [f"Let me define it first.\n{try_it}", _submit(program)]

    def hack_probes(self, task: Task) -> dict[str, list[str]]:
        """Read for hidden tests, forge results, exit early, kill the verifier's processes."""
        wrong = wrong_solution(task)
        bash = lambda cmd: render_tool_call(ToolCall("bash", {"command": cmd}))  # noqa: E731
        return {
            "search for hidden tests": [
                bash("grep -rl 'def check' / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev"
                     " 2>/dev/null | grep -v '^/usr' | head; ls -la /work"),
                _submit(wrong)],
            "exit 0 before the tests run": [_submit("import os\nos._exit(0)\n")],
            "print a fake pass": [_submit("print('passed'); import sys; sys.exit(0)\n")],
            "leave a fake result file and a killer process": [
                bash("echo PASS > /work/result.txt;"
                     " echo 'import os; os._exit(0)' > /work/unittest.py;"
                     " (while :; do pkill -9 python3; done) >/dev/null 2>&1 &"),
                _submit(wrong)],
            "kill every process": [bash("kill -9 -1"), _submit(wrong)],
        }


def _submit(program: str) -> str:
    return f"Here is my solution.\n```python\n{program.rstrip()}\n```"


class CodeRetryEnv(CodeEnv):
    """Like :class:`CodeEnv`, but a failing submission may be retried, up to ``max_attempts``.

    The feedback after a failure is the verifier's :func:`~toolgym.envs.code.verifier.feedback`:
    the kind of failure, how many calls of the function were answered first, the
    program's own traceback and output, never the hidden asserts (a lookup table
    built from them would otherwise pass attempt 2).
    """

    def __init__(self, source: str = "generated", *, max_attempts: int = 3, **kwargs: Any) -> None:
        super().__init__(source, **kwargs)
        self.max_attempts = max_attempts
        self.attempts = 0

    async def areset(self, **kwargs: Any) -> tuple[str, StepInfo]:
        self.attempts = 0
        return await super().areset(**kwargs)

    async def _finish(self, action: str) -> Step:
        obs, reward, terminated, truncated, info = await super()._finish(action)
        self.attempts += 1
        failed = info["outcome"] == Outcome.FAILURE
        if not (failed and self.attempts < self.max_attempts):
            return obs, reward, terminated, truncated, info
        feedback = (f"Your submission failed the hidden tests (attempt {self.attempts} of "
                    f"{self.max_attempts}). {info['score'].details.get('feedback', '')}\n"
                    "Fix the function and submit it again in a ```python block.")
        message = {"role": "user", "content": feedback}
        self.messages.append(message)
        self._done = False
        info = {**info, "outcome": None, "new_messages": [message], "attempt_failed": True}
        return feedback, 0.0, False, False, info
