"""Any OpenAI-compatible ``/v1/chat/completions`` endpoint as an agent (a vLLM server is one).

For evaluation any endpoint will do. For training the turn must carry the
exact ids the server sampled and their log-probs: vLLM (>= 0.10.2) returns them
when asked with the extra body fields ``return_token_ids`` (sampled ids in
``choices[0].token_ids``, prompt ids in ``prompt_token_ids``) and
``return_tokens_as_token_ids`` with ``logprobs`` (log-prob tokens then read
``"token_id:123"``). A turn without ids is returned with ``token_ids=None``:
usable for evaluation, not trainable. Servers that reject unknown fields (the
OpenAI API) need ``request_token_ids=False``.

A chat endpoint renders the messages itself, so ``Conversation.prompt_token_ids``
cannot be passed in; the ``prompt_token_ids`` vLLM returns say what it rendered.
Train on such turns one sample per turn (server prompt ids + sampled ids), or
check with ``toolgym check-template`` that the server's rendering is append-only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx

from toolgym.agents.base import (
    DEFAULT_SAMPLING,
    AgentTurn,
    Conversation,
    Message,
    SamplingParams,
)
from toolgym.agents.http import DEFAULT_LIMITS, DEFAULT_TIMEOUT, HTTPAgent
from toolgym.agents.retry import DEFAULT_RETRY, RetryPolicy

_TOKEN_ID_PREFIX = "token_id:"

Reasoning = Literal["template", "drop", "inline"]
"""How reasoning a server returned (``reasoning_content``) goes back in later requests:
``"template"`` sends it as ``reasoning_content`` and the server's chat template keeps or
drops it (Qwen3's and DeepSeek's templates read that field); ``"drop"`` never sends it
(the DeepSeek API rejects it); ``"inline"`` puts it back in the content as ``<think>``."""

EmptyContent = Literal["", None]
"""The ``content`` sent back with an assistant message that only called tools. The OpenAI
API takes both. ``""`` (the default) is what every server toolgym targets takes:
llama-cpp-python 0.3 refuses ``null`` (its assistant content is typed ``str``), as did
SGLang before April 2025 (sglang#5452), llama-server builds b5331 until May 2025
(llama.cpp#13477), LM Studio and mlx-lm's server. ``None`` (JSON ``null``, the form the
OpenAI API answers with) is for the endpoints that refuse ``""``, such as Bedrock's
OpenAI-compatible one for Claude."""


class OpenAIAgent(HTTPAgent):
    """Agent that asks an OpenAI-compatible server for each turn.

    Args:
        base_url: Server root, with or without the trailing ``/v1``.
        model: Model name the server serves.
        api_key: Sent as a bearer token when given.
        sampling: Temperature, top-p and the per-turn token budget (``max_tokens``).
        timeout: Per-attempt timeouts.
        retry: Retry policy for 429/5xx/connection errors/timeouts.
        limits: Connection pool limits (many episodes share one agent).
        request_token_ids: Ask for vLLM's token ids and logprobs (see module docstring).
        tool_choice: Sent as ``tool_choice`` when tools are offered (``"auto"``,
            ``"required"``, ``"none"`` or a named function); None leaves it out.
        parallel_tool_calls: Sent as ``parallel_tool_calls`` when tools are
            offered; None leaves it out.
        reasoning: How returned reasoning is sent back (:data:`Reasoning`).
        empty_content: The content of an assistant message that only called tools, as sent
            back (:data:`EmptyContent`).
        extra_body: Extra JSON fields merged into every request (e.g. ``top_k``).
        transport: Transport that does the I/O, wrapped by the retry transport
            (tests may pass ``httpx.MockTransport``).

    Example:
        >>> agent = OpenAIAgent("http://127.0.0.1:8000", "Qwen/Qwen2.5-0.5B-Instruct")
        >>> agent.url
        'http://127.0.0.1:8000/v1/chat/completions'
    """

    answer_kind = "a chat completion"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        sampling: SamplingParams = DEFAULT_SAMPLING,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        limits: httpx.Limits = DEFAULT_LIMITS,
        request_token_ids: bool = True,
        tool_choice: str | Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        reasoning: Reasoning = "template",
        empty_content: EmptyContent = "",
        extra_body: Mapping[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        url = (root if root.endswith("/v1") else root + "/v1") + "/chat/completions"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__(url, headers=headers, timeout=timeout, retry=retry, limits=limits,
                         transport=transport)
        if reasoning not in ("template", "drop", "inline"):
            raise ValueError(f"reasoning must be 'template', 'drop' or 'inline', got {reasoning!r}")
        if empty_content not in ("", None):
            raise ValueError(f"empty_content must be '' or None, got {empty_content!r}")
        self.model = model
        self.sampling = sampling
        self.request_token_ids = request_token_ids
        self.tool_choice = tool_choice
        self.parallel_tool_calls = parallel_tool_calls
        self.reasoning = reasoning
        self.empty_content = empty_content
        self.extra_body = dict(extra_body or {})

    def request_body(self, conversation: Conversation) -> dict[str, Any]:
        """The JSON body sent for ``conversation``."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": wire_messages(conversation.messages, reasoning=self.reasoning,
                                      empty_content=self.empty_content),
            "temperature": self.sampling.temperature,
            "top_p": self.sampling.top_p,
            "max_tokens": self.sampling.max_new_tokens,
        }
        if conversation.tools:
            body["tools"] = list(conversation.tools)
            if self.tool_choice is not None:
                body["tool_choice"] = self.tool_choice
            if self.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = self.parallel_tool_calls
        if self.request_token_ids:
            body.update(logprobs=True, return_token_ids=True, return_tokens_as_token_ids=True)
        body.update(self.extra_body)
        return body

    def parse_answer(self, data: dict[str, Any]) -> AgentTurn:
        """The turn in a chat completion (:func:`parse_chat_completion`)."""
        return parse_chat_completion(data)


def parse_chat_completion(data: Mapping[str, Any]) -> AgentTurn:
    """Turn a chat-completion response into an :class:`AgentTurn` (ids when the server sent them).

    Example:
        >>> data = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop",
        ...   "token_ids": [7, 2], "logprobs": {"content": [
        ...     {"token": "token_id:7", "logprob": -0.5},
        ...     {"token": "token_id:2", "logprob": -0.1}]}}],
        ...   "prompt_token_ids": [1, 5]}
        >>> t = parse_chat_completion(data)
        >>> t.token_ids, t.logprobs, t.prompt_token_ids
        ([7, 2], [-0.5, -0.1], [1, 5])
    """
    choice = data["choices"][0]
    message = choice.get("message") or {}
    token_ids, logprobs, note = _tokens(choice)
    info: dict[str, Any] = {"id": data.get("id")}
    if note:
        info["logprobs_dropped"] = note
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    prompt_ids = data.get("prompt_token_ids") or choice.get("prompt_token_ids")
    return AgentTurn(
        text=message.get("content") or "",
        reasoning=reasoning if isinstance(reasoning, str) else None,
        token_ids=token_ids,
        logprobs=logprobs,
        finish_reason=choice.get("finish_reason") or "stop",
        tool_calls=message.get("tool_calls") or None,
        prompt_token_ids=list(prompt_ids) if prompt_ids else None,
        usage=data.get("usage"),
        info=info,
    )


def _tokens(choice: Mapping[str, Any]) -> tuple[list[int] | None, list[float] | None, str | None]:
    """Sampled ids and their logprobs; logprobs that do not line up are dropped, with a reason."""
    content = (choice.get("logprobs") or {}).get("content") or []
    logprobs = [float(c["logprob"]) for c in content] or None
    from_logprobs = _ids_from_logprob_tokens(content)
    token_ids = choice.get("token_ids")
    token_ids = list(token_ids) if token_ids is not None else from_logprobs
    if token_ids is None or logprobs is None:
        return token_ids, None, None
    if len(logprobs) != len(token_ids):
        return token_ids, None, f"{len(logprobs)} logprobs for {len(token_ids)} tokens"
    if from_logprobs is not None and from_logprobs != token_ids:
        return token_ids, None, "logprob tokens differ from token_ids"
    return token_ids, logprobs, None


def _ids_from_logprob_tokens(content: Sequence[Mapping[str, Any]]) -> list[int] | None:
    tokens = [str(c.get("token", "")) for c in content]
    if not tokens or not all(t.startswith(_TOKEN_ID_PREFIX) for t in tokens):
        return None
    return [int(t[len(_TOKEN_ID_PREFIX) :]) for t in tokens]


def wire_messages(
    messages: Sequence[Message], *, reasoning: Reasoning = "template",
    empty_content: EmptyContent = "",
) -> list[Message]:
    """Messages as the OpenAI chat protocol wants them.

    An assistant message keeps its ``tool_calls`` (``type: "function"``, an id,
    arguments as a JSON string) and has ``empty_content`` as its content when it
    said nothing else (:data:`EmptyContent`); a ``tool`` message answering one of
    them keeps its ``tool_call_id``.
    A result of a call written in the text (no id to answer) goes as a user
    message in ``<tool_response>`` tags, the way tool-calling templates render
    results, since the protocol refuses a ``tool`` message that answers no call.
    Reasoning is sent back per ``reasoning`` (:data:`Reasoning`); another API's
    reasoning blocks (``reasoning_blocks``) never are.

    Example:
        >>> wire_messages([{"role": "assistant", "content": "", "tool_calls": [
        ...     {"id": "c1", "function": {"name": "f", "arguments": {"x": 1}}}]},
        ...     {"role": "tool", "name": "f", "tool_call_id": "c1", "content": "2"}])[1]
        {'role': 'tool', 'tool_call_id': 'c1', 'content': '2'}
    """
    out: list[Message] = []
    open_ids: set[str] = set()
    for msg in messages:
        role = msg.get("role")
        if role == "assistant":
            out.append(_wire_assistant(msg, reasoning, empty_content))
            open_ids = {c["id"] for c in out[-1].get("tool_calls", []) if c.get("id")}
        elif role == "tool" and msg.get("tool_call_id") in open_ids:
            out.append({"role": "tool", "tool_call_id": msg["tool_call_id"],
                        "content": msg.get("content") or ""})
        elif role == "tool":
            content = f"<tool_response>\n{msg.get('content') or ''}\n</tool_response>"
            out.append({"role": "user", "content": content})
        else:
            out.append(dict(msg))
            open_ids = set()
    return out


def _wire_assistant(msg: Message, reasoning: Reasoning, empty_content: EmptyContent) -> Message:
    out = {k: v for k, v in msg.items() if k not in ("reasoning_content", "reasoning_blocks")}
    thought = msg.get("reasoning_content")
    if thought and reasoning == "template":
        out["reasoning_content"] = thought
    elif thought and reasoning == "inline":
        out["content"] = f"<think>{thought}</think>{msg.get('content') or ''}"
    calls = msg.get("tool_calls")
    if calls:
        out["tool_calls"] = [_wire_call(c, i) for i, c in enumerate(calls)]
        if not out.get("content"):
            out["content"] = empty_content
    else:
        out.pop("tool_calls", None)
        out["content"] = out.get("content") or ""
    return out


def _wire_call(call: Mapping[str, Any], index: int) -> dict[str, Any]:
    fn = dict(call.get("function") or {})
    if not isinstance(fn.get("arguments", ""), str):
        fn["arguments"] = json.dumps(fn["arguments"])
    fn.setdefault("arguments", "{}")
    call_id = call.get("id") if isinstance(call.get("id"), str) else f"call_{index}"
    return {**call, "id": call_id, "type": "function", "function": fn}
