"""The SQL environment: databases, tasks, execution-match semantics, and the tools, verifier
and reference agents on real Docker sandboxes of the ``toolgym/sql`` image."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections import Counter

import pytest

import toolgym.envs  # noqa: F401 - registers the built-in envs
from toolgym.envs import Outcome, Task
from toolgym.envs.checker import run_actions
from toolgym.envs.sql import databases, runner
from toolgym.envs.sql.env import SQLEnv, answer, call
from toolgym.envs.sql.tasks import MAX_GOLD_ROWS, sql_tasks
from toolgym.envs.sql.templates import TEMPLATES
from toolgym.envs.sql.verifier import ExecutionMatchVerifier, last_sql_block, results_match
from toolgym.errors import SandboxError
from toolgym.sandbox.docker import DockerSandbox, SandboxSpec
from toolgym.sandbox.pool import PoolConfig, SandboxPool

# ─── databases and tasks (host only) ──────────────────────────────────────


@pytest.mark.parametrize("name", ["shop", "university", "library", "airline"])
def test_each_database_has_five_related_tables_and_thousands_of_rows(name):
    db = databases.connect(name)
    tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    linked = [t for t in tables if db.execute(f"PRAGMA foreign_key_list({t})").fetchall()]
    rows = sum(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables)
    assert len(tables) >= 5 and len(linked) >= 3
    assert 3_000 <= rows <= 20_000
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_databases_are_deterministic_and_the_variant_differs():
    def dump(conn: sqlite3.Connection) -> list[str]:
        return list(conn.iterdump())

    assert dump(databases.connect("shop")) == dump(databases.connect("shop"))
    assert dump(databases.connect("shop")) != dump(databases.connect("shop", variant=True))


def test_tasks_cover_levels_and_databases_and_split_deterministically():
    tasks = list(sql_tasks())
    assert len(tasks) >= 300
    assert {t.metadata["level"] for t in tasks} == {1, 2, 3, 4}
    assert set(Counter(t.metadata["db"] for t in tasks)) == {"shop", "university", "library",
                                                            "airline"}
    assert min(Counter(t.metadata["level"] for t in tasks).values()) >= 40
    splits = Counter(t.split for t in tasks)
    assert splits["test"] >= 50 and splits["train"] >= 200
    golds = Counter(t.data["gold"] for t in tasks)
    assert max(golds.values()) == 1, "an instance is repeated"
    assert {t.data["gold"] for t in sql_tasks().split("train")}.isdisjoint(
        t.data["gold"] for t in sql_tasks().split("test"))
    again = sql_tasks(seed=0)
    assert [t.to_dict() for t in again] == [t.to_dict() for t in tasks]
    other = sql_tasks(seed=1)
    assert [t.data["gold"] for t in other] != [t.data["gold"] for t in tasks]


def test_every_task_is_fair_on_the_host_databases():
    """Gold non-empty and small; differs on the variant; the wrong query's result differs."""
    conns = {(n, v): databases.connect(n, variant=v) for n in databases.names()
             for v in (False, True)}
    for task in sql_tasks():
        d = task.data
        gold = runner.result(conns[d["db"], False], d["gold"], MAX_GOLD_ROWS, 10)
        assert gold["rows"] == d["result"] and 0 < len(gold["rows"]) <= MAX_GOLD_ROWS, task.id
        variant = runner.result(conns[d["db"], True], d["gold"], 100, 10)
        assert not results_match(gold["rows"], variant["rows"], d["ordered"]), task.id
        wrong = runner.result(conns[d["db"], False], d["wrong"], 100, 10)
        assert not results_match(gold["rows"], wrong["rows"], d["ordered"]), task.id
        assert d["ordered"] == ("ORDER BY" in d["gold"]), task.id


def test_templates_have_unique_names_and_an_order_column_iff_ordered():
    assert len({t.name for t in TEMPLATES}) == len(TEMPLATES)
    for t in TEMPLATES:
        assert (t.order_col is not None) == bool(re.search(r"ORDER BY [^)]*$", t.gold)), t.name


# ─── execution-match semantics ────────────────────────────────────────────


@pytest.mark.parametrize(("gold", "agent", "ordered", "match"), [
    ([[1, "a"], [2, "b"]], [[2, "b"], [1, "a"]], False, True),     # row order free
    ([[1, "a"], [2, "b"]], [[2, "b"], [1, "a"]], True, False),     # ... unless ORDER BY
    ([[1, "a"], [2, "b"]], [[1, "a"], [2, "b"]], True, True),
    ([["x"], ["x"], ["y"]], [["x"], ["y"]], False, False),          # duplicates count
    ([["x"], ["x"], ["y"]], [["x"], ["y"], ["y"]], False, False),
    ([["x"], ["x"], ["y"]], [["y"], ["x"], ["x"]], False, True),
    ([[1, "a"]], [["a", 1]], False, True),                          # columns may be permuted
    ([[1, "a"], [2, "b"]], [["b", 1], ["a", 2]], False, False),     # ... but rows stay whole
    ([[3]], [[3.0]], False, True),                                  # numbers by value
    ([[2 / 3]], [[0.6666666666666666]], False, True),
    ([[2 / 3]], [[0.67]], False, False),
    ([[None]], [[None]], False, True),
    ([[None]], [[0]], False, False),
    ([["5"]], [[5]], False, False),                                 # text is not a number
    ([[1]], [[1, 1]], False, False),                                # extra column
    ([[1]], [], False, False),
    ([], [], False, True),
])
def test_results_match(gold, agent, ordered, match):
    assert results_match(gold, agent, ordered) is match


def test_last_sql_block_takes_the_last_one():
    assert last_sql_block("```sql\nSELECT 1\n```\n```SQL\nSELECT 2\n```") == "SELECT 2\n"
    assert last_sql_block("```sql\n```") == ""
    assert last_sql_block("```python\nSELECT 1\n```") is None


# ─── the runner on a host copy (fast checks of its locks) ─────────────────


@pytest.fixture(scope="module")
def shop_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sql") / "shop.db"
    databases.generator().build(sqlite3.connect(path), "shop").close()
    return str(path)


@pytest.mark.parametrize("sql", [
    "DELETE FROM orders", "UPDATE products SET price = 0", "DROP TABLE orders",
    "CREATE TEMP TABLE t(x)", "ATTACH DATABASE '/tmp/x.db' AS x", "PRAGMA query_only = OFF",
    "SELECT load_extension('x')", "INSERT INTO orders SELECT * FROM orders",
])
def test_runner_refuses_everything_but_reading(shop_file, sql):
    db = runner.open_readonly(shop_file)
    with pytest.raises(sqlite3.Error) as caught:
        runner.run(db, sql, 10, 5.0)
    assert runner.explain(caught.value).startswith("Error: not authorized")
    assert runner.run(db, "SELECT COUNT(*) FROM orders", 1, 5.0)[1][0][0] > 1000


def test_runner_stops_a_runaway_query_at_its_deadline(shop_file):
    db = runner.open_readonly(shop_file)
    start = time.monotonic()
    with pytest.raises(runner.QueryTimeout):
        runner.run(db, "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
                       "SELECT COUNT(*) FROM n", 10, 0.3)
    assert time.monotonic() - start < 2


def test_runner_table_shows_nulls_cuts_long_cells_and_counts_rows(shop_file):
    db = runner.open_readonly(shop_file)
    text = runner.table(*runner.run(db, "SELECT NULL AS a, printf('%.100c', 'x') AS b", 5, 5.0))
    assert text.splitlines()[2] == "NULL | " + "x" * 57 + "..."
    assert text.endswith("(1 row)")


# ─── on Docker ────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def sql_spec(docker_available) -> SandboxSpec:
    from toolgym.sandbox.images import build_image

    return SandboxSpec(image=build_image("sql"))


@pytest.fixture
async def sql_sandbox(sql_spec):
    sb = await DockerSandbox.acreate(sql_spec)
    yield sb
    await sb.aclose()


@pytest.fixture
async def env(sql_spec):
    e = SQLEnv(sandbox=sql_spec, tool_timeout_s=1.0)
    yield e
    await e.aclose()


async def _step(env: SQLEnv, action: str) -> tuple[str, dict]:
    obs, reward, terminated, truncated, info = await env.astep(action)
    assert (reward, terminated, truncated) == (0.0, False, False)
    return obs, info


@pytest.mark.docker
async def test_image_holds_the_data_the_tasks_were_drawn_from(sql_sandbox):
    r = await sql_sandbox.aexec(["cat", "/data/GENERATOR_SHA256"])
    assert r.stdout.strip() == databases.generator_sha256()
    tables = {"shop": "order_items", "university": "enrollments", "library": "loans",
              "airline": "bookings"}
    for name, table in tables.items():
        for variant in (False, True):
            query = f"SELECT COUNT(*), SUM(rowid), MAX(rowid) FROM {table}"
            want = databases.connect(name, variant=variant).execute(query).fetchone()
            path = databases.sandbox_path(name, variant=variant)
            r = await sql_sandbox.aexec(["sqlite3", "-readonly", path, query])
            assert tuple(int(x) for x in r.stdout.strip().split("|")) == want, r.output


@pytest.mark.docker
async def test_the_agent_cannot_write_the_databases(sql_sandbox):
    script = (
        "import sqlite3, sys\n"
        "for path in ('/data/shop.db', '/data/variant/shop.db'):\n"
        "    try:\n"
        "        sqlite3.connect(path).execute('DELETE FROM orders').connection.commit()\n"
        "        print('WROTE', path)\n"
        "    except sqlite3.Error as e:\n"
        "        print('refused', e)\n")
    r = await sql_sandbox.aexec(["python3", "-c", script])
    assert "WROTE" not in r.stdout and r.stdout.count("refused") == 2, r.output
    r = await sql_sandbox.aexec("id -u; touch /data/shop.db /data/x 2>&1; "
                                "rm -f /data/shop.db 2>&1; stat -c '%U %a' /data/shop.db")
    lines = r.stdout.splitlines()
    assert lines[0] == "1000" and lines[-1] == "root 444", r.output
    assert "Read-only file system" in r.stdout or "Permission denied" in r.stdout


@pytest.mark.docker
async def test_tools_read_only_errors_timeouts_and_truncation(env):
    await env.areset(options={"task_id": "sql-customers_in_city-0"})
    obs, info = await _step(env, call("sql", query="DELETE FROM orders"))
    assert obs.startswith("Error: not authorized") and info["tool_counts"] == {"tool_error": 1}
    obs, _ = await _step(env, call("sql", query="SELECT nope FROM orders"))
    assert obs == "Error: no such column: nope"
    obs, _ = await _step(env, call("sql", query="SELECT 1; SELECT 2"))
    assert "one statement" in obs
    obs, info = await _step(env, call(
        "sql", query="WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
                     "SELECT COUNT(*) FROM n"))
    assert "ran longer than 1 s" in obs and info["tool_counts"]["timeout"] == 1
    obs, _ = await _step(env, call("sql", query="SELECT id, status FROM orders ORDER BY id"))
    lines = obs.splitlines()
    assert lines[0].split() == ["id", "|", "status"] and lines[2].startswith("1 ")
    assert len(lines) == 2 + 50 + 1 and lines[-1].startswith("[output truncated: only the first 50")
    obs, _ = await _step(env, call("sql", query="SELECT COUNT(*) FROM orders"))
    assert obs.endswith("(1 row)") and "2310" in obs
    obs, _ = await _step(env, call("schema"))
    assert obs.count("CREATE TABLE") == 6 and "REFERENCES customers(id)" in obs
    obs, _ = await _step(env, call("describe", table="order_items"))
    assert "product_id: INTEGER PRIMARY KEY (2 of 2) NOT NULL REFERENCES products(id)" in obs
    assert obs.endswith("(3 rows)")
    obs, _ = await _step(env, call("describe", table="nope"))
    assert obs.startswith("Error: no table 'nope'") and "order_items" in obs
    # the tools stayed usable, and the episode still scores
    *_, info = await env.astep(answer("SELECT COUNT(*) FROM customers WHERE city = 'Seville'"))
    assert info["outcome"] == Outcome.SUCCESS


def _task(gold: str, ordered: bool, db: str = "shop") -> Task:
    return Task("t", "?", data={"db": db, "gold": gold, "ordered": ordered})


@pytest.mark.docker
@pytest.mark.parametrize(("gold", "ordered", "answer_sql", "reward"), [
    ("SELECT status, COUNT(*) FROM orders GROUP BY status", False,
     "SELECT status, COUNT(id) FROM orders GROUP BY 1 ORDER BY 2 DESC", 1.0),
    ("SELECT status, COUNT(*) FROM orders GROUP BY status", False,
     "SELECT COUNT(*) AS n, status FROM orders GROUP BY status", 1.0),
    ("SELECT id FROM categories ORDER BY id", True, "SELECT id FROM categories ORDER BY 1", 1.0),
    ("SELECT id FROM categories ORDER BY id", True,
     "SELECT id FROM categories ORDER BY id DESC", 0.0),
    ("SELECT city FROM customers", False, "SELECT DISTINCT city FROM customers", 0.0),
    ("SELECT AVG(price) FROM products", False,
     "SELECT SUM(price) / COUNT(*) FROM products", 1.0),
    ("SELECT COUNT(*) FROM orders", False, "SELECT 2310", 0.0),  # right on main, not on variant
    ("SELECT COUNT(*) FROM orders", False, "DELETE FROM orders", 0.0),
    ("SELECT COUNT(*) FROM orders", False, "SELECT COUNT(*) FROM orders; SELECT 1", 0.0),
    ("SELECT id FROM orders", False, "SELECT id FROM orders UNION ALL SELECT 1", 0.0),
    ("SELECT id, status FROM orders", False, "SELECT status, id FROM orders ORDER BY id DESC", 1.0),
])
async def test_verifier_execution_match(sql_sandbox, gold, ordered, answer_sql, reward):
    score = await ExecutionMatchVerifier().score(sql_sandbox, _task(gold, ordered),
                                                 answer(answer_sql))
    assert score.reward == reward, score.details


@pytest.mark.docker
async def test_verifier_times_out_a_runaway_answer_as_a_zero(sql_sandbox):
    runaway = ("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
               "SELECT COUNT(*) FROM n")
    score = await ExecutionMatchVerifier(timeout_s=0.5).score(
        sql_sandbox, _task("SELECT COUNT(*) FROM orders", False), answer(runaway))
    assert score.reward == 0.0 and "timed out" in score.details["error"]


@pytest.mark.docker
@pytest.mark.parametrize("columns", [64, 65])
async def test_verifier_scores_a_flood_of_control_characters_as_a_zero(sql_sandbox, columns):
    """Megabytes of control characters (six JSON bytes each) in the answer's result must score 0,
    not cut the runner's output into an unreadable line (an infrastructure error, uncounted)."""
    flood = ("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3000) "
             "SELECT " + ", ".join(f"printf('%.200c', char({1 + i % 31})) AS c{i}"
                                   for i in range(columns)) + " FROM n")
    score = await ExecutionMatchVerifier().score(
        sql_sandbox, _task("SELECT id FROM orders", False), answer(flood))
    assert score.reward == 0.0 and score.details.get("matches") != [True, True], score.details


@pytest.mark.docker
async def test_verifier_raises_on_a_broken_gold_or_a_stale_image(sql_sandbox, monkeypatch):
    with pytest.raises(SandboxError, match="gold query"):
        await ExecutionMatchVerifier().score(sql_sandbox, _task("SELECT nope FROM orders", False),
                                             answer("SELECT 1"))
    monkeypatch.setattr("toolgym.envs.sql.verifier.generator_sha256", lambda: "0" * 64)
    with pytest.raises(SandboxError, match="rebuild the image"):
        await ExecutionMatchVerifier().score(sql_sandbox, _task("SELECT 1", False),
                                             answer("SELECT 1"))


@pytest.mark.docker
async def test_oracle_scores_1_and_wrong_scores_0_on_every_template(sql_spec):
    """One task per template (every level and database), four episodes at a time."""
    tasks = {t.metadata["template"]: t for t in sql_tasks()}
    assert len(tasks) == len(TEMPLATES)
    results: dict[str, tuple[float, float]] = {}
    queue = list(tasks.values())
    async with SandboxPool(sql_spec, PoolConfig(size=4, max_size=4)) as pool:

        async def worker() -> None:
            e = SQLEnv(provider=pool)
            try:
                while queue:
                    task = queue.pop()
                    oracle = await run_actions(e, e.reference_actions(task),
                                               options={"task_id": task.id})
                    wrong = await run_actions(e, e.reference_actions(task, "wrong"),
                                              options={"task_id": task.id})
                    results[task.id] = (oracle[0], wrong[0])
            finally:
                await e.aclose()

        await asyncio.gather(*(worker() for _ in range(4)))
    assert {k: v for k, v in results.items() if v != (1.0, 0.0)} == {}


@pytest.mark.docker
async def test_a_long_legitimate_answer_still_scores_one(env):
    """The caps that keep floods out (issue 16) must not cut a real answer: the gold query
    with comments up to just under the 50,000-character limit scores 1; past it, 0."""
    from toolgym.envs.sql.tool import MAX_QUERY_CHARS

    task = env.tasks.get(env.tasks.ids()[0])
    gold = task.data["gold"]
    for size, want in ((MAX_QUERY_CHARS - 100, 1.0), (MAX_QUERY_CHARS + 100, 0.0)):
        padded = gold + "\n" + "-- a long explanation\n" * ((size - len(gold)) // 22)
        reward, outcome, _ = await run_actions(env, [answer(padded)],
                                               options={"task_id": task.id})
        assert (reward, outcome) == (want, Outcome.SUCCESS if want else Outcome.FAILURE), size
