"""``toolgym sandbox build | ls | prune | bench``."""

from __future__ import annotations

import typer

app = typer.Typer(help="Build sandbox images and manage sandbox containers.", no_args_is_help=True)
