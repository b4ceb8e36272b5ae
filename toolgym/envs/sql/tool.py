"""The SQL tools: ``sql(query)``, ``schema()`` and ``describe(table)``, run inside the sandbox.

Each call runs :mod:`toolgym.envs.sql.runner` with ``python3 -I -S -c
SOURCE ...`` on the episode's database (read-only; see the runner for the
four locks). A query that writes, errors, hangs or returns too much comes
back as the observation: ``Error: ...``, a time-limit note, or the first
``max_rows`` rows and a truncation note. Which database the tools open is
asked of ``database()`` at each call, so one tool set serves every task of an
environment.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from toolgym.envs.sql import runner
from toolgym.envs.sql.databases import sandbox_path
from toolgym.sandbox.base import Sandbox
from toolgym.tools import FunctionTool, ToolContext, ToolResult, tool
from toolgym.tools import output as notes

RUNNER_SOURCE = Path(runner.__file__).read_text(encoding="utf-8")
"""Sent with every call (about 10 kB): the image needs only python3."""
OUTPUT_BYTES = 32_768
MAX_QUERY_CHARS = 50_000
"""Longer queries are refused before they reach the sandbox (argv limits)."""


def sql_tools(database: Callable[[], str], *, timeout_s: float = 5.0, max_rows: int = 50,
              python: str = "python3") -> list[FunctionTool]:
    """Make the three tools for the database that ``database()`` names at call time.

    Args:
        database: Returns the current database's name (e.g. ``"shop"``).
        timeout_s: Time limit of one query; the runner stops it and says so.
        max_rows: Rows shown of a result; the rest is cut with a note.
        python: The interpreter in the sandbox.

    Example:
        >>> [t.signature for t in sql_tools(lambda: "shop")]
        ['sql(query: str)', 'schema()', 'describe(table: str)']
    """

    async def run(sandbox: Sandbox, *args: str) -> ToolResult:
        result = await sandbox.aexec(
            [python, "-I", "-S", "-c", RUNNER_SOURCE, *args],
            timeout=timeout_s + 5, output_bytes=OUTPUT_BYTES)
        text = result.stdout.rstrip("\n")
        if result.timed_out or result.exit_code == runner.EXIT_TIMEOUT:
            return ToolResult(text or notes.timeout_note(timeout_s, "the query"), timed_out=True)
        if result.truncated:
            text += "\n" + notes.truncation_note(OUTPUT_BYTES)
        if result.exit_code == 0 and text:
            return ToolResult(text, truncated=result.truncated)
        if result.exit_code == runner.EXIT_ERROR and text.startswith("Error:"):
            return ToolResult(text, error=True)
        detail = notes.exit_note(result.exit_code) or "no output"
        return ToolResult(f"Error: the SQL runner failed {detail}", error=True)

    @tool
    async def sql(context: ToolContext, query: str) -> ToolResult:
        """Run one read-only SQLite query on the task's database and show the result as a table.

        Args:
            query: One SELECT (or WITH ... SELECT) statement.
        """
        if "\x00" in query or len(query) > MAX_QUERY_CHARS:
            return ToolResult(f"Error: the query has a NUL character or more than "
                              f"{MAX_QUERY_CHARS} characters.", error=True)
        return await run(context.sandbox, "query", sandbox_path(database()), query, str(max_rows),
                         str(timeout_s))

    @tool
    async def schema(context: ToolContext) -> ToolResult:
        """Show the CREATE statement and row count of every table of the task's database."""
        return await run(context.sandbox, "schema", sandbox_path(database()))

    @tool
    async def describe(context: ToolContext, table: str) -> ToolResult:
        """Show one table's columns, keys, row count and first rows.

        Args:
            table: The table's name.
        """
        if "\x00" in table or len(table) > 200:
            return ToolResult("Error: not a table name.", error=True)
        return await run(context.sandbox, "describe", sandbox_path(database()), table)

    sql.timeout_s = timeout_s  # type: ignore[attr-defined]
    return [sql, schema, describe]
