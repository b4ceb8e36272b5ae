"""Sandbox images: build them from ``docker/<name>/``, find them, prune old ones.

Every image folder ``docker/<name>/`` holds a ``Dockerfile`` that starts with
``ARG BASE`` / ``FROM ${BASE}``. The base is ``toolgym/base:<hash>``,
bootstrapped from Debian packages by ``docker/base/bootstrap.sh`` (no registry
needed), or any image the user names, e.g. ``python:3.12-slim``.

An image is tagged ``toolgym/<name>:<hash>``, where the 12-hex hash covers
every file of its folder and the id of the base image, so a tag that exists is
up to date and building is skipped. ``toolgym/<name>:latest`` points to the
last build. Images carry the labels ``toolgym.image.name``,
``toolgym.image.hash`` and ``toolgym.image.base``.

Every build context also holds ``host-ca.crt``: the host's CA bundle (empty
when it has none), so a Dockerfile behind a TLS-intercepting proxy can
``COPY host-ca.crt`` and point ``PIP_CERT`` at it. It is not part of the hash:
it says where the build ran, not what it builds.

>>> image_tag_for_hash("python", "0123456789ab")
'toolgym/python:0123456789ab'
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker.errors
from docker.models.images import Image

from toolgym.errors import ConfigError, ImageNotFound, SandboxError
from toolgym.sandbox.docker_client import docker_client

DOCKER_DIR_ENV = "TOOLGYM_DOCKER_DIR"
PACKAGED_DIR = "_docker"
"""Where a wheel keeps ``docker/``, inside the ``toolgym`` package."""
REPOSITORY = "toolgym"
BASE_NAME = "base"
LABEL_NAME = "toolgym.image.name"
LABEL_HASH = "toolgym.image.hash"
LABEL_BASE = "toolgym.image.base"
HASH_LENGTH = 12
HASH_VERSION = b"toolgym-image-v1"
"""Part of every hash: bump it when the way images are built changes."""
IGNORED = ("__pycache__", ".pyc", ".pytest_cache", ".DS_Store")
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build` did for one image.

    Attributes:
        name: the image folder name (``"base"`` for the base image).
        tag: the image reference, e.g. ``toolgym/python:3f2a9c0d1e4b``.
        built: False when the image was up to date and nothing ran.
        seconds: wall time spent.

    >>> BuildResult("python", "toolgym/python:0123456789ab", built=False, seconds=0.01).built
    False
    """

    name: str
    tag: str
    built: bool
    seconds: float


# ─── where the images live ────────────────────────────────────────────────


def docker_dir() -> Path:
    """Return the folder that holds one sub-folder per image.

    ``$TOOLGYM_DOCKER_DIR`` when set; else ``toolgym/_docker/``, where an
    installed wheel carries the repository's ``docker/`` (pyproject.toml's
    force-include); else ``docker/`` of the checkout the package is imported
    from (an editable install). The hashes, and so the tags, are the same from
    any of them: they cover the files' paths inside the folder, not its place.

    Raises:
        ConfigError: the folder does not exist.
    """
    override = os.environ.get(DOCKER_DIR_ENV)
    if override:
        path = Path(override)
    else:
        package = Path(__file__).resolve().parents[1]
        path = package / PACKAGED_DIR
        if not path.is_dir():
            path = package.parent / "docker"
    if not path.is_dir():
        where = f"${DOCKER_DIR_ENV}={override}" if override else f"{path} (next to the package)"
        raise ConfigError(
            f"No sandbox image folder at {where}: this install of toolgym lacks its image "
            f"build contexts. Reinstall it (a wheel carries them as toolgym/{PACKAGED_DIR}/), "
            f"or set {DOCKER_DIR_ENV} to the docker/ folder of a checkout."
        )
    return path


def image_names() -> list[str]:
    """Return the names of the buildable images: folders of :func:`docker_dir` with a Dockerfile."""
    return sorted(p.parent.name for p in docker_dir().glob("*/Dockerfile"))


def image_folder(name: str) -> Path:
    """Return ``docker/<name>/``.

    Raises:
        ConfigError: there is no such image; the message suggests close names.
    """
    folder = docker_dir() / name
    if not (folder / "Dockerfile").is_file():
        names = image_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"No sandbox image {name!r} (no {folder}/Dockerfile).{hint} "
            f"Known images: {', '.join(names) or 'none'}."
        )
    return folder


# ─── tags and hashes ──────────────────────────────────────────────────────


def context_hash(folder: Path, base_id: str) -> str:
    """Hash every file under ``folder`` (path, mode bit, content) and the base image id.

    A pure function of the files, so a tag names one exact build input.

    Args:
        folder: the build context, e.g. ``docker/python``.
        base_id: the id of the image the build starts FROM.

    Returns:
        12 hex digits.
    """
    digest = hashlib.sha256(HASH_VERSION + b"\0" + base_id.encode() + b"\0")
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if any(part in IGNORED or part.endswith(IGNORED) for part in rel.split("/")):
            continue
        if path.is_symlink():
            body = b"link:" + os.readlink(path).encode()
        elif path.is_file():
            executable = b"x" if os.access(path, os.X_OK) else b"-"
            body = executable + path.read_bytes()
        else:
            continue
        digest.update(rel.encode() + b"\0" + hashlib.sha256(body).digest())
    return digest.hexdigest()[:HASH_LENGTH]


def image_tag_for_hash(name: str, digest: str) -> str:
    """Return ``toolgym/<name>:<digest>``."""
    return f"{REPOSITORY}/{name}:{digest}"


def default_base_tag() -> str:
    """Return ``toolgym/base:<hash of docker/base/bootstrap.sh>``."""
    script = _bootstrap_script()
    digest = hashlib.sha256(HASH_VERSION + b"\0" + script.read_bytes()).hexdigest()
    return image_tag_for_hash(BASE_NAME, digest[:HASH_LENGTH])


def image_tag(name: str, base: str | None = None) -> str:
    """Return the tag that an up-to-date build of ``docker/<name>/`` FROM ``base`` has.

    Args:
        name: the image folder name, e.g. ``"python"``.
        base: the base image reference; None means the bootstrapped default base.

    Raises:
        ImageNotFound: the base image does not exist, so the tag cannot be known yet.
        ConfigError: there is no ``docker/<name>/Dockerfile``.
    """
    folder = image_folder(name)
    base = base or default_base_tag()
    return image_tag_for_hash(name, context_hash(folder, _image_id(base)))


def resolve_image(name_or_tag: str, base: str | None = None) -> str:
    """Return the reference of an existing, up-to-date image.

    A bare name of an image folder (``"python"``) resolves to its current
    ``toolgym/<name>:<hash>``, for ``base`` or, when None, for the base of its
    last build (``toolgym/<name>:latest``), else the default base. ``"base"``
    is the bootstrapped base. Anything else (``"toolgym/python:latest"``,
    ``"python:3.12-slim"``) is a Docker reference, returned when it exists.
    Without an image folder (an install that lacks them), a bare name
    resolves to ``toolgym/<name>:latest``.

    Raises:
        ImageNotFound: no such image, or it is out of date; the message names
            ``toolgym sandbox build``.
    """
    if name_or_tag == BASE_NAME and base is None:
        name_or_tag = default_base_tag()
    elif _is_bare_name(name_or_tag) and not _has_docker_dir():
        name_or_tag = f"{REPOSITORY}/{name_or_tag}:latest"
    elif _is_image_folder(name_or_tag):
        name = name_or_tag
        base = base or _label(f"{REPOSITORY}/{name}:latest", LABEL_BASE) or default_base_tag()
        name_or_tag = image_tag(name, base)
    if not _exists(name_or_tag):
        raise ImageNotFound(name_or_tag)
    return name_or_tag


# ─── building ─────────────────────────────────────────────────────────────


def ensure_base(
    base: str | None = None, force: bool = False, progress: Progress | None = None
) -> str:
    """Return a base image reference that exists, making it when missing.

    Args:
        base: None bootstraps ``toolgym/base:<hash>`` from Debian packages with
            ``docker/base/bootstrap.sh`` (2-3 min, needs root and debootstrap);
            any other reference (e.g. ``python:3.12-slim``) is pulled when missing.
        force: bootstrap again even when the base exists (default base only).
        progress: called with one line when slow work starts.

    Raises:
        SandboxUnavailable: no Docker daemon answers.
        SandboxError: the bootstrap or the pull failed.
    """
    return build_base(base, force=force, progress=progress).tag


def build_base(
    base: str | None = None, force: bool = False, progress: Progress | None = None
) -> BuildResult:
    """Like :func:`ensure_base`, and says whether anything ran and how long it took."""
    start = time.monotonic()
    if base is not None:
        built = not _exists(base)
        if built:
            _say(progress, f"pulling {base}")
            _pull(base)
        return BuildResult(BASE_NAME, base, built, time.monotonic() - start)
    tag = default_base_tag()
    with _lock(BASE_NAME):
        built = force or not _exists(tag)
        if built:
            _say(progress, f"bootstrapping {tag} from Debian packages (2-3 min)")
            _bootstrap(tag)
            docker_client().api.tag(tag, f"{REPOSITORY}/{BASE_NAME}", "latest", force=True)
    return BuildResult(BASE_NAME, tag, built, time.monotonic() - start)


def build_image(name: str, base: str | None = None, force: bool = False) -> str:
    """Build ``docker/<name>/`` FROM ``base`` unless its hashed tag exists; return the tag.

    Args:
        name: the image folder name, e.g. ``"python"``.
        base: the base image (see :func:`ensure_base`); made when missing.
        force: build again, without the layer cache, even when the tag exists.

    Raises:
        ConfigError: there is no ``docker/<name>/Dockerfile``.
        SandboxUnavailable: no Docker daemon answers.
        SandboxError: the build failed; the message ends with the build log.
    """
    return build(name, base, force=force).tag


def build(
    name: str, base: str | None = None, force: bool = False, progress: Progress | None = None
) -> BuildResult:
    """Like :func:`build_image`, and says whether anything ran and how long it took."""
    start = time.monotonic()
    folder = image_folder(name)
    base_ref = ensure_base(base, progress=progress)
    digest = context_hash(folder, _image_id(base_ref))
    tag = image_tag_for_hash(name, digest)
    with _lock(name):
        built = force or not _exists(tag)
        if built:
            _say(progress, f"building {tag} FROM {base_ref}")
            labels = {LABEL_NAME: name, LABEL_HASH: digest, LABEL_BASE: base_ref}
            _docker_build(folder, tag, base_ref, labels, nocache=force)
        docker_client().api.tag(tag, f"{REPOSITORY}/{name}", "latest", force=True)
    return BuildResult(name, tag, built, time.monotonic() - start)


def build_all(
    names: list[str] | None = None,
    base: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> list[BuildResult]:
    """Make the base, then build each named image (all of them when ``names`` is empty).

    ``"base"`` among ``names`` stands for the base image itself (``force``
    then bootstraps it again).

    Returns:
        One result for the base, then one per image, in order.
    """
    wanted = list(names or image_names())
    for name in wanted:
        if name != BASE_NAME:
            image_folder(name)  # unknown names fail before anything is built
    results = [build_base(base, force=force and BASE_NAME in wanted, progress=progress)]
    base_ref = results[0].tag
    for name in wanted:
        if name != BASE_NAME:
            results.append(build(name, base_ref, force=force, progress=progress))
    return results


# ─── stale images ─────────────────────────────────────────────────────────


def stale_images(names: Iterable[str] | None = None) -> list[str]:
    """Return the hashed tags of toolgym-built images that are no longer current.

    An image is stale when the files of its folder or its base changed since
    it was built (its hash is not the one a build would give now), or its
    folder is gone. Only images carrying toolgym's labels are considered, and of
    those only the tag toolgym gave them, ``toolgym/<name>:<their hash label>``:
    an image that ``toolgym/<name>:latest`` points to (one a user loaded with
    ``docker load``, say) and every other tag a user gave are kept. A base image
    is kept while it is the default base or a current image is built on it.

    Args:
        names: only images of these names (``"base"`` for base images); None: all.

    Returns:
        Tags, images before the base images they may be built on.
    """
    client = docker_client()
    wanted = None if names is None else set(names)
    stale: list[str] = []
    keep_bases: set[str] = {default_base_tag()}
    for image in client.images.list(filters={"label": LABEL_NAME}):
        name, base = image.labels.get(LABEL_NAME, ""), image.labels.get(LABEL_BASE, "")
        if name == BASE_NAME:
            continue
        try:
            current = _is_image_folder(name) and image_tag(name, base) in image.tags
        except ImageNotFound:  # its base is gone
            current = False
        if current or _chosen(image, name):
            keep_bases.add(base)
        elif wanted is None or name in wanted:
            stale.extend(_built_tags(image, name))
    if wanted is None or BASE_NAME in wanted:
        for image in client.images.list(filters={"label": f"{LABEL_NAME}={BASE_NAME}"}):
            if not keep_bases.intersection(image.tags) and not _chosen(image, BASE_NAME):
                stale.extend(_built_tags(image, BASE_NAME))
    return list(dict.fromkeys(stale))


def _chosen(image: Image, name: str) -> bool:
    """``toolgym/<name>:latest`` points to it: what sandboxes of that name run."""
    return f"{REPOSITORY}/{name}:latest" in image.tags


def _built_tags(image: Image, name: str) -> list[str]:
    """The tag a toolgym build gave ``image`` (none when a user retagged it)."""
    tag = image_tag_for_hash(name, str(image.labels.get(LABEL_HASH, "")))
    return [tag] if tag in image.tags else []


def prune_images(names: Iterable[str] | None = None, dry_run: bool = False) -> list[str]:
    """Remove the tags :func:`stale_images` lists; return those removed.

    A tag whose image a container still uses is left alone (and not returned);
    removing a tag deletes the image only when no other tag is left on it.
    """
    removed = []
    for tag in stale_images(names):
        if not dry_run:
            try:
                docker_client().images.remove(tag)
            except docker.errors.APIError:  # in use by a container or a child image
                continue
        removed.append(tag)
    return removed


# ─── helpers ──────────────────────────────────────────────────────────────


def _bootstrap_script() -> Path:
    script = docker_dir() / BASE_NAME / "bootstrap.sh"
    if not script.is_file():
        raise ConfigError(
            f"{script} is missing: it makes the base image. Restore it from the repository."
        )
    return script


def _bootstrap(tag: str) -> None:
    script = _bootstrap_script()
    env = {**os.environ, "TOOLGYM_IMAGE_HASH": tag.rsplit(":", 1)[1]}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.run(
            ["bash", str(script), tag], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        if proc.returncode != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-4000:]
            raise SandboxError(
                f"Bootstrapping the base image {tag} failed (exit {proc.returncode}):\n{tail}"
            )


def _docker_build(folder: Path, tag: str, base: str, labels: dict[str, str], nocache: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="toolgym-build-") as tmp:
        context = Path(tmp) / folder.name
        shutil.copytree(folder, context, symlinks=True,
                        ignore=shutil.ignore_patterns(*(f"*{pattern}" for pattern in IGNORED)))
        bundle = Path(HOST_CA_BUNDLE)
        (context / "host-ca.crt").write_bytes(bundle.read_bytes() if bundle.is_file() else b"")
        _docker_build_context(context, tag, base, labels, nocache)


def _docker_build_context(
    folder: Path, tag: str, base: str, labels: dict[str, str], nocache: bool
) -> None:
    lines: list[str] = []
    stream = docker_client().api.build(
        path=str(folder),
        tag=tag,
        buildargs={"BASE": base},
        labels=labels,
        nocache=nocache,
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
    )
    for chunk in stream:
        if "stream" in chunk:
            lines.extend(chunk["stream"].splitlines())
        if "error" in chunk:
            log = "\n".join(lines[-30:])
            raise SandboxError(
                f"Building {tag} from {folder} failed: {chunk['error'].strip()}\n{log}"
            )


def _pull(ref: str) -> None:
    try:
        docker_client().images.pull(ref)
    except docker.errors.APIError as exc:
        raise SandboxError(
            f"The base image {ref!r} is not here and could not be pulled "
            f"({exc.explanation or exc}). "
            "Pull or load it yourself, or leave out --base to bootstrap one from Debian packages."
        ) from exc


def _exists(ref: str) -> bool:
    try:
        docker_client().images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def _image_id(ref: str) -> str:
    try:
        return str(docker_client().images.get(ref).id)
    except docker.errors.ImageNotFound as exc:
        raise ImageNotFound(ref) from exc


def _label(ref: str, key: str) -> str | None:
    try:
        value = docker_client().images.get(ref).labels.get(key)
    except docker.errors.ImageNotFound:
        return None
    return str(value) if value is not None else None


def _is_bare_name(name: str) -> bool:
    return not any(c in name for c in "/:@")


def _has_docker_dir() -> bool:
    try:
        docker_dir()
    except ConfigError:
        return False
    return True


def _is_image_folder(name: str) -> bool:
    return (
        _is_bare_name(name) and _has_docker_dir() and (docker_dir() / name / "Dockerfile").is_file()
    )


def _say(progress: Progress | None, line: str) -> None:
    if progress is not None:
        progress(line)


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    """Serialise builds of one image across processes (two test runs, a demo and a test run)."""
    path = Path(tempfile.gettempdir()) / f"toolgym-image-{name}.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
