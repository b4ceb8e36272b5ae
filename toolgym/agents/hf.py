"""A local Hugging Face causal LM as a token-in/token-out policy.

Concurrent ``act`` calls are gathered by a :class:`~toolgym.agents.batching.Batcher`
into one left-padded ``generate`` call that runs in a worker thread, so the
event loop keeps driving sandboxes while the model works.

Log-probabilities: each returned logprob is ``log_softmax`` of the scores the
token was actually sampled from, after temperature and top-p, computed by
:func:`~toolgym.agents.sampling.sampling_logits`, the function the trainer
recomputes them with ("processed logprobs"; a processor placed last in
``generate``'s processor list records them step by step, so memory stays at
one ``batch x vocab`` row instead of ``output_scores``' ``steps x batch x
vocab``). With ``temperature=1`` and ``top_p=1`` this is the model's own
``log_softmax``, which the tests check against a forward pass on the full
sequence. Greedy decoding (``temperature=0``) records the ``T=1`` distribution.

Sampling is exactly what :class:`SamplingParams` says: ``generate`` would
otherwise merge the checkpoint's ``generation_config.json`` into the request
(transformers 5 fills every field the request leaves unset, such as ``min_p``;
4.50+ also overrides fields left at their global default, such as
``temperature``), so for the duration of the call the model's generation
config is swapped for a blank one and every processor of ``generate``'s own
is set to a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from toolgym.agents.base import DEFAULT_SAMPLING, AgentBase, AgentTurn, Conversation, SamplingParams
from toolgym.agents.batching import Batcher
from toolgym.agents.sampling import sampling_logits
from toolgym.agents.templates import ChatTokenizer

# Fields of GenerationConfig set to no-ops, so neither a model's shipped
# defaults (Qwen: top_k=20, repetition_penalty=1.05) nor transformers' global
# ones (top_k=50) apply; temperature and top-p are toolgym's own processor.
# The warper fields are only valid (and only applied) when sampling.
_NEUTRAL = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "min_new_tokens": 0}
_NEUTRAL_WARPERS = {
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": 0,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
}


@dataclass
class GenerationStats:
    """Counters of an :class:`HFAgent` (written by its worker thread only)."""

    calls: int = 0
    """``generate`` calls (one per batch)."""
    requests: int = 0
    """``act`` requests served."""
    tokens: int = 0
    """Tokens returned (after trimming at EOS)."""
    seconds: float = 0.0
    """Time spent inside ``generate``."""


@dataclass(frozen=True)
class _Sample:
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str
    policy_version: int
    batch_size: int


class HFAgent(AgentBase):
    """Policy backed by a local ``transformers`` causal LM.

    Args:
        model: A model directory, or a loaded ``PreTrainedModel`` (then pass ``tokenizer``).
        tokenizer: A tokenizer or :class:`ChatTokenizer`; loaded from ``model`` when it is a path.
        sampling: Temperature, top-p and the per-turn token budget.
        seed: Seeds each batch (``seed + batch index``) in a forked RNG; None leaves the RNG alone.
        device: Where to run; default: where the model already is (CPU for paths).
        max_batch: Most concurrent requests in one ``generate``.
        max_wait_s: How long the first request waits for others to batch with.

    Example:
        >>> from tests.helpers.tiny_model import build_tiny_model
        >>> import tempfile
        >>> agent = HFAgent(build_tiny_model(tempfile.mkdtemp()), seed=0,
        ...                 sampling=SamplingParams(max_new_tokens=4))
        >>> turn = agent.act_sync(Conversation([{"role": "user", "content": "hi"}]))
        >>> len(turn.token_ids) == len(turn.logprobs) <= 4
        True
        >>> agent.close()
    """

    def __init__(
        self,
        model: str | Path | Any,
        tokenizer: Any | None = None,
        *,
        sampling: SamplingParams = DEFAULT_SAMPLING,
        seed: int | None = None,
        device: str | torch.device | None = None,
        max_batch: int = 32,
        max_wait_s: float = 0.005,
    ) -> None:
        self.model, self.chat = _load(model, tokenizer, device)
        self.device = next(self.model.parameters()).device
        self.sampling = sampling
        self.seed = seed
        self.policy_version = 0
        """Bumped by :meth:`update_weights`; stamped on every turn."""
        self.stats = GenerationStats()
        self.lock = threading.Lock()
        """One generate or one weight update at a time; trainers that update the model in
        place hold it (not re-entrant: do not call ``update_weights`` inside it)."""
        self._batcher: Batcher[list[int], _Sample] = Batcher(
            self._generate_batch, max_batch=max_batch, max_wait_s=max_wait_s
        )

    async def act(self, conversation: Conversation) -> AgentTurn:
        """Sample the next turn, continuing ``conversation.prompt_token_ids`` when given."""
        start = time.perf_counter()
        prompt = self.chat.prompt_ids(conversation)
        sample = await self._batcher.submit(prompt)
        ended = sample.finish_reason == "stop"
        text = self.chat.decode(sample.token_ids[:-1] if ended else sample.token_ids)
        return AgentTurn(
            text=text,
            token_ids=sample.token_ids,
            logprobs=sample.logprobs,
            finish_reason=sample.finish_reason,
            prompt_token_ids=prompt,
            usage={"prompt_tokens": len(prompt), "completion_tokens": len(sample.token_ids)},
            latency_s=time.perf_counter() - start,
            policy_version=sample.policy_version,
            info={"batch_size": sample.batch_size},
        )

    def update_weights(
        self, state_dict: Mapping[str, torch.Tensor] | None = None, *, version: int | None = None
    ) -> int:
        """Load new weights between batches (never during one) and bump ``policy_version``.

        Args:
            state_dict: Full state dict (strict); None only bumps the version
                (see :meth:`paused` for in-place updates of a shared model).
            version: New version; default: the old one plus one.

        Returns:
            The new ``policy_version``.
        """
        with self.lock:
            if state_dict is not None:
                self.model.load_state_dict(state_dict, strict=True)
            self.policy_version = self.policy_version + 1 if version is None else version
            return self.policy_version

    def sampler_state(self) -> dict[str, int]:
        """What a checkpoint keeps so a resumed run continues the seeded sampling stream
        (batch ``k`` samples with seed ``seed + k``)."""
        return {"calls": self.stats.calls}

    def load_sampler_state(self, state: Mapping[str, int]) -> None:
        """Undo :meth:`sampler_state`."""
        self.stats.calls = int(state["calls"])

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold generation off while the caller changes a shared model in place.

        For trainers that hand their own model object to the agent: ``with
        agent.paused(): optimizer.step()`` waits for the running batch, keeps
        the next one from starting mid-update, and bumps ``policy_version``.
        """
        with self.lock:
            yield
            self.policy_version += 1

    async def aupdate_weights(
        self, state_dict: Mapping[str, torch.Tensor] | None = None, *, version: int | None = None
    ) -> int:
        """Async twin of :meth:`update_weights`: waits for the running batch off the event loop."""
        return await asyncio.to_thread(self.update_weights, state_dict, version=version)

    async def aclose(self) -> None:
        """Stop the worker thread; a second call does nothing."""
        self._batcher.close()

    def _generate_batch(self, prompts: list[list[int]]) -> list[_Sample]:
        """Worker thread: one left-padded ``generate`` for the whole batch."""
        from transformers import LogitsProcessorList

        start = time.perf_counter()
        with self.lock, torch.inference_mode(), self._seeded(), _blank_defaults(self.model):
            input_ids, attention_mask = _left_pad(prompts, self._pad_id, self.device)
            recorder = LogprobRecorder()
            sequences = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=self._generation_config(),
                logits_processor=LogitsProcessorList([SamplingWarper(self.sampling), recorder]),
            )
            logprobs = recorder.finish(sequences, input_ids.shape[1])
            version = self.policy_version
        samples = [
            _trim(
                sequences[i, input_ids.shape[1] :].tolist(),
                logprobs[i].tolist(),
                self.chat.eos_token_ids,
                version,
                len(prompts),
            )
            for i in range(len(prompts))
        ]
        self.stats.calls += 1
        self.stats.requests += len(prompts)
        self.stats.tokens += sum(len(s.token_ids) for s in samples)
        self.stats.seconds += time.perf_counter() - start
        return samples

    @property
    def _pad_id(self) -> int:
        pad = self.chat.tokenizer.pad_token_id
        return self.chat.eos_token_ids[0] if pad is None else pad

    def _generation_config(self) -> Any:
        from transformers import GenerationConfig

        sampling = not self.sampling.greedy
        return GenerationConfig(
            do_sample=sampling,
            max_new_tokens=self.sampling.max_new_tokens,
            eos_token_id=list(self.chat.eos_token_ids),
            pad_token_id=self._pad_id,
            return_dict_in_generate=False,
            **_NEUTRAL,
            **(_NEUTRAL_WARPERS if sampling else {}),
        )

    @contextlib.contextmanager
    def _seeded(self) -> Iterator[None]:
        """Seed this batch without disturbing the caller's global RNG stream."""
        if self.seed is None:
            yield
            return
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed + self.stats.calls)
            yield


class LogprobRecorder:
    """Logits processor, placed last, that records the log-prob of every chosen token.

    At a call with ``n`` ids it receives the final scores for position ``n``;
    the token at position ``n`` is visible at the next call, so one
    ``batch x vocab`` row of log-probs is kept between calls.
    """

    def __init__(self) -> None:
        self.by_position: dict[int, torch.Tensor] = {}
        self._last: torch.Tensor | None = None
        self._last_len = -1

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Record, and return ``scores`` unchanged."""
        n = input_ids.shape[1]
        if self._last is not None and n == self._last_len + 1:
            self.by_position[n - 1] = self._last.gather(1, input_ids[:, -1:]).squeeze(1)
        self._last = torch.log_softmax(scores.float(), dim=-1)
        self._last_len = n
        return scores

    def finish(self, sequences: torch.Tensor, start: int) -> torch.Tensor:
        """Log-probs of ``sequences[:, start:]`` as a ``(batch, new_tokens)`` tensor."""
        end = sequences.shape[1]
        if end - 1 not in self.by_position and self._last is not None and self._last_len == end - 1:
            self.by_position[end - 1] = self._last.gather(1, sequences[:, -1:]).squeeze(1)
        if end == start:
            return sequences.new_zeros((sequences.shape[0], 0), dtype=torch.float32)
        return torch.stack([self.by_position[p] for p in range(start, end)], dim=1)


class SamplingWarper:
    """Logits processor: temperature and top-p by :func:`sampling_logits` (no-op when greedy)."""

    def __init__(self, sampling: SamplingParams) -> None:
        self.sampling = sampling

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.sampling.greedy:
            return scores
        return sampling_logits(scores, self.sampling.temperature, self.sampling.top_p)


@contextlib.contextmanager
def _blank_defaults(model: Any) -> Iterator[None]:
    """Swap the model's generation config for a blank one while ``generate`` runs.

    ``generate`` merges the model's config into the request's (see the module
    docstring); with a blank one there is nothing from the checkpoint to merge.
    A LoRA ``PeftModel`` generates with its base model's config.
    """
    from transformers import GenerationConfig

    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    saved = target.generation_config
    target.generation_config = GenerationConfig()
    try:
        yield
    finally:
        target.generation_config = saved


def _left_pad(
    prompts: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


def _trim(
    ids: list[int], logprobs: list[float], eos: Sequence[int], version: int, batch: int
) -> _Sample:
    """Keep the ids up to and including the first EOS; the rest is padding."""
    stop = next((k for k, t in enumerate(ids) if t in eos), None)
    if stop is None:
        return _Sample(ids, logprobs, "length", version, batch)
    return _Sample(ids[: stop + 1], logprobs[: stop + 1], "stop", version, batch)


def _load(
    model: Any, tokenizer: Any, device: str | torch.device | None
) -> tuple[Any, ChatTokenizer]:
    """Load (or adopt) the model and wrap the tokenizer; models we load are put in eval mode."""
    if isinstance(model, str | Path):
        from transformers import AutoModelForCausalLM

        loaded = AutoModelForCausalLM.from_pretrained(model).eval()
        chat = (
            tokenizer
            if isinstance(tokenizer, ChatTokenizer)
            else ChatTokenizer.from_pretrained(model)
        )
        return (loaded.to(device) if device is not None else loaded), chat
    if tokenizer is None:
        raise ValueError(
            "HFAgent(model=<PreTrainedModel>) needs tokenizer=<tokenizer or ChatTokenizer>."
        )
    chat = (
        tokenizer
        if isinstance(tokenizer, ChatTokenizer)
        else ChatTokenizer(tokenizer, eos_token_ids=_eos_ids(model, tokenizer))
    )
    return (model.to(device) if device is not None else model), chat


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """End-of-turn ids: the tokenizer's EOS plus the model generation config's."""
    eos = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    extra = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    extra = [] if extra is None else [extra] if isinstance(extra, int) else list(extra)
    return eos + [i for i in extra if i not in eos]
