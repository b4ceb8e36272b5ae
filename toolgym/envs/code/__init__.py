"""The code environment: write a Python function, pass its hidden unit tests.

Task sources live in :mod:`toolgym.envs.code.tasks` (HumanEval, and generated
problems in :mod:`toolgym.envs.code.families`).
"""

from toolgym.envs.code.tasks import (
    CODE_TASK_SOURCES,
    build_check_script,
    code_task_source,
    generated_tasks,
    humaneval_tasks,
    wrong_solution,
)

__all__ = [
    "CODE_TASK_SOURCES",
    "build_check_script",
    "code_task_source",
    "generated_tasks",
    "humaneval_tasks",
    "wrong_solution",
]
