"""``toolgym sandbox build | ls | prune | bench``."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console

from toolgym.errors import ToolgymError

app = typer.Typer(help="Build sandbox images and manage sandbox containers.", no_args_is_help=True)
console = Console(highlight=False)


def fail(exc: ToolgymError) -> typer.Exit:
    """Print a toolgym error as one red message and return the exit to raise."""
    console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
    return typer.Exit(1)


@app.command()
def build(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Images to build, folders of docker/ (default: all). `base` is the base image."
        ),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            help="Base image to build FROM, e.g. python:3.12-slim (pulled when missing). "
            "Default: toolgym/base:<hash>, bootstrapped from Debian packages."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Rebuild without the layer cache even when up to date.")
    ] = False,
) -> None:
    """Build the sandbox images that are missing or out of date; skip the others."""
    from toolgym.sandbox import images  # the docker SDK loads only for commands that need it

    start = time.monotonic()
    try:
        results = images.build_all(
            names,
            base=base,
            force=force,
            progress=lambda line: console.print(f"[dim]{line} …[/dim]"),
        )
    except ToolgymError as exc:
        raise fail(exc) from None
    width = max(len(r.name) for r in results)
    for r in results:
        state = "[green]built[/green]" if r.built else "up to date"
        console.print(f"{r.name:<{width}}  {r.tag}  {state} ({r.seconds:.1f} s)")
    console.print(f"[dim]{len(results)} images ready in {time.monotonic() - start:.1f} s[/dim]")
