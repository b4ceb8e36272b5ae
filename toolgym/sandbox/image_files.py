"""Files read out of a Docker image without starting it (``docker create`` + ``get_archive``).

For data an image is built with and the host needs too, such as Search-v0's
questions: the env asks for the image's id (a cache key that changes when
the image is rebuilt) and, once per id, for the file's bytes.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import PurePosixPath

import docker.errors

from toolgym.errors import ImageNotFound, SandboxError
from toolgym.sandbox import owner
from toolgym.sandbox.docker_client import docker_client


def image_id(image: str) -> str:
    """The id of ``image`` (``sha256:...``).

    Raises:
        ImageNotFound: the image is not built.
        SandboxUnavailable: no Docker daemon answers.
    """
    try:
        return str(docker_client().images.get(image).id)
    except docker.errors.ImageNotFound as exc:
        raise ImageNotFound(image) from exc


def read_image_file(image_ref: str, path: str, image: str | None = None) -> bytes:
    """The bytes of ``path`` in ``image_ref`` (a name or an id), from a created, never
    started container; ``image`` names it in errors.

    Raises:
        SandboxError: ``path`` is missing or not a file in the image.
    """
    image = image or image_ref
    container = docker_client().containers.create(image_ref, command=["true"],
                                                    labels=owner.labels())
    try:
        stream, _ = container.get_archive(path)
        archive = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
        member = archive.extractfile(PurePosixPath(path).name)
        if member is None:
            raise SandboxError(f"{path} in {image} is not a file")
        return member.read()
    except docker.errors.NotFound as exc:
        raise SandboxError(f"{image} has no {path}") from exc
    finally:
        container.remove(force=True)
