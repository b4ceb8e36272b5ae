"""Log-probabilities of the tokens a batch holds, recomputed under a model.

The trainer's ratio ``pi / pi_old`` is only as right as these numbers: each
position ``t`` gets ``log p(token_t | tokens_<t)`` from the logits at ``t - 1``,
divided by the sampling temperature first, because the sampler's logprobs
(:class:`~toolgym.agents.hf.HFAgent`) are those of the tempered distribution.
Position 0 has no prefix and gets 0; it is never an action token.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from toolgym.trainers.losses import entropy_from_logits

__all__ = ["token_logprobs"]


def token_logprobs(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor,
    *,
    temperature: float = 1.0,
    entropy_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Per-token log-probs (and optionally entropies) of ``input_ids`` under ``model``.

    Args:
        model: A causal LM returning ``.logits`` of shape ``[N, T, V]``.
        input_ids: ``LongTensor[N, T]``, right-padded.
        attention_mask: ``Tensor[N, T]``, 1 on real tokens.
        temperature: The sampling temperature (0 or 1 leave the logits as they are).
        entropy_mask: ``BoolTensor[N, T]``; when given, the entropy of the
            predictive distribution is computed at these positions only (it
            costs a ``[K, V]`` softmax) and returned as ``Tensor[N, T]``, 0 elsewhere.

    Returns:
        ``(logprobs[N, T], entropy[N, T] or None)``, float32, differentiable.
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    logits = logits[:, :-1].float()
    if temperature not in (0.0, 1.0):
        logits = logits / temperature
    targets = input_ids[:, 1:, None]
    taken = logits.gather(-1, targets).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    zero = taken.new_zeros((taken.shape[0], 1))
    logprobs = torch.cat([zero, taken], dim=1)
    if entropy_mask is None:
        return logprobs, None
    where = entropy_mask[:, 1:].bool()
    entropy = taken.new_zeros(taken.shape)
    entropy = entropy.masked_scatter(where, entropy_from_logits(logits[where]))
    return logprobs, torch.cat([zero, entropy], dim=1)
