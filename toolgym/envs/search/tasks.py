"""The search questions, read out of the ``toolgym/search`` image and cached on the host.

Why from the image: the questions are generated *with* the corpus and its
index, at image build time (``docker/search/make_tasks.py``), and each is
checked there against the exact documents and BM25 ranking the agent will
use. Shipping a second copy of WordNet and bm25s on the host, or generating
on the host and hoping both sides render documents alike, could drift; one
generator in one place cannot. The host needs only the question and its gold
answers (scoring is host-side, from the final answer text), so it copies
``/opt/search/tasks.jsonl`` out of the image once, without starting it
(``docker create`` + ``get_archive``), into a cache keyed by the image id: a
rebuilt image brings its own questions, and an unchanged one costs one
``docker images`` look-up per env.

Each record is a :class:`~toolgym.envs.tasks.Task` whose ``data`` holds
``answers`` (gold names, any one scores), ``wrong`` (a plausible wrong
answer, for the scripted wrong agent) and ``hops`` (what the oracle reads:
``query`` to search, ``doc_id`` and ``page`` to open), and whose ``metadata``
holds ``kind``, ``hops`` and ``pos``.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

from toolgym.envs.tasks import JSONLTaskSource
from toolgym.errors import SandboxError
from toolgym.sandbox import image_files

IMAGE = "toolgym/search:latest"
TASKS_PATH = "/opt/search/tasks.jsonl"
CACHE_ENV = "TOOLGYM_CACHE_DIR"


def cache_dir() -> Path:
    """``$TOOLGYM_CACHE_DIR/search``, else ``~/.cache/toolgym/search``."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "toolgym"
    return Path(root) / "search"


def search_tasks(image: str = IMAGE) -> JSONLTaskSource:
    """The questions built into ``image``, copied out of it on first use.

    Raises:
        ImageNotFound: the image is not built (``toolgym sandbox build search``).
        SandboxUnavailable: no Docker daemon answers.
        SandboxError: the image holds no questions.
    """
    return _load(image, image_files.image_id(image))


@functools.cache
def _load(image: str, image_id: str) -> JSONLTaskSource:
    path = cache_dir() / image_id.removeprefix("sha256:")[:16] / "tasks.jsonl"
    if not path.is_file():
        data = _copy_out(image_id, TASKS_PATH, image)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a concurrent reader sees the whole file or none
    return JSONLTaskSource(path)


def _copy_out(image_id: str, path: str, image: str) -> bytes:
    """The bytes of ``path`` in the image (see :mod:`toolgym.sandbox.image_files`)."""
    try:
        return image_files.read_image_file(image_id, path, image)
    except SandboxError as exc:
        raise SandboxError(f"{exc}: it is not a toolgym search image. "
                           "Rebuild it with `toolgym sandbox build search`.") from exc
