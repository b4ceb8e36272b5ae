"""Image builds on the real Docker engine, in a temporary docker/ folder.

Each test builds ``toolgym/tgtest-<random>`` images FROM the default base and
removes them afterwards.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from typer.testing import CliRunner

from toolgym.cli.main import app
from toolgym.errors import ConfigError, ImageNotFound, SandboxError
from toolgym.sandbox import images

TINY_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY data.txt /data.txt
RUN cat /data.txt
"""


@pytest.fixture
def image_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An image folder with the repository's base and no images, through TOOLGYM_DOCKER_DIR."""
    (tmp_path / "base").mkdir()
    shutil.copy2(images.docker_dir() / "base" / "bootstrap.sh", tmp_path / "base")
    monkeypatch.setenv(images.DOCKER_DIR_ENV, str(tmp_path))
    return tmp_path


@pytest.fixture
def tiny(image_dir: Path, docker_available: docker.DockerClient) -> Iterator[str]:
    """The name of a tiny image folder; every image of that name is removed afterwards."""
    name = f"tgtest-{uuid.uuid4().hex[:8]}"
    (image_dir / name).mkdir()
    (image_dir / name / "Dockerfile").write_text(TINY_DOCKERFILE)
    (image_dir / name / "data.txt").write_text("one\n")
    yield name
    for image in docker_available.images.list(name=f"{images.REPOSITORY}/{name}"):
        for tag in image.tags:
            try:
                docker_available.images.remove(tag, force=True)
            except docker.errors.NotFound:
                pass


# ─── no daemon needed ─────────────────────────────────────────────────────


def test_context_hash_covers_every_file_and_the_base(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(TINY_DOCKERFILE)
    (tmp_path / "data.txt").write_text("one\n")
    first = images.context_hash(tmp_path, "sha256:aaa")
    assert len(first) == 12 and int(first, 16) >= 0
    assert images.context_hash(tmp_path, "sha256:aaa") == first
    assert images.context_hash(tmp_path, "sha256:bbb") != first

    (tmp_path / "data.txt").write_text("two\n")
    changed_file = images.context_hash(tmp_path, "sha256:aaa")
    (tmp_path / "data.txt").write_text("one\n")
    assert images.context_hash(tmp_path, "sha256:aaa") == first

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "extra.sh").write_text("echo\n")
    added_file = images.context_hash(tmp_path, "sha256:aaa")
    (tmp_path / "sub" / "extra.sh").chmod(0o755)
    made_executable = images.context_hash(tmp_path, "sha256:aaa")
    assert len({first, changed_file, added_file, made_executable}) == 4

    (tmp_path / "sub" / "__pycache__").mkdir()
    (tmp_path / "sub" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    assert images.context_hash(tmp_path, "sha256:aaa") == made_executable


def test_docker_dir_override_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(images.DOCKER_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=images.DOCKER_DIR_ENV):
        images.docker_dir()


def test_repository_images_are_found() -> None:
    assert "python" in images.image_names()
    assert (images.docker_dir() / "base" / "bootstrap.sh").is_file()


def test_unknown_image_name_suggests_a_close_one(image_dir: Path) -> None:
    (image_dir / "python").mkdir()
    (image_dir / "python" / "Dockerfile").write_text(TINY_DOCKERFILE)
    with pytest.raises(ConfigError, match="Did you mean 'python'"):
        images.image_folder("pyhton")


# ─── real Docker ──────────────────────────────────────────────────────────


@pytest.mark.docker
def test_tag_changes_when_a_build_input_changes(
    base_image: str, image_dir: Path, tiny: str
) -> None:
    first = images.image_tag(tiny, base_image)
    assert first.startswith(f"toolgym/{tiny}:") and len(first.rsplit(":", 1)[1]) == 12
    assert images.image_tag(tiny, base_image) == first

    (image_dir / tiny / "data.txt").write_text("two\n")
    after_data = images.image_tag(tiny, base_image)
    (image_dir / tiny / "Dockerfile").write_text(TINY_DOCKERFILE + "RUN true\n")
    after_dockerfile = images.image_tag(tiny, base_image)
    assert len({first, after_data, after_dockerfile}) == 3


@pytest.mark.docker
def test_second_build_is_skipped(
    base_image: str, tiny: str, docker_available: docker.DockerClient
) -> None:
    with pytest.raises(ImageNotFound, match="toolgym sandbox build"):
        images.resolve_image(tiny)

    first = images.build(tiny, base_image)
    assert first.built and first.tag == images.image_tag(tiny, base_image)
    image = docker_available.images.get(first.tag)
    assert image.labels[images.LABEL_HASH] == first.tag.rsplit(":", 1)[1]
    assert image.labels[images.LABEL_BASE] == base_image
    assert f"toolgym/{tiny}:latest" in image.tags

    start = time.monotonic()
    second = images.build(tiny, base_image)
    assert not second.built and second.tag == first.tag
    assert time.monotonic() - start < 2.0
    assert docker_available.images.get(second.tag).id == image.id
    assert images.resolve_image(tiny) == first.tag
    assert images.resolve_image(f"toolgym/{tiny}:latest") == f"toolgym/{tiny}:latest"


@pytest.mark.docker
def test_changed_folder_builds_a_new_tag_and_prunes_the_old(
    base_image: str, image_dir: Path, tiny: str, docker_available: docker.DockerClient
) -> None:
    old = images.build_image(tiny, base_image)
    (image_dir / tiny / "data.txt").write_text("two\n")
    with pytest.raises(ImageNotFound):  # out of date: the current tag is not built
        images.resolve_image(tiny)

    new = images.build_image(tiny, base_image)
    assert new != old and images.resolve_image(tiny) == new
    stale = images.stale_images([tiny])
    assert old in stale and new not in stale
    assert images.prune_images([tiny]) == [old]
    with pytest.raises(ImageNotFound):
        images.resolve_image(old)
    assert images.resolve_image(new) == new


@pytest.mark.docker
def test_prune_keeps_an_image_a_user_loaded_and_tags_a_user_gave(
    base_image: str, image_dir: Path, tiny: str, docker_available: docker.DockerClient
) -> None:
    old = images.build_image(tiny, base_image)
    old_id = docker_available.images.get(old).id
    (image_dir / tiny / "data.txt").write_text("two\n")
    new = images.build_image(tiny, base_image)
    latest = f"{images.REPOSITORY}/{tiny}:latest"
    # `docker save ... | docker load` of a working older build: it comes back as :latest.
    docker_available.images.get(old).tag(latest)
    assert images.stale_images([tiny]) == []
    assert images.prune_images([tiny]) == []
    assert docker_available.images.get(latest).id == old_id

    docker_available.images.get(new).tag(latest)
    docker_available.images.get(old).tag(f"{images.REPOSITORY}/{tiny}", "mine")
    result = CliRunner().invoke(app, ["sandbox", "prune"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert old in result.output and "kept them" in result.output
    assert docker_available.images.get(old).id == old_id, "not without a yes"
    assert images.stale_images([tiny]) == [old], "only the tag toolgym's build gave"
    assert images.prune_images([tiny]) == [old]
    assert docker_available.images.get(f"{images.REPOSITORY}/{tiny}:mine").id == old_id


@pytest.mark.docker
def test_failed_build_reports_the_log(base_image: str, image_dir: Path, tiny: str) -> None:
    (image_dir / tiny / "Dockerfile").write_text(
        TINY_DOCKERFILE + "RUN echo doomed-step && exit 3\n"
    )
    with pytest.raises(SandboxError, match="(?s)failed.*doomed-step"):
        images.build_image(tiny, base_image)


@pytest.mark.docker
def test_resolve_missing_image_names_the_build_command() -> None:
    with pytest.raises(ImageNotFound, match="toolgym sandbox build") as info:
        images.resolve_image("toolgym/no-such-image:0123456789ab")
    assert info.value.image == "toolgym/no-such-image:0123456789ab"


@pytest.mark.docker
def test_cli_build_then_skip(base_image: str, tiny: str) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["sandbox", "build", tiny, "--base", base_image])
    assert first.exit_code == 0, first.output
    assert "built" in first.output and tiny in first.output

    second = runner.invoke(app, ["sandbox", "build", tiny, "--base", base_image])
    assert second.exit_code == 0, second.output
    assert "built" not in second.output and "up to date" in second.output


def test_cli_unknown_image_fails_with_a_hint(image_dir: Path) -> None:
    result = CliRunner().invoke(app, ["sandbox", "build", "no-such-image"])
    assert result.exit_code == 1
    assert "No sandbox image 'no-such-image'" in result.output
