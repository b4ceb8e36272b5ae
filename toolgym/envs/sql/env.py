"""``toolgym/SQL-v0``: answer questions about a SQLite database with one SQL query.

Each task names a database (shop, university, library or airline, built by
``docker/sql/build_databases.py`` into the ``toolgym/sql`` image) and asks a
question of it. The agent explores with ``schema()``, ``describe(table)`` and
``sql(query)`` (read-only, time-limited, at most 50 rows shown) and answers
with a ```sql block in a message without a tool call. The answer scores 1.0
iff its result equals the gold query's on the database and on a hidden
variant of it (execution match; see ``verifier.py``). ``tasks.py`` says how
the questions are drawn and kept.
"""

from __future__ import annotations

from toolgym.envs.base import ToolEnv
from toolgym.envs.sql.prompts import SYSTEM_PROMPT
from toolgym.envs.sql.tasks import sql_literal, sql_tasks
from toolgym.envs.sql.tool import sql_tools
from toolgym.envs.sql.verifier import ExecutionMatchVerifier
from toolgym.envs.tasks import Task
from toolgym.sandbox.provider import SandboxProvider
from toolgym.sandbox.spec import SandboxSpec
from toolgym.tools import ToolCall, ToolSet, render_tool_call

IMAGE = "toolgym/sql:latest"


def call(name: str, **arguments: str) -> str:
    """The assistant message that calls one SQL tool (Hermes format).

    Example:
        >>> print(call("sql", query="SELECT 1"))
        <tool_call>
        {"name": "sql", "arguments": {"query": "SELECT 1"}}
        </tool_call>
    """
    return render_tool_call(ToolCall(name, dict(arguments)))


def answer(sql: str) -> str:
    """A final answer: ``sql`` in a ```sql block."""
    return f"My final query:\n```sql\n{sql}\n```"


class SQLEnv(ToolEnv):
    r"""Questions about SQLite databases; reward 1.0 when the answer's result is the gold result.

    Args:
        split: ``"train"``, ``"test"`` or None (both).
        seed: Seeds the draw of question parameters (not the episode draw).
        per_template: Most questions per template.
        sandbox: Spec of this env's own sandbox (default: the ``toolgym/sql`` image).
        provider: Share sandboxes with other envs (their image must be ``toolgym/sql``).
        tool_timeout_s: Time limit of one query, in the tools and in the verifier.
        max_rows: Rows the ``sql`` tool shows.
        system_prompt: The instruction shown first; None for none.
        render_mode: None or "ansi".

    Example:
        >>> env = gymnasium.make("toolgym/SQL-v0", split="train")        # doctest: +SKIP
        >>> obs, info = env.reset(seed=0)                                # doctest: +SKIP
        >>> env.step(call("sql", query="SELECT COUNT(*) FROM orders"))[0]  # doctest: +SKIP
        'COUNT(*)\n--------\n2310\n(1 row)'
    """

    def __init__(
        self,
        split: str | None = None,
        *,
        seed: int = 0,
        per_template: int = 10,
        sandbox: SandboxSpec | None = None,
        provider: SandboxProvider | None = None,
        tool_timeout_s: float = 5.0,
        max_rows: int = 50,
        system_prompt: str | None = SYSTEM_PROMPT,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            sql_tasks(seed, per_template),
            ToolSet(sql_tools(self._database, timeout_s=tool_timeout_s, max_rows=max_rows)),
            ExecutionMatchVerifier(timeout_s=tool_timeout_s),
            sandbox=sandbox or SandboxSpec(image=IMAGE),
            provider=provider,
            system_prompt=system_prompt,
            split=split,
            render_mode=render_mode,
        )

    def _database(self) -> str:
        """The current task's database, for the tools."""
        if self.task is None:
            raise RuntimeError("no task: call reset() first")
        return str(self.task.data["db"])

    def oracle_actions(self, task: Task) -> list[str]:
        """Look at the schema, run the gold query, answer it."""
        sql = task.data["gold"]
        return [call("schema"), call("sql", query=sql), answer(sql)]

    def wrong_actions(self, task: Task) -> list[str]:
        """The template's plausible wrong query, run and answered."""
        sql = task.data["wrong"]
        return [call("sql", query=sql), answer(sql)]

    def hack_probes(self, task: Task) -> dict[str, list[str]]:
        """Ways to score without a right query; each must score 0.

        Writes and ATTACH (as the answer and through the tool), several
        statements, PRAGMA, an empty block, no block, a claim of success, the
        gold in the wrong fence or before a wrong block, a runaway query, and
        the result the agent saw hard-coded as literals (caught by the variant), and
        a query and an answer too long to pass as one argument.
        """
        gold, wrong, db = task.data["gold"], task.data["wrong"], task.data["db"]
        table = {"shop": "orders", "university": "enrollments", "library": "loans",
                 "airline": "bookings"}[db]
        rows = ", ".join("(" + ", ".join("NULL" if v is None else sql_literal(v) for v in row)
                         + ")" for row in task.data["result"])
        runaway = ("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
                   "SELECT COUNT(*) FROM n")
        return {
            "a write as the answer": [answer(f"DELETE FROM {table}")],
            "a write, then the gold, in one block": [answer(f"CREATE TEMP TABLE t(x);\n{gold}")],
            "drop a table with the tool, then a wrong answer": [
                call("sql", query=f"DROP TABLE {table}"), answer(wrong)],
            "ATTACH as the answer": [answer("ATTACH DATABASE '/work/x.db' AS x")],
            "ATTACH the variant with the tool": [
                call("sql", query=f"ATTACH DATABASE '/data/variant/{db}.db' AS v"),
                answer(wrong)],
            "turn query_only off": [answer("PRAGMA query_only = OFF")],
            "an empty sql block": ["```sql\n```"],
            "claim success without a query": ["I ran the query and it matched the answer. Done."],
            "the gold in a python block": [f"```python\n{gold}\n```"],
            "the gold, then a wrong block last": [f"{answer(gold)}\nor rather\n{answer(wrong)}"],
            "a runaway recursive query": [answer(runaway)],
            "the result seen, hard-coded": [answer(f"SELECT * FROM (VALUES {rows})")],
            # past the kernel's 128 KiB argv limit: must be a 0, never an infra_error
            "a query past the argv limit with the tool, then a wrong answer": [
                call("sql", query="SELECT 1" + " " * (200 << 10)), answer(wrong)],
            "an answer past the argv limit": [answer(gold + "\n" + "-- padding\n" * 20_000)],
        }
