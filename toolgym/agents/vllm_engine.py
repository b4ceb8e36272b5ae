"""The boundary to vLLM: engine settings, the ``AsyncLLM`` adapter and the worker-side loader.

This is the only module that imports vLLM, and only inside functions, so
``import toolgym.agents`` works where vLLM is not installed. Targeted API:
vLLM's V1 engine, ``vllm>=0.10.2`` (the first release with
``logprobs_mode="processed_logprobs"``, which makes the returned log-probs those
of the distribution a token was sampled from). Everything used here --
``AsyncLLM.from_engine_args``, ``generate(prompt, params, request_id)``,
``collective_rpc(method, args=)`` with a ``worker_extension_cls``,
``reset_prefix_cache``, ``sleep`` / ``wake_up`` -- exists from that release on.

Weights travel to the engine as safetensors-encoded bytes. ``AsyncLLM`` always
runs its engine core in a child process, and ``collective_rpc`` arguments are
msgpack-encoded on the way there: ``bytes`` arrive intact in every V1 release,
whereas a tensor argument arrives as a bare ``[dtype, shape, buffer]`` list
(the decoder has no type to rebuild it into), and large ones lose their buffer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolgym.errors import ConfigError

if TYPE_CHECKING:
    import torch

WORKER_EXTENSION = "toolgym.agents.vllm_engine.WeightLoader"
"""Qualified name vLLM imports in its worker processes (``worker_extension_cls``)."""
LOAD_METHOD = "toolgym_load_weights"
"""The :class:`WeightLoader` method ``collective_rpc`` calls by name."""


@dataclass(frozen=True)
class VLLMConfig:
    """How the in-process vLLM engine is started.

    Example:
        >>> VLLMConfig(gpu_memory_utilization=0.3).enforce_eager
        False
    """

    dtype: str = "auto"
    """Weight dtype (auto: the checkpoint's; bfloat16, float16 or float32)."""
    gpu_memory_utilization: float = 0.9
    """Share of GPU memory vLLM takes for weights and KV cache; lower it (e.g. 0.3) when
    a trainer shares the GPU."""
    max_model_len: int | None = None
    """Longest prompt + reply in tokens; None: the model's own limit."""
    tensor_parallel_size: int = 1
    """GPUs the engine shards the model over."""
    enforce_eager: bool = False
    """Skip CUDA-graph capture: starts faster, decodes slower (tests, tiny models)."""
    enable_prefix_caching: bool = True
    """Reuse KV blocks of shared prompt prefixes (GRPO groups share their prompt)."""
    enable_sleep_mode: bool = False
    """Allow ``sleep()`` / ``wake_up()`` to free GPU memory between rollout phases."""
    update_bucket_mb: int = 512
    """Largest chunk of weights sent to the engine in one RPC (bounds the extra host memory)."""

    def __post_init__(self) -> None:
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError("vllm.gpu_memory_utilization must be in (0, 1]; got "
                              f"{self.gpu_memory_utilization}.")
        if self.tensor_parallel_size < 1 or self.update_bucket_mb < 1:
            raise ConfigError("vllm.tensor_parallel_size and vllm.update_bucket_mb must be >= 1.")


DEFAULT_VLLM = VLLMConfig()


def engine_args(model: str | Path, config: VLLMConfig, seed: int | None) -> dict[str, Any]:
    """Keyword arguments of ``vllm.AsyncEngineArgs`` for ``model`` under ``config``.

    Besides the configured values it fixes what the agent's contract needs:
    log-probs after temperature/top-p (``processed_logprobs``), sampling
    defaults that ignore the checkpoint's ``generation_config`` (a shipped
    ``top_k=20`` would otherwise leak in, as in HFAgent), and the worker
    extension that loads pushed weights.
    """
    args: dict[str, Any] = {
        "model": str(model),
        "tokenizer": str(model),
        "dtype": config.dtype,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        "max_model_len": config.max_model_len,
        "tensor_parallel_size": config.tensor_parallel_size,
        "enforce_eager": config.enforce_eager,
        "enable_prefix_caching": config.enable_prefix_caching,
        "enable_sleep_mode": config.enable_sleep_mode,
        "logprobs_mode": "processed_logprobs",
        "generation_config": "vllm",
        "worker_extension_cls": WORKER_EXTENSION,
        "disable_log_stats": True,
    }
    if seed is not None:
        args["seed"] = seed
    return args


def weight_buckets(state_dict: Mapping[str, torch.Tensor], max_bytes: int) -> Iterator[bytes]:
    """Encode ``state_dict`` as safetensors blobs of at most ``max_bytes`` each.

    A tensor larger than ``max_bytes`` travels alone. Tensors are copied to
    the host (a copy even for host tensors: safetensors refuses tensors that
    share storage, as a tied ``lm_head`` does).
    """
    from safetensors.torch import save

    bucket: dict[str, torch.Tensor] = {}
    size = 0
    for name, tensor in state_dict.items():
        nbytes = tensor.numel() * tensor.element_size()
        if bucket and size + nbytes > max_bytes:
            yield save(bucket)
            bucket, size = {}, 0
        bucket[name] = tensor.detach().to("cpu", copy=True).contiguous()
        size += nbytes
    if bucket:
        yield save(bucket)


class VLLMEngine:
    """The slice of vLLM's ``AsyncLLM`` that :class:`~toolgym.agents.vllm.VLLMAgent` uses.

    A seam, so the agent's own logic runs in tests without vLLM; construct it
    only where vLLM and a GPU exist.

    Raises:
        ConfigError: vLLM is not installed.
    """

    def __init__(self, model: str | Path, config: VLLMConfig, *, seed: int | None) -> None:
        try:
            from vllm import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as exc:
            raise ConfigError("The vLLM backend needs vLLM >= 0.10.2 and a CUDA GPU: "
                              "pip install -e '.[gpu]'.") from exc
        self._llm = AsyncLLM.from_engine_args(AsyncEngineArgs(**engine_args(model, config, seed)))

    async def generate(self, prompt_ids: list[int], params: Mapping[str, Any],
                       request_id: str) -> Any:
        """Run one request to the end and return its final ``RequestOutput``."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        sampling = SamplingParams(**params, output_kind=RequestOutputKind.FINAL_ONLY)
        final = None
        async for output in self._llm.generate({"prompt_token_ids": prompt_ids}, sampling,
                                               request_id):
            final = output
        return final

    async def load_weights(self, blob: bytes) -> None:
        """Load one :func:`weight_buckets` blob in every worker."""
        await self._llm.collective_rpc(LOAD_METHOD, args=(blob,))

    async def reset_prefix_cache(self) -> None:
        """Drop cached KV blocks (they were computed with the previous weights)."""
        await self._llm.reset_prefix_cache()

    async def sleep(self, level: int) -> None:
        """Level 1: weights to host memory, KV cache freed; level 2: both discarded."""
        await self._llm.sleep(level)

    async def wake_up(self) -> None:
        """Undo :meth:`sleep`."""
        await self._llm.wake_up()

    def shutdown(self) -> None:
        """Stop the engine-core process."""
        self._llm.shutdown()


class WeightLoader:
    """Mixed into vLLM's worker class (``worker_extension_cls``); runs in the worker process.

    vLLM refuses an extension whose attribute names clash with the worker's,
    so this class defines one prefixed method and nothing else.
    """

    def toolgym_load_weights(self, blob: bytes) -> int:
        """Load a safetensors blob of Hugging Face-named weights; return how many tensors.

        The model's ``load_weights`` maps HF names onto vLLM's fused layers
        (q/k/v into ``qkv_proj``, ...) and skips a tied ``lm_head``.
        """
        from safetensors.torch import load

        weights = load(bytes(blob))
        self.model_runner.model.load_weights(weights=weights.items())  # type: ignore[attr-defined]
        return len(weights)
