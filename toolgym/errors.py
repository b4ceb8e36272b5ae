"""The one error tree of toolgym.

Every error toolgym raises on purpose derives from :class:`ToolgymError`, so a
caller can catch the platform's failures without catching programming errors.
Each error carries the data a handler needs as attributes, and its message says
what to do about it.

::

    ToolgymError
    ├── ConfigError
    ├── RegistryError
    │   └── UnknownEnv
    ├── SandboxError
    │   ├── SandboxUnavailable      no Docker daemon / no isolation available
    │   ├── ImageNotFound           the sandbox image is not built
    │   ├── SandboxCrashed          infrastructure failure (container died, channel lost)
    │   │   └── SandboxSlow         a platform step ran out of time (a loaded host, not a dead one)
    │   └── PoolExhausted           no sandbox free within the acquire timeout
    ├── ToolCallError
    │   ├── ParseError
    │   ├── UnknownTool
    │   └── BadArguments
    ├── AgentError
    │   ├── AgentTimeout
    │   └── AgentHTTPError
    ├── ReplayDiverged              replaying recorded actions gave other observations
    └── InfrastructureFailing       episode after episode failed in the platform: stop the run

A command that fails inside a sandbox is *not* an error: it is an
:class:`~toolgym.sandbox.ExecResult` with a non-zero exit code, a timeout flag
or a truncation flag, and it goes back to the agent as an observation.
"""

from __future__ import annotations


class ToolgymError(Exception):
    """Base class of every error toolgym raises on purpose."""


class ConfigError(ToolgymError, ValueError):
    """A configuration value is missing, unknown or inconsistent."""


class RegistryError(ToolgymError):
    """An environment could not be registered or found."""


class UnknownEnv(RegistryError, KeyError):
    """No environment is registered under this id."""

    def __init__(self, env_id: str, suggestions: list[str] | None = None) -> None:
        self.env_id = env_id
        self.suggestions = suggestions or []
        hint = ""
        if suggestions:
            hint = f" Did you mean {', '.join(repr(s) for s in self.suggestions)}?"
        super().__init__(
            f"No environment {env_id!r} is registered.{hint} "
            "Run `toolgym envs list` to see the registered ids."
        )

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class SandboxError(ToolgymError):
    """The sandbox layer failed (not the command the agent ran)."""


class SandboxUnavailable(SandboxError):
    """No sandbox backend can run here (no Docker daemon, no bubblewrap)."""


class ImageNotFound(SandboxError):
    """The sandbox image does not exist locally."""

    def __init__(self, image: str) -> None:
        self.image = image
        super().__init__(
            f"Sandbox image {image!r} is not built. Run `toolgym sandbox build` "
            "(or `make test`, which builds it) and try again."
        )


class SandboxCrashed(SandboxError):
    """The sandbox died or stopped answering: an infrastructure failure.

    Episodes that hit it are reported as ``infra_error`` and dropped by
    trainers, never scored 0.
    """

    def __init__(self, sandbox_id: str, reason: str) -> None:
        self.sandbox_id = sandbox_id
        self.reason = reason
        super().__init__(f"Sandbox {sandbox_id[:12]} crashed: {reason}")


class SandboxSlow(SandboxCrashed):
    """A platform step in the sandbox (a browser start) did not finish in time, even retried.

    Still an ``infra_error`` for the episode, but a sign of a loaded host, not of a
    dead one: the rollout manager retries the episode and counts it (``infra_slow``)
    without counting it toward ``max_infra_streak``, so a slow stretch does not
    stop a run.
    """


class PoolExhausted(SandboxError):
    """Every sandbox of the pool stayed busy for the whole acquire timeout."""

    def __init__(self, max_size: int, timeout_s: float, memory: str | None = None) -> None:
        self.max_size = max_size
        self.timeout_s = timeout_s
        self.memory = memory
        """Which memory budget held the pool back (None: max_size did)."""
        if memory is None:
            super().__init__(
                f"No sandbox became free within {timeout_s:g} s (pool max_size={max_size}). "
                "Release sandboxes sooner, raise max_size, or raise the acquire timeout."
            )
        else:
            super().__init__(
                f"No sandbox could start within {timeout_s:g} s: the {memory} is spent "
                "on sandboxes alive. Release sandboxes sooner, lower their memory_mb, "
                "or raise the budget (up to the host's memory)."
            )


class ToolCallError(ToolgymError):
    """The agent's tool call could not be understood or executed as asked."""


class ParseError(ToolCallError):
    """The tool call text is not valid (e.g. malformed JSON)."""


class UnknownTool(ToolCallError):
    """The agent called a tool the environment does not offer."""


class BadArguments(ToolCallError):
    """The tool call's arguments are missing, unexpected or of the wrong type."""


class AgentError(ToolgymError):
    """The policy backend failed to produce an action."""


class AgentTimeout(AgentError):
    """The policy backend did not answer in time."""


class AgentHTTPError(AgentError):
    """An OpenAI-compatible server answered with an error after all retries."""


class ReplayDiverged(ToolgymError):
    """Replaying an episode's recorded actions did not reproduce its observations.

    The env (or one of its tools) is not deterministic given the seed and the
    actions, so replay cannot restore the state at a turn boundary.
    """

    def __init__(self, trajectory_id: str, turn: int, expected: str, got: str) -> None:
        self.trajectory_id, self.turn, self.expected, self.got = trajectory_id, turn, expected, got
        super().__init__(
            f"Replay of trajectory {trajectory_id} diverged at turn {turn}: recorded observation "
            f"{expected[:80]!r}, replay gave {got[:80]!r}. The env is not deterministic given "
            "its seed and the actions (clock, randomness, network): make the tool "
            "deterministic, or use a critic-based estimator (turn_gae, archer) for this env.")


class InfrastructureFailing(ToolgymError):
    """Episode after episode ended in ``infra_error``: the platform is down, not the agent.

    A Docker daemon that went away turns every later episode into an infra
    error; a run that went on would end "successfully" with nothing scored (an
    evaluation) or wait forever for a batch (a trainer). The rollout manager
    raises this instead, after ``streak`` failures in a row.
    """

    def __init__(self, streak: int, last_error: str) -> None:
        self.streak, self.last_error = streak, last_error
        super().__init__(
            f"The last {streak} episode attempts all failed in the platform (infra_error), so "
            f"the run stops. The latest error: {last_error[:500]}. Check the sandbox backend "
            "(is the Docker daemon running? `docker info`), then run the same command again: "
            "finished episodes are kept.")
