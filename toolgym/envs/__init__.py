"""Tool environments: the readable list of built-in registrations.

Each built-in is one ``register`` line with a ``"module:Class"`` entry point,
so an env's heavy dependencies load only when it is made. Third-party envs
come through the ``toolgym.envs`` entry-point group (see ``registration.py``).
"""

from gymnasium import register

from toolgym.envs.base import ToolEnv, Verifier
from toolgym.envs.factory import EnvDescription, EnvFactory
from toolgym.envs.outcome import Outcome, Score, episode_outcome
from toolgym.envs.registration import env_ids, load_plugins, make, make_async, spec
from toolgym.envs.tasks import Task, TaskSource

register(id="toolgym/HumanEval-v0", entry_point="toolgym.envs.code.env:CodeEnv",
         max_episode_steps=8, kwargs={"source": "humaneval"})
register(id="toolgym/Code-v0", entry_point="toolgym.envs.code.env:CodeEnv",
         max_episode_steps=8, kwargs={"source": "generated"})
register(id="toolgym/Calculator-v0", entry_point="toolgym.envs.calc.env:CalculatorEnv",
         max_episode_steps=4)
register(id="toolgym/CodeRetry-v0", entry_point="toolgym.envs.code.env:CodeRetryEnv",
         max_episode_steps=12, kwargs={"source": "generated", "max_attempts": 3})
register(id="toolgym/SQL-v0", entry_point="toolgym.envs.sql.env:SQLEnv", max_episode_steps=10)
register(id="toolgym/Search-v0", entry_point="toolgym.envs.search.env:SearchEnv",
         max_episode_steps=20)
register(id="toolgym/Web-v0", entry_point="toolgym.envs.web.env:WebEnv", max_episode_steps=24)
register(id="toolgym/KeyChain-v0", entry_point="toolgym.envs.keychain.env:KeyChainEnv",
         max_episode_steps=5, kwargs={"split": "train"})

__all__ = [
    "EnvDescription",
    "EnvFactory",
    "Outcome",
    "Score",
    "Task",
    "TaskSource",
    "ToolEnv",
    "Verifier",
    "env_ids",
    "episode_outcome",
    "load_plugins",
    "make",
    "make_async",
    "spec",
]
