"""A scripted model that answers the way servers that parse tool calls do.

:class:`NativeReference` plays an env's reference answers (oracle or wrong,
through :class:`~toolgym.rollout.reference.ReferenceAgent`) but sends each tool
call as the OpenAI API, vLLM (``--enable-auto-tool-choice``) and SGLang do:
``"content": null`` and the call in ``"tool_calls"``. It is the policy behind
the stand-in servers of the native-call tests. With ``chaos`` it also answers
some requests 429 or 500 and opens every conversation with a malformed call
(arguments that are not JSON), which the env must answer with an error and
the policy then follows with its real answer.
"""

from __future__ import annotations

import json
from typing import Any

from tests.agents.openai_server import Reply, Status, Step
from toolgym.agents.base import Conversation
from toolgym.rollout.reference import ReferenceAgent
from toolgym.tools.parsing import parse_tool_calls

BAD = "bad_"
"""Id prefix of the malformed calls chaos sends; the policy skips those turns when counting."""


class NativeReference:
    """A :data:`~tests.agents.openai_server.Policy`: request body in, step out."""

    def __init__(self, env_id: str, kind: str = "oracle", *, chaos: bool = False,
                 bad_arguments: str = '{"code": "print(1)') -> None:
        """``bad_arguments``: what chaos's malformed call sends (default: JSON cut short)."""
        self.reference = ReferenceAgent(env_id, kind)
        self.chaos = chaos
        self.bad_arguments = bad_arguments
        self.requests = 0
        self.statuses = 0
        self.malformed = 0

    def __call__(self, body: dict[str, Any]) -> Step:
        return self.answer(body["messages"])

    def answer(self, messages: list[dict[str, Any]]) -> Step:
        """The step for a conversation in OpenAI chat messages."""
        self.requests += 1
        if self.chaos and self.requests % 3 == 1:
            self.statuses += 1
            return Status(429 if self.requests % 2 else 500)
        if self.chaos and not any(_is_bad(m) for m in messages):
            self.malformed += 1
            call = {"id": f"{BAD}0", "type": "function",
                    "function": {"name": "python", "arguments": self.bad_arguments}}
            return Reply(content=None, tool_calls=[call], finish_reason="tool_calls")
        text = self.reference.act_sync(Conversation(_without_bad_turns(messages))).text
        calls = parse_tool_calls(text)
        if not calls:
            return Reply(content=text)
        turn = sum(m["role"] == "assistant" for m in messages)
        native = [{"id": f"call_{turn}_{i}", "type": "function",
                   "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                  for i, c in enumerate(calls)]
        return Reply(content=None, tool_calls=native, finish_reason="tool_calls")

    def close(self) -> None:
        self.reference.close()


def _is_bad(message: dict[str, Any]) -> bool:
    calls = message.get("tool_calls") or []
    return any(str(c.get("id", "")).startswith(BAD) for c in calls)


def _without_bad_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation minus chaos's malformed calls and the errors that answered them."""
    bad_ids = {c["id"] for m in messages if _is_bad(m) for c in m["tool_calls"]}
    return [m for m in messages if not _is_bad(m) and m.get("tool_call_id") not in bad_ids]
