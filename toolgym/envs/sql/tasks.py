"""Seeded SQL questions: templates (``templates.py``) filled with values drawn from the data.

Each template is filled with up to ``per_template`` parameter values, drawn in
a seeded order from the candidates its parameter queries list on the main
database. An instance is kept only if it makes a fair, unforgeable task:

- the gold result is non-empty, not just ``0`` or NULL, and at most
  :data:`MAX_GOLD_ROWS` rows;
- the gold result differs between the main database and the variant, so a
  hard-coded copy of the result scores 0;
- the template's wrong query runs and its result differs (so the scripted
  wrong agent scores 0);
- an ordered answer has no ties in its order column, and none at the LIMIT
  boundary (so the order, and the rows a LIMIT keeps, are not arbitrary).

The split of an instance is a hash of its gold SQL (20 % test), so it does not
depend on the seed or on which other instances exist. Ids are
``sql-<template>-<k>``, stable when templates are added.

``Task.data`` holds, for the verifier and the reference agents only: ``db``,
``gold`` (the SQL), ``ordered``, ``wrong`` (the wrong agent's SQL) and
``result`` (the gold rows on the main database).
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
import sqlite3
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from toolgym.envs.sql import runner
from toolgym.envs.sql.databases import connect, names
from toolgym.envs.sql.prompts import task_prompt
from toolgym.envs.sql.templates import TEMPLATES, Template
from toolgym.envs.sql.verifier import results_match
from toolgym.envs.tasks import ListTaskSource, Task
from toolgym.errors import ConfigError

__all__ = ["MAX_GOLD_ROWS", "TEST_FRACTION", "sql_literal", "sql_tasks"]

TEST_FRACTION = 0.2
MAX_GOLD_ROWS = 30
_LIMIT = re.compile(r"LIMIT (\d+)$")


def sql_literal(value: object) -> str:
    """``value`` as a SQL literal.

    Example:
        >>> sql_literal("O'Hare"), sql_literal(3), sql_literal(2.5)
        ("'O''Hare'", '3', '2.5')
    """
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    raise ConfigError(f"cannot write {value!r} as a SQL literal")


def split_of(gold: str) -> str:
    """``"test"`` for about 20 % of gold queries, by a hash of the SQL text."""
    bucket = int.from_bytes(hashlib.sha256(gold.encode()).digest()[:8], "big") / 2**64
    return "test" if bucket < TEST_FRACTION else "train"


def sql_tasks(seed: int = 0, per_template: int = 10) -> ListTaskSource:
    """Return every kept instance of every template; identical for identical arguments.

    Args:
        seed: Orders the draw of parameter values.
        per_template: Most instances of one template.

    Raises:
        ConfigError: ``per_template`` is below 1.

    Example:
        >>> source = sql_tasks()                      # doctest: +SKIP
        >>> len(source) >= 300                        # doctest: +SKIP
        True
    """
    if per_template < 1:
        raise ConfigError(f"per_template must be >= 1; got {per_template}.")
    return ListTaskSource(_generate(seed, per_template))


@cache
def _generate(seed: int, per_template: int) -> tuple[Task, ...]:
    tasks: list[Task] = []
    for db in names():
        main, variant = connect(db), connect(db, variant=True)
        try:
            for template in (t for t in TEMPLATES if t.db == db):
                rng = random.Random(f"{seed}:{template.name}")
                tasks.extend(_instances(template, main, variant, rng, per_template))
        finally:
            main.close()
            variant.close()
    return tuple(tasks)


def _instances(template: Template, main: sqlite3.Connection, variant: sqlite3.Connection,
               rng: random.Random, wanted: int) -> Iterator[Task]:
    combos = _combos(template, main)
    rng.shuffle(combos)
    found = 0
    for combo in combos:
        if found == wanted:
            return
        gold, wrong = (_fill(sql, combo, sql_literal) for sql in (template.gold, template.wrong))
        rows = _fair_result(template, gold, wrong, main, variant)
        if rows is None:
            continue
        question = _fill(template.question, combo, str)
        yield Task(
            id=f"sql-{template.name}-{found}",
            prompt=task_prompt(template.db, question),
            data={"db": template.db, "gold": gold, "wrong": wrong,
                  "ordered": template.order_col is not None, "result": rows},
            split=split_of(gold),
            metadata={"db": template.db, "template": template.name, "level": template.level,
                      "question": question},
        )
        found += 1


def _combos(template: Template, db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every combination of candidate values of the template's parameters."""
    axes: list[list[dict[str, Any]]] = []
    for key, source in template.params.items():
        keys = key.split(",")
        rows = db.execute(source).fetchall() if isinstance(source, str) else [(v,) for v in source]
        axes.append([dict(zip(keys, row, strict=True)) for row in rows])
    combos = (tuple(kv for part in combo for kv in part.items())
              for combo in itertools.product(*axes))
    return [dict(combo) for combo in dict.fromkeys(combos)]  # unique, in order


def _fill(text: str, combo: Mapping[str, Any], render: Any) -> str:
    return text.format(**{k: render(v) for k, v in combo.items()})


def _fair_result(template: Template, gold: str, wrong: str, main: sqlite3.Connection,
                 variant: sqlite3.Connection) -> list[list[Any]] | None:
    """The gold rows on the main database if the instance is fair (module doc), else None."""
    ordered = template.order_col is not None
    got = runner.result(main, gold, MAX_GOLD_ROWS, 10.0)
    rows = got.get("rows")
    if not rows or got["more"] or rows in ([[0]], [[None]]):
        return None
    other = runner.result(variant, gold, MAX_GOLD_ROWS + 1, 10.0)
    if "rows" in other and results_match(rows, other["rows"], ordered):
        return None
    bad = runner.result(main, wrong, MAX_GOLD_ROWS + 1, 10.0)
    if "rows" not in bad or (not bad["more"] and results_match(rows, bad["rows"], ordered)):
        return None
    if ordered and not _strictly_ordered(template, gold, main):
        return None
    return rows


def _strictly_ordered(template: Template, gold: str, db: sqlite3.Connection) -> bool:
    """No ties in the order column among the rows shown, nor at the LIMIT boundary."""
    limit = _LIMIT.search(gold)
    probe = _LIMIT.sub(f"LIMIT {int(limit.group(1)) + 1}", gold) if limit else gold
    keys = [row[template.order_col] for row in db.execute(probe)]
    return len(set(keys)) == len(keys)
