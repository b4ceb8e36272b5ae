"""Fixtures shared by every test.

Tests marked ``@pytest.mark.docker`` need a Docker daemon. Where none answers
they are skipped with the reason, except under CI (``CI`` set), where that is
a failure: CI starts a daemon, so a missing one is a broken set-up, and Docker
tests must never be skipped there quietly.
"""

from __future__ import annotations

import gc
import os
import warnings
from pathlib import Path

import docker
import pytest
from _pytest.doctest import DoctestModule


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set to anything but '', '0' or 'false'."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def connect_docker() -> tuple[docker.DockerClient | None, str | None]:
    """Return ``(client, None)``, or ``(None, why)`` when no daemon answers.

    docker-py leaks the socket of a failed connection; its ResourceWarning
    would turn into an error at the end of the session (filterwarnings=error),
    so it is collected here with that warning silenced.
    """
    from toolgym.errors import SandboxUnavailable
    from toolgym.sandbox.docker_client import docker_client

    why = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            return docker_client(), None
        except SandboxUnavailable as exc:
            why = str(exc)
        gc.collect()
    return None, why


@pytest.fixture(scope="session")
def docker_available() -> docker.DockerClient:
    """The Docker client; skips the test (fails it under CI) when no daemon answers."""
    client, why = connect_docker()
    if client is None:
        if in_ci():
            pytest.fail(f"CI is set, so Docker tests must run, but: {why}", pytrace=False)
        pytest.skip(str(why))
    return client


@pytest.fixture(autouse=True)
def _docker_marker(request: pytest.FixtureRequest) -> None:
    """Give every test marked ``docker`` the :func:`docker_available` check."""
    if request.node.get_closest_marker("docker") is not None:
        request.getfixturevalue("docker_available")


@pytest.fixture(scope="session")
def base_image(docker_available: docker.DockerClient) -> str:
    """The reference of the default base image, bootstrapped when missing (2-3 min)."""
    from toolgym.sandbox.images import ensure_base

    return ensure_base()


@pytest.fixture(scope="session")
def python_image(docker_available: docker.DockerClient) -> str:
    """The reference of an up-to-date ``toolgym/python`` image, built when missing."""
    from toolgym.sandbox.images import build_image

    return build_image("python")


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> list[pytest.Collector]:
    """Keep ``--doctest-modules`` (pyproject's addopts) to toolgym/: tests/ has no doctests.

    A doctest collector would import a test module a second time, under another
    name (``helpers.tiny_model`` beside ``tests.helpers.tiny_model``).
    """
    collectors = yield
    return [c for c in collectors if not isinstance(c, DoctestModule)]
