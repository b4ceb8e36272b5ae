"""``toolgym doctor RUN_DIR``: does the trainer score the tokens as the sampler drew them?

Before the first update of a step the trainer's log-probs of the sampled
tokens must be the sampler's own: the on-policy ratio is 1 and
``|log pi_trainer - log pi_sampler|`` is 0 (up to float noise, or bf16 noise
for a separate inference engine). Anything else biases every update without
an error, so the trainer logs that mismatch every step (``mismatch_*``,
:func:`~toolgym.trainers.update.mismatch_sums`) and this check reads the
first step of a run.

    >>> diagnose([{"step": 1, "mismatch_ratio_mean": 0.8, "mismatch_abs_mean": 0.22,
    ...            "mismatch_abs_max": 1.6}])[0]
    False
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolgym.errors import ConfigError
from toolgym.trainers.metrics import read_metrics

__all__ = ["CAUSES", "diagnose", "diagnose_run"]

CAUSES = (
    "the trainer's sampling section (temperature, top_p) differs from the sampler's",
    "the sampler records raw instead of processed logprobs (a vLLM / OpenAI-compatible server "
    "needs logprobs_mode=processed_logprobs)",
    "the checkpoint's generation_config.json changes sampling (min_p, top_k, penalties)",
    "dropout in the training forward pass (disable_dropout: true)",
    "a different numeric path (bf16 engine): consider tis_cap with is_mode / is_level",
)


def diagnose(records: Sequence[dict[str, Any]], *, tolerance: float = 0.01) -> tuple[bool, str]:
    """``(ok, report)`` from metric records: is the first step's ratio 1 within ``tolerance``?

    Runs logged before the mismatch metrics existed are judged by ``ratio_mean``.

    Raises:
        ConfigError: no records, or none of the metrics this check reads.
    """
    if not records:
        raise ConfigError("The run has no metrics yet: train at least one step.")
    first = records[0]
    ratio = first.get("mismatch_ratio_mean", first.get("ratio_mean"))
    if ratio is None:
        raise ConfigError("The first step logged no ratio (mismatch_ratio_mean or ratio_mean).")
    dropped = sum(r.get("batch_dropped_no_logprobs", 0.0) for r in records)
    ok = abs(ratio - 1.0) <= tolerance
    line = (f"step {first.get('step', 1)}: on-policy ratio {ratio:.4f}, |delta logprob| mean "
            f"{first.get('mismatch_abs_mean', float('nan')):.4f} max "
            f"{first.get('mismatch_abs_max', float('nan')):.4f}: "
            + ("ok" if ok else f"NOT 1 (tolerance {tolerance})"))
    lines = [line]
    if not ok:
        lines += ["the trainer does not recompute the distribution the sampler drew from; "
                  "likely causes:"] + [f"  - {c}" for c in CAUSES]
    if dropped:
        lines.append(f"{int(dropped)} episodes were dropped for turns without sampler logprobs "
                     "(a backend that returns ids without logprobs)")
    return ok, "\n".join(lines)


def diagnose_run(run_dir: str | Path, *, tolerance: float = 0.01) -> tuple[bool, str]:
    """:func:`diagnose` on ``RUN_DIR/metrics.jsonl``."""
    return diagnose(read_metrics(run_dir), tolerance=tolerance)
