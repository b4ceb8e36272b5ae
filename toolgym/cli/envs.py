"""``toolgym envs list | show ID`` and ``toolgym check-env ID``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from toolgym.errors import ToolgymError

if TYPE_CHECKING:
    from toolgym.envs.factory import EnvFactory

app = typer.Typer(help="List and inspect the registered tool environments.", no_args_is_help=True)
console = Console(highlight=False)


def _describe(envs: EnvFactory) -> dict[str, object]:
    sandbox, tools = envs.sandbox_spec, envs.tools
    return {
        "id": envs.env_id,
        "entry point": envs.env_spec.entry_point,
        "tools": ", ".join(tools) if tools is not None else "-",
        "tasks": len(envs.tasks),
        "image": sandbox.image if sandbox is not None else "-",
        "max turns": envs.env_spec.max_episode_steps,
        "kwargs": envs.env_spec.kwargs,
    }


@app.command("list")
def list_envs() -> None:
    """Every registered toolgym environment: id, tools, number of tasks, image."""
    from toolgym.envs import env_ids
    from toolgym.envs.factory import EnvFactory

    table = Table("id", "tools", "tasks", "image", "max turns")
    for env_id in env_ids():
        d = _describe(EnvFactory(env_id))
        table.add_row(
            env_id, str(d["tools"]), str(d["tasks"]), str(d["image"]), str(d["max turns"])
        )
    console.print(table)


@app.command("show")
def show(env_id: Annotated[str, typer.Argument(help="e.g. toolgym/HumanEval-v0")]) -> None:
    """Everything about one environment, with its tool schemas."""
    import json

    from toolgym.envs.factory import EnvFactory

    try:
        envs = EnvFactory(env_id)
        d = _describe(envs)
    except ToolgymError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    for key, value in d.items():
        console.print(f"[bold]{key}:[/bold] {value}")
    console.print("[bold]tool schemas:[/bold]")
    console.print(json.dumps(envs.tools.schemas() if envs.tools else [], indent=2))


def check_env(
    env_id: Annotated[str, typer.Argument(help="e.g. toolgym/HumanEval-v0")],
    tasks: Annotated[
        int, typer.Option(help="Tasks for the oracle, wrong-agent and probe runs.")
    ] = 20,
    sandbox_backend: Annotated[str, typer.Option(
        help="Who starts the sandboxes: docker, local (bubblewrap), or a plugin's.")] = "docker",
) -> None:
    """Run the conformance checks on ENV_ID; exit 1 if any fails."""
    from toolgym.envs.checker import check_env as run_checks

    try:
        report = asyncio.run(run_checks(
            env_id, n_tasks=tasks, backend=sandbox_backend,
            progress=lambda name: console.print(f"[dim]… {name}[/dim]")
        ))
    except ToolgymError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    for r in report.results:
        mark = "[green]PASS[/green]" if r.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {r.name}" + (f" [dim]({r.detail})[/dim]" if r.detail else ""))
    if not report.ok:
        raise typer.Exit(1)
