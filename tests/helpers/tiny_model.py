"""Build a tiny ``LlamaForCausalLM`` + fast tokenizer and save it as a model directory.

No hub access exists in tests or CI, so tests build their model locally and
load it back through the ordinary ``from_pretrained`` path: the code under test
cannot tell it from a real checkpoint. The tokenizer is character level (every
printable ASCII character plus any character of ``texts``), with the chat
control tokens and tool tags as whole tokens, so every text round-trips and
ids are easy to read in a failing assertion.

Example:
    >>> import tempfile
    >>> from transformers import AutoTokenizer
    >>> path = build_tiny_model(tempfile.mkdtemp(), chat_template="chatml")
    >>> tok = AutoTokenizer.from_pretrained(path)
    >>> tok.decode(tok("<|im_start|>hi", add_special_tokens=False)["input_ids"])
    '<|im_start|>hi'
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

CONTROL_TOKENS = {
    "chatml": ["<|im_start|>", "<|im_end|>"],
    "llama3": [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
        "<|eom_id|>",
    ],
}
"""Control tokens (``special=True``) per template family; all are in every vocabulary."""

TAG_TOKENS = [
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
    "<|python_tag|>",
]
"""Whole-word tags the policy writes itself (``special=False``, like Qwen's tool tags)."""

PAD = "<|pad|>"
UNK = "<|unk|>"

# ChatML with tools, the way Qwen2.5 lays them out: tool schemas in the system
# turn, assistant tool calls as <tool_call> JSON, consecutive tool results
# grouped into one user turn of <tool_response> blocks.
CHATML = """\
{%- if tools %}
{{- '<|im_start|>system\\n' }}
{%- if messages[0].role == 'system' %}{{ messages[0].content + '\\n\\n' }}{% endif %}
{{- '# Tools\\nYou may call tools. Signatures:\\n<tools>\\n' }}
{%- for t in tools %}{{ t | tojson + '\\n' }}{% endfor %}
{{- '</tools>\\nCall one as <tool_call>{\"name\": ..., \"arguments\": ...}</tool_call>' }}
{{- '<|im_end|>\\n' }}
{%- elif messages[0].role == 'system' %}
{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- for m in messages %}
{%- if m.role == 'user' or (m.role == 'system' and not loop.first) %}
{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}
{%- elif m.role == 'assistant' %}
{{- '<|im_start|>assistant\\n' }}{{ m.content or '' }}
{%- for tc in m.tool_calls or [] %}
{%- if m.content or not loop.first %}{{ '\\n' }}{% endif %}
{{- '<tool_call>\\n{\"name\": \"' + tc.function.name + '\", \"arguments\": ' }}
{{- tc.function.arguments if tc.function.arguments is string else tc.function.arguments | tojson }}
{{- '}\\n</tool_call>' }}
{%- endfor %}
{{- '<|im_end|>\\n' }}
{%- elif m.role == 'tool' %}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{ '<|im_start|>user' }}{% endif %}
{{- '\\n<tool_response>\\n' + m.content + '\\n</tool_response>' }}
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{ '<|im_end|>\\n' }}{% endif %}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"""

# Llama-3 header layout; tool results come back under the ipython role.
LLAMA3 = """\
{{- '<|begin_of_text|>' }}
{%- for m in messages %}
{%- set role = 'ipython' if m.role == 'tool' else m.role %}
{{- '<|start_header_id|>' + role + '<|end_header_id|>\n\n' }}
{%- if loop.first and tools %}Environment: ipython
Tools: {% for t in tools %}{{ t | tojson }} {% endfor %}

{% endif %}
{%- if m.tool_calls %}{% for tc in m.tool_calls %}<|python_tag|>\
{"name": "{{ tc.function.name }}", "parameters": \
{{ tc.function.arguments if tc.function.arguments is string else tc.function.arguments | tojson }}}\
{% endfor %}{% else %}{{ m.content or '' }}{% endif %}
{{- '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}"""

# ChatML that, like Qwen3, drops the <think> reasoning of every assistant turn
# that is not the last message: rendering is NOT append-only.
CHATML_DROP_THINK = CHATML.replace(
    "{{ m.content or '' }}",
    "{% if loop.last %}{{ m.content or '' }}"
    "{% else %}{{ (m.content or '').split('</think>')[-1].lstrip() }}{% endif %}",
)

TEMPLATES = {"chatml": CHATML, "llama3": LLAMA3, "chatml_drop_think": CHATML_DROP_THINK}
EOS = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>", "chatml_drop_think": "<|im_end|>"}


def build_tiny_model(
    path: str | Path,
    chat_template: str = "chatml",
    texts: Iterable[str] = (),
    *,
    extra_tokens: Sequence[str] = (),
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
) -> Path:
    r"""Save a randomly initialised tiny Llama and its tokenizer under ``path``.

    Args:
        path: Directory to write (created if missing).
        chat_template: ``"chatml"``, ``"llama3"``, ``"chatml_drop_think"`` or a
            raw Jinja template (then the ChatML end-of-turn token is the EOS).
        texts: Extra texts whose characters must be in the vocabulary.
        extra_tokens: Extra whole-word added tokens (e.g. ``"\n\n"`` to provoke
            boundary drift in template tests).
        hidden_size: Model width; the MLP is twice as wide.
        num_layers: Decoder layers.
        num_heads: Attention heads (two key/value heads when divisible).
        seed: Seed of the weight initialisation (global RNG state is restored).

    Returns:
        ``Path(path)``, loadable with ``AutoModelForCausalLM`` / ``AutoTokenizer``.
    """
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    template = TEMPLATES.get(chat_template, chat_template)
    eos = EOS.get(chat_template, "<|im_end|>")
    tokenizer = build_tokenizer(texts, extra_tokens, template, eos)
    tokenizer.save_pretrained(out)
    ids = tokenizer.convert_tokens_to_ids
    stop = [ids(eos)] + ([ids("<|end_of_text|>")] if eos == "<|eot_id|>" else [])
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=2 if num_heads % 2 == 0 else num_heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=ids("<|begin_of_text|>"),
        eos_token_id=stop,
        pad_token_id=ids(PAD),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=stop, pad_token_id=ids(PAD), bos_token_id=config.bos_token_id
    )
    model.save_pretrained(out)
    return out


def build_tokenizer(
    texts: Iterable[str] = (),
    extra_tokens: Sequence[str] = (),
    chat_template: str = CHATML,
    eos: str = "<|im_end|>",
):  # -> PreTrainedTokenizerFast (imported lazily)
    """Return a character-level ``PreTrainedTokenizerFast`` with whole control tokens."""
    from transformers import PreTrainedTokenizerFast

    chars = set(string.printable)
    for text in texts:
        chars.update(text)
    specials = [PAD, UNK] + [t for family in CONTROL_TOKENS.values() for t in family]
    vocab = {tok: i for i, tok in enumerate(specials + TAG_TOKENS + list(extra_tokens))}
    for ch in sorted(chars):
        vocab.setdefault(ch, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    core.add_tokens(
        [AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS + list(extra_tokens)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=eos,
        pad_token=PAD,
        unk_token=UNK,
        bos_token="<|begin_of_text|>",
        chat_template=chat_template,
        padding_side="left",
    )


def train_tiny_model(
    path: str | Path, texts: Sequence[str], *, steps: int = 150, lr: float = 3e-3, seed: int = 0
) -> Path:
    """Fit the model in ``path`` to ``texts`` (next-token loss on every token) and save it back.

    A randomly initialised model almost never samples its end-of-turn token;
    a few hundred steps on rendered conversations teach it to answer and stop,
    which tests of EOS handling need.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    batch = tok(list(texts), add_special_tokens=False, padding=True, return_tensors="pt")
    mask = batch["attention_mask"]
    labels = batch["input_ids"].masked_fill(mask == 0, -100)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(steps):
            loss = model(
                input_ids=batch["input_ids"],
                attention_mask=mask,
                position_ids=positions,
                labels=labels,
            ).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.save_pretrained(path)
    return Path(path)
