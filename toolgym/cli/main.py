"""Entry point of the ``toolgym`` command; each command group lives in its own module."""

from __future__ import annotations

import typer

from toolgym.cli import envs, sandbox
from toolgym.cli import train as train_cli
from toolgym.cli.check_template import check_template
from toolgym.cli.eval import eval_command

app = typer.Typer(
    name="toolgym",
    help="Train and evaluate tool-using LLM agents in Docker sandboxes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(envs.app, name="envs")
app.command("check-env")(envs.check_env)
app.command("check-template")(check_template)
app.command("eval")(eval_command)
app.command("train")(train_cli.train)
app.command("sft")(train_cli.sft)
app.command("plot")(train_cli.plot)
app.command("doctor")(train_cli.doctor)

if __name__ == "__main__":  # pragma: no cover
    app()
