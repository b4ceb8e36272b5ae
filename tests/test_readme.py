"""The README's examples run as written."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import gymnasium
import pytest

from toolgym.sandbox import backends
from toolgym.trainers.advantages import ADVANTAGE_ESTIMATORS
from toolgym.trainers.turn_level import TURN_ESTIMATORS

README = Path(__file__).resolve().parents[1] / "README.md"


def section_code(heading: str) -> str:
    text = README.read_text()
    section = text.split(f"### {heading}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_opens_with_the_two_commands():
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]


@pytest.mark.docker
def test_register_your_own_environment_example_runs_verbatim(capsys):
    code = section_code("Register your own environment")
    assert len(code.strip().splitlines()) <= 40
    try:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    finally:
        gymnasium.registry.pop("mylab/WordCount-v0", None)
    assert capsys.readouterr().out.strip() == "3 notes.txt 1.0 success"


@pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                    reason="bubblewrap not installed (CI installs it)")
def test_sandbox_backends_example_runs_verbatim(capsys):
    code = section_code("Sandbox backends")
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out.strip() == "local 1.0 success"


@pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                    reason="bubblewrap not installed (CI installs it)")
def test_contributing_add_an_env_recipe_passes_check_env(capsys):
    code = section_code("Add an env")
    try:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    finally:
        gymnasium.registry.pop("mylab/Hash-v0", None)
    assert capsys.readouterr().out.strip() == "True []"


def test_contributing_add_an_estimator_recipe_is_used_by_a_trainer_config(capsys):
    code = section_code("Add an advantage estimator")
    try:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    finally:
        ADVANTAGE_ESTIMATORS.pop("best_of_group", None)
    assert capsys.readouterr().out.strip() == "[0.0, -1.0, 0.0, 0.0]"


def test_contributing_turn_level_estimator_recipe_is_used_by_a_turn_level_config(capsys):
    text = README.read_text().split("### Add an advantage estimator\n", 1)[1]
    code = re.findall(r"```python\n(.*?)```", text.split("\n### ", 1)[0], re.S)[1]
    try:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    finally:
        TURN_ESTIMATORS.pop("last_turn_rloo", None)
    assert capsys.readouterr().out.strip() == "[[0.0, 1.0], [0.0, -1.0]]"


@pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                    reason="bubblewrap not installed (CI installs it)")
def test_contributing_add_a_sandbox_backend_recipe_serves_an_env(capsys, monkeypatch):
    monkeypatch.setattr(backends, "_registry", backends._registry.copy())
    exec(compile(section_code("Add a sandbox backend"), "README.md", "exec"),
         {"__name__": "readme_example"})
    assert capsys.readouterr().out.strip() == "success 1"
