"""Optimiser and learning-rate schedule: AdamW, linear warmup, cosine decay.

A decayed learning rate matters in RL fine-tuning of small models: on this
project's CPU recipe a constant rate undid progress late in training, a
cosine-decayed one did not (DESIGN.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from toolgym.errors import ConfigError
from toolgym.trainers.config import option

__all__ = ["OptimConfig", "build_optimizer", "build_scheduler", "lr_factor"]


@dataclass(frozen=True)
class OptimConfig:
    """AdamW, gradient clipping and the learning-rate schedule."""

    lr: float = option(1e-3, "Peak learning rate (after warmup).")
    weight_decay: float = option(0.0, "AdamW decoupled weight decay.")
    beta1: float = option(0.9, "AdamW beta1.")
    beta2: float = option(0.999, "AdamW beta2.")
    eps: float = option(1e-8, "AdamW epsilon.")
    max_grad_norm: float = option(1.0, "Clip the global gradient norm to this; 0 disables.")
    schedule: Literal["cosine", "constant", "linear"] = option(
        "cosine", "LR decay after warmup, over all optimiser steps of the run.")
    warmup_steps: int = option(0, "Optimiser steps of linear warmup from 0 to lr.")
    min_lr_ratio: float = option(0.0, "Final LR as a fraction of lr (cosine and linear).")

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0; got {self.lr}.")
        if self.warmup_steps < 0 or self.max_grad_norm < 0:
            raise ConfigError("optim.warmup_steps and optim.max_grad_norm must be >= 0.")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"optim.min_lr_ratio must be in [0, 1]; got {self.min_lr_ratio}.")


def build_optimizer(params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
                    config: OptimConfig) -> torch.optim.AdamW:
    """AdamW over ``params``: the policy's trainable parameters, or parameter groups.

    Groups (``{"params": [...], "lr": ...}``) let a value head train at its own
    rate; the LR schedule scales every group by the same factor.
    """
    materialised: list[Any] = list(params)
    if not materialised:
        raise ConfigError("The policy has no trainable parameters.")
    return torch.optim.AdamW(materialised, lr=config.lr, betas=(config.beta1, config.beta2),
                             eps=config.eps, weight_decay=config.weight_decay)


def lr_factor(step: int, total: int, config: OptimConfig) -> float:
    """Multiplier of ``lr`` at optimiser step ``step`` (0-based) of ``total``.

    >>> cfg = OptimConfig(warmup_steps=2, min_lr_ratio=0.0)
    >>> [round(lr_factor(s, 6, cfg), 3) for s in range(6)]
    [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    span = max(1, total - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    if config.schedule == "linear":
        shape = 1.0 - progress
    else:
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * shape


def build_scheduler(optimizer: torch.optim.Optimizer, config: OptimConfig,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Warmup then decay over ``total_steps`` optimiser steps; its state goes in checkpoints."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, config))
