"""``toolgym envs show``: an env described from its factory, no episode env, no sandbox."""

from __future__ import annotations

from typer.testing import CliRunner

from toolgym.cli.main import app


def test_envs_show_describes_sandboxed_and_sandbox_free_envs():
    calc = CliRunner().invoke(app, ["envs", "show", "toolgym/Calculator-v0"])
    assert calc.exit_code == 0, calc.output
    assert "tools: calc" in calc.output and "image: toolgym/python:latest" in calc.output
    assert "tasks: 3000" in calc.output and '"name": "calc"' in calc.output
    keychain = CliRunner().invoke(app, ["envs", "show", "toolgym/KeyChain-v0"])
    assert keychain.exit_code == 0 and "image: -" in keychain.output


def test_envs_show_of_an_unknown_id_suggests_one():
    result = CliRunner().invoke(app, ["envs", "show", "toolgym/Calculater-v0"])
    output = " ".join(result.output.split())  # rich wraps lines
    assert result.exit_code == 1 and "Did you mean 'toolgym/Calculator-v0'" in output
