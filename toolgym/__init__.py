"""toolgym: train and evaluate tool-using LLM agents with reinforcement learning.

Importing toolgym registers the built-in environments with Gymnasium
(``toolgym/<Name>-v0``); ``gymnasium.make`` then makes them.
"""

from toolgym.envs import Outcome, Score, Task, ToolEnv, env_ids, make, make_async
from toolgym.errors import ToolgymError
from toolgym.sandbox import ExecResult, Limits
from toolgym.tools import Tool, ToolSet, tool

__all__ = [
    "ExecResult",
    "Limits",
    "Outcome",
    "Score",
    "Task",
    "Tool",
    "ToolEnv",
    "ToolSet",
    "ToolgymError",
    "env_ids",
    "make",
    "make_async",
    "tool",
]
__version__ = "0.1.0"
