"""Build a small causal LM and a tokenizer trained on an environment's own text.

With no model hub to download from, the main job (and tests) make their model
here and save it as an ordinary model directory, so the same
``from_pretrained`` path later serves a real checkpoint. The tokenizer is a
byte-level BPE trained with ``tokenizers`` on the env's transcripts, with the
chat-format and tool tags as whole tokens.

Digit runs are pre-tokenised apart from what surrounds them, so a number is
the same tokens wherever it appears (``347`` in the question, in the tool
call and in the answer) and, with a vocabulary of ~1500, most numbers of the
calculator tasks are one token. That is what lets a tiny model learn to copy:
measured on the calculator demos, a 0.7 M-parameter model with one token per
digit stayed on a loss plateau with no copying after 550 SFT steps (it must
find *which* ``3`` to continue from), while whole-number tokens got 59 % of
held-out first tool calls exactly right after 800 steps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"]
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""ChatML without tool schemas: a tiny model learns the call format from demonstrations."""


@dataclass(frozen=True)
class TinyLMConfig:
    """Shape of the model (defaults: ~0.7 M parameters, fast on one CPU core)."""

    hidden_size: int = 128
    intermediate_size: int = 512
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    max_position_embeddings: int = 2048
    """Longest context the model claims. RoPE has no learned positions, so this costs
    nothing; it must cover the longest episode an env can produce (Calculator-v0:
    a ~35-token prompt, then at most 4 turns of 64 sampled tokens, each followed by
    an observation the env keeps short; 512 was exceeded by episodes that miscalled
    the tool 4 times, and transformers then warned on every such generate call)."""
    vocab_size: int = 1500
    """Target BPE vocabulary (special tokens and the 256 byte symbols included)."""


def render_chats(conversations: Iterable[list[dict[str, str]]]) -> list[str]:
    """Conversations as :data:`CHATML_TEMPLATE` renders them: the tokenizer's training text."""
    import jinja2

    template = jinja2.Environment().from_string(CHATML_TEMPLATE)
    return [template.render(messages=m, add_generation_prompt=False) for m in conversations]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1500) -> PreTrainedTokenizerFast:
    """Byte-level BPE over ``texts``: strings round-trip; a number tokenises alike anywhere."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", bos_token=None)
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_lm(tokenizer: PreTrainedTokenizerFast, config: TinyLMConfig | None = None,
                  *, seed: int = 0) -> LlamaForCausalLM:
    """A randomly initialised ``LlamaForCausalLM`` sized for ``tokenizer``."""
    import torch

    config = config or TinyLMConfig()
    torch.manual_seed(seed)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_attention_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    return LlamaForCausalLM(model_config)


def save_model_dir(path: str | Path, model: LlamaForCausalLM,
                   tokenizer: PreTrainedTokenizerFast) -> Path:
    """Save model and tokenizer as an ordinary ``from_pretrained`` directory."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
