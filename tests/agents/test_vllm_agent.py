"""VLLMAgent: its own logic on the CPU (a stand-in engine beneath it), the real engine on a GPU.

The CPU tests cover everything that does not need vLLM: reading a finished
request, the request and engine arguments, weight encoding and the worker-side
loader, and the agent's gating of requests against weight updates and sleep.
The ``gpu`` tests run the real engine (``pip install -e '.[gpu]'`` then
``pytest -m gpu tests/agents/test_vllm_agent.py``); they drive it through the
sync twins, so one engine serves every test on toolgym's bridge loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from safetensors.torch import load

from tests.agents.conftest import ADDITION
from tests.helpers.tiny_model import build_tiny_model, build_tokenizer, train_tiny_model
from toolgym._sync import run_sync
from toolgym.agents import ChatTokenizer, Conversation, IncrementalPrompt, SamplingParams
from toolgym.agents.vllm import VLLMAgent, sample_of, sampling_kwargs
from toolgym.agents.vllm_engine import (
    LOAD_METHOD,
    WORKER_EXTENSION,
    VLLMConfig,
    WeightLoader,
    engine_args,
    weight_buckets,
)
from toolgym.errors import AgentError, ConfigError
from toolgym.trainers.base import TrainerConfig


def conv(text: str) -> Conversation:
    return Conversation([{"role": "user", "content": text}])


def request_output(ids: list[int], finish: str | None = "stop", *, finished: bool = True,
                   logprobs: bool = True) -> Any:
    """A finished ``RequestOutput`` as vLLM builds it: one dict per step, sampled id first."""
    steps = [{t: SimpleNamespace(logprob=-0.5 * (i + 1)), 10_000: SimpleNamespace(logprob=-9.0)}
             for i, t in enumerate(ids)]
    completion = SimpleNamespace(token_ids=ids, logprobs=steps if logprobs else None,
                                 finish_reason=finish)
    return SimpleNamespace(finished=finished, outputs=[completion])


class StubEngine:
    """Stands in for :class:`~toolgym.agents.vllm_engine.VLLMEngine` and records each call."""

    def __init__(self, reply: list[int], finish: str = "stop") -> None:
        self.reply, self.finish = reply, finish
        self.prompts: list[list[int]] = []
        self.params: list[dict[str, Any]] = []
        self.blobs: list[bytes] = []
        self.events: list[str] = []
        self.hold: asyncio.Event | None = None
        self.error: Exception | None = None

    async def generate(self, prompt_ids: list[int], params: dict[str, Any],
                       request_id: str) -> Any:
        self.events.append("generate")
        self.prompts.append(prompt_ids)
        self.params.append(dict(params))
        if self.error is not None:
            raise self.error
        if self.hold is not None:
            await self.hold.wait()
        return request_output(self.reply, self.finish)

    async def load_weights(self, blob: bytes) -> None:
        self.events.append("load")
        self.blobs.append(blob)

    async def reset_prefix_cache(self) -> None:
        self.events.append("reset")

    async def sleep(self, level: int) -> None:
        self.events.append(f"sleep {level}")

    async def wake_up(self) -> None:
        self.events.append("wake")

    def shutdown(self) -> None:
        self.events.append("shutdown")


@pytest.fixture(scope="module")
def chat() -> ChatTokenizer:
    return ChatTokenizer(build_tokenizer())


def stub_agent(chat: ChatTokenizer, reply_text: str = "42", *, eos: bool = True,
               **kwargs: Any) -> tuple[VLLMAgent, StubEngine]:
    reply = chat.encode(reply_text) + ([chat.eos_token_ids[0]] if eos else [])
    engine = StubEngine(reply, "stop" if eos else "length")
    return VLLMAgent("unused", chat=chat, engine=engine, **kwargs), engine


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.001)


# ---------------------------------------------------------------- pure parts
def test_sample_of_reads_the_sampled_tokens_logprob_and_ignores_alternatives() -> None:
    sample = sample_of(request_output([5, 7, 3]))
    assert sample.token_ids == [5, 7, 3]
    assert sample.logprobs == [-0.5, -1.0, -1.5] and sample.finish_reason == "stop"
    assert sample_of(request_output([5], "length")).finish_reason == "length"


@pytest.mark.parametrize(("output", "message"), [
    (request_output([5], "abort"), "finish_reason='abort'"),
    (request_output([5], None, finished=False), "finish_reason=None"),
    (request_output([5], logprobs=False), "logprobs=0"),
])
def test_sample_of_rejects_unfinished_aborted_or_logprob_less_outputs(output: Any,
                                                                      message: str) -> None:
    with pytest.raises(AgentError, match=message):
        sample_of(output)


def test_sampling_kwargs_ask_for_the_sampled_logprob_and_stop_on_every_eos_id() -> None:
    params = sampling_kwargs(SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=12),
                             (3, 9), seed=5)
    assert params == {"n": 1, "temperature": 0.7, "top_p": 0.9, "max_tokens": 12,
                      "stop_token_ids": [3, 9], "logprobs": 0, "seed": 5}


def test_engine_args_fix_logprob_mode_defaults_and_weight_loader(tmp_path: Path) -> None:
    args = engine_args(tmp_path, VLLMConfig(gpu_memory_utilization=0.3), seed=None)
    assert args["model"] == args["tokenizer"] == str(tmp_path)
    assert args["logprobs_mode"] == "processed_logprobs"
    assert args["generation_config"] == "vllm"
    assert args["worker_extension_cls"] == WORKER_EXTENSION
    assert args["gpu_memory_utilization"] == 0.3 and "seed" not in args
    assert engine_args(tmp_path, VLLMConfig(), seed=3)["seed"] == 3


def test_worker_extension_is_importable_by_its_qualified_name() -> None:
    module, _, name = WORKER_EXTENSION.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert cls is WeightLoader and callable(getattr(cls, LOAD_METHOD))
    assert [a for a in vars(cls) if not a.startswith("__")] == [LOAD_METHOD]


@pytest.mark.parametrize("bad", [{"gpu_memory_utilization": 0.0},
                                 {"gpu_memory_utilization": 1.5}, {"update_bucket_mb": 0}])
def test_vllm_config_rejects_impossible_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="vllm"):
        VLLMConfig(**bad)


def test_weight_buckets_round_trip_and_split_at_the_size_limit() -> None:
    embed = torch.randn(8, 4)
    state = {"embed.weight": embed, "lm_head.weight": embed,  # tied: shares storage
             "norm.weight": torch.ones(4, dtype=torch.bfloat16)}
    one = list(weight_buckets(state, max_bytes=1 << 20))
    assert len(one) == 1 and set(load(one[0])) == set(state)
    split = list(weight_buckets(state, max_bytes=embed.numel() * 4))
    assert [list(load(b)) for b in split] == [["embed.weight"], ["lm_head.weight"],
                                              ["norm.weight"]]
    for name, value in {k: v for b in split for k, v in load(b).items()}.items():
        assert torch.equal(value, state[name]) and value.dtype == state[name].dtype


def test_weight_loader_hands_named_tensors_to_the_model() -> None:
    received: list[tuple[str, torch.Tensor]] = []
    worker = WeightLoader()
    worker.model_runner = SimpleNamespace(  # type: ignore[attr-defined]
        model=SimpleNamespace(load_weights=lambda weights: received.extend(weights)))
    state = {"a": torch.arange(6.0).view(2, 3), "b": torch.zeros(2)}
    (blob,) = weight_buckets(state, max_bytes=1 << 20)
    assert getattr(worker, LOAD_METHOD)(memoryview(blob)) == 2
    assert {k: v.tolist() for k, v in received} == {k: v.tolist() for k, v in state.items()}


# ------------------------------------------------ the agent, on a stand-in engine
async def test_act_sends_the_exact_prompt_ids_and_returns_ids_verbatim(
        chat: ChatTokenizer) -> None:
    sampling = SamplingParams(temperature=0.7, max_new_tokens=5)
    agent, engine = stub_agent(chat, seed=7, sampling=sampling)
    turn = await agent.act(Conversation([{"role": "user", "content": "x"}],
                                        prompt_token_ids=[11, 12, 13]))
    await agent.act(conv("2+2"))
    await agent.aclose()
    await agent.aclose()
    assert engine.prompts[0] == [11, 12, 13] == turn.prompt_token_ids
    assert engine.prompts[1] == chat.encode(chat.render(conv("2+2").messages,
                                                        add_generation_prompt=True))
    assert turn.token_ids == engine.reply and turn.logprobs == [-0.5, -1.0, -1.5]
    assert turn.text == "42" and chat.decode(turn.token_ids) == "42<|im_end|>"
    assert (turn.finish_reason, turn.policy_version, turn.trainable) == ("stop", 0, True)
    assert [p["seed"] for p in engine.params] == [7, 8]
    assert engine.params[0]["stop_token_ids"] == list(chat.eos_token_ids)
    assert turn.usage == {"prompt_tokens": 3, "completion_tokens": 3}
    assert agent.stats.requests == 2 and agent.stats.tokens == 6 and agent.stats.seconds > 0
    assert engine.events.count("shutdown") == 1


async def test_a_turn_cut_by_the_budget_keeps_every_id_in_its_text(chat: ChatTokenizer) -> None:
    agent, _ = stub_agent(chat, "abc", eos=False)
    turn = await agent.act(conv("hi"))
    assert (turn.text, turn.finish_reason) == ("abc", "length")
    assert chat.decode(turn.token_ids) == turn.text


async def test_engine_rejections_become_agent_errors(chat: ChatTokenizer) -> None:
    agent, engine = stub_agent(chat)
    engine.error = ValueError("prompt is longer than max_model_len")
    with pytest.raises(AgentError, match="max_model_len"):
        await agent.act(conv("hi"))
    engine.error, engine.finish = None, "abort"
    with pytest.raises(AgentError, match="abort"):
        await agent.act(conv("hi"))


async def test_weight_update_waits_for_running_requests_and_holds_new_ones(
        chat: ChatTokenizer) -> None:
    agent, engine = stub_agent(chat)
    engine.hold = asyncio.Event()
    first = asyncio.ensure_future(agent.act(conv("a")))
    await until(lambda: len(engine.prompts) == 1)
    update = asyncio.ensure_future(agent.aupdate_weights({"w": torch.ones(2, 3)}))
    await asyncio.sleep(0.01)
    later = asyncio.ensure_future(agent.act(conv("b")))
    await asyncio.sleep(0.01)
    assert not update.done() and len(engine.prompts) == 1  # update waits; new request held
    engine.hold.set()
    assert await update == 1
    old, new = await first, await later
    assert (old.policy_version, new.policy_version) == (0, 1)
    assert engine.events == ["generate", "load", "reset", "generate"]
    assert torch.equal(load(engine.blobs[0])["w"], torch.ones(2, 3))
    assert await agent.aupdate_weights(version=10) == 10 and engine.events.count("load") == 1


async def test_sleep_holds_requests_until_wake_up(chat: ChatTokenizer) -> None:
    agent, engine = stub_agent(chat)
    await agent.sleep(2)
    pending = asyncio.ensure_future(agent.act(conv("zz")))
    await asyncio.sleep(0.01)
    assert not pending.done() and engine.prompts == []
    with pytest.raises(RuntimeError, match="wake_up"):
        await agent.aupdate_weights(version=3)
    await agent.wake_up()
    assert (await pending).policy_version == 0
    assert engine.events == ["sleep 2", "wake", "generate"]


def test_vllm_backend_needs_a_copy_of_the_weights() -> None:
    with pytest.raises(ConfigError, match="weight_sync: copy"):
        TrainerConfig(backend="vllm")
    assert TrainerConfig(backend="vllm", weight_sync="copy").vllm == VLLMConfig()


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_without_vllm_the_error_says_what_to_install(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "m")
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[gpu\]'"):
        VLLMAgent(model)


# ---------------------------------------------------------- the real engine
@pytest.fixture(scope="module")
def addition_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model that answers "a+b" and stops; head size 64, which every vLLM attention
    backend supports (the shared tiny models have 16)."""
    path = build_tiny_model(tmp_path_factory.mktemp("vllm"), chat_template="chatml",
                            hidden_size=128, num_heads=2)
    return train_tiny_model(path, ADDITION, steps=60, lr=1e-2)


@pytest.fixture(scope="module")
def gpu_agent(addition_dir: Path) -> Iterator[VLLMAgent]:
    pytest.importorskip("vllm", reason="pip install -e '.[gpu]'")
    config = VLLMConfig(dtype="float16", gpu_memory_utilization=0.25, max_model_len=512,
                        enforce_eager=True, enable_sleep_mode=True)
    agent = VLLMAgent(addition_dir, seed=0, config=config,
                      sampling=SamplingParams(max_new_tokens=12))
    yield agent
    agent.close()


def reference_logprobs(model: torch.nn.Module, prompt: list[int], sampled: list[int],
                       temperature: float) -> torch.Tensor:
    """log_softmax(logits / T) of a float32 transformers forward pass on the full sequence."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + sampled])).logits[0].float()
    logp = torch.log_softmax(logits / temperature, dim=-1)[len(prompt) - 1: -1]
    return logp.gather(1, torch.tensor(sampled)[:, None]).squeeze(1)


def act_all(agent: VLLMAgent, conversations: list[Conversation]) -> list[Any]:
    """Run the acts concurrently on the bridge loop, where the engine lives."""
    async def gather() -> list[Any]:
        return list(await asyncio.gather(*(agent.act(c) for c in conversations)))
    return run_sync(gather())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.filterwarnings("ignore")  # vLLM's own deprecation and runtime warnings
class TestOnGPU:
    @pytest.mark.parametrize("temperature", [1.0, 0.7])
    def test_concurrent_turns_decode_to_their_text_and_logprobs_match_transformers(
            self, gpu_agent: VLLMAgent, addition_dir: Path, temperature: float) -> None:
        from transformers import AutoModelForCausalLM

        gpu_agent.sampling = SamplingParams(temperature=temperature, max_new_tokens=12)
        turns = act_all(gpu_agent, [conv(f"{a}+{b}") for a in range(3) for b in range(3)])
        model = AutoModelForCausalLM.from_pretrained(addition_dir).eval()
        eos = gpu_agent.chat.eos_token_ids
        assert any(t.finish_reason == "stop" for t in turns), "the trained model should stop"
        for t in turns:
            assert len(t.token_ids) == len(t.logprobs) <= 12
            ended = t.finish_reason == "stop"
            assert gpu_agent.chat.decode(t.token_ids) == t.text + ("<|im_end|>" if ended else "")
            assert not set(t.token_ids[:-1]) & set(eos)
            ref = reference_logprobs(model, t.prompt_token_ids, t.token_ids, temperature)
            torch.testing.assert_close(torch.tensor(t.logprobs), ref, atol=5e-2, rtol=0)

    def test_it_continues_the_exact_prompt_ids(self, gpu_agent: VLLMAgent) -> None:
        gpu_agent.sampling = SamplingParams(temperature=0, max_new_tokens=6)
        prompt = IncrementalPrompt(gpu_agent.chat, [{"role": "user", "content": "1+1"}])
        (first,) = act_all(gpu_agent, [prompt.conversation()])
        prompt.add_turn(first)
        prompt.add_observation({"role": "user", "content": "2+2"})
        (second,) = act_all(gpu_agent, [prompt.conversation()])
        n = len(first.prompt_token_ids)
        assert second.prompt_token_ids[:n] == first.prompt_token_ids
        assert second.prompt_token_ids[n: n + len(first.token_ids)] == first.token_ids

    def test_weight_updates_change_outputs_bump_the_version_and_restore_exactly(
            self, gpu_agent: VLLMAgent, addition_dir: Path) -> None:
        from transformers import AutoModelForCausalLM

        gpu_agent.sampling = SamplingParams(temperature=0, max_new_tokens=5)
        state = AutoModelForCausalLM.from_pretrained(addition_dir).state_dict()
        (before,) = act_all(gpu_agent, [conv("1+2")])
        version = gpu_agent.update_weights({k: torch.zeros_like(v) for k, v in state.items()})
        (zeroed,) = act_all(gpu_agent, [conv("1+2")])
        uniform = -math.log(len(gpu_agent.chat.tokenizer))
        assert zeroed.policy_version == version == before.policy_version + 1
        assert zeroed.logprobs == pytest.approx([uniform] * len(zeroed.logprobs), abs=1e-3)
        # back to the trained weights: the prompt's cached KV blocks (computed with
        # zero weights) must have been dropped, or the reply would differ
        gpu_agent.update_weights(state)
        (after,) = act_all(gpu_agent, [conv("1+2")])
        assert after.token_ids == before.token_ids
        assert after.logprobs == pytest.approx(before.logprobs, abs=1e-3)

    def test_sleep_and_wake_up_keep_the_weights(self, gpu_agent: VLLMAgent) -> None:
        gpu_agent.sampling = SamplingParams(temperature=0, max_new_tokens=5)
        (before,) = act_all(gpu_agent, [conv("2+1")])
        run_sync(gpu_agent.sleep(1))
        run_sync(gpu_agent.wake_up())
        (after,) = act_all(gpu_agent, [conv("2+1")])
        assert after.token_ids == before.token_ids
