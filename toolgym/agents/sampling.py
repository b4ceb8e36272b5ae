"""The distribution a token is drawn from: one function for the sampler and the trainer.

toolgym's rule is vLLM's ``logprobs_mode="processed_logprobs"``: the
log-probability a sampler records for a token is ``log_softmax`` of the logits
*after* temperature and nucleus (top-p) truncation, and the trainer recomputes
exactly that, with this same function. The on-policy ratio ``pi / pi_behaviour``
is then 1 whatever ``top_p`` is, and the policy gradient is that of the
truncated policy that actually produced the tokens. Greedy decoding
(temperature 0) records the untempered, untruncated distribution.

    >>> import torch
    >>> logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    >>> sampling_logits(logits, 1.0, 0.8).softmax(-1).tolist()   # the 0.5 + 0.3 nucleus
    [0.625, 0.375, 0.0, 0.0]
    >>> sampling_logits(logits, 1.0, 0.8, keep=torch.tensor(3)).isinf().tolist()
    [False, False, True, False]
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["sampling_logits"]


def sampling_logits(logits: Tensor, temperature: float, top_p: float, *,
                    keep: Tensor | None = None) -> Tensor:
    """The logits of the distribution sampled from: ``logits / T``, then the top-p nucleus.

    The nucleus is the smallest set of most probable tokens whose mass reaches
    ``top_p`` (a token is kept when the mass strictly before it, in descending
    order, is below ``top_p``; the most probable token always is). Tokens
    outside it get ``-inf``. Which tokens are kept is not differentiated; the
    renormalisation over the kept ones is.

    Args:
        logits: ``Tensor[*S, V]``.
        temperature: Sampling temperature; 0 (greedy) and 1 leave the logits as they are.
        top_p: Nucleus mass in (0, 1]; 1 (or greedy) keeps every token.
        keep: ``LongTensor[*S]``, a token per row kept even outside the nucleus:
            the trainer passes the sampled token, so a boundary token the
            sampler kept but whose rank moved by float noise (another kernel,
            bf16) keeps a finite log-prob.

    Returns:
        ``Tensor[*S, V]`` in float32.
    """
    out = logits.float()
    if temperature not in (0.0, 1.0):
        out = out / temperature
    if temperature == 0.0 or top_p >= 1.0:
        return out
    ordered, order = out.detach().sort(-1, descending=True)
    probs = ordered.softmax(-1)
    drop_sorted = (probs.cumsum(-1) - probs) >= top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    if keep is not None:
        drop = drop.scatter(-1, keep[..., None], False)
    return out.masked_fill(drop, float("-inf"))
