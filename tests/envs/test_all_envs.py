"""Every registered env passes ``check_env``; plugins register through the entry-point group."""

from __future__ import annotations

import sys

import gymnasium
import pytest

import toolgym.envs
from toolgym.envs import registration
from toolgym.envs.checker import check_env


@pytest.mark.docker
@pytest.mark.parametrize("env_id", toolgym.envs.env_ids())
async def test_registered_env_passes_check_env(env_id):
    report = await check_env(env_id, n_tasks=6)
    failed = [f"{r.name}: {r.detail}" for r in report.results if not r.ok]
    assert failed == []
    assert len(report.results) == 8


def test_builtins_are_registered():
    assert {"toolgym/HumanEval-v0", "toolgym/Code-v0", "toolgym/CodeRetry-v0"} <= set(
        toolgym.envs.env_ids())


def test_entry_point_plugins_are_loaded(tmp_path, monkeypatch):
    dist = tmp_path / "demo_toolgym_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: demo-toolgym-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[toolgym.envs]\ndemo = demo_plugin_mod:register_envs\n")
    (tmp_path / "demo_plugin_mod.py").write_text(
        "import gymnasium\n"
        "def register_envs():\n"
        "    gymnasium.register('demo/Echo-v0', entry_point='toolgym.envs.code.env:CodeEnv')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registration, "_plugins_loaded", False)
    monkeypatch.setattr(registration, "_plugin_ids", set())
    try:
        assert "demo/Echo-v0" in toolgym.envs.env_ids()
        assert toolgym.envs.spec("demo/Echo-v0").entry_point.endswith("CodeEnv")
    finally:
        gymnasium.registry.pop("demo/Echo-v0", None)
        sys.modules.pop("demo_plugin_mod", None)


def test_reference_actions_pick_the_oracle_or_wrong_script_and_refuse_other_kinds():
    from toolgym.envs.calc.demos import oracle_actions, wrong_actions

    env = gymnasium.make("toolgym/Calculator-v0", split="train").unwrapped
    task = env.tasks.get(env.tasks.ids()[0])
    assert env.reference_actions(task) == oracle_actions(task)
    assert env.reference_actions(task, "wrong") == wrong_actions(task)
    with pytest.raises(ValueError, match="unknown reference kind 'oracel'"):
        env.reference_actions(task, "oracel")
    env.close()
