"""An in-process vLLM engine as a token-in/token-out policy (``pip install -e '.[gpu]'``).

Same contract as :class:`~toolgym.agents.hf.HFAgent`: ``act`` continues
``conversation.prompt_token_ids`` (or renders the messages with the chat
template), and returns the sampled ids verbatim, end-of-turn token included,
with one log-prob per id and the policy version that produced them. vLLM
schedules concurrent ``act`` calls itself (continuous batching), so there is
no batcher here.

Log-probabilities: each request asks for ``logprobs=0`` -- the sampled token's
log-prob and no alternatives -- from an engine started with
``logprobs_mode="processed_logprobs"``, so the value is ``log_softmax`` of the
scores the token was sampled from, after temperature and top-p, as HFAgent
reports it (vLLM's default mode would give the raw ``T=1`` distribution).
Greedy decoding reports the ``T=1`` distribution, as HFAgent does.

Weight updates (:meth:`VLLMAgent.aupdate_weights`) wait for the requests in
flight, hold new ones back, load the weights and clear the prefix cache (its
KV blocks were computed with the old weights). So, as with HFAgent, every turn
is sampled under one version of the weights, and its stamp says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolgym._sync import run_sync
from toolgym.agents.base import DEFAULT_SAMPLING, AgentBase, AgentTurn, Conversation, SamplingParams
from toolgym.agents.templates import ChatTokenizer
from toolgym.agents.vllm_engine import DEFAULT_VLLM, VLLMConfig, VLLMEngine, weight_buckets
from toolgym.errors import AgentError

if TYPE_CHECKING:
    import torch

FINISH_REASONS = {"stop": "stop", "length": "length"}
"""vLLM's finish reasons that end a turn normally; ``abort`` (engine paused or shut
down) is an :class:`~toolgym.errors.AgentError`."""


@dataclass
class EngineStats:
    """Counters of a :class:`VLLMAgent`, read by trainers for throughput metrics."""

    requests: int = 0
    """``act`` requests served."""
    tokens: int = 0
    """Tokens sampled."""
    seconds: float = 0.0
    """Wall-clock time with at least one request in flight (so tokens / seconds is throughput)."""


@dataclass(frozen=True)
class Sample:
    """What a finished vLLM request produced."""

    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str


def sample_of(output: Any) -> Sample:
    """Read ids, log-probs and finish reason from a finished vLLM ``RequestOutput``.

    Raises:
        AgentError: the request did not finish normally, or came back without log-probs.
    """
    completion = output.outputs[0]
    reason = FINISH_REASONS.get(str(completion.finish_reason))
    if not output.finished or reason is None:
        raise AgentError(f"vLLM ended the request with finish_reason="
                         f"{completion.finish_reason!r}: the engine was paused, shut down or "
                         "aborted the request; retry once it runs again.")
    ids = list(completion.token_ids)
    steps = completion.logprobs
    if steps is None or len(steps) != len(ids):
        raise AgentError("vLLM returned no log-prob per sampled token; the request must ask "
                         "for logprobs=0.")
    return Sample(ids, [float(step[t].logprob) for t, step in zip(ids, steps, strict=True)],
                  reason)


def sampling_kwargs(sampling: SamplingParams, stop_ids: Sequence[int],
                    seed: int | None) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one request.

    The end-of-turn ids are passed as stop ids so the engine stops exactly where
    HFAgent does (tokenizer EOS plus the generation config's), whatever vLLM
    itself would read from the checkpoint.
    """
    return {
        "n": 1,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_new_tokens,
        "stop_token_ids": list(stop_ids),
        "logprobs": 0,
        "seed": seed,
    }


class _Gate:
    """Requests in flight versus exclusive engine work (weight updates, sleep).

    ``hold`` stops new requests at once and returns when the running ones are
    done; ``release`` lets requests run again. It also measures busy time.
    """

    def __init__(self, stats: EngineStats) -> None:
        self._cond = asyncio.Condition()
        self._running = 0
        self._held = False
        self._busy_since = 0.0
        self._stats = stats

    @contextlib.asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._held)
            self._running += 1
            if self._running == 1:
                self._busy_since = time.perf_counter()
        try:
            yield
        finally:
            async with self._cond:
                self._running -= 1
                if self._running == 0:
                    self._stats.seconds += time.perf_counter() - self._busy_since
                self._cond.notify_all()

    async def hold(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._held)
            self._held = True
            await self._cond.wait_for(lambda: self._running == 0)

    async def release(self) -> None:
        async with self._cond:
            self._held = False
            self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        await self.hold()
        try:
            yield
        finally:
            await self.release()


class VLLMAgent(AgentBase):
    """Policy served by an in-process vLLM engine (continuous batching, exact ids, logprobs).

    Use it from one event loop: the engine's output handler lives on the loop
    of the first request (the sync twins use toolgym's bridge loop).

    Args:
        model: A model directory (weights, config and tokenizer; ``save_pretrained``).
        sampling: Temperature, top-p and the per-turn token budget.
        seed: Request ``k`` (counted from 0) samples with seed ``seed + k``; None: unseeded.
        config: Engine settings (memory share, dtype, max length, ...).
        chat: The chat tokenizer; default: loaded from ``model``.
        engine: A started engine; default: a :class:`VLLMEngine` on ``model``
            (tests pass a stand-in).

    Example (needs vLLM and a GPU)::

        agent = VLLMAgent("Qwen2.5-0.5B-Instruct", seed=0, config=VLLMConfig(enforce_eager=True))
        turn = agent.act_sync(Conversation([{"role": "user", "content": "hi"}]))
        assert len(turn.token_ids) == len(turn.logprobs)
        agent.close()
    """

    def __init__(
        self,
        model: str | Path,
        *,
        sampling: SamplingParams = DEFAULT_SAMPLING,
        seed: int | None = None,
        config: VLLMConfig = DEFAULT_VLLM,
        chat: ChatTokenizer | None = None,
        engine: Any | None = None,
    ) -> None:
        self.chat = chat or ChatTokenizer.from_pretrained(model)
        self.config = config
        self.engine = engine or VLLMEngine(model, config, seed=seed)
        self.sampling = sampling
        self.seed = seed
        self.policy_version = 0
        """Set by :meth:`aupdate_weights`; stamped on every turn."""
        self.stats = EngineStats()
        self._gate = _Gate(self.stats)
        self._requests = 0
        """Requests made: request ``k`` samples with seed ``seed + k``."""
        self._asleep = False
        self._closed = False

    async def act(self, conversation: Conversation) -> AgentTurn:
        """Sample the next turn, continuing ``conversation.prompt_token_ids`` when given.

        Raises:
            AgentError: vLLM rejected the request (e.g. a prompt over ``max_model_len``)
                or aborted it.
        """
        start = time.perf_counter()
        prompt = self.chat.prompt_ids(conversation)
        k, self._requests = self._requests, self._requests + 1
        params = sampling_kwargs(self.sampling, self.chat.eos_token_ids,
                                 None if self.seed is None else self.seed + k)
        async with self._gate.request():
            version = self.policy_version
            try:
                output = await self.engine.generate(prompt, params, f"toolgym-{k}")
            except ValueError as exc:
                raise AgentError(f"vLLM rejected the request: {exc}") from exc
        sample = sample_of(output)
        self.stats.requests += 1
        self.stats.tokens += len(sample.token_ids)
        ids = sample.token_ids
        ended = bool(ids) and ids[-1] in self.chat.eos_token_ids
        return AgentTurn(
            text=self.chat.decode(ids[:-1] if ended else ids),
            token_ids=ids,
            logprobs=sample.logprobs,
            finish_reason=sample.finish_reason,
            prompt_token_ids=prompt,
            usage={"prompt_tokens": len(prompt), "completion_tokens": len(ids)},
            latency_s=time.perf_counter() - start,
            policy_version=version,
        )

    def sampler_state(self) -> dict[str, int]:
        """What a checkpoint keeps so a resumed run continues the per-request seeds."""
        return {"requests": self._requests}

    def load_sampler_state(self, state: Mapping[str, int]) -> None:
        """Undo :meth:`sampler_state`."""
        self._requests = int(state["requests"])

    async def aupdate_weights(
        self, state_dict: Mapping[str, torch.Tensor] | None = None, *, version: int | None = None
    ) -> int:
        """Load new weights between requests (never during one) and set ``policy_version``.

        Args:
            state_dict: Hugging Face-named weights (all of them, or a subset such
                as the changed layers); None only sets the version.
            version: New version; default: the old one plus one.

        Returns:
            The new ``policy_version``.

        Raises:
            RuntimeError: the engine is asleep; call :meth:`wake_up` first.
        """
        if self._asleep:
            raise RuntimeError("VLLMAgent is asleep: call wake_up() before updating weights.")
        async with self._gate.exclusive():
            if state_dict is not None:
                await self._push(state_dict)
            self.policy_version = self.policy_version + 1 if version is None else version
            return self.policy_version

    def update_weights(
        self, state_dict: Mapping[str, torch.Tensor] | None = None, *, version: int | None = None
    ) -> int:
        """Blocking twin of :meth:`aupdate_weights` (for agents driven through ``act_sync``)."""
        return run_sync(self.aupdate_weights(state_dict, version=version))

    async def sleep(self, level: int = 1) -> None:
        """Free GPU memory (needs ``config.enable_sleep_mode``); requests wait for :meth:`wake_up`.

        Level 1 moves the weights to host memory; level 2 discards them, so push
        weights with :meth:`aupdate_weights` after waking up.
        """
        if not self._asleep:
            await self._gate.hold()
            self._asleep = True
            await self.engine.sleep(level)

    async def wake_up(self) -> None:
        """Reload what :meth:`sleep` freed and let requests run again."""
        if self._asleep:
            await self.engine.wake_up()
            self._asleep = False
            await self._gate.release()

    async def aclose(self) -> None:
        """Shut the engine down; a second call does nothing."""
        if not self._closed:
            self._closed = True
            self.engine.shutdown()

    async def _push(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Send the weights in buckets (encoded off the loop), then drop stale KV blocks."""
        blobs = weight_buckets(state_dict, self.config.update_bucket_mb << 20)
        while (blob := await asyncio.to_thread(next, blobs, None)) is not None:
            await self.engine.load_weights(blob)
        await self.engine.reset_prefix_cache()
