"""Policy loading, logprob recomputation, LoRA reference, exact save/load, export."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from toolgym.errors import ConfigError
from toolgym.trainers.logprobs import token_logprobs
from toolgym.trainers.losses import entropy_from_logits
from toolgym.trainers.policy import ModelConfig, load_policy

SEQS = [[5, 9, 12, 40, 41, 42, 43], [7, 8, 30], [50, 51, 52, 53, 54]]


def padded(pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, SEQS))
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in SEQS])
    attn = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in SEQS])
    return ids, attn


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_recomputed_logprobs_equal_a_plain_forward_pass(tiny_dir: Path, temperature: float) -> None:
    policy = load_policy(ModelConfig(path=str(tiny_dir)))
    ids, attn = padded(policy.pad_id)
    mask = attn.bool()
    logp, entropy = token_logprobs(policy.model, ids, attn, temperature=temperature,
                                   entropy_mask=mask)
    assert entropy is not None
    for row, seq in enumerate(SEQS):
        with torch.no_grad():
            logits = policy.model(input_ids=torch.tensor([seq])).logits[0, :-1] / temperature
        ref = torch.log_softmax(logits, -1).gather(1, torch.tensor(seq[1:])[:, None]).squeeze(1)
        assert_close(logp[row, 1 : len(seq)].detach(), ref, atol=1e-5, rtol=0)
        assert_close(entropy[row, 1 : len(seq)].detach(), entropy_from_logits(logits),
                     atol=1e-5, rtol=0)
        assert logp[row, 0] == 0  # no prefix: never an action token


def test_lora_reference_is_the_base_model_with_the_adapter_off(tiny_dir: Path) -> None:
    base = load_policy(ModelConfig(path=str(tiny_dir)))
    policy = load_policy(ModelConfig(path=str(tiny_dir), lora=True, lora_r=4))
    ids, attn = padded(policy.pad_id)
    with torch.no_grad():
        expected = token_logprobs(base.model, ids, attn)[0]
        with policy.reference() as ref:
            before = token_logprobs(ref, ids, attn)[0]
    assert torch.equal(before, expected)
    # train the adapter a little: the policy moves, the reference does not
    opt = torch.optim.SGD(policy.trainable_parameters(), lr=1.0)
    for _ in range(3):
        loss = -token_logprobs(policy.model, ids, attn)[0].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        moved = token_logprobs(policy.model, ids, attn)[0]
        with policy.reference() as ref:
            after = token_logprobs(ref, ids, attn)[0]
    assert torch.equal(after, expected)
    assert not torch.allclose(moved, expected)
    assert policy.num_trainable() < base.num_parameters() / 2


def test_full_parameter_reference_is_a_frozen_copy_made_only_on_request(tiny_dir: Path) -> None:
    with pytest.raises(ConfigError, match="no reference copy"):
        with load_policy(ModelConfig(path=str(tiny_dir))).reference():
            pass
    policy = load_policy(ModelConfig(path=str(tiny_dir)), reference=True)
    with policy.reference() as ref:
        assert ref is not policy.model and not any(p.requires_grad for p in ref.parameters())


@pytest.mark.parametrize("lora", [False, True])
def test_save_then_load_restores_trainable_weights_exactly(tiny_dir: Path, tmp_path: Path,
                                                           lora: bool) -> None:
    cfg = ModelConfig(path=str(tiny_dir), lora=lora, lora_r=4)
    policy = load_policy(cfg)
    with torch.no_grad():
        for p in policy.trainable_parameters():
            p.add_(torch.randn_like(p) * 0.1)
    policy.save(tmp_path / "ckpt")
    fresh = load_policy(cfg)
    fresh.load(tmp_path / "ckpt")
    for (name, a), b in zip(policy.trainable_state_dict().items(),
                            fresh.trainable_state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_merge_and_save_writes_a_plain_model_with_the_adapters_behaviour(
        tiny_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    policy = load_policy(ModelConfig(path=str(tiny_dir), lora=True, lora_r=4))
    with torch.no_grad():
        for p in policy.trainable_parameters():
            p.add_(torch.randn_like(p) * 0.2)
    out = policy.merge_and_save(tmp_path / "export")
    merged = AutoModelForCausalLM.from_pretrained(out)
    ids, attn = padded(policy.pad_id)
    with torch.no_grad():
        assert_close(token_logprobs(merged, ids, attn)[0],
                     token_logprobs(policy.model, ids, attn)[0],
                     atol=1e-4, rtol=0)
    assert policy.is_lora  # the training module keeps its adapter
    assert (out / "tokenizer.json").exists()


def test_a_missing_model_dir_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a model directory"):
        load_policy(ModelConfig(path=str(tmp_path / "nope")))
