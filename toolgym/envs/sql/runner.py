"""Run SQL against a read-only SQLite database: the program behind the tools and the verifier.

The tools send this file's *source* to the sandbox and run it with
``python3 -I -S -c SOURCE MODE ARGS...`` (the image needs only python3), as
the calculator does. Standard library only. Modes:

- ``query DB SQL MAX_ROWS TIMEOUT_S``: the result as a text table (at most
  ``MAX_ROWS`` rows shown);
- ``schema DB``: every table's ``CREATE`` statement and row count;
- ``describe DB TABLE``: columns, keys, row count and three sample rows;
- ``verify MAIN VARIANT GOLD SQL TIMEOUT_S``: both queries on both databases,
  as JSON lines (see :func:`verify`) for the host to compare.

Every agent query is confined four ways: the file is opened ``mode=ro`` (and
is read-only on disk), ``PRAGMA query_only`` is on, an authorizer allows
reading and nothing else (no ATTACH, PRAGMA, temp tables or writes), and a
progress handler stops it at a deadline. Lengths, attached databases and the
heap are capped too. Exit status: 0 ok, 1 the query failed (the message
starts with ``Error:``), 3 the time limit stopped it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import time

DATA_DIR = "/data"
EXIT_ERROR = 1
EXIT_TIMEOUT = 3
CELL_CHARS = 60
"""Longer cells are cut in the text table."""
VALUE_CHARS = 200
"""Longer strings and blobs travel to the verifier as their sha256."""
GOLD_ROW_CAP = 10_000
ANSWER_SLACK_CHARS = 256 * 1024
"""An answer's result may be this much larger (as JSON) than twice the gold's; a larger one
is refused as an error, so a flood (control characters are six bytes each in JSON) cannot
cut the verifier's output into an unreadable line."""
_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
            sqlite3.SQLITE_RECURSIVE}


class QueryTimeout(Exception):
    """The progress handler stopped a query at its deadline."""


def open_readonly(path: str, *, agent: bool = True) -> sqlite3.Connection:
    """Open ``path`` read-only with every limit in place, before any agent SQL runs.

    ``agent=False`` leaves out the authorizer, for this file's own PRAGMAs
    (``describe``); the table name it is given is checked against the schema.
    """
    db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, isolation_level=None)
    db.execute("PRAGMA query_only = ON")
    db.execute("PRAGMA hard_heap_limit = 268435456")
    db.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1_000_000)
    db.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 100_000)
    if agent:
        db.set_authorizer(lambda action, *_: sqlite3.SQLITE_OK if action in _ALLOWED
                          else sqlite3.SQLITE_DENY)
    return db


def run(db: sqlite3.Connection, sql: str, max_rows: int, timeout_s: float,
        ) -> tuple[list[str], list[tuple], bool]:
    """Run one statement; return (column names, up to ``max_rows`` rows, whether more exist).

    Raises:
        QueryTimeout: it ran past ``timeout_s``.
        sqlite3.Error: it failed (syntax, unknown column, not authorized ...).
    """
    deadline = time.monotonic() + timeout_s
    timed_out = []

    def stop() -> int:
        if time.monotonic() > deadline:
            timed_out.append(True)
            return 1
        return 0

    db.set_progress_handler(stop, 10_000)
    try:
        cursor = db.execute(sql)
        if cursor.description is None:
            raise sqlite3.ProgrammingError("the statement returns no rows: send one SELECT query")
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchmany(max_rows + 1)
    except sqlite3.Error:
        if timed_out:
            raise QueryTimeout() from None
        raise
    finally:
        db.set_progress_handler(None, 0)
    return columns, rows[:max_rows], len(rows) > max_rows


def explain(error: Exception) -> str:
    """The ``Error: ...`` line the agent sees for a failed query."""
    text = str(error)
    if "not authorized" in text or "readonly" in text or "query_only" in text:
        return ("Error: not authorized: the database is read-only; only one SELECT (or WITH ... "
                "SELECT) query may run, without ATTACH, PRAGMA or writes.")
    if "one statement at a time" in text:
        return "Error: only one statement may run at a time; send a single SELECT query."
    if not text.strip() or isinstance(error, ValueError):
        return f"Error: {text or 'the query is empty'}"
    return f"Error: {text}"


def cell(value: object) -> str:
    """One value as the table shows it: NULL, numbers as Python writes them, text cut at 60."""
    if value is None:
        text = "NULL"
    elif isinstance(value, bytes):
        text = "x'" + value.hex() + "'"
    else:
        text = str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS - 3] + "..."


def table(columns: list[str], rows: list[tuple], more: bool) -> str:
    """Rows as an aligned text table with a row count (or a note that rows were cut)."""
    cells = [[cell(c) for c in columns]] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    if more:
        lines.append(f"[output truncated: only the first {len(rows)} rows are shown; "
                     "aggregate or add a LIMIT to see the rest]")
    else:
        lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(lines)


def tables(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, CREATE statement) of every table, in creation order."""
    return db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                      "AND name NOT LIKE 'sqlite_%' ORDER BY rowid").fetchall()


def schema(db: sqlite3.Connection) -> str:
    """Every table's CREATE statement followed by its row count."""
    parts = []
    for name, create in tables(db):
        count = db.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
        parts.append(f"{create};\n-- {count} rows")
    return "\n\n".join(parts)


def describe(db: sqlite3.Connection, name: str) -> str:
    """Columns, primary and foreign keys, row count and three sample rows of one table."""
    known = {t.lower(): t for t, _ in tables(db)}
    if name.lower() not in known:
        raise ValueError(f"no table {name!r}; the tables are: {', '.join(known.values())}")
    name = known[name.lower()]
    info = db.execute(f'PRAGMA table_info("{name}")').fetchall()
    fks = {r[3]: f"{r[2]}({r[4]})" for r in db.execute(f'PRAGMA foreign_key_list("{name}")')}
    lines = [f"table {name}:"]
    key_columns = sum(1 for row in info if row[5])
    for _, col, kind, notnull, _, pk in info:
        key = "PRIMARY KEY" if key_columns == 1 else f"PRIMARY KEY ({pk} of {key_columns})"
        notes = [kind or "ANY"] + [key] * bool(pk) + ["NOT NULL"] * bool(notnull)
        notes += [f"REFERENCES {fks[col]}"] if col in fks else []
        lines.append(f"  {col}: {' '.join(notes)}")
    count = db.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
    columns, rows, _ = run(db, f'SELECT * FROM "{name}" LIMIT 3', 3, 5.0)
    lines.append(f"{count} rows; the first {len(rows)}:")
    return "\n".join(lines) + "\n" + table(columns, rows, False)


def encode(value: object) -> object:
    """A value as JSON, with types kept: long text and blobs as digests, odd floats tagged."""
    if isinstance(value, float) and (value != value or abs(value) == float("inf")):
        return ["f", repr(value)]
    if isinstance(value, (bytes, str)) and len(value) > VALUE_CHARS:
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        return ["h", type(value).__name__, hashlib.sha256(raw).hexdigest()]
    if isinstance(value, bytes):
        return ["b", value.hex()]
    return value


def result(db: sqlite3.Connection, sql: str, max_rows: int, timeout_s: float,
           max_chars: int | None = None) -> dict:
    """One query's result for the verifier: columns, encoded rows, or the error (also when
    the rows take more than ``max_chars`` characters as JSON)."""
    try:
        columns, rows, more = run(db, sql, max_rows, timeout_s)
    except QueryTimeout:
        return {"error": f"timed out after {timeout_s:g} s", "timed_out": True}
    except (sqlite3.Error, ValueError, OverflowError, MemoryError) as error:
        return {"error": explain(error)}
    encoded, chars = [], 0
    for row in rows if len(columns) <= 64 else []:
        encoded.append([encode(v) for v in row])
        chars += len(json.dumps(encoded[-1])) + 2
        if max_chars is not None and chars > max_chars:
            return {"error": f"Error: the result is too large to compare (over {max_chars} "
                             "characters as JSON)"}
    return {"columns": len(columns), "more": more, "rows": encoded}


def verify(paths: list[str], gold: str, sql: str, timeout_s: float) -> None:
    """Print two JSON lines: the gold results on every database (with the data's sha256),
    then the agent query's results, each capped at one row more than the gold's.

    The first line comes before any agent SQL runs, so the host can tell a
    broken image (no first line) from an answer that crashed the runner.
    """
    try:
        with open(f"{DATA_DIR}/GENERATOR_SHA256") as f:
            sha = f.read().strip()
    except OSError:
        sha = None
    dbs = [open_readonly(p) for p in paths]
    golds = [result(db, gold, GOLD_ROW_CAP, timeout_s) for db in dbs]
    print(json.dumps({"sha256": sha, "gold": golds}), flush=True)
    answers = []
    for db, g in zip(dbs, golds, strict=True):
        cap = 2 * len(json.dumps(g)) + ANSWER_SLACK_CHARS
        answers.append(result(db, sql, len(g.get("rows", [])) + 1, timeout_s, cap))
        if "error" in answers[-1]:
            break
    print(json.dumps({"agent": answers}), flush=True)


def main(argv: list[str]) -> int:
    """Dispatch on the mode; print the observation; return the exit status."""
    mode, args = argv[0], argv[1:]
    try:
        if mode == "verify":
            verify(args[:2], args[2], args[3], float(args[4]))
            return 0
        db = open_readonly(args[0], agent=mode == "query")
        if mode == "schema":
            print(schema(db))
        elif mode == "describe":
            print(describe(db, args[1]))
        else:
            columns, rows, more = run(db, args[1], int(args[2]), float(args[3]))
            print(table(columns, rows, more))
    except QueryTimeout:
        print(f"Error: the query ran longer than {float(args[3]):g} s and was stopped. "
              "Simplify it, or check for a runaway recursive CTE or a missing join condition.")
        return EXIT_TIMEOUT
    except (sqlite3.Error, ValueError, OverflowError, MemoryError) as error:
        print(explain(error))
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
