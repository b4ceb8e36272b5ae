"""The SQL environment: questions about SQLite databases, answered with one SQL query.

``toolgym/SQL-v0`` (class :class:`~toolgym.envs.sql.env.SQLEnv`): four
generated databases (``docker/sql/``), templated questions with gold SQL
(:func:`sql_tasks`), read-only ``sql`` / ``schema`` / ``describe`` tools
(:func:`sql_tools`) and execution-match scoring
(:class:`ExecutionMatchVerifier`).
"""

from toolgym.envs.sql.prompts import SYSTEM_PROMPT
from toolgym.envs.sql.tasks import sql_tasks
from toolgym.envs.sql.templates import TEMPLATES, Template
from toolgym.envs.sql.tool import sql_tools
from toolgym.envs.sql.verifier import ExecutionMatchVerifier, last_sql_block, results_match

__all__ = [
    "SYSTEM_PROMPT",
    "TEMPLATES",
    "ExecutionMatchVerifier",
    "Template",
    "last_sql_block",
    "results_match",
    "sql_tasks",
    "sql_tools",
]
