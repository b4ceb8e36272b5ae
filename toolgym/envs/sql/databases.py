"""The four SQLite databases, seen from the host: built in memory by the image's own generator.

The generator, ``docker/sql/build_databases.py``, is the single source of the
data. The image build runs it (so the image hash covers it) and this module
imports it from there, so the questions are drawn from exactly the rows the
sandbox holds. The verifier checks that at scoring time: the image records the
generator's sha256, and a mismatch (a stale image) is an infrastructure error
naming the fix instead of silently wrong rewards.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sqlite3
from functools import cache
from types import ModuleType

from toolgym.errors import ConfigError
from toolgym.sandbox.images import image_folder

IMAGE = "sql"
"""The image folder, ``docker/sql/``."""
GENERATOR = "build_databases.py"
DATA_DIR = "/data"
"""Where the image keeps the databases (read-only, owned by root)."""


@cache
def generator() -> ModuleType:
    """The generator module, loaded from ``docker/sql/``.

    Raises:
        ConfigError: no image folder (see :func:`toolgym.sandbox.images.docker_dir`).
    """
    path = image_folder(IMAGE) / GENERATOR
    if not path.is_file():
        raise ConfigError(f"{path} is missing: it builds the SQL databases. Restore it.")
    spec = importlib.util.spec_from_file_location("toolgym_sql_build_databases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def names() -> tuple[str, ...]:
    """The database names: shop, university, library, airline."""
    return tuple(generator().NAMES)


@cache
def generator_sha256() -> str:
    """The sha256 of the generator file; the image stores the one it was built with."""
    return hashlib.sha256((image_folder(IMAGE) / GENERATOR).read_bytes()).hexdigest()


def connect(name: str, *, variant: bool = False) -> sqlite3.Connection:
    """A new in-memory copy of database ``name`` (or of its verifier-only variant).

    Raises:
        ConfigError: no such database.
    """
    gen = generator()
    if name not in gen.NAMES:
        raise ConfigError(f"No SQL database {name!r}; the databases are {list(gen.NAMES)}.")
    seed = gen.VARIANT_SEED if variant else gen.MAIN_SEED
    return gen.build(sqlite3.connect(":memory:"), name, seed)


def sandbox_path(name: str, *, variant: bool = False) -> str:
    """Where the image keeps database ``name``: ``/data/<name>.db`` or ``/data/variant/<name>.db``.

    Example:
        >>> sandbox_path("shop"), sandbox_path("shop", variant=True)
        ('/data/shop.db', '/data/variant/shop.db')
    """
    return f"{DATA_DIR}/variant/{name}.db" if variant else f"{DATA_DIR}/{name}.db"
