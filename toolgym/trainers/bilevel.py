"""Bi-level GAE: turn-level GAE above, token-level GAE inside each turn below.

The hierarchical estimator of ArCHer's token level, on PPO's machinery. Each step::

    critic.observe(new turns); critic.update()        # turn critic V(s_k), off-policy, replay
    A_k, R_k = turn_gae(r_k, V(s_k))                  # gamma, lam over *turns*
    A_t, R_t = bilevel_gae(V_token(t), R_k)           # gamma, lam over the tokens of turn k,
                                                      # the turn's last token rewarded R_k
    loss = policy_loss(A_t) + value_coef * value_loss(V_token, R_t)

The turn level decides how good the utterance was: ``R_k``, the turn's
lambda-return, estimates ``Q(s_k, a_k)`` from the turn critic's values at the
boundaries, so a good lookup in a failed episode can still score well. The
token level only spreads that over the turn's tokens, against PPO's value
head on the policy's last hidden state (:class:`~toolgym.trainers.ppo.ValueHead`),
and never looks past the turn's end: later turns are the turn level's
business. Observation tokens are not steps at either level.

Why both critics: the turn critic sees whole turns and learns off-policy from
a replay buffer, so its values are good at boundaries; the token head sees
every prefix inside a turn, which the turn critic cannot. With one-token
turns this is turn-level GAE; with one turn and ``R_0`` the outcome it is
token-level PPO.

``gamma`` and ``lam`` (from :class:`~toolgym.trainers.ppo.PPOConfig`) act inside
a turn; ``turn_gamma`` and ``turn_lam`` across turns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor

from toolgym.rollout.trajectory import Trajectory
from toolgym.trainers.base import TrainerConfig
from toolgym.trainers.batching import Batch
from toolgym.trainers.config import option, require_unit_interval
from toolgym.trainers.critic import ArCHerCritic, CriticConfig
from toolgym.trainers.ppo import PPOConfig, PPOTrainer
from toolgym.trainers.turn_advantages import bilevel_gae, turn_gae
from toolgym.trainers.turn_batch import turn_tensors

__all__ = ["BiLevelConfig", "BiLevelTrainer"]


@dataclass(frozen=True)
class BiLevelConfig(PPOConfig):
    """:class:`PPOConfig` (the token level) plus the turn level (``algorithm: bilevel``)."""

    run_dir: str = option("runs/bilevel", "Where metrics, checkpoints, trajectories and the "
                          "final model go.")
    gamma: float = option(1.0, "Discount per action token inside a turn.")
    lam: float = option(1.0, "GAE lambda per action token inside a turn (1: every token of a "
                        "turn is scored against the turn's target).")
    turn_gamma: float = option(1.0, "Discount per turn.")
    turn_lam: float = option(0.95, "GAE lambda over turns.")
    critic: CriticConfig = option(help="The turn critic whose V(s_k) the turn level reads.",
                                  factory=CriticConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        require_unit_interval(self, "turn_gamma", "turn_lam")


class BiLevelTrainer(PPOTrainer):
    """PPO whose token advantages come from bi-level GAE (see the module docstring).

    Example:
        >>> trainer = BiLevelTrainer(BiLevelConfig(model=..., rollout=...))  # doctest: +SKIP
        >>> trainer.train()                                                  # doctest: +SKIP
    """

    config_class: ClassVar[type[TrainerConfig]] = BiLevelConfig
    config: BiLevelConfig

    def __init__(self, config: BiLevelConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        vocab = self.policy.model.get_input_embeddings().num_embeddings
        self.critic = ArCHerCritic(config.critic, vocab_size=vocab, gamma=config.turn_gamma,
                                   seed=config.seed)

    def token_advantages(self, batch: Batch, kept: list[Trajectory], values: Tensor,
                         metrics: dict[str, float]) -> tuple[Tensor, Tensor]:
        """Train the turn critic on the new turns, then turn-level and in-turn GAE."""
        cfg = self.config
        self.critic.observe(kept, process_coef=cfg.process_coef)
        metrics.update(self.critic.update())
        turns = turn_tensors(kept, process_coef=cfg.process_coef)
        turn_values, bootstrap = self.critic.turn_values(kept, turns.mask,
                                                         process_coef=cfg.process_coef)
        _, targets = turn_gae(turns.rewards, turn_values, turns.mask, gamma=cfg.turn_gamma,
                              lam=cfg.turn_lam, terminated=turns.terminated,
                              bootstrap_values=bootstrap)
        if bool(turns.mask.any()):
            metrics["turn_target_mean"] = float(targets[turns.mask].mean())
        assert batch.turn_index is not None, "build_batch fills turn_index"
        return bilevel_gae(values, batch.turn_index, targets[batch.traj_index], gamma=cfg.gamma,
                           lam=cfg.lam)

    # ------------------------------------------------------ persistence
    def checkpoint_state(self) -> dict[str, Any]:
        """PPO's state plus the turn critic (networks, optimiser, replay buffer)."""
        return {**super().checkpoint_state(), "critic": self.critic.state_dict()}

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        super().load_checkpoint_state(state)
        self.critic.load_state_dict(state["critic"])
