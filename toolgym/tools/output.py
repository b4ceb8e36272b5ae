"""The plain-words notes that tools append to their output.

Every built-in tool reports the same events the same way (an exit status, a
timeout, a cut-off output), in bracketed sentences an LLM reads without
knowing toolgym, so the agent learns one vocabulary.
"""

from __future__ import annotations

import signal

NO_OUTPUT = "(no output)"


def join(*parts: str | None) -> str:
    r"""Join non-empty parts with newlines; ``(no output)`` when all are empty.

    Example:
        >>> join("hello\n", None, "[exit code 1]")
        'hello\n[exit code 1]'
    """
    kept = [p.rstrip("\n") for p in parts if p and p.strip()]
    return "\n".join(kept) if kept else NO_OUTPUT


def exit_note(exit_code: int) -> str | None:
    """``[exit code N]`` for a failure, with the signal's name when killed; None for 0."""
    if exit_code == 0:
        return None
    if exit_code < 0 or exit_code > 128:
        number = -exit_code if exit_code < 0 else exit_code - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"[exit code {exit_code}: killed by {name}{hint}]"
    return f"[exit code {exit_code}]"


def timeout_note(timeout_s: float, what: str = "the command") -> str:
    """Says the time limit ran out and the work was stopped."""
    return f"[timed out: {what} ran longer than {timeout_s:g} s and was killed]"


def truncation_note(cap: int, total: int | None = None) -> str:
    """Says the output was cut, and how much was shown."""
    of = f" of {total}" if total is not None else ""
    return f"[output truncated: only the first {cap}{of} bytes are shown]"


def cap(text: str, limit: int) -> str:
    r"""``text`` cut to about ``limit`` characters: its start and end, a note where it was cut.

    Example:
        >>> cap("a" * 50 + "b" * 50, 40)
        'aaaaaaaaaaaaaaaaaaaaaaaaaa\n[... 61 characters cut ...]\nbbbbbbbbbbbbb'
    """
    if len(text) <= limit:
        return text
    head, tail = 2 * limit // 3, limit // 3
    return f"{text[:head]}\n[... {len(text) - head - tail} characters cut ...]\n{text[-tail:]}"


def last_reason(message: str) -> str:
    r"""The reason at the end of a Unix error message, without program and path prefixes.

    Example:
        >>> last_reason("sh: 1: cannot create /etc/x: Permission denied\n")
        'Permission denied'
    """
    lines = message.strip().splitlines()
    return lines[-1].rsplit(": ", 1)[-1].strip() if lines else ""
