"""Token-level PPO: GAE over the policy's tokens against a value head on the policy's trunk.

What this trainer adds to :class:`~toolgym.trainers.base.Trainer` is a critic
and the advantages it makes possible. Each step::

    batch   = build_batch(trajectories)                  # padded, no advantages yet
    V       = value_head(hidden(policy, batch))          # no grad, pre-update policy
    A, R    = gae(rewards, V, action tokens only)        # per trajectory, across turns
    loss    = policy_loss(A) + value_coef * value_loss(V_new, V, R, clip=value_clip)

**The MDP is the sequence of action tokens.** Observation tokens the env
appends between turns are not actions: GAE skips them, as verl's and SkyRL's
multi-turn PPO do. The step after a turn's last action token is the next
turn's first action token, whose value is read *after* the observation
arrived, so the observation still informs the critic; it just costs no
discount and earns no advantage. Rewards sit on action tokens: each turn's
reward on its last action token (:func:`~toolgym.trainers.turn_batch.turn_rewards`:
``process_coef`` x the env's per-turn rewards, and the episode's final reward
on the last turn). A terminated episode ends with value 0; a truncated one
(outcome ``truncated``) is bootstrapped from ``V`` of the state after its
last observation. A trajectory split over several samples (a chat template
that rewrites history) is one sequence: GAE runs over its action tokens in
order across the samples.

**Why a linear head on the policy's last hidden state, not a separate value
model.** The update loop already runs one forward pass per micro-batch for
the log-probs; with ``output_hidden_states`` the same pass yields the hidden
state, so the value costs a ``[H, 1]`` matmul, the loss is literally
``policy_loss + value_coef * value_loss``, one backward pass and one
optimiser step serve both, and gradient accumulation, micro-batching,
mini-batching and checkpoints work unchanged
(:class:`~toolgym.trainers.update.ValueTerm`). A separate critic model would
double the memory and the forward passes and need a second update loop. The
price is a shared trunk: the value loss also moves the policy's (or its LoRA
adapter's) weights, which ``value_coef`` bounds (0.1, as TRL's value-head
PPO). The head starts at zero (``V = 0``, no gradient into the trunk at
first) and always trains, LoRA or not.

**One optimiser.** The head is a second parameter group of the policy's AdamW
(``value_lr``, default ``optim.lr``), under the same LR schedule and global
gradient clip; its Adam state and weights are in every checkpoint, so a
resumed run continues exactly.

    >>> PPOConfig(value_coef=0.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    toolgym.errors.ConfigError: value_coef must be > 0: ...
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from toolgym.errors import ConfigError
from toolgym.rollout.manager import RolloutConfig
from toolgym.rollout.trajectory import Trajectory
from toolgym.trainers.advantages import gae, whiten
from toolgym.trainers.base import Trainer, TrainerConfig
from toolgym.trainers.batching import Batch, build_batch, trainable_only
from toolgym.trainers.config import option, require_unit_interval
from toolgym.trainers.logprobs import last_hidden_state
from toolgym.trainers.losses import masked_mean
from toolgym.trainers.optim import build_optimizer, build_scheduler
from toolgym.trainers.turn_batch import after_last_turn, turn_tensors
from toolgym.trainers.update import ValueTerm, index_chunks

__all__ = ["PPOConfig", "PPOTrainer", "RolloutConfig", "ValueHead", "action_steps",
           "place_turn_rewards", "token_gae"]


@dataclass(frozen=True)
class PPOConfig(TrainerConfig):
    """:class:`TrainerConfig` plus GAE and the value head (``algorithm: ppo``)."""

    run_dir: str = option("runs/ppo", "Where metrics, checkpoints, trajectories and the final "
                          "model go.")
    gamma: float = option(1.0, "Discount per action token (observation tokens are not steps).")
    lam: float = option(1.0, "GAE lambda per action token. 1: Monte-Carlo returns minus V "
                        "(verl's default); < 1 leans on the critic, and decays fast over "
                        "hundreds of tokens.")
    value_coef: float = option(0.1, "Weight of the value loss; it also trains the shared trunk "
                               "(or LoRA adapter), so keep it small.")
    value_clip: float | None = option(0.2, "Half-width of PPO's value clipping around the "
                                      "pre-update values; null disables it.")
    value_lr: float | None = option(None, "Learning rate of the value head's parameter group "
                                    "(same schedule); null: optim.lr.")
    whiten_advantages: bool = option(True, "Normalise the batch's token advantages to mean 0, "
                                     "std 1 (verl, OpenRLHF).")
    process_coef: float = option(1.0, "Weight of the per-turn (process) rewards at the end of "
                                 "every turn but the last; the last turn gets the outcome.")

    def __post_init__(self) -> None:
        super().__post_init__()
        require_unit_interval(self, "gamma", "lam")
        if self.value_coef <= 0:
            raise ConfigError(f"value_coef must be > 0: without a value loss the head never "
                              f"learns and GAE runs against V = 0 (got {self.value_coef}); for "
                              "critic-free training use algorithm: grpo.")
        if self.value_clip is not None and self.value_clip <= 0:
            raise ConfigError(f"value_clip must be > 0 (e.g. 0.2) or null to disable it; got "
                              f"{self.value_clip}.")
        if self.value_lr is not None and self.value_lr <= 0:
            raise ConfigError(f"value_lr must be > 0 or null (use optim.lr); got {self.value_lr}.")


class ValueHead(nn.Module):
    """A linear value head on the policy's last hidden state, zero-initialised.

    Runs in float32 whatever the policy's dtype (values are regression targets).

    Example:
        >>> head = ValueHead(4)
        >>> head(torch.ones(1, 3, 4)).tolist()
        [[0.0, 0.0, 0.0]]
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def score(self, hidden: Tensor) -> Tensor:
        """``Tensor[N, T]``: ``V`` of the state after each position's token."""
        return self.linear(hidden.float())[..., 0]

    def forward(self, hidden: Tensor) -> Tensor:
        """``Tensor[N, T]`` aligned like the log-probs: ``V`` of the state token ``t`` came from.

        That state ends at token ``t - 1``, so this is :meth:`score` shifted
        right by one (position 0, never an action, gets 0).
        """
        scores = self.score(hidden)
        return torch.cat([scores.new_zeros(scores.shape[0], 1), scores[:, :-1]], dim=1)


# ------------------------------------------------------- GAE over action tokens
def action_steps(batch: Batch, num_trajectories: int) -> tuple[Tensor, Tensor, Tensor]:
    """Where each trajectory's action tokens sit in ``batch``, in the order they were sampled.

    Samples of one trajectory are consecutive rows in turn order (as
    :func:`~toolgym.trainers.batching.build_batch` makes them), so row-major
    order is sampling order.

    Returns:
        ``(rows, cols, mask)``, each ``[B, L]`` with ``L`` the most action
        tokens of a trajectory: step ``j`` of trajectory ``b`` is token
        ``(rows[b, j], cols[b, j])`` where ``mask[b, j]``.
    """
    rows, cols = batch.loss_mask.nonzero(as_tuple=True)
    traj = batch.traj_index[rows]
    counts = torch.bincount(traj, minlength=num_trajectories)
    pos = torch.arange(len(rows)) - (torch.cumsum(counts, 0) - counts)[traj]
    width = int(counts.max()) if len(rows) else 0
    out_rows = torch.zeros((num_trajectories, width), dtype=torch.long)
    out_cols = torch.zeros_like(out_rows)
    mask = torch.zeros((num_trajectories, width), dtype=torch.bool)
    out_rows[traj, pos], out_cols[traj, pos], mask[traj, pos] = rows, cols, True
    return out_rows, out_cols, mask


def place_turn_rewards(turn_ids: Tensor, mask: Tensor, rewards: Tensor,
                       turn_mask: Tensor) -> Tensor:
    """Per-step rewards: turn ``k``'s reward on the last step (action token) of turn ``k``.

    A turn with no step left (its tokens were cut by ``max_length``) gives its
    reward to the trajectory's last step, so no reward is lost.

    Args:
        turn_ids: ``LongTensor[B, L]``, the turn of each step.
        mask: ``BoolTensor[B, L]``, true on steps (left-aligned).
        rewards: ``Tensor[B, K]``, the reward of each turn.
        turn_mask: ``BoolTensor[B, K]``, true on turns the trajectory has.

    Returns:
        ``Tensor[B, L]``, 0 off the turn ends.

    Example:
        >>> place_turn_rewards(torch.tensor([[0, 0, 1]]), torch.tensor([[True] * 3]),
        ...                    torch.tensor([[0.5, 1.0]]), torch.tensor([[True, True]])).tolist()
        [[0.0, 0.5, 1.0]]
    """
    out = torch.zeros(mask.shape, dtype=torch.float32)
    for b in range(mask.shape[0]):
        n = int(mask[b].sum())
        if n == 0:
            continue
        ids = turn_ids[b, :n]
        ends = torch.ones(n, dtype=torch.bool)
        ends[:-1] = ids[1:] != ids[:-1]
        out[b, :n] = torch.where(ends, rewards[b, ids], 0.0)
        missing = turn_mask[b].clone()
        missing[ids] = False
        out[b, n - 1] += rewards[b][missing].sum()
    return out


def token_gae(batch: Batch, values: Tensor, turn_rewards: Tensor, turn_mask: Tensor,
              terminated: Tensor, bootstrap_values: Tensor, *, gamma: float,
              lam: float) -> tuple[Tensor, Tensor]:
    """:func:`~toolgym.trainers.advantages.gae` over each trajectory's action tokens.

    Args:
        batch: Its ``loss_mask``, ``traj_index`` and ``turn_index`` are read.
        values: ``Tensor[N, T]``, ``V`` aligned like the log-probs (:class:`ValueHead`).
        turn_rewards: ``Tensor[B, K]`` per kept trajectory and turn.
        turn_mask: ``BoolTensor[B, K]``.
        terminated: ``BoolTensor[B]``; false where the episode was truncated.
        bootstrap_values: ``Tensor[B]``, ``V`` after the last turn (read where not terminated).
        gamma: Discount per action token.
        lam: GAE lambda.

    Returns:
        ``(advantages, returns)``, each ``Tensor[N, T]``, 0 off action tokens.
    """
    assert batch.turn_index is not None, "build_batch fills turn_index"
    rows, cols, mask = action_steps(batch, turn_rewards.shape[0])
    rewards = place_turn_rewards(batch.turn_index[rows, cols], mask, turn_rewards, turn_mask)
    adv, ret = gae(rewards, values[rows, cols], mask, gamma=gamma, lam=lam,
                   terminated=terminated, bootstrap_values=bootstrap_values)
    advantages, returns = torch.zeros_like(values), torch.zeros_like(values)
    advantages[rows[mask], cols[mask]] = adv[mask]
    returns[rows[mask], cols[mask]] = ret[mask]
    return advantages, returns


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> float:
    """``1 - Var(R - V) / Var(R)`` over ``mask``, as CleanRL logs it.

    1 is a perfect critic, <= 0 one no better than a constant; nan when the
    returns do not vary.
    """
    var = masked_mean((returns - masked_mean(returns, mask)).square(), mask)
    err = returns - values
    var_err = masked_mean((err - masked_mean(err, mask)).square(), mask)
    return float(1.0 - var_err / var) if float(var) > 0 else float("nan")


# --------------------------------------------------------------------- trainer
class PPOTrainer(Trainer):
    """Token-level PPO with GAE and a value head (see the module docstring).

    Example:
        >>> trainer = PPOTrainer(PPOConfig(model=..., rollout=...))  # doctest: +SKIP
        >>> trainer.train()                                          # doctest: +SKIP
    """

    config_class: ClassVar[type[TrainerConfig]] = PPOConfig
    kl_in_reward_supported: ClassVar[bool] = False
    config: PPOConfig

    def __init__(self, config: PPOConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        hidden = int(self.policy.model.config.hidden_size)
        self.value_head = ValueHead(hidden).to(self.policy.device)
        head_lr = config.value_lr if config.value_lr is not None else config.optim.lr
        groups: list[dict[str, Any]] = [{"params": self.policy.trainable_parameters()},
                  {"params": list(self.value_head.parameters()), "lr": head_lr}]
        self.optimizer = build_optimizer(groups, config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim,
                                         config.total_optimizer_steps)

    def value_term(self) -> ValueTerm:
        """The head and its loss weight, for the update loop's shared forward pass."""
        return ValueTerm(self.value_head, self.config.value_coef, self.config.value_clip)

    def make_batch(self, trajectories: list[Trajectory]) -> tuple[Batch, dict[str, float]]:
        """Pad, read the pre-update values, run GAE over action tokens, attach the targets."""
        cfg = self.config
        batch, stats = build_batch(trajectories, pad_id=self.policy.pad_id,
                                   max_length=cfg.max_length)
        metrics = {f"batch_{k}": float(v) for k, v in stats.as_dict().items()}
        kept, _ = trainable_only(trajectories)
        values = self.values(batch)
        adv, returns = self.token_advantages(batch, kept, values, metrics)
        mask = batch.loss_mask
        if batch.num_action_tokens:
            metrics.update(value_mean=float(masked_mean(values, mask)),
                           return_mean=float(masked_mean(returns, mask)),
                           adv_abs_mean=float(masked_mean(adv.abs(), mask)),
                           value_explained_variance=explained_variance(values, returns, mask))
        if cfg.whiten_advantages:
            adv = whiten(adv, mask)
        batch = dataclasses.replace(batch, advantages=adv, old_values=values, returns=returns)
        return batch, metrics

    def token_advantages(self, batch: Batch, kept: list[Trajectory], values: Tensor,
                         metrics: dict[str, float]) -> tuple[Tensor, Tensor]:
        """``(advantages, returns)``, each ``Tensor[N, T]``: GAE over the action tokens.

        A subclass that estimates them otherwise overrides this (and may add to ``metrics``).
        """
        cfg = self.config
        turns = turn_tensors(kept, process_coef=cfg.process_coef)
        bootstrap = self.bootstrap_values(kept, turns.terminated)
        return token_gae(batch, values, turns.rewards, turns.mask, turns.terminated, bootstrap,
                         gamma=cfg.gamma, lam=cfg.lam)

    @torch.no_grad()
    def values(self, batch: Batch) -> Tensor:
        """``Tensor[N, T]``: the head's values of every position under the current weights."""
        out = torch.zeros(batch.input_ids.shape)
        for idx in index_chunks(torch.arange(len(batch)), self.config.micro_batch_size):
            mb = batch.select(idx).to(self.policy.device)
            hidden = last_hidden_state(self.policy.model, mb.input_ids, mb.attention_mask)
            out[idx, : mb.input_ids.shape[1]] = self.value_head(hidden).cpu()
        return out

    @torch.no_grad()
    def bootstrap_values(self, trajectories: list[Trajectory], terminated: Tensor) -> Tensor:
        """``Tensor[B]``: ``V`` after the last observation of each truncated episode (0 elsewhere).

        Only truncated episodes need one; each costs a forward pass over its
        full context (cut to its last ``max_length`` tokens).
        """
        out = torch.zeros(len(trajectories))
        cut = self.config.max_length
        for b in (~terminated).nonzero()[:, 0].tolist():
            ids = after_last_turn(trajectories[b])[-cut if cut else 0:]
            if not ids:
                continue
            x = torch.tensor([ids], device=self.policy.device)
            hidden = last_hidden_state(self.policy.model, x, torch.ones_like(x))
            out[b] = self.value_head.score(hidden)[0, -1].cpu()
        return out

    # ------------------------------------------------------ persistence
    def checkpoint_state(self) -> dict[str, Any]:
        """The base state plus the value head's weights (its Adam state is in the optimiser's)."""
        state = super().checkpoint_state()
        state["value_head"] = {k: v.detach().cpu().clone()
                               for k, v in self.value_head.state_dict().items()}
        return state

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        super().load_checkpoint_state(state)
        self.value_head.load_state_dict(state["value_head"])
