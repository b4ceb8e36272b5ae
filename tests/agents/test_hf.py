"""HFAgent on tiny local models: batching, exact ids, logprobs, weight updates."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import torch

from toolgym.agents import ChatTokenizer, Conversation, IncrementalPrompt, SamplingParams
from toolgym.agents.hf import HFAgent


def conv(text: str) -> Conversation:
    return Conversation([{"role": "user", "content": text}])


def reference_logprobs(
    model: torch.nn.Module, prompt: list[int], sampled: list[int], temperature: float = 1.0
) -> torch.Tensor:
    """log_softmax(logits / T) of a plain forward pass on the unpadded full sequence."""
    ids = torch.tensor([prompt + sampled])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float() / temperature
    logp = torch.log_softmax(logits, dim=-1)[len(prompt) - 1 : -1]
    return logp.gather(1, torch.tensor(sampled)[:, None]).squeeze(1)


async def test_concurrent_acts_are_batched_into_fewer_generate_calls(chatml_dir: Path) -> None:
    agent = HFAgent(chatml_dir, seed=0, sampling=SamplingParams(max_new_tokens=8), max_wait_s=0.05)
    turns = await asyncio.gather(*(agent.act(conv("hi" * (i + 1))) for i in range(6)))
    await agent.aclose()
    assert agent.stats.calls < 6 and agent.stats.requests == 6
    assert max(t.info["batch_size"] for t in turns) > 1
    assert all(len(t.token_ids) == len(t.logprobs) <= 8 for t in turns)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
async def test_logprobs_match_a_forward_pass(chatml_dir: Path, temperature: float) -> None:
    agent = HFAgent(
        chatml_dir,
        seed=1,
        max_wait_s=0.05,
        sampling=SamplingParams(temperature=temperature, max_new_tokens=12),
    )
    # prompts of different lengths, so rows are left-padded differently
    turns = await asyncio.gather(*(agent.act(conv("x" * n)) for n in (1, 5, 17)))
    await agent.aclose()
    assert agent.stats.calls == 1
    for turn in turns:
        ref = reference_logprobs(agent.model, turn.prompt_token_ids, turn.token_ids, temperature)
        torch.testing.assert_close(torch.tensor(turn.logprobs), ref, atol=1e-4, rtol=0)


async def test_top_p_logprobs_are_those_of_the_truncated_distribution(chatml_dir: Path) -> None:
    agent = HFAgent(chatml_dir, seed=2, sampling=SamplingParams(top_p=0.3, max_new_tokens=12))
    turn = await agent.act(conv("top p"))
    await agent.aclose()
    full = reference_logprobs(agent.model, turn.prompt_token_ids, turn.token_ids)
    # renormalising over the nucleus can only raise a kept token's log-prob
    assert (torch.tensor(turn.logprobs) >= full - 1e-5).all()
    assert (torch.tensor(turn.logprobs) > full + 1e-3).any()


async def test_ids_stop_at_eos_and_decode_to_the_text(stopping_dir: Path) -> None:
    agent = HFAgent(stopping_dir, seed=0, sampling=SamplingParams(max_new_tokens=10))
    eos = agent.chat.eos_token_ids
    turns = await asyncio.gather(*(agent.act(conv(f"{a}+1")) for a in range(3)))
    await agent.aclose()
    stopped = [t for t in turns if t.finish_reason == "stop"]
    assert stopped, "the trained model should end its turns"
    for t in stopped:
        assert t.token_ids[-1] in eos and not set(t.token_ids[:-1]) & set(eos)
        assert agent.chat.decode(t.token_ids) == t.text + "<|im_end|>"
    for t in turns:
        if t.finish_reason == "length":
            assert len(t.token_ids) == 10 and agent.chat.decode(t.token_ids) == t.text


async def test_length_limited_turns_report_length(chatml_dir: Path) -> None:
    agent = HFAgent(chatml_dir, seed=0, sampling=SamplingParams(max_new_tokens=3))
    turn = await agent.act(conv("hi"))
    await agent.aclose()
    assert len(turn.token_ids) <= 3
    if turn.finish_reason == "length":
        assert len(turn.token_ids) == 3


async def test_it_continues_the_exact_prompt_ids(stopping_dir: Path) -> None:
    agent = HFAgent(stopping_dir, seed=0, sampling=SamplingParams(max_new_tokens=6))
    prompt = IncrementalPrompt(agent.chat, [{"role": "user", "content": "1+1"}])
    first = await agent.act(prompt.conversation())
    assert first.prompt_token_ids == prompt.prompt_token_ids
    prompt.add_turn(first)
    prompt.add_observation({"role": "user", "content": "2+2"})
    second = await agent.act(prompt.conversation())
    await agent.aclose()
    assert second.prompt_token_ids[: len(first.prompt_token_ids)] == first.prompt_token_ids
    assert (
        second.prompt_token_ids[len(first.prompt_token_ids) :][: len(first.token_ids)]
        == first.token_ids
    )


async def test_generation_does_not_block_the_event_loop(chatml_dir: Path) -> None:
    agent = HFAgent(chatml_dir, seed=0, sampling=SamplingParams(max_new_tokens=48))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(*(agent.act(conv(str(i))) for i in range(4)))
    elapsed = loop.time() - start
    task.cancel()
    await agent.aclose()
    assert elapsed > 0.05 and ticks >= elapsed / 0.005 * 0.3


async def test_update_weights_bumps_the_version_and_changes_outputs(chatml_dir: Path) -> None:
    agent = HFAgent(chatml_dir, seed=0, sampling=SamplingParams(temperature=0, max_new_tokens=5))
    before = await agent.act(conv("hi"))
    state = {k: torch.zeros_like(v) for k, v in agent.model.state_dict().items()}
    assert agent.update_weights(state) == 1
    after = await agent.act(conv("hi"))
    assert agent.update_weights(version=10) == 10
    await agent.aclose()
    assert (before.policy_version, after.policy_version) == (0, 1)
    assert all(
        lp
        == pytest.approx(
            -torch.log(torch.tensor(float(len(agent.chat.tokenizer)))).item(), abs=1e-4
        )
        for lp in after.logprobs
    )  # zero weights: uniform distribution


async def test_greedy_and_seeded_sampling_are_reproducible(chatml_dir: Path) -> None:
    greedy = HFAgent(chatml_dir, sampling=SamplingParams(temperature=0, max_new_tokens=6))
    a, b = await greedy.act(conv("same")), await greedy.act(conv("same"))
    await greedy.aclose()
    assert a.token_ids == b.token_ids
    runs = []
    for _ in range(2):
        agent = HFAgent(chatml_dir, seed=123, sampling=SamplingParams(max_new_tokens=6))
        runs.append((await agent.act(conv("seeded"))).token_ids)
        await agent.aclose()
    assert runs[0] == runs[1]


def test_act_sync_and_model_object_constructor(chatml_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(chatml_dir)
    chat = ChatTokenizer.from_pretrained(chatml_dir)
    agent = HFAgent(model, chat, sampling=SamplingParams(max_new_tokens=4))
    turn = agent.act_sync(conv("sync"))
    agent.close()
    assert turn.trainable and len(turn.token_ids) <= 4
    with pytest.raises(ValueError, match="needs tokenizer"):
        HFAgent(model)


async def test_async_weight_update_waits_for_the_running_batch(chatml_dir: Path) -> None:
    agent = HFAgent(chatml_dir, seed=0, sampling=SamplingParams(max_new_tokens=32))
    running = asyncio.ensure_future(agent.act(conv("busy")))
    while not agent.lock.locked():  # wait until generate holds the weights
        await asyncio.sleep(0.001)
    version = await agent.aupdate_weights(agent.model.state_dict())
    turn = await running
    await agent.aclose()
    assert (turn.policy_version, version, agent.policy_version) == (0, 1, 1)


async def test_paused_blocks_generation_during_in_place_updates(chatml_dir: Path) -> None:
    agent = HFAgent(chatml_dir, sampling=SamplingParams(temperature=0, max_new_tokens=4))
    with agent.paused():
        pending = asyncio.ensure_future(agent.act(conv("wait")))
        await asyncio.sleep(0.05)
        assert not pending.done()  # generate is waiting for the weights
        for p in agent.model.parameters():
            p.data.zero_()
    turn = await pending
    await agent.aclose()
    assert turn.policy_version == 1


POISON = {"min_p": 0.95, "temperature": 0.05, "repetition_penalty": 3.0, "top_k": 1,
          "do_sample": True, "no_repeat_ngram_size": 1}


@pytest.fixture(scope="module")
def poisoned_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chatml model's twin (same weights) whose generation_config.json asks for near-greedy."""
    from tests.helpers.tiny_model import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("poisoned"), chat_template="chatml")
    config = path / "generation_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), **POISON}))
    return path


@pytest.mark.parametrize("sampling", [SamplingParams(max_new_tokens=24),
                                      SamplingParams(temperature=0.7, top_p=0.8, max_new_tokens=24),
                                      SamplingParams(temperature=0.0, max_new_tokens=24)],
                         ids=["T1", "T0.7-top_p0.8", "greedy"])
async def test_the_checkpoints_generation_config_does_not_change_sampling(
        chatml_dir: Path, poisoned_dir: Path, sampling: SamplingParams) -> None:
    turns = []
    for path in (chatml_dir, poisoned_dir):
        agent = HFAgent(path, seed=3, sampling=sampling)
        turns.append(await agent.act(conv("poison")))
        await agent.aclose()
    # the same weights and seed sample the same tokens with the same logprobs: what
    # SamplingParams says, not the checkpoint's min_p / top_k / temperature / penalties
    assert turns[1].token_ids == turns[0].token_ids
    assert turns[1].logprobs == pytest.approx(turns[0].logprobs, abs=1e-6)
    ids = torch.tensor([turns[1].prompt_token_ids + turns[1].token_ids])
    with torch.no_grad():
        argmax = agent.model(input_ids=ids).logits[0, len(turns[1].prompt_token_ids) - 1 : -1]
    share = float((argmax.argmax(-1) == torch.tensor(turns[1].token_ids)).float().mean())
    # a draw from the near-uniform tiny model is rarely its argmax (top_k=1 would make it always)
    assert share == 1.0 if sampling.greedy else share < 0.5
    assert agent.model.generation_config.min_p == 0.95  # the checkpoint's own config is kept
