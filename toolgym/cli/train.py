"""``toolgym train CONFIG.yaml``, ``toolgym sft CONFIG.yaml``, ``toolgym plot RUN_DIR`` and
``toolgym doctor RUN_DIR``.

The YAML file holds one trainer config (``GRPOConfig``, ``PPOConfig``,
``TurnLevelConfig``, ``ArCHerConfig``, ``BiLevelConfig`` or ``SFTConfig``);
``algorithm:`` at its top picks the trainer (default ``grpo``; the names are
registered in :mod:`toolgym.trainers.algorithms`). ``--set
key=value`` overrides any field, dotted for sections (``--set optim.lr=3e-4``);
an unknown key is an error that names the closest one. ``--resume`` continues
the run in ``run_dir`` from its latest checkpoint. ``--dry-run`` prints the
resolved config with every field's help and exits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from toolgym.errors import ToolgymError

app = typer.Typer(help="Train tool-using agents and plot their runs.", no_args_is_help=True)

ConfigArg = Annotated[Path, typer.Argument(help="YAML config file.", exists=True, dir_okay=False)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a field: --set optim.lr=3e-4 (repeatable).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue from the latest checkpoint.")]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and exit.")]


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"Error: {exc}", err=True)
    return typer.Exit(2)


def _read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ToolgymError(f"{path} must hold a mapping of config keys.")
    return data


def resolve_train_config(path: Path, overrides: list[str]) -> tuple[Any, type]:
    """Read ``path``, pick the algorithm, apply ``--set``: ``(config, trainer class)``.

    The trainer comes from :func:`toolgym.trainers.algorithms.get_algorithm`, the
    config class is its ``config_class``.
    """
    from toolgym.trainers.algorithms import get_algorithm
    from toolgym.trainers.config import apply_overrides, from_dict

    data = _read_yaml(path)
    trainer_cls = get_algorithm(str(data.pop("algorithm", "grpo")))
    config_cls = trainer_cls.config_class
    return from_dict(config_cls, apply_overrides(config_cls, data, overrides or [])), trainer_cls


def train(config: ConfigArg, set_: SetOpt = None, resume: ResumeOpt = False,
          dry_run: DryOpt = False) -> None:
    """Train a policy with RL (GRPO and relatives, PPO, turn-level, ArCHer) per CONFIG.yaml."""
    from toolgym.trainers.config import format_config

    try:
        cfg, trainer_cls = resolve_train_config(config, set_ or [])
        if dry_run:
            typer.echo(format_config(cfg))
            return
        trainer_cls(cfg).train(resume=resume)
    except ToolgymError as exc:
        raise _fail(exc) from None


def sft(config: ConfigArg, set_: SetOpt = None, resume: ResumeOpt = False,
        dry_run: DryOpt = False) -> None:
    """Supervised warm start on demonstrations (loss on action tokens only)."""
    from toolgym.trainers.config import apply_overrides, format_config, from_dict
    from toolgym.trainers.sft import SFTConfig, SFTTrainer

    try:
        cfg = from_dict(SFTConfig, apply_overrides(SFTConfig, _read_yaml(config), set_ or []))
        if dry_run:
            typer.echo(format_config(cfg))
            return
        SFTTrainer(cfg).train(resume=resume)
    except ToolgymError as exc:
        raise _fail(exc) from None


def plot(run_dir: Annotated[Path, typer.Argument(help="A run directory.", exists=True,
                                                 file_okay=False)],
         out: Annotated[Path | None, typer.Option(help="Where the PNGs go (default "
                                                  "RUN_DIR/plots).")] = None,
         window: Annotated[int, typer.Option(help="Moving-average window (steps).")] = 10) -> None:
    """Write learning-curve PNGs of a run (reward, loss, KL/entropy, throughput, ...)."""
    from toolgym.trainers.plot import plot_run

    try:
        for path in plot_run(run_dir, out, window=window):
            typer.echo(str(path))
    except ToolgymError as exc:
        raise _fail(exc) from None


def doctor(run_dir: Annotated[Path, typer.Argument(help="A run directory.", exists=True,
                                                   file_okay=False)],
           tolerance: Annotated[float, typer.Option(help="Largest accepted |ratio - 1| at the "
                                                    "first step.")] = 0.01) -> None:
    """Flag a run whose first-step on-policy ratio is not 1 (sampler/trainer mismatch); exit 1."""
    from toolgym.trainers.doctor import diagnose_run

    try:
        ok, report = diagnose_run(run_dir, tolerance=tolerance)
    except ToolgymError as exc:
        raise _fail(exc) from None
    typer.echo(report)
    if not ok:
        raise typer.Exit(1)


app.command("train")(train)
app.command("sft")(sft)
app.command("plot")(plot)
app.command("doctor")(doctor)

if __name__ == "__main__":  # pragma: no cover
    app()
