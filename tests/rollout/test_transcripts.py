"""Transcripts tokenise exactly as the template renders the whole conversation."""

from __future__ import annotations

from tests.helpers.tiny_model import build_tokenizer
from toolgym.agents.templates import ChatTokenizer
from toolgym.rollout.transcripts import trajectory_from_messages

MESSAGES = [
    {"role": "system", "content": "Use the calc tool."},
    {"role": "user", "content": "What is 12 * 3?"},
    {
        "role": "assistant",
        "content": (
            '<tool_call>\n{"name": "calc", "arguments": {"expression": "12*3"}}\n</tool_call>'
        ),
    },
    {"role": "tool", "name": "calc", "content": "36"},
    {"role": "assistant", "content": "36"},
]


def test_transcript_ids_decode_to_the_full_render_and_mask_only_actions():
    tok = build_tokenizer()
    chat = ChatTokenizer(tok)
    traj = trajectory_from_messages(chat, MESSAGES, env_id="e", task_id="t", outcome="success")
    (sample,) = traj.samples()
    full = tok.apply_chat_template(MESSAGES, tokenize=False)
    assert tok.decode(sample.input_ids) == full.rstrip("\n")
    trained = tok.decode([i for i, m in zip(sample.input_ids, sample.loss_mask, strict=True) if m])
    assert trained == MESSAGES[2]["content"] + "<|im_end|>" + "36<|im_end|>"
    assert [t.observation for t in traj.turns] == ["36", ""]
