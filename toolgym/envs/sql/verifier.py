"""Execution-match verification: run the answer and the gold query, compare their results.

The answer is the last ```sql block of the final message. It scores 1.0 iff,
on the task's database **and** on a variant of it (same schema, other rows;
the agent never sees it), its result equals the gold query's:

- as a multiset of rows (duplicates count), or as a sequence when the gold
  query is ordered (its ORDER BY is part of the question);
- column names do not count, column order neither (a permutation of the
  columns that makes the results equal is accepted);
- numbers compare by value (``3 == 3.0``) to 10 significant digits, so
  ``SUM(x) / COUNT(x)`` matches ``AVG(x)``; text compares exactly.

The variant makes hard-coding the result the agent saw (``SELECT 42``) score
0: every task's gold result differs between the two databases.

Both queries run in the sandbox after it was reset (the agent's processes
gone, its files wiped), through the same read-only runner as the tools. The
gold results come first, before any agent SQL runs; if they do not come back
(a broken or stale image) the verifier raises, which the env reports as an
infrastructure error, never a 0.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from toolgym.envs.outcome import Score
from toolgym.envs.sql.databases import generator_sha256, sandbox_path
from toolgym.envs.sql.tool import MAX_QUERY_CHARS, RUNNER_SOURCE
from toolgym.envs.tasks import Task
from toolgym.errors import SandboxError
from toolgym.sandbox.base import Sandbox

SQL_FENCE = re.compile(r"```sql[^\S\n]*\n(.*?)```", re.S | re.I)
Row = tuple[Any, ...]
MAX_PERMUTED_COLUMNS = 6
"""Wider results are compared in their own column order only."""
OUTPUT_BYTES = 4 << 20
"""The runner's output cap: the gold line (at most MAX_GOLD_ROWS rows) plus the answer's,
which the runner itself caps at twice the gold's size plus 256 KiB."""


def last_sql_block(text: str) -> str | None:
    r"""The body of the last ```sql fenced block of ``text``, or None.

    Example:
        >>> last_sql_block("maybe\n```sql\nSELECT 1\n```\nno:\n```sql\nSELECT 2;\n```")
        'SELECT 2;\n'
        >>> last_sql_block("SELECT 1") is None
        True
    """
    blocks = SQL_FENCE.findall(text)
    return blocks[-1] if blocks else None


def normalize(value: Any) -> Any:
    """A hashable, comparable form of one value as the runner encodes it.

    Example:
        >>> normalize(2.0000000000000004) == normalize(2), normalize(["b", "00"])
        (True, ('b', '00'))
    """
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, float):
        return float(f"{value:.10g}") + 0.0
    return value


def _rows(rows: Sequence[Sequence[Any]]) -> list[Row]:
    return [tuple(normalize(v) for v in row) for row in rows]


def _column_orders(gold: list[Row], agent: list[Row], width: int) -> list[tuple[int, ...]]:
    """Orders of the agent's columns worth trying: each must hold its gold column's values."""
    identity = tuple(range(width))
    if width > MAX_PERMUTED_COLUMNS or not gold:
        return [identity]
    gold_cols = [Counter(r[i] for r in gold) for i in range(width)]
    agent_cols = [Counter(r[j] for r in agent) for j in range(width)]
    fits = [[j for j in range(width) if agent_cols[j] == gold_cols[i]] for i in range(width)]
    orders = [p for p in itertools.product(*fits) if len(set(p)) == width]
    return orders or [identity]


def results_match(gold: Sequence[Sequence[Any]], agent: Sequence[Sequence[Any]],
                  ordered: bool) -> bool:
    """Whether two results are equal as multisets (or sequences, when ``ordered``) of rows.

    Example:
        >>> results_match([[1, "a"], [2, "b"]], [["b", 2], ["a", 1]], ordered=False)
        True
        >>> results_match([[1], [1]], [[1]], ordered=False)  # duplicates count
        False
        >>> results_match([[1], [2]], [[2], [1]], ordered=True)
        False
    """
    g, a = _rows(gold), _rows(agent)
    if len(g) != len(a) or (g and len(g[0]) != len(a[0])):
        return False
    if any(len(r) != len(g[0]) for r in g + a):
        return False
    width = len(g[0]) if g else 0
    for order in _column_orders(g, a, width):
        moved = [tuple(r[j] for j in order) for r in a]
        if (moved == g) if ordered else (Counter(moved) == Counter(g)):
            return True
    return False


@dataclass(frozen=True)
class ExecutionMatchVerifier:
    """Reward 1.0 iff the answer's last ```sql query returns the gold result on both databases.

    Args:
        timeout_s: Time limit of each query (the answer's and the gold's) per database.
    """

    timeout_s: float = 5.0

    async def score(self, sandbox: Sandbox | None, task: Task, answer: str) -> Score:
        """Run the answer and the gold query in ``sandbox`` and compare the results.

        Raises:
            SandboxError: the gold results did not come back, or the image's
                data is not the data the tasks were drawn from (a stale image).
        """
        assert sandbox is not None, "the queries run in the sandbox: SQL envs hold one"
        sql = last_sql_block(answer)
        problem = _unusable(sql)
        if problem is not None:
            return Score(0.0, passed=False, details={"error": problem})
        assert sql is not None
        db = task.data["db"]
        paths = [sandbox_path(db), sandbox_path(db, variant=True)]
        result = await sandbox.aexec(
            ["python3", "-I", "-S", "-c", RUNNER_SOURCE, "verify", *paths, task.data["gold"], sql,
             str(self.timeout_s)],
            timeout=4 * self.timeout_s + 10, output_bytes=OUTPUT_BYTES)
        lines = result.stdout.splitlines()
        golds = _gold_results(lines, result.stderr, task)
        details: dict[str, Any] = {"query": sql[:2000], "databases": ["main", "variant"]}
        try:
            answers = json.loads(lines[1])["agent"] if len(lines) > 1 else []
        except (json.JSONDecodeError, KeyError, TypeError):
            # The gold line came back, so the image works: the answer broke the runner.
            details["error"] = "the answer's results could not be read back (the runner broke)"
            return Score(0.0, passed=False, details=details)
        if len(answers) < len(golds):
            details["error"] = (answers[-1]["error"] if answers and "error" in answers[-1] else
                                "the query was stopped" + " (time limit)" * result.timed_out)
            return Score(0.0, passed=False, details=details)
        matches = [("error" not in a and a["columns"] == g["columns"] and not a["more"]
                    and results_match(g["rows"], a["rows"], bool(task.data["ordered"])))
                   for g, a in zip(golds, answers, strict=True)]
        details["matches"] = matches
        passed = all(matches)
        return Score(1.0 if passed else 0.0, passed=passed, details=details)


def _unusable(sql: str | None) -> str | None:
    """Why an answer cannot be run at all, or None."""
    if sql is None:
        return "no ```sql block in the answer"
    if not sql.strip():
        return "the ```sql block is empty"
    if "\x00" in sql or len(sql) > MAX_QUERY_CHARS:
        return f"the query has a NUL character or more than {MAX_QUERY_CHARS} characters"
    return None


def _gold_results(lines: list[str], stderr: str, task: Task) -> list[dict[str, Any]]:
    """The gold results from the runner's first line; raise when they are missing or stale."""
    try:
        first = json.loads(lines[0])
    except (IndexError, json.JSONDecodeError) as exc:
        raise SandboxError(f"the SQL runner printed no gold results for {task.id}; "
                           f"stderr: {stderr[-500:]!r}") from exc
    if first.get("sha256") != generator_sha256():
        raise SandboxError(
            "the sandbox's databases were built by another version of docker/sql/"
            "build_databases.py than the tasks: rebuild the image (`toolgym sandbox build sql`).")
    golds = first["gold"]
    broken = [g["error"] for g in golds if "error" in g]
    if broken:
        raise SandboxError(f"the gold query of {task.id} failed: {broken[0]}")
    return golds
