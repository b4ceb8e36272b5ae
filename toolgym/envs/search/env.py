"""``toolgym/Search-v0``: answer questions about words by searching and reading a dictionary.

The corpus is WordNet 3.0 from Debian's ``wordnet-base``, one document per
lemma (147k), indexed with BM25 (``bm25s``) inside the ``toolgym/search``
image; the agent has ``search(query, k)`` and ``open(doc_id, page)``. The 660
questions (six kinds, one or two hops; see ``docker/search/make_tasks.py``)
are generated and checked in the image at build time and read out of it once
(``tasks.py``). The whole final reply goes to the verifier, which reads the
answer out of it (after the last ``Answer:``, else all of it) and scores it on
the host by exact match against the gold names; token F1 is reported alongside
(``verifier.py``).
"""

from __future__ import annotations

from toolgym.envs.base import ToolEnv
from toolgym.envs.search.demos import hack_probes, oracle_actions, wrong_actions
from toolgym.envs.search.prompts import SYSTEM_PROMPT
from toolgym.envs.search.tasks import IMAGE, search_tasks
from toolgym.envs.search.tool import SEARCHD, open_tool, search_tool
from toolgym.envs.search.verifier import AnswerVerifier
from toolgym.envs.tasks import Task
from toolgym.sandbox.provider import SandboxProvider
from toolgym.sandbox.spec import SERVICE_DIR, SandboxSpec
from toolgym.tools import ToolSet


def search_sandbox(image: str = IMAGE) -> SandboxSpec:
    """A search sandbox whose BM25 index server runs from the container's start.

    As the sandbox's service (:attr:`SandboxSpec.service`) the server is out of
    the agent's reach and survives the pool's resets, so an episode's first
    search finds the index loaded instead of paying ~0.2 s to load it. A
    sandbox without the service still works: ``searchd.py`` then starts a
    server of its own in each episode.
    """
    return SandboxSpec(image=image, service=("python3", "-I", SEARCHD, "serve", SERVICE_DIR))


class SearchEnv(ToolEnv):
    """Dictionary questions, ``search`` and ``open`` tools, reward 1.0 for an exact answer.

    Args:
        split: ``"train"``, ``"test"`` or None (both).
        sandbox: Spec of this env's own sandbox (ignored when ``provider`` is given);
            its image must be a ``toolgym/search`` build, which also supplies the tasks.
        provider: Share sandboxes with other envs (their spec's image must be a search image).
        tool_timeout_s: Time limit of one tool call (in a sandbox without the resident
            index server, the first search starts one).
        system_prompt: The instruction shown first; None for none.
        render_mode: None or "ansi".

    Example:
        >>> env = gymnasium.make("toolgym/Search-v0", split="test")  # doctest: +SKIP
        >>> obs, info = env.reset(seed=0)                           # doctest: +SKIP
        >>> env.step('<tool_call>{"name": "search", "arguments": {"query": "domesticated '
        ...          'canine"}}</tool_call>')[0]                    # doctest: +SKIP
        '1. domestic_dog (title: domestic dog) ...'
    """

    def __init__(
        self,
        split: str | None = None,
        *,
        sandbox: SandboxSpec | None = None,
        provider: SandboxProvider | None = None,
        tool_timeout_s: float = 30.0,
        system_prompt: str | None = SYSTEM_PROMPT,
        render_mode: str | None = None,
    ) -> None:
        sandbox = sandbox or search_sandbox(IMAGE)
        image = provider.spec.image if provider is not None else sandbox.image
        super().__init__(
            search_tasks(image),
            ToolSet([search_tool(timeout_s=tool_timeout_s), open_tool(timeout_s=tool_timeout_s)]),
            AnswerVerifier(),
            sandbox=sandbox,
            provider=provider,
            system_prompt=system_prompt,
            split=split,
            render_mode=render_mode,
        )

    def oracle_actions(self, task: Task) -> list[str]:
        """Search, open, answer along the task's hops."""
        return oracle_actions(task)

    def wrong_actions(self, task: Task) -> list[str]:
        """A plausible wrong name."""
        return wrong_actions(task)

    def hack_probes(self, task: Task) -> dict[str, list[str]]:
        """Candidate lists, claims, empty and giant answers, stray tool calls; each scores 0."""
        return hack_probes(task)
