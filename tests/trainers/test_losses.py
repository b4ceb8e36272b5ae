"""Tests of toolgym.trainers.losses: hand-worked numbers, loop oracles, gradients, masking."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from toolgym.errors import ConfigError
from toolgym.trainers.losses import (
    AGG_MODES,
    AggMode,
    KLKind,
    aggregate,
    entropy_from_logits,
    importance_weights,
    kl_penalty,
    masked_mean,
    masked_sum,
    policy_loss,
    token_weights,
    value_loss,
)

F64 = torch.float64
LN = math.log


def t(values: object) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


def one_token_loss(
    ratio: float, advantage: float, **kwargs: object
) -> tuple[float, float, dict[str, float]]:
    """Loss, d loss / d logprob and stats for a single token with old logprob 0."""
    logp = t([[LN(ratio)]]).requires_grad_()
    loss, stats = policy_loss(logp, t([[0.0]]), t([[advantage]]), torch.ones(1, 1), **kwargs)  # type: ignore[arg-type]
    loss.backward()
    assert logp.grad is not None
    return loss.item(), float(logp.grad), stats.as_floats()


# ---------------------------------------------------------------- loop oracles


def aggregate_loop(
    loss: list[list[float]], mask: list[list[bool]], mode: AggMode, max_tokens: int
) -> float:
    rows = [
        [x for x, m in zip(lr, mr, strict=True) if m] for lr, mr in zip(loss, mask, strict=True)
    ]
    if mode == "token-mean":
        flat = [x for r in rows for x in r]
        return sum(flat) / len(flat) if flat else 0.0
    per_seq = {
        "seq-mean-token-mean": [sum(r) / len(r) for r in rows if r],
        "seq-mean-token-sum": [sum(r) for r in rows if r],
        "seq-mean-token-sum-norm": [sum(r) / max_tokens for r in rows if r],
    }[mode]
    return sum(per_seq) / len(per_seq) if per_seq else 0.0


def policy_loss_loop(
    logp: list[list[float]],
    old: list[list[float]],
    adv: list[list[float]],
    mask: list[list[bool]],
    behaviour: list[list[float]] | None,
    *,
    clip_low: float,
    clip_high: float,
    dual_clip: float | None,
    tis_cap: float | None,
    mode: AggMode,
) -> float:
    """Scalar PPO surrogate, token by token, with math.exp."""
    per_token = []
    for b in range(len(logp)):
        row = []
        for i in range(len(logp[b])):
            r, a = math.exp(logp[b][i] - old[b][i]), adv[b][i]
            loss = max(-a * r, -a * min(max(r, 1 - clip_low), 1 + clip_high))
            if dual_clip is not None and a < 0:
                loss = min(loss, -a * dual_clip)
            if behaviour is not None and tis_cap is not None:
                loss *= min(math.exp(old[b][i] - behaviour[b][i]), tis_cap)
            row.append(loss)
        per_token.append(row)
    return aggregate_loop(per_token, mask, mode, len(logp[0]))


# ---------------------------------------------------------------- masked reductions


def test_masked_sum_and_mean_hand_worked() -> None:
    # valid: 1, 2 (row 0) and 4 (row 1); the inf and nan are masked out
    x = t([[1.0, 2.0, float("inf")], [4.0, float("nan"), 6.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert float(masked_sum(x, mask)) == 7.0  # 1 + 2 + 4
    assert float(masked_mean(x, mask)) == pytest.approx(7 / 3)
    assert masked_sum(x, mask, dim=-1).tolist() == [3.0, 4.0]
    assert masked_mean(x, mask, dim=-1).tolist() == [1.5, 4.0]  # 3 / 2, 4 / 1
    assert float(masked_mean(x, torch.zeros_like(mask))) == 0.0  # empty -> 0, not nan


# two sequences of unequal length: [1, 2, 3] and [4]; T = 4; X marks padding (never counted)
X = float("inf")
LOSS = t([[1.0, 2.0, 3.0, X], [4.0, X, X, X]])
MASK = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]], dtype=torch.bool)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("token-mean", 2.5),  # (1 + 2 + 3 + 4) / 4 tokens
        ("seq-mean-token-mean", 3.0),  # (mean(1, 2, 3) = 2  +  4 / 1) / 2 sequences
        ("seq-mean-token-sum", 5.0),  # ((1 + 2 + 3)  +  4) / 2 sequences
        ("seq-mean-token-sum-norm", 1.25),  # (6 / T  +  4 / T) / 2 with T = 4 -> (1.5 + 1) / 2
    ],
)
def test_aggregate_hand_worked(mode: AggMode, expected: float) -> None:
    assert float(aggregate(LOSS, MASK, mode)) == pytest.approx(expected)
    # an empty third row (a dropped trajectory) changes nothing
    loss3 = torch.cat([LOSS, t([[9.0, 9.0, 9.0, 9.0]])])
    mask3 = torch.cat([MASK, torch.zeros(1, 4, dtype=torch.bool)])
    assert float(aggregate(loss3, mask3, mode)) == pytest.approx(expected)


def test_aggregate_dr_grpo_constant_and_errors() -> None:
    # max_tokens = 10: (6 / 10 + 4 / 10) / 2 = 0.5
    assert float(aggregate(LOSS, MASK, "seq-mean-token-sum-norm", max_tokens=10)) == pytest.approx(
        0.5
    )
    with pytest.raises(ConfigError, match="token-mean"):
        aggregate(LOSS, MASK, "sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        aggregate(LOSS[0], MASK[0])


@pytest.mark.parametrize("mode", AGG_MODES)
def test_aggregate_micro_batches_with_mini_batch_weights_add_up(mode: AggMode) -> None:
    # gradient accumulation: weights computed over both rows, then split by row
    full = aggregate(LOSS, MASK, mode, max_tokens=4)
    w = token_weights(MASK, mode, max_tokens=4)
    parts = [aggregate(LOSS[i : i + 1], MASK[i : i + 1], weights=w[i : i + 1]) for i in (0, 1)]
    assert_close(parts[0] + parts[1], full)


def test_token_weights_count_a_trajectory_split_over_rows_once() -> None:
    # rows 0 and 1 are one trajectory (3 tokens), row 2 another (1 token)
    mask = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 0]], dtype=torch.bool)
    traj = torch.tensor([0, 0, 1])
    mean = token_weights(mask, "seq-mean-token-mean", seq_index=traj)
    assert_close(mean, t([[1 / 6, 1 / 6, 0], [0, 1 / 6, 0], [1 / 2, 0, 0]]).float())
    total = token_weights(mask, "seq-mean-token-sum", seq_index=traj)
    assert_close(total, t([[1 / 2, 1 / 2, 0], [0, 1 / 2, 0], [1 / 2, 0, 0]]).float())
    norm = token_weights(mask, "seq-mean-token-sum-norm", seq_index=traj, max_tokens=10)
    assert_close(norm, total / 10)
    assert_close(token_weights(mask, "token-mean", seq_index=traj), mask.float() / 4)


@settings(deadline=None, max_examples=50)
@given(st.integers(1, 4), st.integers(1, 6), st.sampled_from(AGG_MODES), st.integers(0, 2**31 - 1))
def test_aggregate_matches_loop(b: int, n: int, mode: AggMode, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    loss = torch.randn(b, n, generator=gen, dtype=F64)
    mask = torch.rand(b, n, generator=gen) < 0.6
    expected = aggregate_loop(loss.tolist(), mask.tolist(), mode, n)
    assert_close(aggregate(loss, mask, mode), t(expected))


# ---------------------------------------------------------------- policy loss: hand-worked


def test_ppo_clips_positive_advantage_at_one_plus_clip_high() -> None:
    # ratio 1.5, A = +1, clip_high 0.2: max(-1.5, -1.2) = -1.2; clipped -> zero gradient
    loss, grad, stats = one_token_loss(1.5, 1.0)
    assert loss == pytest.approx(-1.2)
    assert grad == 0.0
    assert stats["clip_fraction"] == 1.0


def test_ppo_clips_negative_advantage_at_one_minus_clip_low() -> None:
    # ratio 0.5, A = -1, clip_low 0.2: max(0.5, 0.8) = 0.8; clipped -> zero gradient
    loss, grad, stats = one_token_loss(0.5, -1.0)
    assert loss == pytest.approx(0.8)
    assert grad == 0.0
    assert stats["clip_fraction"] == 1.0


@pytest.mark.parametrize(
    ("ratio", "adv", "loss", "grad"),
    [
        (1.1, 2.0, -2.2, -2.2),  # inside the trust region: -A r, d/dlogp = -A r
        (1.1, -1.0, 1.1, 1.1),  # inside, negative advantage
        (0.5, 1.0, -0.5, -0.5),  # A > 0 and r below 1 - eps: the pessimistic min keeps -A r
        (2.0, -1.0, 2.0, 2.0),  # A < 0 and r above 1 + eps: unclipped -A r is the larger loss
    ],
)
def test_ppo_unclipped_cases(ratio: float, adv: float, loss: float, grad: float) -> None:
    got_loss, got_grad, stats = one_token_loss(ratio, adv)
    assert got_loss == pytest.approx(loss)
    assert got_grad == pytest.approx(grad)
    assert stats["clip_fraction"] == 0.0


def test_clip_higher_lets_positive_tokens_grow_further() -> None:
    # ratio 1.25, A = +1: symmetric eps 0.2 clips to -1.2; DAPO clip_high 0.28 keeps -1.25
    assert one_token_loss(1.25, 1.0)[0] == pytest.approx(-1.2)
    loss, grad, _ = one_token_loss(1.25, 1.0, clip_low=0.2, clip_high=0.28)
    assert loss == pytest.approx(-1.25)
    assert grad == pytest.approx(-1.25)


def test_dual_clip_caps_negative_advantage_at_c_times_abs_a() -> None:
    # A = -1, ratio 5: PPO gives max(5, 1.2) = 5 with gradient -A r = 5;
    # dual clip c = 3 gives min(5, 3 * 1) = 3 with zero gradient
    loss, grad, _ = one_token_loss(5.0, -1.0)
    assert loss == pytest.approx(5.0)
    assert grad == pytest.approx(5.0)
    loss, grad, stats = one_token_loss(5.0, -1.0, dual_clip=3.0)
    assert loss == pytest.approx(3.0)
    assert grad == 0.0
    assert stats["dual_clip_fraction"] == 1.0
    # ratio 2 < c: untouched (loss 2); positive advantages are never dual-clipped (-1.2)
    assert one_token_loss(2.0, -1.0, dual_clip=3.0)[0] == pytest.approx(2.0)
    assert one_token_loss(5.0, 1.0, dual_clip=3.0)[0] == pytest.approx(-1.2)


def test_policy_loss_two_tokens_and_stats_hand_worked() -> None:
    # token 1: ratio 1.5, A = +1 -> -1.2; token 2: ratio 0.5, A = -1 -> 0.8; mean = -0.2
    # approx_kl = mean((r - 1) - ln r) = mean(0.5 - 0.405465, -0.5 + 0.693147)
    #           = mean(0.094535, 0.193147) = 0.143841
    logp = t([[LN(1.5), LN(0.5), 123.0]])  # third position is padding
    loss, stats = policy_loss(
        logp, torch.zeros(1, 3, dtype=F64), t([1.0, -1.0, 7.0])[None], t([[1, 1, 0]])
    )
    assert loss.item() == pytest.approx(-0.2)
    got = stats.as_floats()
    assert got["clip_fraction"] == 1.0
    assert got["ratio_mean"] == pytest.approx(1.0)
    assert got["ratio_max"] == pytest.approx(1.5)
    assert got["approx_kl"] == pytest.approx(0.143841, abs=1e-6)
    assert got["tis_weight_mean"] == 1.0 and got["dual_clip_fraction"] == 0.0


def test_per_sequence_advantages_broadcast_like_per_token_ones() -> None:
    logp = t([[-1.0, -2.0], [-0.5, -0.1]])
    old = logp - 0.1
    mask = torch.tensor([[1, 1], [1, 0]])
    per_seq = policy_loss(logp, old, t([1.0, -2.0]), mask)[0]
    per_tok = policy_loss(logp, old, t([[1.0, 1.0], [-2.0, -2.0]]), mask)[0]
    assert_close(per_seq, per_tok)


# ---------------------------------------------------------------- TIS / decoupled PPO


def test_truncated_importance_weights_hand_worked() -> None:
    # pi_prox / pi_behav = 0.5 / 0.1 = 5 -> capped at 2;  0.3 / 0.6 = 0.5 -> kept
    behaviour = t([LN(0.1), LN(0.6)]).requires_grad_()
    proximal = t([LN(0.5), LN(0.3)]).requires_grad_()
    w = importance_weights(behaviour, proximal, cap=2.0)
    assert_close(w, t([2.0, 0.5]))
    assert not w.requires_grad
    with pytest.raises(ConfigError):
        importance_weights(behaviour, proximal, cap=0.0)


def test_masked_and_sequence_level_importance_weights_hand_worked() -> None:
    # token ratios 5 and 0.5; their product, the sequence's, is 2.5
    behaviour, proximal = t([[LN(0.1), LN(0.6)]]), t([[LN(0.5), LN(0.3)]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    weights = lambda **kw: importance_weights(behaviour, proximal, mask=mask, **kw)  # noqa: E731
    assert_close(weights(cap=2.0, mode="mask"), t([[0.0, 0.5]]))  # MIS drops the 5
    assert_close(weights(cap=2.0, level="sequence"), t([[2.0, 2.0]]))
    assert_close(weights(cap=2.0, mode="mask", level="sequence"), t([[0.0, 0.0]]))
    assert_close(weights(cap=3.0, mode="mask", level="sequence"), t([[2.5, 2.5]]))
    # a masked token does not count in its sequence's product
    assert_close(importance_weights(behaviour, proximal, 3.0, mask=t([[1, 0]]).bool(),
                                    level="sequence"), t([[3.0, 3.0]]))


def test_sequence_level_importance_weights_span_the_rows_of_a_trajectory() -> None:
    # one trajectory in two rows: ratios 5 | 0.5, product 2.5 on both rows
    behaviour, proximal = t([[LN(0.1)], [LN(0.6)]]), t([[LN(0.5)], [LN(0.3)]])
    w = importance_weights(behaviour, proximal, 3.0, mask=torch.ones(2, 1, dtype=torch.bool),
                           level="sequence", seq_index=torch.tensor([7, 7]))
    assert_close(w, t([[2.5], [2.5]]))


def _gspo_case(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Three sequences of 2, 4 and 3 valid tokens (padding after), logprobs off the old ones."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    old = -torch.rand(3, 4, generator=gen, dtype=F64) - 0.5
    return mask, old, old + 0.01 * torch.randn(3, 4, generator=gen, dtype=F64)


def test_gspo_ratio_is_one_on_policy_and_its_gradient_is_grpos_sequence_mean() -> None:
    mask, old, _ = _gspo_case()
    adv = t([1.0, -0.5, 2.0])
    logp = old.clone().requires_grad_()
    loss, stats = policy_loss(logp, old, adv, mask, ratio_level="sequence", clip_low=3e-4,
                              clip_high=4e-4, agg_mode="seq-mean-token-mean")
    loss.backward()
    assert float(stats.ratio_mean) == 1.0 and float(stats.clip_fraction) == 0.0
    # the paper's on-policy gradient: -1/G sum_i A_i 1/|y_i| sum_t grad log pi_{i,t}
    expected = -(adv[:, None] * mask / mask.sum(-1, keepdim=True)) / 3
    assert_close(logp.grad, expected)


def test_gspo_gradient_is_the_sequence_objectives_off_policy() -> None:
    mask, old, new = _gspo_case(1)
    adv = t([1.0, -0.5, 2.0])
    logp = new.clone().requires_grad_()
    loss, stats = policy_loss(logp, old, adv, mask, ratio_level="sequence", clip_low=0.5,
                              clip_high=0.5, agg_mode="seq-mean-token-mean")
    (grad,) = torch.autograd.grad(loss, logp)
    # J = -1/G sum_i A_i s_i, s_i = exp(mean_t (logp - old)), differentiated as a whole
    ref = new.clone().requires_grad_()
    s = torch.exp(((ref - old) * mask).sum(-1) / mask.sum(-1))
    (ref_grad,) = torch.autograd.grad(-(adv * s).mean(), ref)
    assert_close(loss, -(adv * s).mean().detach())
    assert_close(grad, ref_grad)
    assert float(stats.ratio_mean) != 1.0


@pytest.mark.parametrize("shift,adv,zero", [(+0.01, 1.0, True), (+0.01, -1.0, False),
                                            (-0.01, -1.0, True), (-0.01, 1.0, False)])
def test_gspo_clips_a_whole_sequence_for_the_right_sign_of_advantage(
        shift: float, adv: float, zero: bool) -> None:
    # every token of sequence 0 moved by `shift`: s_0 = e^shift leaves [1 - 3e-4, 1 + 4e-4];
    # a token of it alone (-1 +- 0.03) would be inside any usual token clip
    mask, old, _ = _gspo_case()
    new = old.clone()
    new[0] += shift + torch.tensor([0.03, -0.03, 0.0, 0.0], dtype=F64)
    logp = new.requires_grad_()
    loss, _ = policy_loss(logp, old, t([adv, 1.0, 1.0]), mask, ratio_level="sequence",
                          clip_low=3e-4, clip_high=4e-4, agg_mode="seq-mean-token-mean")
    loss.backward()
    assert logp.grad is not None
    assert (logp.grad[0].abs().sum() == 0) == zero  # clipped: no gradient from the sequence
    assert logp.grad[1:][mask[1:]].abs().min() > 0  # the in-range sequences still learn


def test_decoupled_policy_loss_hand_worked() -> None:
    # ratio pi / pi_prox = 1 on both tokens, A = +1 each; IS weights behaviour->proximal 2 and 0.5
    # per-token loss = -A * r * w = [-2, -0.5]; token-mean = -1.25
    # d loss / d logp_i = -A * w_i * r_i / 2 tokens = [-1, -0.25]
    old = t([[LN(0.5), LN(0.3)]])
    logp = old.clone().requires_grad_()
    loss, stats = policy_loss(
        logp,
        old,
        t([1.0]),
        torch.ones(1, 2),
        behaviour_logprobs=t([[LN(0.1), LN(0.6)]]),
        tis_cap=2.0,
    )
    loss.backward()
    assert loss.item() == pytest.approx(-1.25)
    assert logp.grad is not None
    assert_close(logp.grad, t([[-1.0, -0.25]]))
    assert stats.as_floats()["tis_weight_mean"] == pytest.approx(1.25)  # (2 + 0.5) / 2
    assert stats.as_floats()["tis_clip_fraction"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"clip_low": 1.0},
        {"clip_high": -0.1},
        {"dual_clip": 1.0},
        {"tis_cap": 2.0},
        {"behaviour_logprobs": torch.zeros(1, 1, dtype=F64)},
    ],
)
def test_policy_loss_rejects_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        policy_loss(t([[0.0]]), t([[0.0]]), t([[1.0]]), torch.ones(1, 1), **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------ policy loss: oracle, gradients, masking

# (dual_clip, with TIS): plain PPO, PPO + dual clip, decoupled PPO + dual clip
SETTINGS: list[tuple[float | None, bool]] = [(None, False), (3.0, False), (3.0, True)]


def random_batch(seed: int, b: int = 3, n: int = 5) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    old = -torch.rand(b, n, generator=gen, dtype=F64) * 3
    return {
        "old": old,
        "logp": old + torch.randn(b, n, generator=gen, dtype=F64),  # ratios roughly e^[-2, 2]
        "adv": torch.randn(b, n, generator=gen, dtype=F64),
        "behaviour": old + 0.5 * torch.randn(b, n, generator=gen, dtype=F64),
        "mask": torch.rand(b, n, generator=gen) < 0.7,
    }


def call(
    batch: dict[str, torch.Tensor],
    logp: torch.Tensor,
    mode: AggMode,
    setting: tuple[float | None, bool],
) -> torch.Tensor:
    dual_clip, tis = setting
    loss, _ = policy_loss(
        logp,
        batch["old"],
        batch["adv"],
        batch["mask"],
        clip_low=0.2,
        clip_high=0.28,
        dual_clip=dual_clip,
        agg_mode=mode,
        behaviour_logprobs=batch["behaviour"] if tis else None,
        tis_cap=2.0 if tis else None,
    )
    return loss


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 2**31 - 1), st.sampled_from(AGG_MODES), st.sampled_from(SETTINGS))
def test_policy_loss_matches_loop(
    seed: int, mode: AggMode, setting: tuple[float | None, bool]
) -> None:
    batch = random_batch(seed)
    expected = policy_loss_loop(
        batch["logp"].tolist(),
        batch["old"].tolist(),
        batch["adv"].tolist(),
        batch["mask"].tolist(),
        batch["behaviour"].tolist() if setting[1] else None,
        clip_low=0.2,
        clip_high=0.28,
        dual_clip=setting[0],
        tis_cap=2.0 if setting[1] else None,
        mode=mode,
    )
    assert_close(call(batch, batch["logp"], mode, setting), t(expected))


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("setting", SETTINGS)
def test_policy_loss_gradcheck(mode: AggMode, setting: tuple[float | None, bool]) -> None:
    batch = random_batch(seed=7)
    logp = batch["logp"].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda lp: call(batch, lp, mode, setting), (logp,))


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("setting", SETTINGS)
def test_padding_never_affects_policy_loss_or_gradient(
    mode: AggMode, setting: tuple[float | None, bool]
) -> None:
    batch = random_batch(seed=7)  # every branch active: clip, dual clip, TIS cap
    pad = ~batch["mask"]

    def loss_and_grad(b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logp = b["logp"].clone().requires_grad_()
        loss = call(b, logp, mode, setting)
        loss.backward()
        assert logp.grad is not None
        return loss.detach(), logp.grad

    clean = loss_and_grad(batch)
    fills = {"logp": math.nan, "old": -math.inf, "adv": 1e30, "behaviour": math.inf}
    dirty = loss_and_grad({**batch, **{k: batch[k].masked_fill(pad, v) for k, v in fills.items()}})
    assert_close(dirty[0], clean[0])
    assert_close(dirty[1], clean[1])
    assert float(dirty[1][pad].abs().sum()) == 0.0


# ---------------------------------------------------------------- KL, entropy


def test_kl_estimators_hand_worked() -> None:
    # logp = ln 0.5, ref = ln 0.25: d = ref - logp = ln 0.5 = -0.693147
    #   k1 = -d = 0.693147; k2 = d^2 / 2 = 0.240227
    #   k3 = e^d - d - 1 = 0.5 + 0.693147 - 1 = 0.193147
    # logp = ln 0.25, ref = ln 0.5: d = +0.693147
    #   k1 = -0.693147 (negative!); k2 = 0.240227; k3 = 2 - 0.693147 - 1 = 0.306853
    logp, ref = t([LN(0.5), LN(0.25)]), t([LN(0.25), LN(0.5)])
    assert_close(kl_penalty(logp, ref, "k1"), t([0.693147, -0.693147]), atol=1e-6, rtol=0)
    assert_close(kl_penalty(logp, ref, "k2"), t([0.240227, 0.240227]), atol=1e-6, rtol=0)
    assert_close(kl_penalty(logp, ref, "k3"), t([0.193147, 0.306853]), atol=1e-6, rtol=0)
    # k3 is straight-through: its value, k2's gradient d k2 / d logp = -d = logp - ref
    # (k3's own, 1 - e^d = [0.5, -1], would be the gradient of KL(ref || pi));
    # the reference gets no gradient
    for kind in ("k2", "k3"):
        x, r = logp.clone().requires_grad_(), ref.clone().requires_grad_()
        kl_penalty(x, r, kind).sum().backward()
        assert x.grad is not None
        assert_close(x.grad, t([0.693147, -0.693147]), atol=1e-6, rtol=0)
        assert r.grad is None
    assert float(kl_penalty(t([0.0]), t([30.0]), "k3")) == 10.0  # clamped, as verl
    with pytest.raises(ConfigError):
        kl_penalty(logp, ref, "k4")  # type: ignore[arg-type]


@settings(deadline=None, max_examples=100)
@given(st.lists(st.tuples(st.floats(-20, 0), st.floats(-20, 0)), min_size=1, max_size=16))
def test_k3_is_non_negative_and_zero_when_equal(pairs: list[tuple[float, float]]) -> None:
    logp, ref = t([p for p, _ in pairs]), t([r for _, r in pairs])
    assert bool((kl_penalty(logp, ref, "k3") >= 0).all())
    assert kl_penalty(logp, logp, "k3").abs().max() == 0.0


def test_k1_and_k3_are_unbiased_estimates_of_kl() -> None:
    # Monte Carlo: tokens sampled from p; the mean estimate must match KL(p || q) within 5 s.e.
    gen = torch.Generator().manual_seed(0)
    logp_all = torch.log_softmax(torch.randn(6, generator=gen, dtype=F64), -1)
    logq_all = torch.log_softmax(torch.randn(6, generator=gen, dtype=F64), -1)
    exact = float((logp_all.exp() * (logp_all - logq_all)).sum())
    tokens = torch.multinomial(logp_all.exp(), 200_000, replacement=True, generator=gen)
    kinds: tuple[KLKind, ...] = ("k1", "k3")
    for kind in kinds:
        est = kl_penalty(logp_all[tokens], logq_all[tokens], kind)
        stderr = float(est.std()) / math.sqrt(est.numel())
        assert abs(float(est.mean()) - exact) < 5 * stderr


def test_kl_mask_zeroes_padding_and_its_gradient() -> None:
    logp = t([LN(0.5), -1e30]).requires_grad_()
    out = kl_penalty(logp, t([LN(0.25), 0.0]), "k3", mask=torch.tensor([1, 0]))
    out.sum().backward()
    assert out[1] == 0.0
    assert logp.grad is not None and logp.grad[1] == 0.0


def test_entropy_hand_worked() -> None:
    # uniform over 4: ln 4 = 1.386294; [0, 0, -inf]: uniform over 2 -> ln 2 = 0.693147
    logits = t([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, -math.inf, -math.inf]]).requires_grad_()
    ent = entropy_from_logits(logits)
    assert_close(ent, t([LN(4), LN(2)]))
    ent.sum().backward()
    assert logits.grad is not None and bool(torch.isfinite(logits.grad).all())


def test_entropy_matches_torch_categorical_and_gradcheck() -> None:
    logits = torch.randn(3, 4, 7, generator=torch.Generator().manual_seed(1), dtype=F64)
    expected = torch.distributions.Categorical(logits=logits).entropy()
    assert_close(entropy_from_logits(logits), expected)
    assert torch.autograd.gradcheck(entropy_from_logits, (logits.requires_grad_(),))


# ---------------------------------------------------------------- value loss


def test_value_loss_hand_worked() -> None:
    # token 1: V 1.5, V_old 1.0, R 2.0, clip 0.2: (V - R)^2 = 0.25; V_c = 1.0 + 0.2 = 1.2,
    #          (V_c - R)^2 = 0.64 -> max 0.64, clipped branch is constant in V -> grad 0
    # token 2: V 2.5, V_old 2.4, R 2.0: |V - V_old| = 0.1 < 0.2 -> both 0.25, grad (V - R) = 0.5
    # loss = 0.5 * mean(0.64, 0.25) = 0.2225;  dL/dV = 0.5 * 2 (V - R) / 2 tokens = [0, 0.25]
    # token 3 is padding.
    values = t([[1.5, 2.5, 99.0]]).requires_grad_()
    old, returns, mask = t([[1.0, 2.4, -99.0]]), t([[2.0, 2.0, float("nan")]]), t([[1, 1, 0]])
    loss, stats = value_loss(values, old, returns, mask, clip=0.2)
    loss.backward()
    assert loss.item() == pytest.approx(0.2225)
    assert values.grad is not None
    assert_close(values.grad, t([[0.0, 0.25, 0.0]]))
    assert stats.as_floats() == {"clip_fraction": 0.5}
    # no clipping: 0.5 * mean(0.25, 0.25) = 0.125; dL/dV = (V - R) / 2 = [-0.25, 0.25]
    values.grad = None
    loss, _ = value_loss(values, old, returns, mask)
    loss.backward()
    assert loss.item() == pytest.approx(0.125)
    assert_close(values.grad, t([[-0.25, 0.25, 0.0]]))
