"""Reading append-only JSON-lines files back, past the damage a crash leaves.

toolgym appends one whole line per record (trajectories, metrics), so a killed
writer leaves at worst a torn last line. Files get worse than that: a crash of
the machine can leave a block of NUL bytes, a record glued onto a torn one
(a writer that appended after a torn line), a line edited by hand. A resume
must not die on such a line, nor drop the good records around it:
:func:`read_records` skips what it cannot read, recovers a whole record glued
behind garbage on the same line, and says what it skipped and where. It never
rewrites the file (the bad bytes stay for whoever wants to look).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def read_records(path: str | Path, parse: Callable[[str], T]) -> Iterator[T]:
    r"""Every record of ``path`` that ``parse`` accepts, in order; damaged lines are skipped.

    A torn last line (no newline: a writer was killed) is skipped silently. A
    line in the middle that ``parse`` refuses is skipped with a warning naming
    the file and line, unless a whole record ends it (garbage, then a record
    written after it): that record is kept.

    Args:
        path: The file.
        parse: Turns one line into a record; raises ``ValueError``, ``KeyError``
            or ``TypeError`` for a line it cannot use.

    Example:
        >>> import json, tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        ...     _ = f.write('{"a": 1}\n\x00\x00{"a": 2}\n{"a": \n{"a": 3}\n{"a"')
        >>> [r["a"] for r in read_records(f.name, json.loads)]
        [1, 2, 3]
    """
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline
    read = [(n, raw, _parse(parse, raw.decode("utf-8", errors="replace")))
            for n, raw in enumerate(lines, start=1) if raw.strip()]
    prefix = next((k for _, raw, record in read if record is not None
                   and (k := _first_key(raw)) is not None), None)
    skipped: list[int] = []
    for number, raw, record in read:
        if record is None and prefix is not None:
            record = _recover(parse, raw.decode("utf-8", errors="replace"), prefix)
        if record is None:
            skipped.append(number)
            log.warning("%s:%d: skipping an unreadable line (%d bytes: %r...)", path, number,
                        len(raw), raw[:60])
            continue
        yield record
    if skipped:
        log.warning("%s: %d unreadable line(s) skipped (line %s); every readable record is kept "
                    "and the file is left as it was", path, len(skipped),
                    ", ".join(map(str, skipped[:10])) + (" ..." if len(skipped) > 10 else ""))
    if torn.strip():
        log.info("%s: skipping a torn last line (%d bytes)", path, len(torn))


def _first_key(raw: bytes) -> str | None:
    """How the records of this file begin: ``{"env_id":`` for ``{"env_id": "e", ...}``."""
    text = raw.decode("utf-8", errors="replace").lstrip()
    end = text.find('":')
    return text[:end + 2] if text.startswith('{"') and end != -1 else None


def _parse(parse: Callable[[str], T], text: str) -> T | None:
    try:
        return parse(text)
    except (ValueError, KeyError, TypeError):
        return None


def _recover(parse: Callable[[str], T], text: str, prefix: str) -> T | None:
    """The record that ends ``text``, starting where a record of this file begins."""
    start = text.find(prefix, 1)  # not 0: the whole line was tried already
    while start != -1:
        record = _parse(parse, text[start:])
        if record is not None:
            return record
        start = text.find(prefix, start + 1)
    return None
