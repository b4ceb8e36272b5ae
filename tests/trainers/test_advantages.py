"""Tests of toolgym.trainers.advantages: hand-worked numbers, loop oracles, invariants."""

from __future__ import annotations

import dataclasses
import statistics
import sys
from collections.abc import Iterator

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from toolgym.errors import ConfigError
from toolgym.rollout.manager import RolloutConfig
from toolgym.trainers.advantages import (
    ADVANTAGE_ESTIMATORS,
    AdvantageEstimator,
    broadcast_to_tokens,
    gae,
    get_advantage_estimator,
    grpo_advantages,
    register_advantage_estimator,
    reinforce_pp_advantages,
    rloo_advantages,
    whiten,
)
from toolgym.trainers.grpo import GRPOConfig
from toolgym.trainers.turn_level import TurnLevelConfig

F64 = torch.float64


def t(values: list[float] | list[list[float]]) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# ---------------------------------------------------------------- loop oracles


def grpo_loop(rewards: list[float], groups: list[int], eps: float, scale: str) -> list[float]:
    """Plain-Python GRPO: statistics.mean / statistics.stdev (unbiased) per group."""
    out = []
    for r, g in zip(rewards, groups, strict=True):
        members = [x for x, h in zip(rewards, groups, strict=True) if h == g]
        if len(members) == 1:
            out.append(0.0)
            continue
        centred = r - statistics.mean(members)
        out.append(centred if scale == "none" else centred / (statistics.stdev(members) + eps))
    return out


def rloo_loop(rewards: list[float], groups: list[int]) -> list[float]:
    out = []
    for i, (r, g) in enumerate(zip(rewards, groups, strict=True)):
        others = [
            x for j, (x, h) in enumerate(zip(rewards, groups, strict=True)) if h == g and j != i
        ]
        out.append(r - sum(others) / len(others) if others else 0.0)
    return out


def gae_loop(
    rewards: list[list[float]],
    values: list[list[float]],
    mask: list[list[bool]],
    gamma: float,
    lam: float,
    terminated: list[bool],
    bootstrap: list[float],
) -> tuple[list[list[float]], list[list[float]]]:
    """CleanRL's GAE loop, run per row over the valid (policy-token) steps only."""
    advs, rets = [], []
    for b in range(len(rewards)):
        steps = [i for i, m in enumerate(mask[b]) if m]
        adv = [0.0] * len(rewards[b])
        last = 0.0
        for k in reversed(range(len(steps))):
            i = steps[k]
            if k == len(steps) - 1:
                next_value = 0.0 if terminated[b] else bootstrap[b]
            else:
                next_value = values[b][steps[k + 1]]
            delta = rewards[b][i] + gamma * next_value - values[b][i]
            last = delta + gamma * lam * last
            adv[i] = last
        advs.append(adv)
        rets.append([a + v if m else 0.0 for a, v, m in zip(adv, values[b], mask[b], strict=True)])
    return advs, rets


# ---------------------------------------------------------------- GRPO / Dr.GRPO


def test_grpo_hand_worked() -> None:
    # group 10: [6, 3]: mean 4.5, unbiased std sqrt((1.5^2 + 1.5^2) / 1) = sqrt(4.5) = 2.12132
    #   -> A = +-1.5 / 2.12132 = +-0.70711
    # group 3: [1, 0, 0]: mean 1/3, deviations [2/3, -1/3, -1/3],
    #   unbiased var = (4/9 + 1/9 + 1/9) / 2 = 1/3, std = 0.57735
    #   -> A = [1.15470, -0.57735, -0.57735]
    # ids are interleaved and not contiguous on purpose
    rewards = t([6.0, 1.0, 3.0, 0.0, 0.0])
    groups = torch.tensor([10, 3, 10, 3, 3])
    expected = t([0.70711, 1.15470, -0.70711, -0.57735, -0.57735])
    assert_close(grpo_advantages(rewards, groups, eps=0.0), expected, atol=1e-5, rtol=0)


def test_drgrpo_hand_worked() -> None:
    # Dr.GRPO: no std division. [6, 3] - 4.5 = [1.5, -1.5]; [1, 0, 0] - 1/3 = [2/3, -1/3, -1/3]
    rewards = t([6.0, 1.0, 3.0, 0.0, 0.0])
    groups = torch.tensor([10, 3, 10, 3, 3])
    expected = t([1.5, 2 / 3, -1.5, -1 / 3, -1 / 3])
    assert_close(grpo_advantages(rewards, groups, scale="none"), expected)
    assert_close(get_advantage_estimator("drgrpo")(rewards, groups), expected)


@pytest.mark.parametrize("scale", ["group", "none"])
def test_grpo_singleton_and_constant_groups_get_zero(scale: str) -> None:
    # group 0 = [5] (size 1, no baseline); group 1 = [2, 2, 2] (no signal); group 2 = [1, 0]
    rewards = t([5.0, 2.0, 2.0, 2.0, 1.0, 0.0])
    groups = torch.tensor([0, 1, 1, 1, 2, 2])
    adv = grpo_advantages(rewards, groups, scale=scale)  # type: ignore[arg-type]
    assert adv[:4].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert adv[4] > 0 > adv[5]


def test_grpo_accepts_integer_and_bool_rewards() -> None:
    # [1, 0] -> mean 0.5, unbiased std sqrt(0.5) = 0.70711 -> +-0.70711
    adv = grpo_advantages(torch.tensor([True, False]), torch.tensor([0, 0]), eps=0.0)
    assert adv.is_floating_point()
    assert_close(adv, torch.tensor([0.70711, -0.70711]), atol=1e-5, rtol=0)


def test_grpo_rejects_bad_scale_and_shapes() -> None:
    with pytest.raises(ConfigError, match="scale"):
        grpo_advantages(t([1.0]), torch.tensor([0]), scale="batch")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1-D"):
        grpo_advantages(t([1.0, 2.0]), torch.tensor([0]))


groups_and_rewards = st.lists(
    st.tuples(st.integers(0, 4), st.floats(-10, 10, allow_nan=False)), min_size=1, max_size=24
)


@settings(deadline=None, max_examples=60)
@given(groups_and_rewards, st.sampled_from(["group", "none"]))
def test_grpo_matches_loop_and_sums_to_zero_per_group(
    pairs: list[tuple[int, float]], scale: str
) -> None:
    groups, rewards = [g for g, _ in pairs], [r for _, r in pairs]
    adv = grpo_advantages(t(rewards), torch.tensor(groups), scale=scale)  # type: ignore[arg-type]
    assert_close(adv, t(grpo_loop(rewards, groups, 1e-6, scale)), atol=1e-6, rtol=1e-6)
    for g in set(groups):
        assert abs(float(adv[torch.tensor(groups) == g].sum())) < 1e-6


@settings(deadline=None, max_examples=40)
@given(
    st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=8),
    st.floats(0.1, 10),
    st.floats(-10, 10),
)
def test_grpo_is_invariant_to_affine_reward_changes(
    rewards: list[float], a: float, b: float
) -> None:
    r = t(rewards)
    if float(r.std()) < 1e-3:  # a constant group maps to 0 either way; skip near-ties
        return
    groups = torch.zeros(len(rewards), dtype=torch.long)
    assert_close(grpo_advantages(a * r + b, groups, eps=0.0), grpo_advantages(r, groups, eps=0.0))


# ---------------------------------------------------------------- RLOO


def test_rloo_hand_worked() -> None:
    # group 0 = [1, 0, 0, 1]: baseline of item 0 = (0 + 0 + 1) / 3 = 1/3 -> 1 - 1/3 = 2/3;
    #   item 1: baseline (1 + 0 + 1) / 3 = 2/3 -> 0 - 2/3 = -2/3
    # group 1 = [6, 3]: 6 - 3 = 3, 3 - 6 = -3;  group 2 = [4] alone -> 0
    rewards = t([1.0, 0.0, 0.0, 1.0, 6.0, 3.0, 4.0])
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    expected = t([2 / 3, -2 / 3, -2 / 3, 2 / 3, 3.0, -3.0, 0.0])
    assert_close(rloo_advantages(rewards, groups), expected)


@settings(deadline=None, max_examples=60)
@given(groups_and_rewards)
def test_rloo_matches_loop_sums_to_zero_and_rescales_drgrpo(pairs: list[tuple[int, float]]) -> None:
    groups, rewards = torch.tensor([g for g, _ in pairs]), [r for _, r in pairs]
    adv = rloo_advantages(t(rewards), groups)
    assert_close(adv, t(rloo_loop(rewards, groups.tolist())))
    drgrpo = grpo_advantages(t(rewards), groups, scale="none")
    for g in groups.unique():
        members = groups == g
        n = int(members.sum())
        assert abs(float(adv[members].sum())) < 1e-9
        if n > 1:  # RLOO = n / (n - 1) * (r - group mean)
            assert_close(adv[members], n / (n - 1) * drgrpo[members])


# ---------------------------------------------------------------- REINFORCE++ and whiten


def test_reinforce_pp_hand_worked() -> None:
    # batch [1, 0, 0, 1]: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.57735
    #   -> A = +-0.5 / 0.57735 = +-0.86603; group ids play no part
    expected = t([0.86603, -0.86603, -0.86603, 0.86603])
    rewards = t([1.0, 0.0, 0.0, 1.0])
    assert_close(reinforce_pp_advantages(rewards, eps=0.0), expected, atol=1e-5, rtol=0)
    assert_close(
        reinforce_pp_advantages(rewards, torch.tensor([0, 0, 1, 1]), eps=0.0),
        expected,
        atol=1e-5,
        rtol=0,
    )


def test_whiten_with_mask_hand_worked() -> None:
    # valid entries 1, 2, 3: mean 2, unbiased std sqrt((1 + 0 + 1) / 2) = 1
    #   -> [-1, 0, <masked 0>], [1, <masked 0>, <masked 0>]; the 100 and the nan never count
    x = t([[1.0, 2.0, 100.0], [3.0, float("nan"), 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert_close(whiten(x, mask, eps=0.0), t([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))


def test_whiten_degenerate_inputs_give_zero() -> None:
    assert whiten(t([3.0])).tolist() == [0.0]  # one entry: no spread
    assert whiten(t([2.0, 2.0, 2.0])).tolist() == [0.0, 0.0, 0.0]
    assert whiten(t([1.0, 2.0]), torch.tensor([0, 0])).tolist() == [0.0, 0.0]


def test_broadcast_to_tokens_hand_worked() -> None:
    # row 0: advantage 2 on its two policy tokens; row 1: -1 on its two
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]], dtype=torch.bool)
    out = broadcast_to_tokens(t([2.0, -1.0]), mask)
    assert_close(out, t([[2.0, 2.0, 0.0], [0.0, -1.0, -1.0]]))
    with pytest.raises(ValueError):
        broadcast_to_tokens(t([2.0]), mask)


# ---------------------------------------------------------------- GAE


def test_gae_terminated_hand_worked() -> None:
    # gamma 0.9, lam 0.8 (gamma * lam = 0.72), V = [0.5, 0.6, 0.7], r = [0, 0, 1], terminated:
    # delta_2 = 1 + 0.9 * 0 - 0.7 = 0.3                 A_2 = 0.3
    # delta_1 = 0 + 0.9 * 0.7 - 0.6 = 0.03              A_1 = 0.03 + 0.72 * 0.3 = 0.246
    # delta_0 = 0 + 0.9 * 0.6 - 0.5 = 0.04              A_0 = 0.04 + 0.72 * 0.246 = 0.21712
    # returns = A + V = [0.71712, 0.846, 1.0]
    adv, ret = gae(
        t([[0.0, 0.0, 1.0]]),
        t([[0.5, 0.6, 0.7]]),
        torch.ones(1, 3),
        gamma=0.9,
        lam=0.8,
        terminated=torch.tensor([True]),
        bootstrap_values=t([100.0]),  # ignored: the episode terminated
    )
    assert_close(adv, t([[0.21712, 0.246, 0.3]]))
    assert_close(ret, t([[0.71712, 0.846, 1.0]]))


def test_gae_truncated_bootstraps_hand_worked() -> None:
    # same episode, truncated, V(after last token) = 0.5:
    # delta_2 = 1 + 0.9 * 0.5 - 0.7 = 0.75              A_2 = 0.75
    # A_1 = 0.03 + 0.72 * 0.75 = 0.57;   A_0 = 0.04 + 0.72 * 0.57 = 0.4504
    adv, ret = gae(
        t([[0.0, 0.0, 1.0]]),
        t([[0.5, 0.6, 0.7]]),
        torch.ones(1, 3),
        gamma=0.9,
        lam=0.8,
        terminated=torch.tensor([False]),
        bootstrap_values=t([0.5]),
    )
    assert_close(adv, t([[0.4504, 0.57, 0.75]]))
    assert_close(ret, t([[0.9504, 1.17, 1.45]]))


def test_gae_skips_observation_and_padding_tokens_hand_worked() -> None:
    # tokens [action, observation, action, pad]; mask [1, 0, 1, 0]; terminated
    # the 5 (reward on an observation token), the 7 (on padding) and the 9s are ignored.
    # steps: t=0 (V 0.5) then t=2 (V 0.7):
    # A_2 = 1 - 0.7 = 0.3
    # A_0 = (0 + 0.9 * 0.7 - 0.5) + 0.72 * 0.3 = 0.13 + 0.216 = 0.346
    adv, ret = gae(
        t([[0.0, 5.0, 1.0, 7.0]]),
        t([[0.5, 9.0, 0.7, 9.0]]),
        torch.tensor([[1, 0, 1, 0]]),
        gamma=0.9,
        lam=0.8,
        terminated=torch.tensor([True]),
    )
    assert_close(adv, t([[0.346, 0.0, 0.3, 0.0]]))
    assert_close(ret, t([[0.846, 0.0, 1.0, 0.0]]))


def test_gae_gamma_lam_one_is_monte_carlo_minus_value() -> None:
    # gamma = lam = 1: A_t = (sum of rewards from t on) - V_t = [3 - 1, 2 - 1, 2 - 0] = [2, 1, 2]
    adv, ret = gae(
        t([[1.0, 0.0, 2.0]]),
        t([[1.0, 1.0, 0.0]]),
        torch.ones(1, 3),
        gamma=1.0,
        lam=1.0,
        terminated=torch.tensor([True]),
    )
    assert_close(adv, t([[2.0, 1.0, 2.0]]))
    assert_close(ret, t([[3.0, 2.0, 2.0]]))


def test_gae_truncated_without_bootstrap_is_an_error() -> None:
    with pytest.raises(ValueError, match="bootstrap_values"):
        gae(
            t([[1.0]]),
            t([[0.0]]),
            torch.ones(1, 1),
            gamma=1.0,
            lam=1.0,
            terminated=torch.tensor([False]),
        )
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        gae(
            t([[1.0]]),
            t([[0.0, 0.0]]),
            torch.ones(1, 1),
            gamma=1.0,
            lam=1.0,
            terminated=torch.tensor([True]),
        )


def test_gae_detaches_its_targets() -> None:
    values = t([[0.5, 0.6]]).requires_grad_()
    adv, ret = gae(
        t([[0.0, 1.0]]),
        values,
        torch.ones(1, 2),
        gamma=1.0,
        lam=1.0,
        terminated=torch.tensor([True]),
    )
    assert not adv.requires_grad and not ret.requires_grad


@settings(deadline=None, max_examples=60)
@given(
    st.integers(1, 4),
    st.integers(1, 7),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.integers(0, 2**31 - 1),
)
def test_gae_matches_loop_reference(b: int, n: int, gamma: float, lam: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.randn(b, n, generator=gen, dtype=F64)
    values = torch.randn(b, n, generator=gen, dtype=F64)
    mask = torch.rand(b, n, generator=gen) < 0.7
    terminated = torch.rand(b, generator=gen) < 0.5
    bootstrap = torch.randn(b, generator=gen, dtype=F64)
    adv, ret = gae(
        rewards,
        values,
        mask,
        gamma=gamma,
        lam=lam,
        terminated=terminated,
        bootstrap_values=bootstrap,
    )
    ref_adv, ref_ret = gae_loop(
        rewards.tolist(),
        values.tolist(),
        mask.tolist(),
        gamma,
        lam,
        terminated.tolist(),
        bootstrap.tolist(),
    )
    assert_close(adv, t(ref_adv))
    assert_close(ret, t(ref_ret))


# ---------------------------------------------------------------- registry


def test_every_estimator_is_registered() -> None:
    assert set(ADVANTAGE_ESTIMATORS) == set(AdvantageEstimator)
    assert get_advantage_estimator("grpo") is grpo_advantages
    assert get_advantage_estimator(AdvantageEstimator.GAE) is gae
    assert [e.needs_critic for e in AdvantageEstimator] == [False, False, False, False, True]


@pytest.mark.parametrize("name", ["grpo", "drgrpo", "rloo", "reinforce_pp"])
def test_outcome_estimators_share_one_call_signature(name: str) -> None:
    rewards, groups = t([1.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 1, 1])
    adv = get_advantage_estimator(name)(rewards, groups)
    assert adv.shape == (4,) and torch.isfinite(adv).all()
    assert adv[0] > adv[1]


def test_unknown_estimator_name_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        get_advantage_estimator("grpoo")
    message = str(info.value)
    assert "Did you mean 'grpo'?" in message
    for name in ("grpo", "drgrpo", "rloo", "reinforce_pp", "gae"):
        assert name in message


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The estimator registry, restored afterwards (and the helper module unimported)."""
    saved = dict(ADVANTAGE_ESTIMATORS)
    monkeypatch.delitem(sys.modules, "tests.helpers.sign_estimator", raising=False)
    yield
    ADVANTAGE_ESTIMATORS.clear()
    ADVANTAGE_ESTIMATORS.update(saved)


def test_a_registered_estimator_is_selectable_by_every_outcome_config(registry: None) -> None:
    def half(rewards: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
        return rewards / 2

    register_advantage_estimator("half", half, grouped=False)
    register_advantage_estimator("half", half, grouped=False)  # the same again: harmless
    assert get_advantage_estimator("half") is half
    one = RolloutConfig(env_id="toolgym/Calculator-v0", group_size=1)
    assert GRPOConfig(advantage_estimator="half", rollout=one).advantage_estimator == "half"
    with pytest.raises(ConfigError, match="episode_estimator must be a group estimator"):
        TurnLevelConfig(episode_estimator="half", rollout=dataclasses.replace(one, group_size=2))
    with pytest.raises(ConfigError, match="'half' is already registered"):
        register_advantage_estimator("half", grpo_advantages)


def test_config_imports_register_estimators_before_validation(registry: None) -> None:
    rollout = RolloutConfig(env_id="toolgym/Calculator-v0", group_size=2)
    with pytest.raises(ConfigError, match="Unknown advantage estimator 'rloo_sign'"):
        GRPOConfig(advantage_estimator="rloo_sign", rollout=rollout)
    config = TurnLevelConfig(imports=("tests.helpers.sign_estimator",), rollout=rollout,
                             episode_estimator="rloo_sign")
    fn = get_advantage_estimator(config.episode_estimator)
    assert fn(t([1.0, 0.0, 0.5, 0.5]), torch.tensor([0, 0, 1, 1])).tolist() == [1.0, -1.0, 0, 0]
