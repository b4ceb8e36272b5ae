"""Tool schemas in the prompt: through a tools-aware chat template, or the system prompt.

The tokenizers are built here from a word-level ``tokenizers`` model (no hub
access), one with a ChatML template that renders tools the way Qwen 2.5's does
and one with a plain ChatML template that knows nothing of tools.
"""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from toolgym.tools import (
    BashTool,
    PythonTool,
    ToolCall,
    ToolSet,
    apply_chat_template,
    parse_tool_calls,
    render_tool_call,
    render_tools_system_prompt,
    supports_tools,
    to_openai_tool_calls,
)

TOOLS_TEMPLATE = r"""
{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content }}
    {%- else %}
        {{- 'You are helpful.' }}
    {%- endif %}
    {{- '\n\n# Tools\n\n<tools>' }}
    {%- for tool in tools %}
        {{- '\n' }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- '\n</tools>\n\nCall a function as <tool_call>{"name": <name>, "arguments": <args>}'
        '</tool_call>.<|im_end|>\n' }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- for m in messages %}
    {%- if m.role == 'user' or (m.role == 'system' and not loop.first) %}
        {{- '<|im_start|>' + m.role + '\n' + m.content + '<|im_end|>\n' }}
    {%- elif m.role == 'assistant' %}
        {{- '<|im_start|>assistant' }}
        {%- if m.content %}
            {{- '\n' + m.content }}
        {%- endif %}
        {%- for tc in m.tool_calls or [] %}
            {%- if tc.function is defined %}
                {%- set tc = tc.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tc.name }}
            {{- '", "arguments": ' }}
            {{- tc.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif m.role == 'tool' %}
        {{- '<|im_start|>user\n<tool_response>\n' + m.content + '\n</tool_response><|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}"""
"""ChatML with tools, laid out like Qwen 2.5's template (explicit strings, so HF's
``trim_blocks`` does not eat the newlines)."""

PLAIN_TEMPLATE = r"""
{%- for m in messages %}
    {{- '<|im_start|>' + m.role + '\n' + m.content + '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}"""

TOOLSET = ToolSet([PythonTool(), BashTool()])
MESSAGES = [
    {"role": "system", "content": "Solve the task."},
    {"role": "user", "content": "How many files are there?"},
]


def tiny_tokenizer(template: str) -> PreTrainedTokenizerFast:
    """A word-level tokenizer trained on a few strings, with a chat template."""
    specials = ["[UNK]", "[PAD]", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    corpus = ["system user assistant tool How many files are there ?", "ls bash python {"]
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=specials))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="<|im_end|>",
        additional_special_tokens=specials[2:],
    )
    fast.chat_template = template
    return fast


@pytest.fixture(scope="module")
def tools_tokenizer() -> PreTrainedTokenizerFast:
    return tiny_tokenizer(TOOLS_TEMPLATE)


@pytest.fixture(scope="module")
def plain_tokenizer() -> PreTrainedTokenizerFast:
    return tiny_tokenizer(PLAIN_TEMPLATE)


def test_supports_tools_looks_at_the_template_source(tools_tokenizer, plain_tokenizer):
    assert supports_tools(tools_tokenizer)
    assert not supports_tools(plain_tokenizer)

    class Named:
        chat_template = {"default": PLAIN_TEMPLATE, "tool_use": TOOLS_TEMPLATE}

    class NoTemplate:
        chat_template = None

    assert supports_tools(Named()) and not supports_tools(NoTemplate())


def test_tools_aware_template_renders_the_schemas(tools_tokenizer):
    text = apply_chat_template(tools_tokenizer, MESSAGES, TOOLSET, tokenize=False,
                               add_generation_prompt=True)
    schemas = [json.loads(line) for line in text.split("<tools>\n")[1].split("\n</tools>")[0]
               .splitlines()]
    assert schemas == TOOLSET.schemas()
    assert "Solve the task." in text and text.endswith("<|im_start|>assistant\n")
    assert "# Tools\n\nYou may call" not in text  # not our fallback prompt


def test_plain_template_gets_the_tools_in_the_system_prompt(plain_tokenizer):
    text = apply_chat_template(plain_tokenizer, MESSAGES, TOOLSET, tokenize=False)
    assert text.startswith("<|im_start|>system\nSolve the task.\n\n" +
                           render_tools_system_prompt(TOOLSET))
    no_system = apply_chat_template(plain_tokenizer, MESSAGES[1:], TOOLSET, tokenize=False)
    assert no_system.startswith("<|im_start|>system\n# Tools\n")


def test_system_prompt_lists_schemas_and_the_call_format():
    prompt = render_tools_system_prompt([BashTool()])
    listed = prompt.split("<tools>\n")[1].split("\n</tools>")[0]
    assert json.loads(listed) == BashTool().to_schema()
    example = prompt.split("like this:\n")[1].split("\nYou may")[0]
    assert example.startswith("<tool_call>\n") and example.endswith("\n</tool_call>")


def test_no_tools_renders_no_tools(plain_tokenizer, tools_tokenizer):
    for tok in (plain_tokenizer, tools_tokenizer):
        text = apply_chat_template(tok, MESSAGES, None, tokenize=False)
        assert "<tools>" not in text and "# Tools" not in text


def test_tool_turns_render_the_same_call_text_both_ways(tools_tokenizer, plain_tokenizer):
    """An assistant call renders exactly as render_tool_call writes it (so SFT demonstrations
    match the template), and both paths' text parses back to the same calls."""
    calls = [ToolCall("bash", {"command": "ls | wc -l"})]
    history = [
        *MESSAGES,
        {"role": "assistant", "content": "Let me count.",
         "tool_calls": to_openai_tool_calls(calls, arguments_as_json=False)},
        {"role": "tool", "content": "3"},
    ]
    for tok in (tools_tokenizer, plain_tokenizer):
        text = apply_chat_template(tok, history, TOOLSET, tokenize=False)
        assert "Let me count.\n" + render_tool_call(calls[0]) in text
        assert "<tool_response>\n3\n</tool_response>" in text
        turn = text.split("<|im_start|>assistant\n")[1].split("<|im_end|>")[0]
        assert parse_tool_calls(turn, TOOLSET) == calls


def test_tokenize_returns_ids(tools_tokenizer, plain_tokenizer):
    for tok in (tools_tokenizer, plain_tokenizer):
        ids = apply_chat_template(tok, MESSAGES, TOOLSET, tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        assert isinstance(ids, list) and all(isinstance(i, int) for i in ids)
        assert tok.convert_tokens_to_ids("<|im_start|>") in ids
