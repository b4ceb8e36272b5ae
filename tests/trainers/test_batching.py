"""build_batch: dropping with counts, masks, padding, advantages per trajectory."""

from __future__ import annotations

import math

import torch
from torch.testing import assert_close

from toolgym.rollout.trajectory import Trajectory, Turn
from toolgym.trainers.advantages import get_advantage_estimator
from toolgym.trainers.batching import build_batch, group_index

PAD = 0


def traj(reward: float, group: str | None, outcome: str = "success", *, n_actions: int = 2,
         ids: bool = True) -> Trajectory:
    """Two turns: prompt [1, 2], action, observation [3], action."""
    act = [7] * n_actions
    turns = [Turn("a", act if ids else None, [-0.5] * n_actions if ids else None,
                  prompt_ids=[1, 2], obs_ids=[3]),
             Turn("b", [8], [-0.25])]
    return Trajectory("e", "t", turns, final_reward=reward, outcome=outcome, group_id=group)


def test_masks_logprobs_and_right_padding_of_a_multi_turn_episode() -> None:
    long, short = traj(1.0, "g"), traj(0.0, "g", n_actions=1)
    batch, stats = build_batch([long, short], pad_id=PAD)
    assert batch.input_ids.tolist() == [[1, 2, 7, 7, 3, 8], [1, 2, 7, 3, 8, PAD]]
    assert batch.attention_mask.tolist() == [[1] * 6, [1] * 5 + [0]]
    assert batch.loss_mask.int().tolist() == [[0, 0, 1, 1, 0, 1], [0, 0, 1, 0, 1, 0]]
    assert batch.behaviour_logprobs.tolist() == [[0, 0, -0.5, -0.5, 0, -0.25],
                                                 [0, 0, -0.5, 0, -0.25, 0]]
    assert (stats.trajectories, stats.samples) == (2, 2)
    assert batch.num_action_tokens == 5


def test_grpo_advantages_spread_over_action_tokens_only() -> None:
    # group g: rewards [1, 0] -> mean 0.5, unbiased std 0.7071 -> +-0.7071; group h: [1] -> 0
    trajs = [traj(1.0, "g"), traj(0.0, "g"), traj(1.0, "h")]
    batch, _ = build_batch(trajs, pad_id=PAD, advantage_fn=get_advantage_estimator("grpo"))
    a = 0.5 / math.sqrt(0.5)
    expected = torch.tensor([[0, 0, a, a, 0, a], [0, 0, -a, -a, 0, -a], [0] * 6])
    assert_close(batch.advantages, expected, atol=1e-5, rtol=0)
    assert batch.group_ids.tolist() == [0, 0, 1]
    assert batch.rewards.tolist() == [1.0, 0.0, 1.0]


def test_dropped_trajectories_are_counted_and_do_not_shift_baselines() -> None:
    kept = [traj(1.0, "g"), traj(0.0, "g")]
    junk = [traj(5.0, "g", outcome="infra_error"), traj(9.0, "g", ids=False),
            traj(9.0, "g", n_actions=0)]
    junk[2].turns = junk[2].turns[:1]
    rloo = get_advantage_estimator("rloo")
    batch, stats = build_batch(kept + junk, pad_id=PAD, advantage_fn=rloo)
    assert (stats.dropped_infra_error, stats.dropped_untrainable, stats.dropped_empty) == (1, 1, 1)
    assert stats.trajectories == 2 and len(batch) == 2
    assert batch.advantages[:, 2].tolist() == [1.0, -1.0]  # RLOO over the two kept ones only


def test_a_non_append_only_episode_gives_one_sample_per_turn_with_one_advantage() -> None:
    t = traj(1.0, "g")
    t.turns[1].prompt_ids = [1, 2, 9]  # the template re-rendered the history
    other = traj(0.0, "g")
    batch, stats = build_batch([t, other], pad_id=PAD,
                               advantage_fn=get_advantage_estimator("drgrpo"))
    assert stats.samples == 3 and batch.traj_index.tolist() == [0, 0, 1]
    assert batch.input_ids[1, :4].tolist() == [1, 2, 9, 8]
    assert batch.advantages[0, 2] == batch.advantages[1, 3] == 0.5


def test_max_length_cuts_samples_and_counts_them() -> None:
    batch, stats = build_batch([traj(1.0, "g"), traj(0.0, "g", n_actions=1)], pad_id=PAD,
                               max_length=4)
    assert batch.input_ids.shape == (2, 4) and stats.truncated_samples == 2


def test_select_trims_to_the_longest_selected_row() -> None:
    batch, _ = build_batch([traj(1.0, "g"), traj(0.0, "g", n_actions=1)], pad_id=PAD)
    assert batch.select([1]).input_ids.tolist() == [[1, 2, 7, 3, 8]]


def test_everything_dropped_gives_an_empty_batch() -> None:
    batch, stats = build_batch([traj(1.0, "g", outcome="infra_error")], pad_id=PAD,
                               advantage_fn=get_advantage_estimator("grpo"))
    assert len(batch) == 0 and stats.dropped_infra_error == 1


def test_group_index_maps_equal_ids_and_gives_missing_ids_their_own_group() -> None:
    trajs = [traj(0, "b"), traj(0, None), traj(0, "a"), traj(0, "b"), traj(0, None)]
    assert group_index(trajs).tolist() == [0, 1, 2, 0, 3]
