"""How tool schemas reach the model: the tokenizer's chat template, or a system prompt.

Models trained with tools expect them rendered the way their chat template
does (``tokenizer.apply_chat_template(messages, tools=schemas)``); a
different rendering costs accuracy. So :func:`apply_chat_template` uses the
template whenever it handles tools (its source mentions ``tools``). For a
template that does not, the tools go into the system prompt as
:func:`render_tools_system_prompt` writes it: the JSON schemas between
``<tools>`` tags and the ``<tool_call>`` format that
:func:`~toolgym.tools.parsing.parse_tool_calls` reads (the Hermes / Qwen
convention, so the same parser serves both paths). In that case assistant
``tool_calls`` are written into the message text and ``tool`` messages become
user messages wrapped in ``<tool_response>`` tags, since such templates may
reject roles they do not know.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from toolgym.tools.base import Tool
from toolgym.tools.call import ToolCall
from toolgym.tools.parsing import render_tool_call

Message = Mapping[str, Any]

TOOLS_PROMPT = """# Tools

You may call one or more tools to help with the task. The tools are described by these \
JSON schemas:
<tools>
{schemas}
</tools>

To call a tool, write a JSON object with the tool's name and arguments between \
<tool_call> and </tool_call> tags, like this:
<tool_call>
{{"name": "<tool name>", "arguments": {{"<argument>": <value>}}}}
</tool_call>
You may make several calls in one message. The results come back in \
<tool_response></tool_response> blocks. When you have the answer, reply without a tool call."""


def supports_tools(tokenizer: Any) -> bool:
    """True when the tokenizer's chat template renders a ``tools`` argument.

    A template that handles tools must mention the variable; one that does not
    silently ignores ``tools=``, which is the failure this check prevents.
    Templates stored as a dict of named templates count when any of them does.
    """
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, Mapping):
        return any("tools" in str(t) for t in template.values())
    return isinstance(template, str) and "tools" in template


def tool_schemas(tools: Iterable[Tool] | Mapping[str, Tool]) -> list[dict[str, Any]]:
    """The OpenAI function schemas of ``tools`` (a ToolSet, a mapping or an iterable)."""
    items = tools.values() if isinstance(tools, Mapping) else tools
    return [t.to_schema() for t in items]


def render_tools_system_prompt(tools: Iterable[Tool] | Mapping[str, Tool]) -> str:
    """The system-prompt text that describes ``tools`` and the ``<tool_call>`` format.

    Example:
        >>> from toolgym.tools import BashTool
        >>> print(render_tools_system_prompt([BashTool()]).splitlines()[0])
        # Tools
    """
    schemas = "\n".join(json.dumps(s, ensure_ascii=False) for s in tool_schemas(tools))
    return TOOLS_PROMPT.format(schemas=schemas)


def apply_chat_template(
    tokenizer: Any,
    messages: Sequence[Message],
    tools: Iterable[Tool] | Mapping[str, Tool] | None = None,
    **kwargs: Any,
) -> Any:
    """``tokenizer.apply_chat_template`` with tools rendered the best available way.

    Args:
        tokenizer: A Hugging Face tokenizer with a chat template.
        messages: Chat messages (``role``/``content``; assistant messages may
            carry OpenAI-style ``tool_calls``; results have role ``tool``).
        tools: The tools to describe; None or empty renders no tools.
        **kwargs: Passed on (``tokenize``, ``add_generation_prompt``, ...).

    Returns:
        Whatever ``apply_chat_template`` returns for these kwargs.
    """
    schemas = tool_schemas(tools) if tools is not None else []
    if supports_tools(tokenizer):
        return tokenizer.apply_chat_template(list(messages), tools=schemas or None, **kwargs)
    plain = [_plain_message(m) for m in messages]
    if schemas:
        prompt = render_tools_system_prompt(tools or [])
        if plain and plain[0]["role"] == "system":
            plain[0] = {**plain[0], "content": f"{plain[0]['content']}\n\n{prompt}"}
        else:
            plain.insert(0, {"role": "system", "content": prompt})
    return tokenizer.apply_chat_template(plain, **kwargs)


def _plain_message(message: Message) -> dict[str, Any]:
    """A message a tool-unaware template can render: tool calls and results as text."""
    role, content = message["role"], message.get("content") or ""
    if role == "tool":
        return {"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"}
    calls = message.get("tool_calls")
    if role == "assistant" and calls:
        rendered = [render_tool_call(_call_from_message(c)) for c in calls]
        return {"role": "assistant", "content": "\n".join([content, *rendered]).strip("\n")}
    return {"role": role, "content": content}


def _call_from_message(item: Mapping[str, Any] | ToolCall) -> ToolCall:
    if isinstance(item, ToolCall):
        return item
    function = item.get("function", item)
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        arguments = json.loads(arguments) if arguments.strip() else {}
    return ToolCall(function["name"], arguments)
