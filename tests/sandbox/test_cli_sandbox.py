"""``toolgym sandbox ls | prune | bench`` against the real daemon."""

from __future__ import annotations

import contextlib

import docker.errors
import pytest
from typer.testing import CliRunner

from toolgym.cli.main import app
from toolgym.sandbox import owner
from toolgym.sandbox.docker import DockerSandbox, SandboxSpec

pytestmark = pytest.mark.docker
runner = CliRunner()


@pytest.fixture
def orphan(docker_available, python_image):
    """A container labelled as owned by a process of this host that no longer exists."""
    labels = {**owner.labels(), "toolgym.owner.start": "dead-process",
              "toolgym.owner.run": "t-orphan"}
    container = docker_available.containers.run(python_image, ["sleep", "300"], detach=True,
                                             labels=labels, network_mode="none")
    yield container
    with contextlib.suppress(docker.errors.NotFound):  # gone already when prune worked
        container.remove(force=True)


def test_ls_tells_orphans_from_live_sandboxes_and_prune_removes_only_orphans(
        orphan, python_image, docker_available):
    with DockerSandbox.create(SandboxSpec(image=python_image)) as live:
        listing = runner.invoke(app, ["sandbox", "ls"], terminal_width=200)
        assert listing.exit_code == 0, listing.output
        rows = {line.split()[0]: line for line in listing.output.splitlines()[1:-1]}
        assert "dead" in rows[orphan.id[:12]]
        assert "alive" in rows[live.container.id[:12]]

        dry = runner.invoke(app, ["sandbox", "prune", "--dry-run", "--no-images"])
        assert orphan.id[:12] in dry.output
        orphan.reload()
        assert orphan.status == "running"

        pruned = runner.invoke(app, ["sandbox", "prune", "--no-images"])
        assert pruned.exit_code == 0, pruned.output
        ids = {c.id for c in docker_available.containers.list(all=True)}
        assert orphan.id not in ids
        assert live.container.id in ids
        assert live.exec("echo still here", timeout=10).stdout == "still here\n"


def test_bench_prints_both_paths_and_a_speedup(python_image):
    result = runner.invoke(app, ["sandbox", "bench", "--image", python_image, "--n", "10",
                                 "--concurrent", "4"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "docker exec_run: true" in result.output
    assert "toolgym exec: true" in result.output
    assert "speed-up (true)" in result.output
    assert "4 sandboxes at once: 0 errors" in result.output
