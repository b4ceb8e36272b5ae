"""Shared fixtures for environment tests (real Docker sandboxes)."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import IMAGE
from toolgym.sandbox.docker import SandboxSpec
from toolgym.sandbox.pool import PoolConfig, SandboxPool


@pytest.fixture
def image_spec() -> SandboxSpec:
    return SandboxSpec(image=IMAGE)


@pytest.fixture
async def pool(image_spec: SandboxSpec):
    async with SandboxPool(image_spec, PoolConfig(size=4, max_size=8)) as p:
        yield p
