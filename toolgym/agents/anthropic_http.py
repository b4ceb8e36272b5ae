"""The Anthropic Messages API (``/v1/messages``) as an agent.

toolgym's conversations are OpenAI chat messages; this adapter translates them
both ways. Going out: system messages become the top-level ``system``, an
assistant's ``tool_calls`` become ``tool_use`` blocks, and the results of those
calls become ``tool_result`` blocks of one user message (consecutive messages
of one role are merged, as the API wants results of parallel calls together).
Results of calls written in the text have no ``tool_use`` to answer and go as
user text in ``<tool_response>`` tags. Coming back: text blocks are the turn's
text, ``tool_use`` blocks its ``tool_calls`` (OpenAI form, ids kept, so the env
answers them by id), ``thinking`` blocks its reasoning.

Retries and typed errors are :class:`~toolgym.agents.http.HTTPAgent`'s (529,
"overloaded", is retried too). The API key comes from ``ANTHROPIC_API_KEY``
unless passed in; it is only ever a request header, never part of a turn, an
error message or a log line.

Extended thinking (``thinking_budget``): the API then wants each assistant turn
that used tools sent back starting with its ``thinking`` (or
``redacted_thinking``) blocks, signatures unmodified, and refuses a temperature
other than 1 and forced tool use. The blocks ride in the assistant message as
``reasoning_blocks`` and go back first in its content (thinking interleaved
between tool calls comes back in front of them all); their text is the turn's
reasoning. The temperature is then not sent.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from toolgym.agents.base import DEFAULT_SAMPLING, AgentTurn, Conversation, Message, SamplingParams
from toolgym.agents.http import DEFAULT_LIMITS, DEFAULT_TIMEOUT, HTTPAgent
from toolgym.agents.retry import DEFAULT_RETRY, RetryPolicy
from toolgym.errors import ConfigError

API_KEY_ENV = "ANTHROPIC_API_KEY"
API_VERSION = "2023-06-01"
ANTHROPIC_RETRY = dataclasses.replace(DEFAULT_RETRY, statuses=DEFAULT_RETRY.statuses | {529})
"""The default retry policy, plus 529 (the API is overloaded)."""

_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls",
           "max_tokens": "length", "pause_turn": "stop", "refusal": "stop"}


class AnthropicAgent(HTTPAgent):
    """Agent that asks an Anthropic Messages endpoint for each turn (evaluation: no token ids).

    Args:
        base_url: API root, with or without the trailing ``/v1``
            (``https://api.anthropic.com``).
        model: Model name, e.g. ``claude-sonnet-4-5``.
        api_key: The key; default: the ``ANTHROPIC_API_KEY`` environment variable.
        sampling: Temperature, top-p (sent only below 1) and ``max_tokens``.
        timeout, retry, limits, transport: As for :class:`~toolgym.agents.OpenAIAgent`.
        tool_choice: OpenAI-style choice (``"auto"``, ``"required"``, ``"none"`` or a
            named function), translated to the API's; None leaves it out.
        parallel_tool_calls: False sends ``disable_parallel_tool_use``; None leaves it out.
        thinking_budget: Turn extended thinking on with this many tokens for it (at least
            1024, below ``sampling.max_new_tokens``); None leaves it off.
        extra_body: Extra JSON fields merged into every request (e.g. ``top_k``).

    Raises:
        ConfigError: no key given and ``ANTHROPIC_API_KEY`` is unset, or a thinking budget
            the API would refuse (see ``thinking_budget``) or with forced tool use.

    Example:
        >>> AnthropicAgent("https://api.anthropic.com", "claude-sonnet-4-5", api_key="k").url
        'https://api.anthropic.com/v1/messages'
    """

    answer_kind = "a Messages answer"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        sampling: SamplingParams = DEFAULT_SAMPLING,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = ANTHROPIC_RETRY,
        limits: httpx.Limits = DEFAULT_LIMITS,
        tool_choice: str | Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        thinking_budget: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        key = api_key or os.environ.get(API_KEY_ENV)
        if not key:
            raise ConfigError(f"No Anthropic API key: set the {API_KEY_ENV} environment variable.")
        if thinking_budget is not None:
            _check_thinking(thinking_budget, sampling.max_new_tokens, tool_choice)
        root = base_url.rstrip("/")
        url = (root if root.endswith("/v1") else root + "/v1") + "/messages"
        headers = {"x-api-key": key, "anthropic-version": API_VERSION}
        super().__init__(url, headers=headers, timeout=timeout, retry=retry, limits=limits,
                         transport=transport)
        self.model = model
        self.sampling = sampling
        self.tool_choice = tool_choice
        self.parallel_tool_calls = parallel_tool_calls
        self.thinking_budget = thinking_budget
        self.extra_body = dict(extra_body or {})

    def request_body(self, conversation: Conversation) -> dict[str, Any]:
        """The JSON body sent for ``conversation``."""
        system, messages = anthropic_messages(conversation.messages)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.sampling.max_new_tokens,
            "messages": messages,
        }
        if self.thinking_budget is None:
            body["temperature"] = self.sampling.temperature
        else:
            body["thinking"] = {"type": "enabled", "budget_tokens": self.thinking_budget}
        if system:
            body["system"] = system
        if self.sampling.top_p < 1:
            body["top_p"] = self.sampling.top_p
        if conversation.tools:
            body["tools"] = [anthropic_tool(t) for t in conversation.tools]
            choice = anthropic_tool_choice(self.tool_choice, self.parallel_tool_calls)
            if choice is not None:
                body["tool_choice"] = choice
        body.update(self.extra_body)
        return body

    def parse_answer(self, data: dict[str, Any]) -> AgentTurn:
        """The turn in a Messages answer (:func:`parse_message`)."""
        return parse_message(data)


def _check_thinking(budget: int, max_tokens: int, choice: str | Mapping[str, Any] | None) -> None:
    """Refuse up front what the API refuses of extended thinking, naming the fix."""
    if budget < 1024 or budget >= max_tokens:
        raise ConfigError(f"thinking_budget {budget}: the API wants budget_tokens >= 1024 and "
                          f"below max_tokens ({max_tokens}); raise max_new_tokens or lower the "
                          "budget.")
    if choice == "required" or isinstance(choice, Mapping):
        raise ConfigError(f"tool_choice {choice!r} forces tool use, which extended thinking "
                          "refuses: use 'auto' or 'none', or turn thinking off.")


def anthropic_messages(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI chat messages as the Messages API's ``(system, messages)``; see the module docstring.

    Example:
        >>> anthropic_messages([{"role": "system", "content": "Be brief."},
        ...                     {"role": "user", "content": "hi"}])
        ('Be brief.', [{'role': 'user', 'content': [{'type': 'text', 'text': 'hi'}]}])
    """
    system: list[str] = []
    out: list[dict[str, Any]] = []
    open_ids: set[str] = set()
    for msg in messages:
        role, content = msg.get("role"), msg.get("content") or ""
        if role in ("system", "developer"):
            system.append(content)
            continue
        if role == "assistant":
            blocks = _assistant_blocks(msg)
            open_ids = {b["id"] for b in blocks if b["type"] == "tool_use"}
        elif role == "tool" and msg.get("tool_call_id") in open_ids:
            blocks = [{"type": "tool_result", "tool_use_id": msg["tool_call_id"],
                       "content": content or "(no output)", "is_error": msg.get("name") == "error"}]
            role = "user"
        else:
            text = f"<tool_response>\n{content}\n</tool_response>" if role == "tool" else content
            blocks = [{"type": "text", "text": text}] if text else []
            role = "user"
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return "\n\n".join(system), out


def _assistant_blocks(msg: Message) -> list[dict[str, Any]]:
    text = msg.get("content") or ""
    blocks: list[dict[str, Any]] = [dict(b) for b in msg.get("reasoning_blocks") or []]
    if text:
        blocks.append({"type": "text", "text": text})
    for i, call in enumerate(msg.get("tool_calls") or []):
        fn = call.get("function") or {}
        args = fn.get("arguments") or {}
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError:
                args = {}
        blocks.append({"type": "tool_use", "id": call.get("id") or f"call_{i}",
                       "name": fn.get("name", ""), "input": args if isinstance(args, dict) else {}})
    return blocks


def anthropic_tool(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI function schema as a Messages API tool."""
    fn = schema.get("function", schema)
    tool = {"name": fn["name"], "input_schema": fn.get("parameters") or {"type": "object"}}
    if fn.get("description"):
        tool["description"] = fn["description"]
    return tool


def anthropic_tool_choice(choice: str | Mapping[str, Any] | None,
                          parallel: bool | None) -> dict[str, Any] | None:
    """OpenAI's ``tool_choice`` / ``parallel_tool_calls`` as the Messages API's ``tool_choice``.

    Raises:
        ConfigError: a choice the API cannot express.

    Example:
        >>> anthropic_tool_choice("required", False)
        {'type': 'any', 'disable_parallel_tool_use': True}
    """
    if choice is None and parallel is None:
        return None
    if choice is None or choice == "auto":
        out: dict[str, Any] = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, Mapping) and (choice.get("function") or {}).get("name"):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise ConfigError(f"tool_choice {choice!r}: use 'auto', 'required', 'none' or "
                          '{"type": "function", "function": {"name": ...}}')
    if parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def parse_message(data: Mapping[str, Any]) -> AgentTurn:
    """A Messages API answer as an :class:`AgentTurn` (tool_use blocks as OpenAI tool calls).

    Example:
        >>> t = parse_message({"id": "m1", "content": [{"type": "text", "text": "Let me run it."},
        ...     {"type": "tool_use", "id": "tu1", "name": "python", "input": {"code": "1"}}],
        ...     "stop_reason": "tool_use", "usage": {"input_tokens": 9, "output_tokens": 4}})
        >>> t.text, t.tool_calls[0]["id"], t.finish_reason, t.usage["completion_tokens"]
        ('Let me run it.', 'tu1', 'tool_calls', 4)
    """
    blocks = data["content"]
    if not isinstance(blocks, list):
        raise TypeError("content is not a list of blocks")
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    thinking = [b.get("thinking", "") for b in blocks if b.get("type") == "thinking"]
    signed = [dict(b) for b in blocks if b.get("type") in ("thinking", "redacted_thinking")]
    calls = [{"id": b["id"], "type": "function",
              "function": {"name": b["name"], "arguments": json.dumps(b.get("input", {}))}}
             for b in blocks if b.get("type") == "tool_use"]
    usage = data.get("usage") or {}
    return AgentTurn(
        text=text,
        finish_reason=_FINISH.get(str(data.get("stop_reason")), "stop"),
        tool_calls=calls or None,
        reasoning="\n".join(thinking) if thinking else None,
        reasoning_blocks=signed or None,
        usage={"prompt_tokens": int(usage.get("input_tokens", 0)),
               "completion_tokens": int(usage.get("output_tokens", 0))},
        info={"id": data.get("id"), "stop_reason": data.get("stop_reason")},
    )
