"""``toolgym eval``: the agent spec parser, and the command end to end through typer."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.helpers.tiny_model import build_tiny_model
from toolgym.cli.eval import AgentSpec, build_agent, eval_command, parse_agent_spec
from toolgym.errors import ConfigError

app = typer.Typer()
app.command("eval")(eval_command)
app.command("other")(lambda: None)  # two commands, so "eval" is a sub-command as in toolgym


@pytest.mark.parametrize(("spec", "parsed"), [
    ("oracle", AgentSpec("oracle")),
    ("wrong", AgentSpec("wrong")),
    ("hf:./ckpt/step-1", AgentSpec("hf", "./ckpt/step-1")),
    ("hf:C:/models/x", AgentSpec("hf", "C:/models/x")),
    ("vllm:./ckpt/step-1", AgentSpec("vllm", "./ckpt/step-1")),
    ("openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-0.5B-Instruct",
     AgentSpec("openai", "http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-0.5B-Instruct")),
    ("anthropic:https://api.anthropic.com#claude-sonnet-4-5",
     AgentSpec("anthropic", "https://api.anthropic.com", "claude-sonnet-4-5")),
])
def test_agent_specs(spec: str, parsed: AgentSpec) -> None:
    assert parse_agent_spec(spec) == parsed


@pytest.mark.parametrize(("spec", "hint"), [
    ("gpt4", "expected one of hf:PATH, vllm:PATH, openai:URL#MODEL, anthropic:URL#MODEL, "
             "oracle, wrong"),
    ("hf:", "expected one of"),
    ("vllm:", "expected one of"),
    ("Oracle", "expected one of"),
    ("openai:http://127.0.0.1:8000", "openai:URL#MODEL"),
    ("openai:127.0.0.1:8000#m", "http(s)://"),
    ("openai:http://h#", "openai:URL#MODEL"),
    ("anthropic:api.anthropic.com#m", "anthropic:URL#MODEL, e.g. anthropic:https://"),
])
def test_bad_agent_specs_say_what_to_write(spec: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=r"Bad --agent") as err:
        parse_agent_spec(spec)
    assert hint in str(err.value)


@pytest.mark.parametrize("kind", ["hf", "vllm"])
def test_local_agents_need_a_model_directory(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ConfigError, match=f"--agent {kind}:.* no model directory"):
        build_agent(AgentSpec(kind, str(tmp_path / "missing")), "toolgym/HumanEval-v0",
                    sampling=None, seed=0)


def test_bad_agent_exits_1_with_one_line() -> None:
    result = CliRunner().invoke(app, ["eval", "--env", "toolgym/HumanEval-v0", "--agent", "gpt4",
                                      "--out", "unused"])
    assert result.exit_code == 1 and "Bad --agent 'gpt4'" in result.output


@pytest.mark.docker
def test_eval_oracle_from_the_command_line(tmp_path: Path, monkeypatch) -> None:
    """On a console narrower than the paths, the paths it prints stay whole (to copy them)."""
    import toolgym.cli.eval as eval_cli

    monkeypatch.setattr(eval_cli.console, "width", 40)
    args = ["eval", "--env", "toolgym/HumanEval-v0", "--agent", "oracle", "--tasks", "2",
            "--samples", "2", "--concurrency", "4", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "pass@2" in result.output
    assert f"report: {tmp_path / 'report.html'}\n" in result.output
    assert f"out {tmp_path}" in result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["pass_at_k"] == {"1": 1.0, "2": 1.0}
    assert [r["task_id"] for r in summary["tasks"]] == ["HumanEval/0", "HumanEval/1"]


@pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                    reason="bubblewrap not installed (CI installs it)")
def test_eval_on_the_local_backend_and_a_misspelt_one(tmp_path: Path) -> None:
    args = ["eval", "--env", "toolgym/Calculator-v0", "--agent", "oracle", "--tasks", "3",
            "--split", "test", "--sandbox-backend", "local", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "summary.json").read_text())["pass_at_k"] == {"1": 1.0}
    args[args.index("local")] = "lokal"
    result = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "other")])
    assert result.exit_code == 1 and "Did you mean 'local'" in result.output


@pytest.mark.docker
def test_eval_local_hf_model_token_in_token_out(tmp_path: Path) -> None:
    """A tiny random model: it fails, but every turn carries its exact sampled ids."""
    model = build_tiny_model(tmp_path / "model", chat_template="chatml")
    out = tmp_path / "out"
    args = ["eval", "--env", "toolgym/HumanEval-v0", "--agent", f"hf:{model}", "--tasks", "2",
            "--samples", "2", "--max-new-tokens", "6", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 4 and summary["infra_errors"] == 0
    assert summary["tokens"]["episodes_with_ids"] == 4 and summary["tokens"]["action_tokens"] > 0
    lines = (out / "trajectories.jsonl").read_text().splitlines()
    assert all(json.loads(line)["turns"][0]["prompt_ids"] for line in lines)


@pytest.mark.docker
def test_docker_daemon_gone_mid_run_exits_non_zero_with_the_fix(tmp_path: Path) -> None:
    """With the daemon gone for good, toolgym eval turned every later episode into an
    infra_error and exited 0 (316 of 328 episodes)."""
    import subprocess
    import sys
    import time

    from tests.helpers.docker_proxy import DockerProxy
    from toolgym.sandbox import cleanup

    proxy = DockerProxy(str(tmp_path / "docker.sock"))
    out = tmp_path / "out"
    repo = Path(__file__).parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolgym.cli.main", "eval", "--env", "toolgym/Calculator-v0",
         "--agent", "oracle", "--split", "test", "--concurrency", "2", "--out", str(out)],
        env={**os.environ, "DOCKER_HOST": proxy.url, "PYTHONPATH": str(repo)}, cwd=repo,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        trajectories = out / "trajectories.jsonl"
        while proc.poll() is None and time.monotonic() < deadline and not (
                trajectories.exists() and len(trajectories.read_text().splitlines()) >= 3):
            time.sleep(0.1)
        proxy.cut()
        cut = time.monotonic()
        output, _ = proc.communicate(timeout=240)
    finally:
        proc.kill()
        proc.wait()
        cleanup.reap_orphans()  # its containers, on the real daemon (their owner is dead)
    assert proc.returncode == 1, output[-3000:]
    assert "Docker daemon running" in output and "finished episodes are kept" in output
    assert time.monotonic() - cut < 120
