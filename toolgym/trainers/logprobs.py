"""Log-probabilities of the tokens a batch holds, recomputed under a model.

The trainer's ratio ``pi / pi_old`` is only as right as these numbers: each
position ``t`` gets ``log p(token_t | tokens_<t)`` from the logits at ``t - 1``,
processed as the sampler processed them (temperature, then the top-p nucleus,
by :func:`~toolgym.agents.sampling.sampling_logits`), because the sampler's
logprobs (:class:`~toolgym.agents.hf.HFAgent`, vLLM's ``processed_logprobs``)
are those of the distribution it drew from. The sampled token itself always
stays in the nucleus, so its log-prob is finite. Position 0 has no prefix and
gets 0; it is never an action token.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from toolgym.agents.sampling import sampling_logits
from toolgym.trainers.losses import entropy_from_logits

__all__ = ["last_hidden_state", "logprobs_from_logits", "token_logprobs",
           "token_logprobs_and_hidden"]


def token_logprobs(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    entropy_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Per-token log-probs (and optionally entropies) of ``input_ids`` under ``model``.

    Args:
        model: A causal LM returning ``.logits`` of shape ``[N, T, V]``.
        input_ids: ``LongTensor[N, T]``, right-padded.
        attention_mask: ``Tensor[N, T]``, 1 on real tokens.
        temperature: The sampling temperature (0 or 1 leave the logits as they are).
        top_p: The sampling nucleus (1, or temperature 0, keeps every token).
        entropy_mask: ``BoolTensor[N, T]``; when given, the entropy of the
            predictive distribution is computed at these positions only (it
            costs a ``[K, V]`` softmax) and returned as ``Tensor[N, T]``, 0 elsewhere.

    Returns:
        ``(logprobs[N, T], entropy[N, T] or None)``, float32, differentiable.
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    return logprobs_from_logits(logits, input_ids, temperature=temperature, top_p=top_p,
                                entropy_mask=entropy_mask)


def token_logprobs_and_hidden(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    entropy_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """:func:`token_logprobs` plus the last hidden state of the same forward pass.

    A value head on the policy's trunk (PPO) reads the hidden state the
    log-probs came from, so the policy and value losses share one forward
    and one backward pass.

    Returns:
        ``(logprobs[N, T], entropy[N, T] or None, hidden[N, T, H])``; ``hidden`` is
        the input of the LM head (after the final norm), in the model's dtype.
    """
    out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                output_hidden_states=True)
    logprobs, entropy = logprobs_from_logits(out.logits, input_ids, temperature=temperature,
                                             top_p=top_p, entropy_mask=entropy_mask)
    return logprobs, entropy, out.hidden_states[-1]


def last_hidden_state(model: Any, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """``hidden[N, T, H]``: the input of the LM head at every position (what a value head reads)."""
    out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                output_hidden_states=True)
    return out.hidden_states[-1]


def logprobs_from_logits(
    logits: Tensor,
    input_ids: Tensor,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    entropy_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """The log-probs (and entropies) of :func:`token_logprobs` from logits ``[N, T, V]``.

    The entropy is that of the processed distribution, the one sampled from.
    """
    targets = input_ids[:, 1:, None]
    logits = sampling_logits(logits[:, :-1], temperature, top_p, keep=targets[..., 0])
    taken = logits.gather(-1, targets).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    zero = taken.new_zeros((taken.shape[0], 1))
    logprobs = torch.cat([zero, taken], dim=1)
    if entropy_mask is None:
        return logprobs, None
    where = entropy_mask[:, 1:].bool()
    entropy = taken.new_zeros(taken.shape)
    entropy = entropy.masked_scatter(where, entropy_from_logits(logits[where]))
    return logprobs, torch.cat([zero, entropy], dim=1)
