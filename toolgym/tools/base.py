"""``Tool``: a name, a description, a JSON schema, and an async call in an episode.

A tool is what the agent can do in its episode, mostly in its sandbox. The
model sees it through :meth:`Tool.to_schema` (the OpenAI function schema that
chat templates render); the environment runs it with ``await tool(context,
**arguments)`` (a :class:`~toolgym.tools.context.ToolContext`: the episode's
sandbox and task), which checks the arguments against the schema first and
then calls :meth:`Tool.run`. A tool never raises for a command that fails: a
non-zero exit, an exception in the agent's code or a timeout is a
:class:`ToolResult` whose text says so, because the agent must see it to do
better.
"""

from __future__ import annotations

import abc
import enum
import re
from dataclasses import dataclass
from typing import Any

from toolgym.tools.context import ToolContext
from toolgym.tools.schema import JSONSchema, signature, validate_arguments

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What OpenAI-compatible APIs accept as a function name."""


class ToolStatus(enum.StrEnum):
    """How one tool call went; counted per episode and per tool set."""

    OK = "ok"
    PARSE_ERROR = "parse_error"
    """The text of the call could not be read (malformed JSON, missing tag)."""
    UNKNOWN_TOOL = "unknown_tool"
    BAD_ARGUMENTS = "bad_arguments"
    TOOL_ERROR = "tool_error"
    """The tool ran and reported failure: non-zero exit, exception, missing file."""
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class ToolResult:
    r"""What a tool call produced: the observation text and what happened.

    Example:
        >>> r = ToolResult("ls: cannot access 'x'\n[exit code 2]", error=True)
        >>> r.status
        <ToolStatus.TOOL_ERROR: 'tool_error'>
    """

    text: str
    """The observation, in plain words, for the agent."""
    error: bool = False
    """The tool reported failure (non-zero exit, exception, missing file)."""
    timed_out: bool = False
    truncated: bool = False
    """The output was longer than the tool's cap; the text says so."""

    @property
    def status(self) -> ToolStatus:
        """The status this result is counted under."""
        if self.timed_out:
            return ToolStatus.TIMEOUT
        return ToolStatus.TOOL_ERROR if self.error else ToolStatus.OK


class Tool(abc.ABC):
    """Base class of tools: set ``name``, ``description``, ``parameters``; implement :meth:`run`.

    Example:
        >>> class Echo(Tool):
        ...     name = "echo"
        ...     description = "Print a message."
        ...     parameters = {"type": "object", "required": ["text"],
        ...                   "properties": {"text": {"type": "string"}}}
        ...     async def run(self, context, **arguments):
        ...         result = await context.sandbox.aexec(["echo", arguments["text"]])
        ...         return ToolResult(result.stdout)
        >>> Echo().to_schema()["function"]["name"]
        'echo'
        >>> Echo().signature
        'echo(text: str)'
    """

    name: str
    description: str
    parameters: JSONSchema
    """A JSON schema of ``"type": "object"`` with ``properties`` and ``required``."""
    needs_sandbox: bool = True
    """False for a tool that never reads ``context.sandbox``: an env without sandboxes
    accepts only such tools."""

    def to_schema(self) -> dict[str, Any]:
        """The OpenAI function schema, as ``tokenizer.apply_chat_template(tools=...)`` takes it."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    @property
    def signature(self) -> str:
        """How the call looks, e.g. ``python(code: str)``; quoted in error messages."""
        return signature(self.name, self.parameters)

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Check ``arguments`` against :attr:`parameters`; see :func:`validate_arguments`.

        Raises:
            BadArguments: missing, unexpected or wrongly typed arguments.
        """
        return validate_arguments(self.name, self.parameters, arguments)

    async def __call__(self, context: ToolContext, **arguments: Any) -> ToolResult:
        """Validate ``arguments`` and run the tool in the episode of ``context``.

        Raises:
            BadArguments: the arguments do not match the schema.
            SandboxError: the sandbox itself failed (not the agent's command).
        """
        return await self.run(context, **self.validate(arguments))

    @abc.abstractmethod
    async def run(self, context: ToolContext, **arguments: Any) -> ToolResult:
        """Do the work, with arguments already validated, in the episode of ``context``."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.signature}>"


def check_tool_name(name: str) -> str:
    """Return ``name`` if APIs and chat templates accept it as a function name.

    Raises:
        ValueError: the name is empty, too long or has characters other than
            letters, digits, ``_`` and ``-``.
    """
    if not TOOL_NAME.match(name):
        raise ValueError(
            f"tool name {name!r} is not allowed: use 1-64 letters, digits, '_' or '-'"
        )
    return name
