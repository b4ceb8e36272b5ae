"""What every agent takes and returns: ``Conversation`` in, ``AgentTurn`` out.

An agent is anything with ``async def act(conversation) -> AgentTurn``. The
conversation carries OpenAI-style chat messages (what an HTTP backend sends),
the tools' JSON schemas, and, for token-in/token-out backends, the exact prompt
token ids built by :class:`~toolgym.agents.templates.IncrementalPrompt`, so a
local policy continues from the very ids a trainer will later score instead of
a re-tokenised rendering of the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from toolgym._sync import run_sync

Message = dict[str, Any]
"""An OpenAI-style chat message: ``role`` (system/user/assistant/tool), ``content``,
and for assistant messages optionally ``tool_calls``; tool messages carry ``tool_call_id``."""


@dataclass(frozen=True)
class SamplingParams:
    """How a backend samples. One value object shared by every backend.

    Example:
        >>> SamplingParams(temperature=0.7).greedy
        False
    """

    temperature: float = 1.0
    """Softmax temperature; 0 means greedy decoding."""
    top_p: float = 1.0
    """Nucleus sampling mass; 1 keeps the whole distribution."""
    max_new_tokens: int = 512
    """Token budget of one turn; a turn that uses it up ends with ``finish_reason="length"``."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    @property
    def greedy(self) -> bool:
        """True when decoding takes the arg-max token."""
        return self.temperature == 0


DEFAULT_SAMPLING = SamplingParams()


@dataclass(frozen=True)
class Conversation:
    """The state an agent acts on. Treat it as immutable; build a new one per turn.

    Example:
        >>> c = Conversation([{"role": "user", "content": "hi"}])
        >>> c.last_role
        'user'
    """

    messages: Sequence[Message]
    tools: Sequence[dict[str, Any]] | None = None
    """JSON schemas of the offered tools (OpenAI ``tools`` format)."""
    prompt_token_ids: Sequence[int] | None = None
    """Exact ids to continue from (token in, token out); None: the backend renders the messages."""

    @property
    def last_role(self) -> str | None:
        """Role of the newest message, or None for an empty conversation."""
        return self.messages[-1]["role"] if self.messages else None


@dataclass(frozen=True)
class AgentTurn:
    """One policy turn: what was said, and for trainable backends the exact tokens.

    Example:
        >>> t = AgentTurn(text="hi", token_ids=[5, 3], logprobs=[-0.1, -0.2], finish_reason="stop")
        >>> t.trainable, t.message()
        (True, {'role': 'assistant', 'content': 'hi'})
    """

    text: str
    """The reply's text (no end-of-turn token)."""
    token_ids: list[int] | None = None
    """Sampled ids, verbatim, including the end-of-turn token when one was sampled; None when
    the backend did not report them (the turn is then not trainable)."""
    logprobs: list[float] | None = None
    """Log-probability of each sampled id under the distribution it was sampled from."""
    finish_reason: str = "stop"
    """``"stop"`` (end-of-turn token or stop sequence) or ``"length"`` (token budget)."""
    tool_calls: list[dict[str, Any]] | None = None
    """Structured OpenAI tool calls if the backend parsed them; otherwise calls are in ``text``."""
    reasoning: str | None = None
    """Reasoning the server returned beside the text (``reasoning_content``, an Anthropic
    ``thinking`` block); reasoning written inline as ``<think>`` stays in ``text``."""
    reasoning_blocks: list[dict[str, Any]] | None = None
    """The server's reasoning as blocks to send back verbatim, where its API wants them back
    (Anthropic's signed ``thinking`` and ``redacted_thinking`` blocks)."""
    prompt_token_ids: list[int] | None = None
    """The ids the backend conditioned on, when known."""
    usage: dict[str, int] | None = None
    """Token counts as reported (``prompt_tokens``, ``completion_tokens``)."""
    latency_s: float = 0.0
    """Wall-clock seconds from request to answer, queueing and retries included."""
    policy_version: int | None = None
    """Version of the weights that produced the turn (for staleness bounds)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Backend-specific extras (HTTP attempts, batch size, reasoning text, ...)."""

    @property
    def trainable(self) -> bool:
        """True when the exact sampled ids are known, so a trainer may use the turn."""
        return self.token_ids is not None

    @property
    def structured(self) -> bool:
        """True when the turn carries more than its text (tool calls or reasoning), so an
        env must get :meth:`message` rather than ``text``."""
        return bool(self.tool_calls) or self.reasoning is not None or bool(self.reasoning_blocks)

    def message(self) -> Message:
        """The assistant message to append to the conversation (reasoning as
        ``reasoning_content`` and ``reasoning_blocks``, which each backend sends back or drops
        by its convention)."""
        msg: Message = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        if self.reasoning is not None:
            msg["reasoning_content"] = self.reasoning
        if self.reasoning_blocks:
            msg["reasoning_blocks"] = self.reasoning_blocks
        return msg


@runtime_checkable
class Agent(Protocol):
    """Anything that produces the next assistant turn of a conversation."""

    async def act(self, conversation: Conversation) -> AgentTurn:
        """Return the next turn. Raises :class:`~toolgym.errors.AgentError` subclasses."""
        ...


class AgentBase:
    """Sync twin and resource handling shared by the built-in agents.

    ``act_sync`` runs ``act`` on toolgym's bridge loop (:mod:`toolgym._sync`),
    never on a loop of its own.
    """

    async def act(self, conversation: Conversation) -> AgentTurn:  # pragma: no cover
        """Return the next turn; subclasses implement it."""
        raise NotImplementedError

    def act_sync(self, conversation: Conversation) -> AgentTurn:
        """Blocking twin of :meth:`act`."""
        return run_sync(self.act(conversation))

    async def aclose(self) -> None:
        """Release the backend's resources; a second call does nothing."""

    def close(self) -> None:
        """Blocking twin of :meth:`aclose`."""
        run_sync(self.aclose())

    async def __aenter__(self) -> AgentBase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> AgentBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
