"""Reading tool calls out of model output, and writing them back.

Three ways a model can call a tool are understood:

**Hermes / Qwen tags** (always on). Each call is one JSON object between tags;
``arguments`` may be an object or a JSON string holding one (``parameters`` is
accepted as another name for it, as Llama 3 writes)::

    <tool_call>
    {"name": "bash", "arguments": {"command": "ls"}}
    </tool_call>

A final block whose ``</tool_call>`` is missing is accepted when nothing but
whitespace follows its JSON, because generation often stops *at* the closing
tag.

**OpenAI structured calls** (:func:`from_openai_tool_calls`): the
``tool_calls`` list of a chat-completions message, as servers that parse calls
themselves return it (the OpenAI API, vLLM with ``--enable-auto-tool-choice``,
SGLang, llama.cpp with ``--jinja``).

An environment's action is either the message text or the whole assistant
message (:data:`Action`); :func:`try_parse_action` is the one entry point for
both: a message with ``tool_calls`` is read from them (its text is then the
model's commentary, not scanned again), anything else from its text. Both
forms are validated by the same code, so a call is accepted or refused the
same way whichever form it came in.

**Fenced code blocks** (only when the environment opts in). A fenced block
whose info string names a language listed in ``fenced`` becomes a call, so a
model can write::

    ```python
    print(1 + 1)
    ```

and with ``fenced={"python": "code"}`` that is ``ToolCall("python", {"code":
"print(1 + 1)"})``. A mapping value is either the argument name (the tool is
named like the language) or a ``(tool, argument)`` pair, e.g.
``{"sh": ("bash", "command")}``; :data:`FENCED_PYTHON_BASH` has the usual
choice. It is off by default because a *final answer* may contain a code
block too: enable it only in environments where answers are not code.

Calls come back in the order they appear in the text. Text outside calls (the
model's reasoning) is ignored, and so is everything inside ``<think>`` blocks
(:func:`visible_text`): reasoning that mentions a call does not make one, as
servers run their reasoning parser before their tool parser. No calls at all
means an empty list.

:func:`parse_tool_calls` is strict and raises a :class:`~toolgym.errors.ToolCallError`
subclass whose message is an observation for the agent;
:func:`try_parse_tool_calls` never raises and returns the calls or that
observation. If any call in a message is wrong, none of them is returned, so
the agent never sees half its message executed.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolgym.errors import BadArguments, ParseError, ToolCallError, UnknownTool
from toolgym.tools.base import Tool, ToolStatus
from toolgym.tools.call import ToolCall

OPEN, CLOSE = "<tool_call>", "</tool_call>"
FORMAT_HINT = (
    'Write each call as <tool_call>{"name": "<tool name>", "arguments": '
    '{"<argument>": <value>, ...}}</tool_call>.'
)
NATIVE_HINT = (
    'Give each tool call a "function" with the tool\'s "name" and its "arguments" as a JSON '
    "object of named arguments."
)

Fences = Mapping[str, "str | tuple[str, str]"]
"""Language of a fenced block → argument name, or → ``(tool name, argument name)``."""

FENCED_PYTHON_BASH: Fences = {
    "python": ("python", "code"),
    "py": ("python", "code"),
    "bash": ("bash", "command"),
    "sh": ("bash", "command"),
    "shell": ("bash", "command"),
}
"""```python / ```py blocks call ``python(code=…)``;
```bash / ```sh / ```shell blocks call ``bash(command=…)``."""

_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.S)
_FENCE = re.compile(r"^```[ \t]*([\w+.-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.M | re.S)
_CALL_KEYS = {"name", "arguments", "parameters", "id"}

Action = str | Mapping[str, Any]
"""What an env's ``step`` takes: the assistant's text, or its OpenAI message
(``{"role": "assistant", "content": ..., "tool_calls": [...]}``)."""

TEXT, NATIVE = "text", "native"
"""The two forms a call comes in: written in the message text, or as structured ``tool_calls``."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


@dataclass(frozen=True)
class ParsedCalls:
    """What :func:`try_parse_tool_calls` found: the calls, or the error to show the agent.

    Example:
        >>> parsed = try_parse_tool_calls('<tool_call>{"name": "bash"</tool_call>')
        >>> parsed.status, parsed.calls
        (<ToolStatus.PARSE_ERROR: 'parse_error'>, [])
    """

    calls: list[ToolCall] = field(default_factory=list)
    error: ToolCallError | None = None
    form: str | None = None
    """:data:`NATIVE` (structured ``tool_calls``), :data:`TEXT` (calls written in the text),
    or None (no call attempted: a final answer)."""

    @property
    def ok(self) -> bool:
        """No error (possibly no calls either: a final answer)."""
        return self.error is None

    @property
    def observation(self) -> str | None:
        """The error message for the agent, or None when parsing worked."""
        return None if self.error is None else str(self.error)

    @property
    def status(self) -> ToolStatus:
        """``ok``, ``parse_error``, ``unknown_tool`` or ``bad_arguments``."""
        return ToolStatus.OK if self.error is None else error_status(self.error)


def error_status(error: ToolCallError) -> ToolStatus:
    """The status a tool-call error is counted under."""
    if isinstance(error, UnknownTool):
        return ToolStatus.UNKNOWN_TOOL
    if isinstance(error, BadArguments):
        return ToolStatus.BAD_ARGUMENTS
    return ToolStatus.PARSE_ERROR


def parse_tool_calls(
    text: str, tools: Mapping[str, Tool] | None = None, *, fenced: Fences | None = None
) -> list[ToolCall]:
    """Return the tool calls in ``text``, in order; checked against ``tools`` when given.

    Args:
        text: Model output.
        tools: The tools on offer (a :class:`~toolgym.tools.ToolSet` or a
            name → tool mapping). When given, unknown names and bad arguments
            are errors and arguments come back validated.
        fenced: Fenced-block languages that count as calls (see the module
            docstring); None turns the convention off.

    Raises:
        ParseError: a call's JSON is malformed or not shaped like a call.
        UnknownTool: a call names a tool not in ``tools``.
        BadArguments: a call's arguments do not fit the tool's schema.

    Example:
        >>> parse_tool_calls('Let me look.<tool_call>{"name": "bash", '
        ...                  '"arguments": {"command": "ls"}}</tool_call>')
        [ToolCall(name='bash', arguments={'command': 'ls'}, id=None)]
    """
    if not isinstance(text, str):
        raise ParseError(f"Expected the model's text, got {type(text).__name__}.")
    found = _scan_tags(text)
    if fenced:
        spans = [(start, end) for start, end, _ in found]
        found += _scan_fences(text, fenced, spans)
    found.sort(key=lambda item: item[0])
    calls = [call for _, _, call in found]
    return _check_calls(calls, tools) if tools is not None else calls


def try_parse_tool_calls(
    text: str, tools: Mapping[str, Tool] | None = None, *, fenced: Fences | None = None
) -> ParsedCalls:
    """Like :func:`parse_tool_calls`, but never raises: see :func:`try_parse_action`."""
    return try_parse_action(text, tools, fenced=fenced)


def assistant_message(action: Action) -> dict[str, Any]:
    """The action as an OpenAI assistant message: text content, and ids on every call.

    A string becomes ``{"role": "assistant", "content": action}`` (exactly what
    an env records for a text action); a message keeps its ``tool_calls`` and
    other fields (``reasoning_content``), its ``content`` becomes ``""`` when
    null, and a call without a string id gets ``call_<i>``, so every tool
    result can name the call it answers.

    Raises:
        TypeError: ``action`` is neither a string nor a mapping, or its role
            or content is not that of an assistant message.

    Example:
        >>> m = assistant_message({"content": None, "tool_calls": [{"function": {"name": "f"}}]})
        >>> m["role"], m["content"], m["tool_calls"][0]["id"]
        ('assistant', '', 'call_0')
    """
    if isinstance(action, str):
        return {"role": "assistant", "content": action}
    if not isinstance(action, Mapping):
        raise TypeError(
            f"an action is the assistant's text or message, got {type(action).__name__}")
    message = dict(action)
    if message.setdefault("role", "assistant") != "assistant":
        raise TypeError(f"an action message has role 'assistant', got {message['role']!r}")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise TypeError(f"an action message's content is a string, got {type(content).__name__}")
    message["content"] = content or ""
    calls = message.get("tool_calls")
    if isinstance(calls, list | tuple):
        message["tool_calls"] = [
            {**c, "id": c["id"] if isinstance(c.get("id"), str) else f"call_{i}"}
            if isinstance(c, Mapping) else c
            for i, c in enumerate(calls)
        ]
    elif not calls:
        message.pop("tool_calls", None)
    return message


def visible_text(text: str) -> str:
    """``text`` without its ``<think>`` reasoning blocks (an unclosed one runs to the end).

    What a message says, as opposed to what the model thought: tool calls are
    read from it, and an env scores it as the final answer.

    Example:
        >>> visible_text("<think>maybe 5?</think>It is 4.")
        'It is 4.'
    """
    return _THINK.sub("", text) if "<think>" in text else text


def action_text(action: Action) -> str:
    """The text of an action: the string itself, or the message's content (``""`` for null)."""
    if isinstance(action, str):
        return action
    content = action.get("content") if isinstance(action, Mapping) else None
    return content if isinstance(content, str) else ""


def parse_action(
    action: Action,
    tools: Mapping[str, Tool] | None = None,
    *,
    fenced: Fences | None = None,
) -> list[ToolCall]:
    """The calls of an action: its ``tool_calls`` when it has some, else those in its text.

    Raises:
        ParseError / UnknownTool / BadArguments: as :func:`parse_tool_calls`.

    Example:
        >>> parse_action({"role": "assistant", "content": None, "tool_calls": [
        ...     {"id": "c1", "function": {"name": "bash", "arguments": '{"command": "ls"}'}}]})
        [ToolCall(name='bash', arguments={'command': 'ls'}, id='c1')]
    """
    structured = action.get("tool_calls") if isinstance(action, Mapping) else None
    if structured:
        return from_openai_tool_calls(structured, tools)
    text = action_text(action) if isinstance(action, Mapping) else action
    if isinstance(text, str):
        text = visible_text(text)
    return parse_tool_calls(text, tools, fenced=fenced)


def try_parse_action(
    action: Action,
    tools: Mapping[str, Tool] | None = None,
    *,
    fenced: Fences | None = None,
) -> ParsedCalls:
    """Like :func:`parse_action`, but never raises: errors become the observation.

    Anything unexpected (which would be a bug here) is reported as a parse
    error too, so a rollout never dies on what a model wrote.
    """
    form = NATIVE if isinstance(action, Mapping) and action.get("tool_calls") else TEXT
    try:
        calls = parse_action(action, tools, fenced=fenced)
        return ParsedCalls(calls, None, form if calls else None)
    except ToolCallError as exc:
        return ParsedCalls([], exc, form)
    except Exception as exc:  # noqa: BLE001 - last line of defence, reported to the agent
        error = ParseError(f"Your tool call could not be read ({exc!r}). {FORMAT_HINT}")
        return ParsedCalls([], error, form)


def from_openai_tool_calls(
    tool_calls: Sequence[Mapping[str, Any]], tools: Mapping[str, Tool] | None = None
) -> list[ToolCall]:
    r"""Convert the ``tool_calls`` of an OpenAI chat message into :class:`ToolCall` records.

    Each item looks like ``{"id": "call_1", "type": "function", "function":
    {"name": "bash", "arguments": "{\"command\": \"ls\"}"}}``; ``arguments``
    may also be an object already (some servers send one).

    Raises:
        ParseError: an item is not shaped like that or its arguments are not
            a JSON object.
        UnknownTool: see :func:`parse_tool_calls`.
        BadArguments: see :func:`parse_tool_calls`.
    """
    if not isinstance(tool_calls, list | tuple):
        raise ParseError(f"tool_calls must be a list, got {type(tool_calls).__name__}.")
    calls = []
    for i, item in enumerate(tool_calls):
        where = _where(i, len(tool_calls))
        function = item.get("function") if isinstance(item, Mapping) else None
        if not isinstance(function, Mapping):
            raise ParseError(
                f'{where}: expected an object with a "function" object. {NATIVE_HINT}')
        call_id = item.get("id")
        body = {"name": function.get("name"), "arguments": function.get("arguments", {})}
        call = _call_from_object(body, where, NATIVE_HINT)
        call_id = call_id if isinstance(call_id, str) else None
        calls.append(ToolCall(call.name, call.arguments, call_id))
    return _check_calls(calls, tools) if tools is not None else calls


def to_openai_tool_calls(
    calls: Sequence[ToolCall], *, arguments_as_json: bool = True
) -> list[dict[str, Any]]:
    """The ``tool_calls`` list of an assistant message for these calls.

    Args:
        calls: The calls.
        arguments_as_json: OpenAI APIs want ``arguments`` as a JSON string;
            Hugging Face chat templates want the object (pass False).
    """
    out = []
    for i, call in enumerate(calls):
        args: Any = call.arguments
        if arguments_as_json:
            args = json.dumps(args, ensure_ascii=False)
        out.append({
            "id": call.id or f"call_{i}",
            "type": "function",
            "function": {"name": call.name, "arguments": args},
        })
    return out


def render_tool_call(call: ToolCall) -> str:
    """Write a call in the Hermes / Qwen format, as a chat template renders it.

    Used to build SFT demonstrations; ``parse_tool_calls(render_tool_call(c)) ==
    [c]``. The JSON is spaced like Hugging Face's ``tojson`` filter, so the text
    matches what a Qwen-style template produces for the same call.

    Raises:
        ValueError: an argument is not JSON (NaN, infinity, a non-JSON object).

    Example:
        >>> print(render_tool_call(ToolCall("bash", {"command": "ls"})))
        <tool_call>
        {"name": "bash", "arguments": {"command": "ls"}}
        </tool_call>
    """
    body: dict[str, Any] = {"name": call.name, "arguments": call.arguments}
    if call.id is not None:
        body["id"] = call.id
    return f"{OPEN}\n{json.dumps(body, ensure_ascii=False, allow_nan=False)}\n{CLOSE}"


def _scan_tags(text: str) -> list[tuple[int, int, ToolCall]]:
    """Find every ``<tool_call>`` block.

    The JSON decoder (not a regex) finds where each block ends, so a
    ``</tool_call>`` inside an argument string does not cut the call short.
    """
    total = text.count(OPEN)
    found: list[tuple[int, int, ToolCall]] = []
    pos = 0
    while (start := text.find(OPEN, pos)) >= 0:
        where = _where(len(found), total)
        body_start = _skip_space(text, start + len(OPEN))
        try:
            obj, end = _DECODER.raw_decode(text, body_start)
        except RecursionError:
            raise ParseError(f"{where}: the JSON is nested too deeply. {FORMAT_HINT}") from None
        except ValueError as exc:
            problem = _json_problem(text, body_start, exc)
            raise ParseError(f"{where}: {problem}. {FORMAT_HINT}") from None
        end = _skip_space(text, end)
        if text.startswith(CLOSE, end):
            end += len(CLOSE)
        elif end < len(text):
            raise ParseError(
                f"{where}: after the JSON object, expected {CLOSE} but found "
                f"{_snippet(text[end:])}. Put exactly one JSON object in each block. {FORMAT_HINT}"
            )
        found.append((start, end, _call_from_object(obj, where)))
        pos = end
    _check_stray_close(text, [(s, e) for s, e, _ in found])
    return found


def _check_stray_close(text: str, spans: list[tuple[int, int]]) -> None:
    pos = 0
    while (i := text.find(CLOSE, pos)) >= 0:
        if not any(s <= i < e for s, e in spans):
            raise ParseError(
                f"Found {CLOSE} without a {OPEN} before it. {FORMAT_HINT}"
            )
        pos = i + len(CLOSE)


def _scan_fences(
    text: str, fenced: Fences, taken: list[tuple[int, int]]
) -> list[tuple[int, int, ToolCall]]:
    found = []
    for match in _FENCE.finditer(text):
        lang = match.group(1).lower()
        if lang not in fenced or any(s <= match.start() < e for s, e in taken):
            continue
        target = fenced[lang]
        tool_name, arg = (lang, target) if isinstance(target, str) else target
        code = match.group(2)
        code = code[:-1] if code.endswith("\n") else code
        found.append((match.start(), match.end(), ToolCall(tool_name, {arg: code})))
    return found


def _call_from_object(obj: Any, where: str, hint: str = FORMAT_HINT) -> ToolCall:
    if not isinstance(obj, dict):
        raise ParseError(f"{where}: expected a JSON object, got {_json_kind(obj)}. {hint}")
    extra = sorted(set(obj) - _CALL_KEYS)
    if extra:
        raise ParseError(
            f"{where}: unexpected key(s) {', '.join(map(json.dumps, extra))}; a call has only "
            f'"name" and "arguments" (put the tool\'s arguments inside "arguments"). {hint}'
        )
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise ParseError(f'{where}: "name" must be the tool\'s name as a string. {hint}')
    if "arguments" in obj and "parameters" in obj:
        raise ParseError(f'{where}: give "arguments" or "parameters", not both. {hint}')
    arguments = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = _DECODER.decode(arguments) if arguments.strip() else {}
        except RecursionError:
            raise ParseError(f"{where}: the arguments are nested too deeply.") from None
        except ValueError as exc:
            raise ParseError(
                f'{where}: "arguments" is a string but not a JSON object ({exc}). {hint}'
            ) from None
    if not isinstance(arguments, dict):
        raise ParseError(
            f'{where}: "arguments" must be a JSON object of named arguments, '
            f"got {_json_kind(arguments)}. {hint}"
        )
    call_id = obj.get("id")
    if call_id is not None and not isinstance(call_id, str):
        raise ParseError(f'{where}: "id" must be a string when given.')
    return ToolCall(name, arguments, call_id)


def _check_calls(calls: list[ToolCall], tools: Mapping[str, Tool]) -> list[ToolCall]:
    return [check_call(call, tools, where=_where(i, len(calls))) for i, call in enumerate(calls)]


def check_call(
    call: ToolCall, tools: Mapping[str, Tool], *, where: str = "In your tool call"
) -> ToolCall:
    """Return ``call`` with its arguments validated by the tool it names.

    Raises:
        UnknownTool: no tool of that name (the message suggests a close name
            and lists the available ones).
        BadArguments: the arguments do not fit the tool's schema.
    """
    tool = tools.get(call.name)
    if tool is None:
        names = list(tools)
        close = difflib.get_close_matches(call.name, names, n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise UnknownTool(
            f"{where}: there is no tool named `{call.name}`.{hint} "
            f"The available tools are: {', '.join(names) or '(none)'}."
        )
    try:
        arguments = tool.validate(call.arguments)
    except BadArguments as exc:
        prefix = f"{where}: " if where.startswith("In tool call") else ""
        raise BadArguments(f"{prefix}{exc}") from None
    return ToolCall(call.name, arguments, call.id)


def _where(index: int, total: int) -> str:
    return "In your tool call" if total <= 1 else f"In tool call {index + 1} of {total}"


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _json_problem(text: str, body_start: int, exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        col = exc.pos - body_start
        return f"the JSON is invalid ({exc.msg} at character {col + 1}: {_snippet(text[exc.pos:])})"
    return f"the JSON is invalid ({exc})"


def _snippet(text: str, n: int = 30) -> str:
    if not text:
        return "the end of the message"
    return json.dumps(text[:n] + ("..." if len(text) > n else ""), ensure_ascii=False)


def _json_kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)
