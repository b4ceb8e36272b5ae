"""The GGUF file that the real-server tests (``make integration``) serve is llama.cpp's layout.

Read back with the ``gguf`` package's own reader, so a broken writer fails here,
in the default suite, rather than only where llama.cpp is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.helpers.tiny_gguf import _permute, build_bpe_model, write_gguf


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    model = build_bpe_model(tmp_path_factory.mktemp("bpe"))
    return model, write_gguf(model, model / "model.gguf")


def field(reader: gguf.GGUFReader, key: str) -> Any:
    """A metadata value as Python: a string, a number, or a list of them for an array."""
    f = reader.fields[key]
    values = [bytes(f.parts[i]).decode() if f.parts[i].dtype == np.uint8 else f.parts[i][0]
              for i in f.data]
    return values if f.types[0] == gguf.GGUFValueType.ARRAY else values[0]


def test_vocab_merges_and_template_match_the_hf_tokenizer(tiny: tuple[Path, Path]) -> None:
    model, path = tiny
    tok = AutoTokenizer.from_pretrained(model)
    reader = gguf.GGUFReader(str(path))
    tokens = field(reader, "tokenizer.ggml.tokens")
    assert tokens == tok.convert_ids_to_tokens(list(range(len(tok))))
    assert field(reader, "tokenizer.ggml.model") == "gpt2"
    assert field(reader, "tokenizer.ggml.pre") == "gpt-2"  # llama.cpp's name for it
    assert len(field(reader, "tokenizer.ggml.merges")) > 0
    assert field(reader, "tokenizer.ggml.eos_token_id") == tok.convert_tokens_to_ids("<|im_end|>")
    assert field(reader, "tokenizer.chat_template") == tok.chat_template
    types = field(reader, "tokenizer.ggml.token_type")
    assert types[tokens.index("<|im_start|>")] == gguf.TokenType.CONTROL
    assert types[tokens.index("<tool_call>")] == gguf.TokenType.USER_DEFINED


def test_tensors_are_named_and_laid_out_as_llama_cpp_reads_them(tiny: tuple[Path, Path]) -> None:
    model, path = tiny
    hf_model = AutoModelForCausalLM.from_pretrained(model)
    hf = hf_model.state_dict()
    tensors = {t.name: t for t in gguf.GGUFReader(str(path)).tensors}
    assert "output.weight" not in tensors  # tied: llama.cpp falls back to token_embd
    assert len(tensors) == 2 + 9 * hf_model.config.num_hidden_layers  # 9 per block
    embd = np.asarray(tensors["token_embd.weight"].data)
    assert np.array_equal(embd, hf["model.embed_tokens.weight"].numpy())
    q = hf["model.layers.0.self_attn.q_proj.weight"].numpy()
    assert np.array_equal(np.asarray(tensors["blk.0.attn_q.weight"].data), _permute(q, 4))
    assert not np.array_equal(_permute(q, 4), q)  # the rotary permutation did happen
