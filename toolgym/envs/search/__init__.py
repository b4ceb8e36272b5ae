"""The search environment: dictionary questions answered with ``search`` and ``open`` tools.

``toolgym/Search-v0`` (class :class:`~toolgym.envs.search.env.SearchEnv`): a
BM25-indexed WordNet corpus in the ``toolgym/search`` image, one- and two-hop
questions generated from WordNet's relations, exact-match reward on the host.
"""

from toolgym.envs.search.demos import hack_probes, oracle_actions, wrong_actions
from toolgym.envs.search.prompts import SYSTEM_PROMPT
from toolgym.envs.search.tasks import IMAGE, search_tasks
from toolgym.envs.search.tool import open_tool, search_tool
from toolgym.envs.search.verifier import (
    AnswerVerifier,
    exact_match,
    final_answer,
    normalize,
    token_f1,
)

__all__ = [
    "IMAGE",
    "SYSTEM_PROMPT",
    "AnswerVerifier",
    "exact_match",
    "final_answer",
    "hack_probes",
    "normalize",
    "open_tool",
    "oracle_actions",
    "search_tasks",
    "search_tool",
    "token_f1",
    "wrong_actions",
]
