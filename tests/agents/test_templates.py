"""Token-in/token-out prompts on three chat template families, with tiny local tokenizers."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.helpers.tiny_model import build_tiny_model
from toolgym.agents import AgentTurn, ChatTokenizer, IncrementalPrompt, TemplateDriftWarning
from toolgym.agents.templates import EXAMPLE_TOOLS, check_template, example_conversation
from toolgym.cli.check_template import check_template as check_template_cli
from toolgym.cli.check_template import check_template_command

SYSTEM = {"role": "system", "content": "Use tools."}
USER = {"role": "user", "content": "6*7?"}
CALL = {
    "id": "c0",
    "type": "function",
    "function": {"name": "python", "arguments": {"code": "6*7"}},
}


@pytest.mark.parametrize("fixture", ["chatml_dir", "llama3_dir"])
def test_append_only_templates_match_the_full_rendering(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    report = check_template(request.getfixturevalue(fixture))
    assert report.ok, report.format()
    assert report.n_incremental == report.n_full > 100
    assert check_template_command(request.getfixturevalue(fixture)) == 0


def test_template_that_drops_reasoning_is_not_append_only(think_dir: Path) -> None:
    report = check_template(think_dir)
    assert not report.append_only and not report.ok
    assert report.divergence is not None and "<think>" in report.divergence
    assert "NOT APPEND-ONLY" in report.format()
    assert check_template_command(think_dir) == 2


def test_boundary_merge_is_reported_as_drift(tmp_path: Path) -> None:
    # "\n<" as one token merges the generation prompt's newline with the reply's
    # first character when the whole text is tokenised at once.
    report = check_template(build_tiny_model(tmp_path, extra_tokens=["\n<"]))
    assert report.append_only and report.drift
    first = report.drift[0]
    assert first.incremental[:2] == ["\n", "<think>"] and first.full[0] == "\n<"
    assert check_template_command(tmp_path) == 1


def test_cli_command_exits_non_zero_on_mismatch(chatml_dir: Path, think_dir: Path) -> None:
    app = typer.Typer()
    app.command()(check_template_cli)
    ok = CliRunner().invoke(app, [str(chatml_dir)])
    bad = CliRunner().invoke(app, [str(think_dir)])
    assert ok.exit_code == 0 and "OK" in ok.output
    assert bad.exit_code == 2 and "NOT APPEND-ONLY" in bad.output
    assert CliRunner().invoke(app, [str(chatml_dir / "missing")]).exit_code == 3


@pytest.mark.parametrize("fixture", ["chatml_dir", "llama3_dir"])
def test_observation_ids_are_exactly_the_template_delta(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    chat = ChatTokenizer.from_pretrained(request.getfixturevalue(fixture))
    prompt = IncrementalPrompt(chat, [SYSTEM, USER], EXAMPLE_TOOLS)
    first = chat.encode(chat.render([SYSTEM, USER], EXAMPLE_TOOLS, add_generation_prompt=True))
    assert prompt.prompt_token_ids == first
    reply = {"role": "assistant", "content": "I will compute."}
    sampled = chat.encode("I will compute.") + [chat.eos_token_ids[0]]
    prompt.add_turn(AgentTurn(text="I will compute.", token_ids=sampled))
    obs = {"role": "user", "content": "go on"}
    prompt.add_observation(obs)
    full = chat.encode(
        chat.render([SYSTEM, USER, reply, obs], EXAMPLE_TOOLS, add_generation_prompt=True)
    )
    assert prompt.prompt_token_ids == full
    assert [s.kind for s in prompt.segments] == ["prompt", "action", "observation"]
    assert prompt.segments[1].ids == sampled  # the policy's ids are kept verbatim


def test_sampled_ids_are_kept_even_when_they_differ_from_retokenisation(chatml_dir: Path) -> None:
    chat = ChatTokenizer.from_pretrained(chatml_dir)
    prompt = IncrementalPrompt(chat, [USER])
    # The policy spelled the tag character by character; re-tokenising the text would
    # produce the single <tool_call> token instead.
    spelled = [chat.tokenizer.convert_tokens_to_ids(c) for c in "<tool_call>"] + [
        chat.eos_token_ids[0]
    ]
    assert len(chat.encode("<tool_call>")) == 1
    prompt.add_action(spelled, {"role": "assistant", "content": "<tool_call>"})
    prompt.add_observation({"role": "user", "content": "?"})
    assert prompt.prompt_token_ids[len(prompt.segments[0].ids) :][: len(spelled)] == spelled


def test_truncated_turn_gets_the_end_of_turn_as_observation(chatml_dir: Path) -> None:
    chat = ChatTokenizer.from_pretrained(chatml_dir)
    prompt = IncrementalPrompt(chat, [USER])
    prompt.add_action(chat.encode("I was cut of"), {"role": "assistant", "content": "I was cut of"})
    obs_ids = prompt.add_observation({"role": "user", "content": "continue"})
    assert chat.decode(obs_ids).startswith("<|im_end|>\n<|im_start|>user\ncontinue")


def test_grouped_tool_results_render_as_one_turn(chatml_dir: Path) -> None:
    chat = ChatTokenizer.from_pretrained(chatml_dir)
    prompt = IncrementalPrompt(chat, [SYSTEM, USER], EXAMPLE_TOOLS)
    text = '<tool_call>\n{"name": "python", "arguments": {"code": "6*7"}}\n</tool_call>'
    prompt.add_action(
        chat.encode(text) + [chat.eos_token_ids[0]],
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
    )
    results = [{"role": "tool", "tool_call_id": "c0", "content": r} for r in ("42", "43")]
    obs = chat.decode(prompt.add_observation(*results))
    assert obs == (
        "\n<|im_start|>user\n<tool_response>\n42\n</tool_response>\n<tool_response>\n43\n"
        "</tool_response><|im_end|>\n<|im_start|>assistant\n"
    )


def test_non_append_only_template_falls_back_to_one_sample_per_turn(think_dir: Path) -> None:
    chat = ChatTokenizer.from_pretrained(think_dir)
    prompt = IncrementalPrompt(chat, [USER])
    content = "<think>hmm</think>Let me see."
    prompt.add_action(
        chat.encode(content) + [chat.eos_token_ids[0]], {"role": "assistant", "content": content}
    )
    with pytest.warns(TemplateDriftWarning, match="not append-only"):
        ids = prompt.add_observation({"role": "user", "content": "and?"})
    assert not prompt.append_only and prompt.sample_index == 1
    fresh = chat.render(
        [USER, {"role": "assistant", "content": content}, {"role": "user", "content": "and?"}],
        add_generation_prompt=True,
    )
    assert "<think>" not in fresh and ids == chat.encode(fresh) == prompt.prompt_token_ids
    assert prompt.conversation().prompt_token_ids == ids


def test_turn_without_token_ids_cannot_extend_a_token_prompt(chatml_dir: Path) -> None:
    prompt = IncrementalPrompt(ChatTokenizer.from_pretrained(chatml_dir), [USER])
    with pytest.raises(ValueError, match="no token ids"):
        prompt.add_turn(AgentTurn(text="hi"))
    prompt.add_action([5], {"role": "assistant", "content": "x"})
    with pytest.raises(ValueError, match="Two actions"):
        prompt.add_action([5], {"role": "assistant", "content": "x"})


def test_example_conversation_exercises_tools_reasoning_and_user_follow_up() -> None:
    roles = [m["role"] for m in example_conversation()]
    assert roles.count("tool") == 3 and roles.count("assistant") == 3 and roles[-1] == "tool"
