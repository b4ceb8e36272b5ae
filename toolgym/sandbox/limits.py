"""Resource limits of a sandbox, as one small value object with defaults.

A limit that is hit never crashes a run: a timeout comes back as
``ExecResult.timed_out``, an output cap as ``ExecResult.truncated``, a memory
or process cap as the command's own failure (killed, ``fork: retry``) that the
agent sees.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Limits:
    """Per-sandbox resource caps; per-call ``timeout_s`` / ``output_bytes`` may override.

    Example:
        >>> Limits(memory_mb=256).with_(timeout_s=5).timeout_s
        5
    """

    timeout_s: float = 30.0
    """Wall clock per command; the whole process group is killed when it runs out."""
    memory_mb: int = 1024
    """Memory cap of the whole sandbox, swap included (no swap)."""
    cpus: float = 1.0
    """CPU quota in cores."""
    pids: int = 256
    """Most processes and threads alive at once (contains fork bombs)."""
    output_bytes: int = 65_536
    """Bytes kept of each of stdout and stderr; the rest is dropped and flagged."""
    file_size_mb: int = 64
    """Largest file a command may write (RLIMIT_FSIZE)."""
    open_files: int = 256
    """Most open file descriptors per process (RLIMIT_NOFILE)."""
    workdir_mb: int = 256
    """Size of the writable tmpfs work dir."""

    def with_(self, **changes: float | int) -> Limits:
        """Return a copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


DEFAULT_LIMITS = Limits()
