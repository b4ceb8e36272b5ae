"""Reading tool calls from model text (Hermes tags, OpenAI lists, fenced code), and rendering."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolgym.errors import BadArguments, ParseError, ToolCallError, UnknownTool
from toolgym.tools import (
    FENCED_PYTHON_BASH,
    BashTool,
    PythonTool,
    ToolCall,
    ToolSet,
    ToolStatus,
    assistant_message,
    from_openai_tool_calls,
    parse_tool_calls,
    render_tool_call,
    to_openai_tool_calls,
    try_parse_tool_calls,
)

TOOLS = ToolSet([PythonTool(), BashTool()])


def tag(body: str) -> str:
    return f"<tool_call>{body}</tool_call>"


# ----------------------------------------------------------------------------- Hermes tags


def test_no_calls_is_an_empty_list():
    assert parse_tool_calls("The answer is 42.") == []
    assert parse_tool_calls("") == []


def test_calls_in_order_with_text_around_them():
    text = (
        "I will look first.\n"
        '<tool_call>\n{"name": "bash", "arguments": {"command": "ls"}}\n</tool_call>\n'
        "and then compute\n"
        '<tool_call>{"name": "python", "arguments": {"code": "1+1"}}</tool_call> done'
    )
    assert parse_tool_calls(text, TOOLS) == [
        ToolCall("bash", {"command": "ls"}),
        ToolCall("python", {"code": "1+1"}),
    ]


def test_arguments_may_be_a_json_string_or_called_parameters():
    as_string = tag(json.dumps({"name": "bash", "arguments": json.dumps({"command": "ls"})}))
    llama = tag('{"name": "bash", "parameters": {"command": "ls"}}')
    no_args = tag('{"name": "bash"}')
    assert parse_tool_calls(as_string) == [ToolCall("bash", {"command": "ls"})]
    assert parse_tool_calls(llama) == [ToolCall("bash", {"command": "ls"})]
    assert parse_tool_calls(no_args) == [ToolCall("bash", {})]


def test_unclosed_final_block_is_accepted_when_generation_stopped_at_the_tag():
    text = 'ok <tool_call>\n{"name": "bash", "arguments": {"command": "ls"}}\n'
    assert parse_tool_calls(text) == [ToolCall("bash", {"command": "ls"})]


def test_closing_tag_inside_an_argument_does_not_cut_the_call():
    code = 'print("</tool_call>")'
    text = tag(json.dumps({"name": "python", "arguments": {"code": code}}))
    assert parse_tool_calls(text) == [ToolCall("python", {"code": code})]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (tag('{"name": "bash", "arguments": {"command": "ls"}'), "the JSON is invalid"),
        (tag("{'name': 'bash'}"), "Expecting property name enclosed in double quotes"),
        (tag('["bash"]'), "expected a JSON object, got a list"),
        (tag('{"name": 3}'), '"name" must be the tool\'s name as a string'),
        (tag('{"name": "bash", "arguments": [1]}'), '"arguments" must be a JSON object'),
        (tag('{"name": "bash", "arguments": "ls -l"}'), '"arguments" is a string but not a JSON'),
        (tag('{"name": "bash", "command": "ls"}'), 'unexpected key(s) "command"'),
        (tag('{"name": "bash", "arguments": {}, "parameters": {}}'), "not both"),
        (tag('{"name": "bash", "arguments": {"x": NaN}}'), "NaN is not valid JSON"),
        (tag('{"name": "a"} {"name": "b"}'), "expected </tool_call> but found"),
        ('text </tool_call>', "without a <tool_call> before it"),
        (tag("[" * 100_000), "nested too deeply"),
    ],
)
def test_malformed_calls_raise_parse_errors_that_explain(text, fragment):
    with pytest.raises(ParseError) as info:
        parse_tool_calls(text)
    assert fragment in str(info.value)


def test_messages_say_which_call_was_wrong_and_show_the_format():
    text = tag('{"name": "bash", "arguments": {}}') + tag("{oops}")
    with pytest.raises(ParseError) as info:
        parse_tool_calls(text)
    message = str(info.value)
    assert message.startswith("In tool call 2 of 2:")
    assert '<tool_call>{"name": "<tool name>", "arguments"' in message


def test_unknown_tool_suggests_a_close_name_and_lists_the_tools():
    with pytest.raises(UnknownTool) as info:
        parse_tool_calls(tag('{"name": "pyhton", "arguments": {"code": "1"}}'), TOOLS)
    assert str(info.value) == (
        "In your tool call: there is no tool named `pyhton`. Did you mean `python`? "
        "The available tools are: python, bash."
    )


def test_bad_arguments_name_the_problem_and_the_signature():
    with pytest.raises(BadArguments) as info:
        parse_tool_calls(tag('{"name": "bash", "arguments": {"cmd": "ls"}}'), TOOLS)
    assert str(info.value) == (
        "Bad arguments for `bash`: missing required argument `command` (str); unexpected "
        "argument `cmd` (did you mean `command`?). Expected: bash(command: str)"
    )


def test_one_bad_call_means_no_calls():
    text = tag('{"name": "bash", "arguments": {"command": "ls"}}') + tag('{"name": "nope"}')
    parsed = try_parse_tool_calls(text, TOOLS)
    assert parsed.calls == [] and parsed.status is ToolStatus.UNKNOWN_TOOL
    assert parsed.observation.startswith("In tool call 2 of 2: there is no tool named `nope`")


def test_lenient_parse_statuses():
    assert try_parse_tool_calls("plain answer", TOOLS).status is ToolStatus.OK
    assert try_parse_tool_calls(tag("{"), TOOLS).status is ToolStatus.PARSE_ERROR
    bad = try_parse_tool_calls(tag('{"name": "bash", "arguments": {"command": 1}}'), TOOLS)
    assert bad.status is ToolStatus.BAD_ARGUMENTS and not bad.ok
    assert try_parse_tool_calls(None).status is ToolStatus.PARSE_ERROR  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- fenced code


FENCED_ANSWER = "Here is how:\n```python\nprint(1)\n```\nand\n```sh\nls -l\n```\n```text\nx\n```\n"


def test_fenced_blocks_are_ignored_unless_the_env_opts_in():
    assert parse_tool_calls(FENCED_ANSWER) == []
    assert parse_tool_calls(FENCED_ANSWER, fenced=FENCED_PYTHON_BASH) == [
        ToolCall("python", {"code": "print(1)"}),
        ToolCall("bash", {"command": "ls -l"}),
    ]


def test_fenced_short_form_and_order_with_tags():
    text = (
        "```python\nx = 1\n```\n"
        + tag('{"name": "bash", "arguments": {"command": "```python\\nnot me\\n```"}}')
        + "\n```python\n\n```"
    )
    assert parse_tool_calls(text, TOOLS, fenced={"python": "code"}) == [
        ToolCall("python", {"code": "x = 1"}),
        ToolCall("bash", {"command": "```python\nnot me\n```"}),
        ToolCall("python", {"code": ""}),
    ]


def test_fenced_blocks_are_validated_too():
    with pytest.raises(UnknownTool):
        parse_tool_calls("```js\n1\n```", TOOLS, fenced={"js": ("node", "code")})


# ----------------------------------------------------------------------------- OpenAI lists


def test_from_openai_tool_calls():
    raw = [
        {"id": "call_a", "type": "function",
         "function": {"name": "bash", "arguments": '{"command": "ls"}'}},
        {"id": "call_b", "type": "function",
         "function": {"name": "python", "arguments": {"code": "1"}}},
    ]
    calls = from_openai_tool_calls(raw, TOOLS)
    assert calls == [ToolCall("bash", {"command": "ls"}, "call_a"),
                     ToolCall("python", {"code": "1"}, "call_b")]
    assert from_openai_tool_calls(to_openai_tool_calls(calls)) == calls
    assert to_openai_tool_calls(calls, arguments_as_json=False)[0]["function"]["arguments"] == {
        "command": "ls"}


@pytest.mark.parametrize(
    ("raw", "error", "fragment"),
    [
        ("not a list", ParseError, "must be a list"),
        ([{"type": "function"}], ParseError, 'a "function" object'),
        ([{"function": {"name": "bash", "arguments": "{bad"}}], ParseError, "not a JSON object"),
        ([{"function": {"name": "sh", "arguments": "{}"}}], UnknownTool, "Did you mean"),
        ([{"function": {"name": "bash", "arguments": "{}"}}], BadArguments, "missing required"),
    ],
)
def test_from_openai_tool_calls_errors(raw, error, fragment):
    with pytest.raises(error, match=fragment):
        from_openai_tool_calls(raw, TOOLS)


# ----------------------------------------------------------------------------- rendering


def test_render_matches_the_qwen_template_layout():
    call = ToolCall("bash", {"command": "ls -l", "n": [1, 2]})
    assert render_tool_call(call) == (
        '<tool_call>\n{"name": "bash", "arguments": {"command": "ls -l", "n": [1, 2]}}\n'
        "</tool_call>"
    )
    assert render_tool_call(ToolCall("f", {"s": "é"})).count("é") == 1  # not \\u-escaped


def test_render_refuses_non_json_values():
    with pytest.raises(ValueError):
        render_tool_call(ToolCall("f", {"x": float("nan")}))


# ----------------------------------------------------------------------------- properties

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
names = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=20)
calls = st.builds(
    ToolCall,
    name=names,
    arguments=st.dictionaries(st.text(), json_values, max_size=5),
    id=st.none() | st.text(max_size=10),
)
tag_soup = st.lists(
    st.sampled_from(["<tool_call>", "</tool_call>", "{", "}", "[", "]", '"', ":", ",", "\\",
                     '"name"', '"arguments"', '"parameters"', '"bash"', "null", "1e999",
                     "9" * 5000, "NaN", "```python\n", "```\n", "\n", " "]) | st.text(max_size=8),
    max_size=30,
).map("".join)
json_ish = st.one_of(
    json_values.map(json.dumps).map(tag),
    st.dictionaries(st.sampled_from(["name", "arguments", "parameters", "id", "x"]), json_values,
                    max_size=4).map(json.dumps).map(tag),
    tag_soup,
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text() | json_ish)
def test_strict_parser_raises_only_tool_call_errors(text):
    for tools in (None, TOOLS):
        try:
            result = parse_tool_calls(text, tools, fenced=FENCED_PYTHON_BASH)
        except ToolCallError:
            continue
        assert all(isinstance(c, ToolCall) and isinstance(c.arguments, dict) for c in result)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text() | json_ish | st.binary().map(lambda b: b.decode("latin-1")))
def test_lenient_parser_never_raises(text):
    parsed = try_parse_tool_calls(text, TOOLS, fenced=FENCED_PYTHON_BASH)
    assert (parsed.error is None) == (parsed.observation is None)
    assert parsed.error is None or (parsed.calls == [] and parsed.observation)


@settings(max_examples=200, deadline=None)
@given(call=calls)
def test_parse_of_render_is_identity(call):
    assert parse_tool_calls(render_tool_call(call)) == [call]


@settings(max_examples=200, deadline=None)
@given(many=st.lists(calls, max_size=4), prose=st.lists(st.text().filter(
    lambda t: "<tool_call>" not in t and "</tool_call>" not in t), min_size=5, max_size=5))
def test_parse_of_rendered_calls_between_prose(many, prose):
    text = prose[0] + "".join(render_tool_call(c) + prose[i % 4 + 1] for i, c in enumerate(many))
    assert parse_tool_calls(text) == many


# ----------------------------------------------------------------------------- actions


def native(name: str, arguments: str, call_id: str = "c1") -> dict:
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": call_id, "type": "function",
                            "function": {"name": name, "arguments": arguments}}]}


def test_a_text_action_and_a_native_action_give_the_same_call():
    text = TOOLS.parse(tag('{"name": "bash", "arguments": {"command": "ls"}}'))
    structured = TOOLS.parse(native("bash", '{"command": "ls"}'))
    assert (text.form, structured.form) == ("text", "native")
    assert text.calls == [ToolCall("bash", {"command": "ls"})]
    assert structured.calls == [ToolCall("bash", {"command": "ls"}, "c1")]


@pytest.mark.parametrize(("name", "arguments", "status"), [
    ("sh", '{"command": "ls"}', ToolStatus.UNKNOWN_TOOL),
    ("bash", '{"command": 3}', ToolStatus.BAD_ARGUMENTS),
    ("bash", '{"command": "ls"', ToolStatus.PARSE_ERROR),
    ("bash", '["ls"]', ToolStatus.PARSE_ERROR),
])
def test_native_calls_are_refused_like_text_calls(name: str, arguments: str, status: ToolStatus):
    as_text = TOOLS.parse(tag(f'{{"name": "{name}", "arguments": {arguments}}}'))
    as_native = TOOLS.parse(native(name, arguments))
    assert as_native.status == status and as_native.form == "native" and not as_native.calls
    assert as_text.status == status or arguments.endswith('"ls"')  # text JSON breaks earlier
    assert "<tool_call>" not in str(as_native.observation)  # no text-format hint for native calls


def test_a_message_without_tool_calls_is_read_from_its_text():
    message = {"role": "assistant", "content": "The answer is 4.", "tool_calls": []}
    parsed = TOOLS.parse(message)
    assert parsed.ok and parsed.calls == [] and parsed.form is None


def test_assistant_message_fills_ids_and_null_content():
    m = assistant_message(native("bash", "{}", call_id=None))  # type: ignore[arg-type]
    assert m["content"] == "" and m["tool_calls"][0]["id"] == "call_0"
    assert assistant_message("hi") == {"role": "assistant", "content": "hi"}


@pytest.mark.parametrize("action", [3, None, {"role": "user", "content": "x"},
                                    {"role": "assistant", "content": ["x"]}])
def test_assistant_message_refuses_what_is_not_an_assistant_action(action):
    with pytest.raises(TypeError, match="action"):
        assistant_message(action)
