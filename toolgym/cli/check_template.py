"""``toolgym check-template MODEL_DIR``: does token-in/token-out work with this chat template?

Renders a multi-turn tool conversation incrementally (the way rollouts build
prompts) and in full, and prints where the two token streams differ. Exit
codes: 0 identical, 1 boundary-token drift, 2 not append-only (training falls
back to one sample per turn), 3 the model directory could not be loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXIT_OK, EXIT_DRIFT, EXIT_NOT_APPEND_ONLY, EXIT_UNLOADABLE = 0, 1, 2, 3


def check_template_command(model_dir: Path) -> int:
    """Run the check, print the report, and return the exit code."""
    from toolgym.agents.templates import check_template as run_check

    try:
        report = run_check(model_dir)
    except (OSError, ValueError) as exc:
        typer.echo(f"Cannot load a tokenizer from {model_dir}: {exc}", err=True)
        return EXIT_UNLOADABLE
    typer.echo(report.format())
    if report.ok:
        return EXIT_OK
    return EXIT_DRIFT if report.append_only else EXIT_NOT_APPEND_ONLY


def check_template(
    model_dir: Annotated[Path, typer.Argument(help="Model directory (tokenizer, chat template).")],
) -> None:
    """Check that the chat template renders multi-turn tool conversations append-only."""
    code = check_template_command(model_dir)
    if code:
        raise typer.Exit(code)
