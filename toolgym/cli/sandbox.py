"""``toolgym sandbox build | ls | prune | bench``."""

from __future__ import annotations

import sys
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


@app.command("ls")
def list_command() -> None:
    """List toolgym's containers on this daemon, with their owning run and whether it lives."""
    from toolgym.sandbox.cleanup import list_containers

    try:
        containers = list_containers()
    except ToolgymError as exc:
        raise fail(exc) from None
    if not containers:
        console.print("no toolgym containers")
        return
    console.print("container     status   owner   run                image")
    for c in containers:
        owner = "alive" if c.owner_alive else "[yellow]dead[/yellow]"
        console.print(f"{c.id[:12]}  {c.status:<8} {owner:<7} {c.run_id[:18]:<18} {c.image}")
    orphans = sum(not c.owner_alive for c in containers)
    console.print(f"[dim]{len(containers)} containers, {orphans} orphaned "
                  "(`toolgym sandbox prune` removes those)[/dim]")


@app.command()
def prune(
    images: Annotated[
        bool, typer.Option(help="Also remove image tags that an up-to-date build replaced.")
    ] = True,
    dry_run: Annotated[bool, typer.Option(help="Say what would go; remove nothing.")] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Remove the stale image tags without asking.")
    ] = False,
) -> None:
    """Remove containers whose owning process is dead, and stale image tags.

    Only tags toolgym's own builds gave (``toolgym/<name>:<hash>``) of images no
    ``toolgym/<name>:latest`` points to are candidates; they are listed first and
    removed after a yes (asked on a terminal, else ``--yes``).
    """
    from toolgym.sandbox import images as image_builds
    from toolgym.sandbox.cleanup import list_containers, reap_orphans

    try:
        if dry_run:
            orphans = [c.id[:12] for c in list_containers() if not c.owner_alive]
            console.print(f"would remove {len(orphans)} orphaned containers", *orphans)
        else:
            console.print(f"removed {reap_orphans()} orphaned containers")
        if not images:
            return
        stale = image_builds.stale_images()
        if dry_run or not stale:
            console.print(f"would remove {len(stale)} stale image tags", *stale)
            return
        console.print(f"{len(stale)} stale image tags:", *stale)
        if not yes and not (sys.stdin.isatty() and typer.confirm("Remove them?")):
            console.print("kept them (pass --yes to remove them without asking)")
            return
        tags = image_builds.prune_images()
        console.print(f"removed {len(tags)} stale image tags", *tags)
    except ToolgymError as exc:
        raise fail(exc) from None


@app.command()
def bench(
    image: Annotated[str, typer.Option(help="Image to measure.")] = "toolgym/python:latest",
    n: Annotated[int, typer.Option(min=10, help="toolgym execs to time per command.")] = 200,
    concurrent: Annotated[
        int, typer.Option(min=0, help="Sandboxes to start at once (0 skips that part).")
    ] = 16,
) -> None:
    """Measure exec latency (toolgym vs the docker SDK's exec_run), start-up and concurrency."""
    import asyncio

    from toolgym.sandbox import bench as measure
    from toolgym.sandbox.spec import SandboxSpec

    try:
        lines = asyncio.run(measure.report(SandboxSpec(image=image), n, concurrent))
    except ToolgymError as exc:
        raise fail(exc) from None
    for line in lines:
        console.print(line, soft_wrap=True)
