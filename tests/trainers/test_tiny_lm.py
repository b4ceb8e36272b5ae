"""The tiny LM builder of the main job: a tokenizer that copies well, a loadable model dir."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from toolgym.envs.calc import calc_tasks, demonstrations
from toolgym.trainers.tiny_lm import (
    TinyLMConfig,
    build_tiny_lm,
    render_chats,
    save_model_dir,
    train_tokenizer,
)


def calc_texts(n: int = 300) -> list[str]:
    tasks = list(calc_tasks().split("train"))[:n]
    return render_chats(d.messages for d in demonstrations(tasks, seed=0))


def pieces(tok, text: str) -> list[str]:
    return [tok.decode([i]) for i in tok(text, add_special_tokens=False)["input_ids"]]


def test_a_number_is_the_same_tokens_in_question_call_and_answer() -> None:
    tok = train_tokenizer(calc_texts(), vocab_size=600)
    number = pieces(tok, "347")
    question = pieces(tok, "What is 347 * 29?")
    call = pieces(tok, '{"expression": "347 * 29"}')
    assert "".join(question) == "What is 347 * 29?"
    for seen in (question, call):
        assert any(seen[i:i + len(number)] == number for i in range(len(seen)))
        assert not any(p[:1].isdigit() != p[-1:].isdigit() for p in seen)  # no " 3" or '"3'


def test_chat_tags_are_single_tokens_and_every_string_round_trips() -> None:
    tok = train_tokenizer(calc_texts(), vocab_size=600)
    for tag in ("<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"):
        assert len(tok(tag, add_special_tokens=False)["input_ids"]) == 1
    text = "ünïcode ✓ 12345678901234567890 <tool_call>{}</tool_call>"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_model_dir_loads_back_through_from_pretrained(tmp_path: Path) -> None:
    tok = train_tokenizer(calc_texts(100), vocab_size=400)
    config = TinyLMConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                          num_attention_heads=2)
    model = build_tiny_lm(tok, config, seed=3)
    path = save_model_dir(tmp_path / "m", model, tok)
    loaded = AutoModelForCausalLM.from_pretrained(path)
    loaded_tok = AutoTokenizer.from_pretrained(path)
    ids = loaded_tok.apply_chat_template([{"role": "user", "content": "What is 2 * 3?"}],
                                         add_generation_prompt=True, return_tensors="pt")
    ids = ids if isinstance(ids, torch.Tensor) else ids["input_ids"]
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
    assert loaded.generation_config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
