"""The calculator environment: arithmetic questions answered with a sandboxed ``calc`` tool.

``toolgym/Calculator-v0`` (class :class:`~toolgym.envs.calc.env.CalculatorEnv`)
is the environment of the CPU main job: a tiny model is SFT-warm-started on
:func:`demonstrations` and trained with GRPO to use the tool.
"""

from toolgym.envs.calc.demos import (
    Demo,
    demonstration,
    demonstrations,
    near_miss,
    oracle_actions,
    simulate,
    wrong_actions,
)
from toolgym.envs.calc.evaluator import CalcError, calculate, evaluate, format_value
from toolgym.envs.calc.prompts import SYSTEM_PROMPT
from toolgym.envs.calc.tasks import DEFAULT_MIX, KINDS, calc_tasks
from toolgym.envs.calc.tool import calc_tool
from toolgym.envs.calc.verifier import ExactAnswerVerifier, last_number, parse_number

__all__ = [
    "DEFAULT_MIX",
    "KINDS",
    "SYSTEM_PROMPT",
    "CalcError",
    "Demo",
    "ExactAnswerVerifier",
    "calc_tasks",
    "calc_tool",
    "calculate",
    "demonstration",
    "demonstrations",
    "evaluate",
    "format_value",
    "last_number",
    "near_miss",
    "oracle_actions",
    "parse_number",
    "simulate",
    "wrong_actions",
]
