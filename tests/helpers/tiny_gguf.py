"""A tiny Llama that llama.cpp can load: byte-level BPE tokenizer, weights written as GGUF.

The character-level tokenizer of :mod:`tests.helpers.tiny_model` is a
``WordLevel`` model with no merges, which llama.cpp's tokenizers (SPM, BPE,
WPM, ...) cannot represent. This module trains a byte-level BPE instead (the
GPT-2 scheme, which llama.cpp implements as tokenizer ``gpt2`` with the
``gpt-2`` pre-tokenizer, so both sides split text the same way; llama.cpp
refuses a pre-tokenizer name it does not know, ``gpt2`` included), builds the same
small ``LlamaForCausalLM`` as ``tiny_model``, saves it as an ordinary model
directory and writes it as GGUF with the ``gguf`` package, laid out as
llama.cpp's own converter (``convert_hf_to_gguf.py``) lays out a Llama:
llama.cpp's tensor names, Q/K rows permuted to its rotary layout, tied
embeddings left to ``token_embd``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

from tests.helpers.tiny_model import CHATML, TAG_TOKENS

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "<|im_start|>system\nYou solve Python programming tasks.<|im_end|>\n",
    "<|im_start|>user\nWrite a function.<|im_end|>\n<|im_start|>assistant\n",
    'def f(x):\n    return [i for i in range(x) if i % 2 == 0]\n',
    '{"name": "python", "arguments": {"code": "print(1 + 1)"}}',
    "```python\nimport math\nprint(math.sqrt(2))\n```",
]


def build_bpe_model(path: str | Path, texts: Iterable[str] = (), *, vocab_size: int = 400,
                    hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
                    seed: int = 0) -> Path:
    """Save a random tiny Llama with a byte-level BPE tokenizer (ChatML template) under ``path``."""
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    core.train_from_iterator([*CORPUS, *texts], trainer)
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    core.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", bos_token="<|endoftext|>",
                                        chat_template=CHATML)
    tokenizer.save_pretrained(out)
    ids = tokenizer.convert_tokens_to_ids
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads,
        num_key_value_heads=2 if num_heads % 2 == 0 else num_heads,
        max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
        pad_token_id=ids("<|endoftext|>"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    return out


def write_gguf(model_dir: str | Path, out: str | Path) -> Path:
    """Write the model of ``model_dir`` (from :func:`build_bpe_model`) as an F32 GGUF file."""
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir, out = Path(model_dir), Path(out)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    cfg = model.config
    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_name("toolgym-tiny")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(getattr(cfg, "rope_theta", None) or 10000.0)
    w.add_rope_dimension_count(cfg.hidden_size // n_head)
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    _add_vocab(w, tok, model_dir)
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    w.add_tensor("token_embd.weight", state["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", state["model.norm.weight"])
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        w.add_tensor(f"blk.{i}.attn_norm.weight", state[p + "input_layernorm.weight"])
        q, k = state[p + "self_attn.q_proj.weight"], state[p + "self_attn.k_proj.weight"]
        w.add_tensor(f"blk.{i}.attn_q.weight", _permute(q, n_head))
        w.add_tensor(f"blk.{i}.attn_k.weight", _permute(k, n_kv))
        w.add_tensor(f"blk.{i}.attn_v.weight", state[p + "self_attn.v_proj.weight"])
        w.add_tensor(f"blk.{i}.attn_output.weight", state[p + "self_attn.o_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_norm.weight", state[p + "post_attention_layernorm.weight"])
        w.add_tensor(f"blk.{i}.ffn_gate.weight", state[p + "mlp.gate_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_up.weight", state[p + "mlp.up_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_down.weight", state[p + "mlp.down_proj.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def _add_vocab(w: object, tok: object, model_dir: Path) -> None:
    """Tokens in id order with llama.cpp's token types, merges, special ids, chat template."""
    import gguf

    vocab = tok.get_vocab()  # type: ignore[attr-defined]
    by_id = {i: t for t, i in vocab.items()}
    added = {t.content: t.special for t in tok.added_tokens_decoder.values()}  # type: ignore[attr-defined]
    tokens, types = [], []
    for i in range(len(by_id)):
        text = by_id[i]
        tokens.append(text)
        types.append(gguf.TokenType.NORMAL if text not in added else
                     gguf.TokenType.CONTROL if added[text] else gguf.TokenType.USER_DEFINED)
    merges = json.loads((model_dir / "tokenizer.json").read_text())["model"]["merges"]
    w.add_tokenizer_model("gpt2")  # type: ignore[attr-defined]
    # llama-vocab.cpp's name for GPT-2's split; "gpt2" is an unknown pre-tokenizer there.
    w.add_tokenizer_pre("gpt-2")  # type: ignore[attr-defined]
    w.add_token_list(tokens)  # type: ignore[attr-defined]
    w.add_token_types(types)  # type: ignore[attr-defined]
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])  # type: ignore[attr-defined]
    w.add_bos_token_id(vocab["<|endoftext|>"])  # type: ignore[attr-defined]
    w.add_eos_token_id(vocab["<|im_end|>"])  # type: ignore[attr-defined]
    w.add_pad_token_id(vocab["<|endoftext|>"])  # type: ignore[attr-defined]
    w.add_add_bos_token(False)  # type: ignore[attr-defined]
    w.add_chat_template(tok.chat_template)  # type: ignore[attr-defined]


def _permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """HF's rotary halves → llama.cpp's interleaved pairs (the converter's ``permute``)."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))
