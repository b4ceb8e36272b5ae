"""A third-party-style outcome estimator, registered on import (for ``imports:`` in configs)."""

from __future__ import annotations

import torch
from torch import Tensor

from toolgym.trainers.advantages import register_advantage_estimator, rloo_advantages


def rloo_sign(rewards: Tensor, group_ids: Tensor) -> Tensor:
    """+1 / 0 / -1: whether each episode beat the mean of the rest of its group."""
    return torch.sign(rloo_advantages(rewards, group_ids))


register_advantage_estimator("rloo_sign", rloo_sign)
