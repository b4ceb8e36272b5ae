"""The backend seam: the registry, a backend from tests/ through it, the entry-point group,
and the two providers (warm pool, on demand) on bubblewrap sandboxes."""

from __future__ import annotations

import gc
import os
import shutil
import sys
from copy import deepcopy

import pytest

from tests.helpers import counting_backend
from toolgym.errors import ConfigError, SandboxUnavailable
from toolgym.sandbox import backends, cleanup
from toolgym.sandbox.backends import backend_names, get_backend, register_backend
from toolgym.sandbox.base import Sandbox
from toolgym.sandbox.docker import DockerSandbox
from toolgym.sandbox.limits import Limits
from toolgym.sandbox.local import LocalBackend
from toolgym.sandbox.pool import PoolConfig, SandboxPool
from toolgym.sandbox.provider import (
    OnDemandSandboxes,
    SandboxConfig,
    SandboxProvider,
    build_provider,
)
from toolgym.sandbox.spec import SandboxSpec

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                                 reason="bubblewrap not installed (CI installs it)")
SPEC = SandboxSpec(limits=Limits(memory_mb=256, timeout_s=10))


@pytest.fixture
def registry(monkeypatch):
    """The registry with the counting backend added (one line), restored afterwards."""
    monkeypatch.setattr(backends, "_registry", backends._registry.copy())
    register_backend("counting", "tests.helpers.counting_backend:CountingBackend")
    counting_backend.CALLS.clear()


def test_builtin_backends_load_lazily_and_unknown_names_suggest_one():
    assert {"docker", "local"} <= set(backend_names())
    assert get_backend("local").name == "local" and get_backend("docker").name == "docker"
    with pytest.raises(ConfigError, match="Unknown sandbox backend 'lokal'.*Did you mean 'local'"):
        get_backend("lokal")
    with pytest.raises(ConfigError, match="'local' does not take \\['host'\\]"):
        get_backend("local", host="tcp://elsewhere:2375")


def test_a_name_cannot_be_taken_twice(registry):
    with pytest.raises(ConfigError, match="already registered"):
        register_backend("local", "tests.helpers.counting_backend:CountingBackend")


def test_entry_point_group_registers_third_party_backends(tmp_path, monkeypatch):
    dist = tmp_path / "demo_backend-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-backend\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[toolgym.sandbox_backends]\n"
        "counted = tests.helpers.counting_backend:CountingBackend\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(backends, "_registry", backends._registry.copy())
    monkeypatch.setattr(backends, "_plugins_loaded", False)
    assert "counted" in backend_names()
    assert isinstance(get_backend("counted", budget_mb=512), counting_backend.CountingBackend)
    assert sys.modules["tests.helpers.counting_backend"] is counting_backend


@needs_bwrap
async def test_pool_runs_on_a_backend_registered_from_tests(registry):
    config = PoolConfig(size=1, max_size=2, health_check_after_s=0.0)
    async with SandboxPool(SPEC, config, backend="counting") as pool:
        assert isinstance(pool, SandboxProvider)
        sb = await pool.acquire()  # idle longer than 0 s: pinged through Sandbox.aping
        assert isinstance(sb, Sandbox)
        assert (await sb.aexec("echo hi; id -u")).stdout == "hi\n1000\n"
        await pool.release(sb)
        assert pool.events["health_failed"] == 0
    assert counting_backend.CALLS["reap"] == 1 and counting_backend.CALLS["create"] >= 1


@needs_bwrap
async def test_on_demand_reuses_a_clean_sandbox_and_recycles_on_doubt():
    async with OnDemandSandboxes(SPEC, "local") as provider:
        first = await provider.acquire()
        await first.aexec("echo x > /work/f; setsid sleep 100 >/dev/null 2>&1 &")
        await provider.release(first)
        again = await provider.acquire()
        assert again is first
        assert (await again.aexec("ls -A /work; pgrep sleep || true")).stdout == ""
        await provider.release(again, recycle=True)
        fresh = await provider.acquire()
        assert fresh is not first and first.state.name == "CLOSED"
        await provider.release(fresh)
        copy = deepcopy(provider)  # as gymnasium.make copies an env's kwargs
        assert copy._spare is None and (copy.spec, copy.backend) == (SPEC, provider.backend)
    assert fresh.state.name == "CLOSED"  # aclose removes the spare


@needs_bwrap
async def test_on_demand_without_reuse_starts_a_sandbox_per_episode():
    async with OnDemandSandboxes(SPEC, LocalBackend(), reuse=False) as provider:
        first = await provider.acquire()
        await provider.release(first)
        second = await provider.acquire()
        assert second is not first and first.state.name == "CLOSED"
        await provider.release(second)


async def test_local_backend_refuses_what_it_cannot_honour():
    with pytest.raises(ConfigError, match="cannot run a sandbox service"):
        await LocalBackend().acreate(SandboxSpec(service=("sleep", "1")))
    with pytest.raises(ConfigError, match="work dir is /work"):
        await LocalBackend().acreate(SandboxSpec(workdir="/home/agent"))


@pytest.mark.docker
async def test_docker_backend_starts_and_reaps_on_the_host_it_names(spec):
    host = "unix:///var/run/docker.sock"  # the same daemon, named explicitly
    provider = build_provider(spec, SandboxConfig(host=host, pool_size=1, max_size=1))
    assert isinstance(provider, SandboxPool) and provider.backend.host == host
    async with provider as pool:
        sb = await pool.acquire()
        assert isinstance(sb, DockerSandbox) and sb.host == host
        assert (await sb.aexec("echo hi")).stdout == "hi\n"
        await pool.release(sb)
    assert sb.id not in [c.id for c in cleanup.list_containers()]
    with pytest.raises(ConfigError, match="'local' does not take"):
        build_provider(spec, SandboxConfig(backend="local", host=host))


@pytest.mark.docker
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_a_host_where_no_daemon_answers_is_named_in_the_error(spec):
    with pytest.raises(SandboxUnavailable, match="No Docker daemon answers at tcp://127.0.0.1:9"):
        await get_backend("docker", host="tcp://127.0.0.1:9").acreate(spec)
    gc.collect()  # docker-py leaks the failed connection's socket
