"""A strict stand-in for the Anthropic Messages API, on the scripted server's machinery.

:func:`anthropic_protocol_errors` refuses what the API refuses (a missing or
wrong ``x-api-key``, no ``anthropic-version``, no ``max_tokens``, unknown
fields, a ``system`` role inside ``messages``, empty text, a ``tool_use`` not
answered by a ``tool_result`` in the very next user message, a ``tool_result``
that answers no ``tool_use`` or comes after text) and, with extended thinking
on, what that refuses (a last assistant turn before tool results that does
not start with its thinking block, a thinking block without the signature the
server gave it, a temperature other than 1, forced tool use, a budget not
below ``max_tokens``); :func:`anthropic_reply` writes a scripted
:class:`~tests.agents.openai_server.Reply` as a Messages answer (its reasoning
as a signed thinking block, first); :func:`openai_messages` reads a request
back into OpenAI chat messages, so
:class:`~tests.agents.native_policy.NativeReference` can answer it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tests.agents.native_policy import NativeReference
from tests.agents.openai_server import Reply, ScriptedServer, Step, serve

FIELDS = frozenset({"model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k",
                    "tools", "tool_choice", "stop_sequences", "metadata", "stream", "thinking"})


def anthropic_protocol_errors(body: dict[str, Any], headers: Mapping[str, str],
                              key: str) -> list[str]:
    """What the Messages API refuses in this request, in words close to its own."""
    if headers.get("x-api-key") != key:
        return ["authentication_error: invalid x-api-key"]
    errors = [f"{k}: Extra inputs are not permitted" for k in sorted(set(body) - FIELDS)]
    if "anthropic-version" not in headers:
        errors.append("anthropic-version: header is required")
    if not isinstance(body.get("max_tokens"), int):
        errors.append("max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*errors, "messages: at least one message is required"]
    if messages[0].get("role") != "user":
        errors.append("messages: first message must use the \"user\" role")
    pending: set[str] = set()
    for i, msg in enumerate(messages):
        role, blocks = msg.get("role"), msg.get("content")
        if role not in ("user", "assistant"):
            errors.append(f"messages.{i}.role: Unexpected role {role!r}")
            continue
        if isinstance(blocks, str):
            blocks = [{"type": "text", "text": blocks}]
        if not isinstance(blocks, list) or not blocks:
            errors.append(f"messages.{i}: content must be non-empty")
            continue
        answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
        if pending - answered:
            errors.append(f"messages.{i}: tool_use ids were found without tool_result blocks "
                          f"immediately after: {', '.join(sorted(pending - answered))}")
        if answered - pending:
            errors.append(f"messages.{i}: unexpected tool_use_id found in tool_result blocks: "
                          f"{', '.join(sorted(map(str, answered - pending)))}")
        kinds = [b.get("type") for b in blocks]
        results = kinds.count("tool_result")
        if results and set(kinds[:results]) != {"tool_result"}:
            errors.append(f"messages.{i}: tool_result blocks must come first in the content")
        for j, b in enumerate(blocks):
            errors += _block_errors(b, role, f"messages.{i}.content.{j}")
        pending = {b["id"] for b in blocks if b.get("type") == "tool_use" and "id" in b}
    if pending:
        errors.append("tool_use ids were found without tool_result blocks immediately after: "
                      + ", ".join(sorted(pending)))
    if (body.get("thinking") or {}).get("type") == "enabled":
        errors += _thinking_errors(body, messages)
    return errors


def thinking_block(thinking: str) -> dict[str, Any]:
    """A thinking block as the stand-in answers it: signed, so it can tell a forged one."""
    return {"type": "thinking", "thinking": thinking, "signature": _signature(thinking)}


def _signature(thinking: str) -> str:
    return hashlib.sha256(thinking.encode()).hexdigest()[:24]


def _thinking_errors(body: dict[str, Any], messages: list[Any]) -> list[str]:
    """Extended thinking's rules: the last assistant turn before tool results starts with its
    thinking block; temperature 1 only; no forced tool use; a budget below max_tokens."""
    errors = []
    budget = body["thinking"].get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        errors.append("thinking.enabled.budget_tokens: Input should be greater than or equal "
                      "to 1024")
    elif isinstance(body.get("max_tokens"), int) and body["max_tokens"] <= budget:
        errors.append("`max_tokens` must be greater than `thinking.budget_tokens`")
    if body.get("temperature", 1) != 1:
        errors.append("`temperature` may only be set to 1 when thinking is enabled")
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        errors.append("Thinking may not be enabled when tool_choice forces tool use.")
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    after = messages[last + 1]["content"] if last is not None and last + 1 < len(messages) else []
    if last is not None and isinstance(after, list) and any(
            b.get("type") == "tool_result" for b in after):
        blocks = messages[last]["content"]
        first = blocks[0].get("type") if isinstance(blocks, list) and blocks else "text"
        if first not in ("thinking", "redacted_thinking"):
            errors.append(f"messages.{last}.content.0.type: Expected `thinking` or "
                          f"`redacted_thinking`, but found `{first}`. When `thinking` is "
                          "enabled, a final `assistant` message must start with a thinking block")
    return errors


def _block_errors(block: dict[str, Any], role: str, where: str) -> list[str]:
    kind = block.get("type")
    if kind == "text":
        return [] if block.get("text") else [f"{where}: text content blocks must be non-empty"]
    if kind == "tool_use" and role == "assistant":
        ok = isinstance(block.get("id"), str) and isinstance(block.get("name"), str) and \
            isinstance(block.get("input"), dict)
        return [] if ok else [f"{where}: tool_use needs id, name and an input object"]
    if kind == "tool_result" and role == "user":
        ok = isinstance(block.get("content"), str | list)
        return [] if ok else [f"{where}: tool_result content must be a string or blocks"]
    if kind == "thinking" and role == "assistant":
        if not isinstance(block.get("signature"), str):
            return [f"{where}.thinking.signature: Field required"]
        ok = block["signature"] == _signature(str(block.get("thinking")))
        return [] if ok else [f"{where}: Invalid `signature` in `thinking` block"]
    if kind == "redacted_thinking" and role == "assistant":
        return [] if isinstance(block.get("data"), str) else [f"{where}.data: Field required"]
    return [f"{where}: unexpected block type {kind!r} in a {role} message"]


def anthropic_reply(reply: Reply) -> dict[str, Any]:
    """A scripted reply as a Messages API answer."""
    blocks: list[dict[str, Any]] = []
    if reply.reasoning is not None:
        blocks.append(thinking_block(reply.reasoning))
    if reply.content:
        blocks.append({"type": "text", "text": reply.content})
    for call in reply.tool_calls or []:
        blocks.append({"type": "tool_use", "id": call["id"], "name": call["function"]["name"],
                       "input": json.loads(call["function"]["arguments"])})
    stop = "tool_use" if reply.tool_calls else {"length": "max_tokens"}.get(
        reply.finish_reason, "end_turn")
    return {"id": "msg_test", "type": "message", "role": "assistant", "model": "m",
            "content": blocks, "stop_reason": stop,
            "usage": {"input_tokens": 3, "output_tokens": 2}}


def openai_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A Messages request read back as OpenAI chat messages (what the reference policy reads)."""
    out: list[dict[str, Any]] = []
    for msg in body["messages"]:
        blocks = msg["content"]
        text = "".join(b["text"] for b in blocks if b["type"] == "text")
        calls = [{"id": b["id"], "type": "function",
                  "function": {"name": b["name"], "arguments": json.dumps(b["input"])}}
                 for b in blocks if b["type"] == "tool_use"]
        out += [{"role": "tool", "tool_call_id": b["tool_use_id"], "content": b["content"]}
                for b in blocks if b["type"] == "tool_result"]
        if msg["role"] == "assistant":
            out.append({"role": "assistant", "content": text or None, "tool_calls": calls})
        elif text:
            out.append({"role": "user", "content": text})
    return out


@contextmanager
def serve_anthropic(policy: NativeReference, key: str) -> Iterator[ScriptedServer]:
    """A strict Messages stand-in answering with ``policy``."""
    def answer(body: dict[str, Any]) -> Step:
        return policy.answer(openai_messages(body))

    with serve(answer, path="/v1/messages", render=anthropic_reply,
               check=lambda body, headers: anthropic_protocol_errors(body, headers, key)) as server:
        yield server
