"""Fixtures for tests against the real Docker engine."""

from __future__ import annotations

import os

import pytest

from toolgym.sandbox.docker import DockerSandbox, SandboxSpec
from toolgym.sandbox.limits import Limits

IMAGE = os.environ.get("TOOLGYM_TEST_IMAGE", "toolgym/python:latest")


@pytest.fixture
def spec() -> SandboxSpec:
    """A small sandbox: tight limits keep bomb tests fast."""
    return SandboxSpec(image=IMAGE, limits=Limits(memory_mb=256, pids=64, timeout_s=10))


@pytest.fixture
async def sandbox(spec: SandboxSpec):
    sb = await DockerSandbox.acreate(spec)
    yield sb
    await sb.aclose()


def run_containers(run_id: str) -> list[str]:
    from toolgym.sandbox.cleanup import list_containers

    return [c.id for c in list_containers() if c.run_id == run_id]
