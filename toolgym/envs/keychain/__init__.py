"""The KeyChain environment: follow key lookups to a digit (a benchmark for turn-level credit).

``toolgym/KeyChain-v0`` (class :class:`~toolgym.envs.keychain.env.KeyChainEnv`);
``tasks.py`` makes the hidden tables, ``tool.py`` the ``get`` tool (bare or
Hermes calls), ``verifier.py`` the reward, ``demos.py`` the oracle and imperfect
SFT demonstrations.
"""

from toolgym.envs.keychain.demos import (
    Demo,
    demonstration,
    oracle_actions,
    simulate,
    wrong_actions,
)
from toolgym.envs.keychain.tasks import KEYS, answer_of, chain_actions, keychain_tasks, lookup

__all__ = [
    "KEYS",
    "Demo",
    "answer_of",
    "chain_actions",
    "demonstration",
    "keychain_tasks",
    "lookup",
    "oracle_actions",
    "simulate",
    "wrong_actions",
]
