"""Token in, token out: build a multi-turn prompt without re-tokenising the policy's output.

A trainer must score exactly the ids the policy sampled. Rendering the whole
conversation with the chat template and tokenising it again can give other ids
(BPE merges across turn boundaries, whitespace the template strips, reasoning
it drops), so :class:`IncrementalPrompt` instead

1. renders the first prompt (system + user, tools included) with the template
   and tokenises it once;
2. keeps each policy turn's sampled ids verbatim;
3. appends each environment observation as the text the template adds for it:
   the difference between rendering the conversation with and without the new
   messages (generation prompt for the next turn included), plus whatever the
   template writes after an assistant turn that the policy did not sample
   (ChatML's newline after ``<|im_end|>``, or the end-of-turn token itself when
   the turn ran out of tokens). Only that suffix is tokenised.

Step 3 is sound only when the template is *append-only*: rendering the longer
conversation extends the rendering of the shorter one. Templates that rewrite
the past (Qwen3-style templates drop ``<think>`` reasoning from earlier
assistant turns) are detected at the first observation; the prompt then falls
back to one training sample per turn (each turn's prompt freshly rendered),
sets ``append_only = False`` and warns with :class:`TemplateDriftWarning`.
:func:`check_template` runs a canned tool conversation through both paths and
reports where the token streams differ.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from toolgym.agents.base import AgentTurn, Conversation, Message

_PROBE = "\x1ftoolgym-probe\x1f"


class TemplateDriftWarning(UserWarning):
    """The chat template is not append-only; training falls back to one sample per turn."""


class ChatTokenizer:
    r"""A Hugging Face tokenizer, its chat template and its end-of-turn ids.

    Args:
        tokenizer: A ``PreTrainedTokenizerBase`` (fast tokenizers give char offsets).
        chat_template: Overrides the tokenizer's own template.
        eos_token_ids: Ids that end a turn; defaults to the tokenizer's EOS.

    Example:
        >>> from tests.helpers.tiny_model import build_tokenizer
        >>> chat = ChatTokenizer(build_tokenizer())
        >>> chat.render([{"role": "user", "content": "hi"}], add_generation_prompt=True)
        '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n'
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        chat_template: str | None = None,
        eos_token_ids: Sequence[int] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        if eos_token_ids is None:
            eos_token_ids = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
        self.eos_token_ids = tuple(eos_token_ids)

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, **kwargs: Any) -> ChatTokenizer:
        """Load the tokenizer of ``model_dir``; EOS ids come from its generation config."""
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir, **kwargs)
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        eos += [i for i in _generation_eos_ids(Path(model_dir)) if i not in eos]
        return cls(tokenizer, eos_token_ids=eos)

    def render(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        *,
        add_generation_prompt: bool,
    ) -> str:
        """Render ``messages`` to text with the chat template."""
        return str(
            self.tokenizer.apply_chat_template(
                list(messages),
                tools=list(tools) if tools else None,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                chat_template=self.chat_template,
            )
        )

    def encode(self, text: str) -> list[int]:
        """Tokenise template text; the template writes BOS itself, so none is added."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        """Decode ids to text, control tokens included."""
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=False))

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        """The ids a local policy continues: ``conversation.prompt_token_ids`` when given
        (token in, token out), else the rendered messages with the generation prompt.

        Raises:
            ValueError: the prompt is empty.
        """
        if conversation.prompt_token_ids is not None:
            ids = list(conversation.prompt_token_ids)
        else:
            text = self.render(conversation.messages, conversation.tools,
                               add_generation_prompt=True)
            ids = self.encode(text)
        if not ids:
            raise ValueError("Empty prompt: the conversation rendered to no tokens.")
        return ids

    def assistant_closing(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]] | None = None
    ) -> str:
        """Text the template writes after an assistant turn's content (``<|im_end|>`` + newline).

        Rendered with a probe content, so tool calls or reasoning of the real
        message do not leak in: the policy wrote those itself, inside its turn.
        """
        probe = [*messages, {"role": "assistant", "content": _PROBE}]
        text = self.render(probe, tools, add_generation_prompt=False)
        cut = text.rfind(_PROBE)
        return "" if cut < 0 else text[cut + len(_PROBE) :]

    def unsampled_closing(self, closing: str, sampled: Sequence[int]) -> str:
        """The part of ``closing`` the policy did not sample itself.

        A turn that ended on its end-of-turn token leaves only what follows it
        (ChatML's newline); a turn cut off by the token budget leaves the
        whole closing. Matching is on token ids, never on partial characters.
        """
        if not closing:
            return ""
        enc = self.tokenizer(closing, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
        done = _overlap(list(sampled), ids)
        eos = self.eos_token_ids
        if done == 0 and sampled and sampled[-1] in eos and ids[0] in eos:
            done = 1  # stopped on another end-of-turn id (e.g. <|eom_id|> for <|eot_id|>)
        return "" if done >= len(ids) else closing[offsets[done][0] :]


@dataclass(frozen=True)
class Segment:
    """A run of ids in a training sample: prompt, policy action or environment observation."""

    kind: Literal["prompt", "action", "observation"]
    ids: list[int]
    sample: int
    """Index of the training sample it belongs to (always 0 for append-only templates)."""


@dataclass
class IncrementalPrompt:
    r"""A growing token sequence for one episode; see the module docstring.

    Args:
        chat: The tokenizer and template.
        messages: The opening messages (system + user).
        tools: Tool JSON schemas rendered into the prompt.

    Example:
        >>> from tests.helpers.tiny_model import build_tokenizer
        >>> chat = ChatTokenizer(build_tokenizer())
        >>> p = IncrementalPrompt(chat, [{"role": "user", "content": "hi"}])
        >>> p.add_action(chat.encode("yo<|im_end|>"), {"role": "assistant", "content": "yo"})
        >>> chat.decode(p.add_observation({"role": "user", "content": "ok"}))
        '\n<|im_start|>user\nok<|im_end|>\n<|im_start|>assistant\n'
    """

    chat: ChatTokenizer
    messages: list[Message]
    tools: list[dict[str, Any]] | None = None
    append_only: bool = field(default=True, init=False)
    """False once the template rewrote an earlier turn; each turn is then its own sample."""
    segments: list[Segment] = field(default_factory=list, init=False)
    drift: str | None = field(default=None, init=False)
    """Where the template stopped being append-only, for the warning and reports."""
    _rendered: str = field(default="", init=False, repr=False)
    """Text of the messages before the last action, generation prompt included."""

    def __post_init__(self) -> None:
        self.messages = [dict(m) for m in self.messages]
        self.tools = list(self.tools) if self.tools else None
        self._rendered = self.chat.render(self.messages, self.tools, add_generation_prompt=True)
        self.segments.append(Segment("prompt", self.chat.encode(self._rendered), 0))

    @property
    def sample_index(self) -> int:
        """Index of the sample being built."""
        return self.segments[-1].sample

    @property
    def prompt_token_ids(self) -> list[int]:
        """All ids of the current sample: what the policy continues from."""
        return [i for s in self.segments if s.sample == self.sample_index for i in s.ids]

    def conversation(self) -> Conversation:
        """The :class:`Conversation` for the next ``Agent.act`` call."""
        return Conversation(list(self.messages), self.tools, self.prompt_token_ids)

    def add_turn(self, turn: AgentTurn) -> None:
        """Append an agent turn: its ids verbatim and its message for later renders."""
        if turn.token_ids is None:
            raise ValueError(
                "This turn has no token ids (the backend did not return them), so it cannot "
                "extend a token-in/token-out prompt. Use a backend that returns ids "
                "(HFAgent, or a vLLM server with return_token_ids) or keep messages only."
            )
        self.add_action(turn.token_ids, turn.message())

    def add_action(self, token_ids: Sequence[int], message: Message) -> None:
        """Append the policy's sampled ids (kept verbatim) and its assistant message."""
        if self.segments[-1].kind == "action":
            raise ValueError("Two actions in a row: add the observation between them first.")
        self.segments.append(Segment("action", list(token_ids), self.sample_index))
        self.messages.append(dict(message))

    def add_observation(self, *messages: Message) -> list[int]:
        """Append the environment's reply (tool and/or user messages) and the generation prompt.

        Pass all messages of one environment step together: templates group
        consecutive tool results (Qwen wraps them in one user turn).

        Returns:
            The ids appended: the observation for append-only templates, else
            the freshly rendered prompt that starts a new sample.
        """
        if self.segments[-1].kind != "action" or not messages:
            raise ValueError("add_observation needs one or more messages, after an action.")
        before = self.messages
        self.messages = [*before, *(dict(m) for m in messages)]
        after = self.chat.render(self.messages, self.tools, add_generation_prompt=True)
        prompt, self._rendered = self._rendered, after
        if self.append_only:
            ids = self._observation_ids(prompt, before, after)
            if ids is not None:
                self.segments.append(Segment("observation", ids, self.sample_index))
                return ids
        ids = self.chat.encode(after)
        self.segments.append(Segment("prompt", ids, self.sample_index + 1))
        return ids

    def _observation_ids(self, prompt: str, before: list[Message], after: str) -> list[int] | None:
        """Ids of the observation suffix; None (and a warning) if the template rewrote the past."""
        with_turn = self.chat.render(before, self.tools, add_generation_prompt=False)
        for short, long in ((prompt, with_turn), (with_turn, after)):
            if not long.startswith(short):
                self._fall_back(short, long)
                return None
        closing = self.chat.assistant_closing(before[:-1], self.tools)
        tail = self.chat.unsampled_closing(closing, self.segments[-1].ids)
        return self.chat.encode(tail + after[len(with_turn) :])

    def _fall_back(self, short: str, long: str) -> None:
        at = _first_difference(short, long)
        self.append_only = False
        self.drift = (
            f"rendering is not append-only at char {at}: shorter conversation has "
            f"{short[at : at + 40]!r}, longer has {long[at : at + 40]!r}"
        )
        warnings.warn(
            f"Chat template {self.drift}. Falling back to one training sample per turn "
            "(each turn's prompt is rendered afresh). Run `toolgym check-template` for details.",
            TemplateDriftWarning,
            stacklevel=3,
        )


@dataclass(frozen=True)
class TokenDrift:
    """A run of positions where the incremental ids and the full rendering's ids differ."""

    position: int
    incremental: list[str]
    full: list[str]


@dataclass(frozen=True)
class TemplateReport:
    """What :func:`check_template` found."""

    append_only: bool
    drift: list[TokenDrift]
    n_incremental: int
    n_full: int
    divergence: str | None = None

    @property
    def ok(self) -> bool:
        """True when incremental prompts equal the full rendering token for token."""
        return self.append_only and not self.drift

    def format(self) -> str:
        """Human-readable summary for the CLI."""
        if self.ok:
            return f"OK: incremental and full rendering agree on all {self.n_full} tokens."
        lines = (
            []
            if self.append_only
            else [
                f"NOT APPEND-ONLY: {self.divergence}",
                "Training falls back to one sample per turn for this template.",
            ]
        )
        for d in self.drift:
            lines.append(
                f"DRIFT at token {d.position}: incremental {d.incremental} vs full {d.full}"
            )
        lines.append(f"(incremental {self.n_incremental} tokens, full {self.n_full} tokens)")
        return "\n".join(lines)


def check_template(model_dir: str | Path | ChatTokenizer) -> TemplateReport:
    """Render a multi-turn tool conversation incrementally and in full, and compare the ids.

    The policy's turns are simulated by the template's own rendering of each
    assistant message, cut after its end-of-turn token, so any difference is
    the template's or the tokenizer's, not a model's.
    """
    chat = (
        model_dir
        if isinstance(model_dir, ChatTokenizer)
        else ChatTokenizer.from_pretrained(model_dir)
    )
    messages = example_conversation()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TemplateDriftWarning)
        prompt = _replay(chat, messages)
    full = chat.encode(chat.render(messages, EXAMPLE_TOOLS, add_generation_prompt=True))
    if prompt.append_only:
        drift = _token_drift(chat, prompt.prompt_token_ids, full)
    else:
        drift = []
    return TemplateReport(
        prompt.append_only, drift, len(prompt.prompt_token_ids), len(full), prompt.drift
    )


def _replay(chat: ChatTokenizer, messages: list[Message]) -> IncrementalPrompt:
    """Feed ``messages`` through an IncrementalPrompt, simulating each assistant turn."""
    prompt = IncrementalPrompt(chat, messages[:2], EXAMPLE_TOOLS)
    pending: list[Message] = []
    for i, msg in enumerate(messages[2:], start=2):
        if msg["role"] != "assistant":
            pending.append(msg)
            continue
        if pending:
            prompt.add_observation(*pending)
            pending = []
        prompt.add_action(_simulated_action(chat, messages[:i], msg), msg)
    if pending:
        prompt.add_observation(*pending)
    return prompt


def _simulated_action(chat: ChatTokenizer, history: list[Message], msg: Message) -> list[int]:
    """Ids a perfect policy would sample for ``msg``: its rendering up to its end-of-turn token."""
    prompt = chat.render(history, EXAMPLE_TOOLS, add_generation_prompt=True)
    rendered = chat.render([*history, msg], EXAMPLE_TOOLS, add_generation_prompt=False)
    start = len(prompt) if rendered.startswith(prompt) else _first_difference(prompt, rendered)
    ids = chat.encode(rendered[start:])
    stops = [i for i, t in enumerate(ids) if t in chat.eos_token_ids]
    return ids[: stops[0] + 1] if stops else ids


def _token_drift(chat: ChatTokenizer, inc: list[int], full: list[int]) -> list[TokenDrift]:
    tokens = chat.tokenizer.convert_ids_to_tokens
    matcher = difflib.SequenceMatcher(a=inc, b=full, autojunk=False)
    return [
        TokenDrift(i1, tokens(inc[i1:i2]), tokens(full[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


EXAMPLE_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "python",
            "description": "Run Python code and return its stdout.",
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string"}},
                "required": ["code"],
            },
        },
    }
]


def example_conversation() -> list[Message]:
    """A two-call tool conversation with reasoning, used by :func:`check_template`."""
    call = {
        "id": "call_0",
        "type": "function",
        "function": {"name": "python", "arguments": {"code": "print(6 * 7)"}},
    }
    return [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": "What is 6 * 7? Use the tool."},
        {"role": "assistant", "content": "<think>Use python.</think>", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "content": "42"},
        {"role": "assistant", "content": "<think>It printed 42.</think>The answer is 42."},
        {"role": "user", "content": "And 6 * 8?"},
        {"role": "assistant", "content": "<think>Add 6.</think>48.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "content": "42"},
        {"role": "tool", "tool_call_id": "call_0", "content": "(ignored)"},
    ]


def _overlap(sampled: list[int], closing: list[int]) -> int:
    """Largest k such that ``sampled`` ends with the first k ids of ``closing``."""
    for k in range(min(len(sampled), len(closing)), 0, -1):
        if sampled[-k:] == closing[:k]:
            return k
    return 0


def _first_difference(a: str, b: str) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def _generation_eos_ids(model_dir: Path) -> list[int]:
    """EOS ids from ``generation_config.json`` (chat models often list several)."""
    if not (model_dir / "generation_config.json").exists():
        return []
    from transformers import GenerationConfig

    eos = GenerationConfig.from_pretrained(model_dir).eos_token_id
    if eos is None:
        return []
    return [eos] if isinstance(eos, int) else list(eos)
