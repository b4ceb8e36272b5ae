"""Learning curves of a run: PNGs drawn from ``RUN_DIR/metrics.jsonl``.

One figure per family of metrics (reward and success, loss, KL and
entropy, optimisation, throughput and time split), each series with a
moving average over the noisy per-step values. matplotlib runs on its Agg
backend, so no display is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolgym.errors import ConfigError
from toolgym.trainers.metrics import read_metrics

__all__ = ["FIGURES", "plot_run"]

FIGURES: dict[str, tuple[str, ...]] = {
    "reward": ("reward_mean", "success_rate"),
    "loss": ("loss", "policy_loss"),
    "kl_entropy": ("approx_kl", "kl_ref", "entropy", "clip_fraction"),
    "optimisation": ("grad_norm", "lr"),
    "throughput": ("train_tokens_per_s", "gen_tokens_per_s"),
    "time": ("env_time_share", "staleness_mean", "step_s"),
}
"""File stem -> metrics drawn in it (one panel each; absent metrics are skipped)."""


def _smooth(values: Sequence[float], window: int) -> list[float]:
    out, acc, queue = [], 0.0, []
    for v in values:
        queue.append(v)
        acc += v
        if len(queue) > window:
            acc -= queue.pop(0)
        out.append(acc / len(queue))
    return out


def _series(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["step"], float(r[key])) for r in records if isinstance(r.get(key), int | float)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None, *,
             window: int = 10) -> list[Path]:
    """Write one PNG per entry of :data:`FIGURES` that has data; return their paths.

    Args:
        run_dir: A run directory (holding ``metrics.jsonl``).
        out_dir: Where the PNGs go; default ``run_dir/plots``.
        window: Steps in the moving average.

    Raises:
        ConfigError: no metrics in ``run_dir``, or matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError("Plotting needs matplotlib: pip install 'toolgym[train]'.") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    if not records:
        raise ConfigError(f"No metrics in {run_dir}: is it a run directory?")
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, keys in FIGURES.items():
        present = [k for k in keys if _series(records, k)[0]]
        if not present:
            continue
        fig, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.2), squeeze=False)
        for ax, key in zip(axes[0], present, strict=True):
            steps, values = _series(records, key)
            ax.plot(steps, values, alpha=0.35, linewidth=1, label="per step")
            ax.plot(steps, _smooth(values, window), linewidth=2, label=f"mean of {window}")
            ax.set_title(key)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.suptitle(f"{Path(run_dir).name}: {stem}")
        fig.tight_layout()
        path = out / f"{stem}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
