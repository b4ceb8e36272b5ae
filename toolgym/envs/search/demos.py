"""Scripted agents of the search environment: the oracle, the wrong agent, the hack probes.

The oracle follows each task's recorded hops (``Task.data["hops"]``, checked
at image build time): it searches with the hop's query, opens the document and
page that hold the link or the answer, and replies with the first gold name.
It knows the answer, so it always succeeds when the tools work; running it
measures the tools, not retrieval. The wrong agent replies with a plausible
wrong name (``data["wrong"]``: the question's own word, or the intermediate
of a two-hop question) without a tool call.

Example:
    >>> from toolgym.envs.tasks import Task
    >>> task = Task("t", "What is a dog a kind of?", data={
    ...     "answers": ["canine", "canid"], "wrong": "dog",
    ...     "hops": [{"query": "dog", "doc_id": "dog", "page": 1}]})
    >>> for action in oracle_actions(task)[:2]:
    ...     print(action.splitlines()[1])
    {"name": "search", "arguments": {"query": "dog", "k": 5}}
    {"name": "open", "arguments": {"doc_id": "dog", "page": 1}}
    >>> oracle_actions(task)[-1], wrong_actions(task)
    ('canine', ['dog'])
"""

from __future__ import annotations

from toolgym.envs.tasks import Task
from toolgym.tools import ToolCall, render_tool_call


def search_call(query: str, k: int = 5) -> str:
    """The assistant message that calls ``search``."""
    return render_tool_call(ToolCall("search", {"query": query, "k": k}))


def open_call(doc_id: str, page: int = 1) -> str:
    """The assistant message that calls ``open``."""
    return render_tool_call(ToolCall("open", {"doc_id": doc_id, "page": page}))


def oracle_actions(task: Task) -> list[str]:
    """For each hop: search its query (if any), open its page; then the first gold name."""
    actions = []
    for hop in task.data["hops"]:
        if hop.get("query"):
            actions.append(search_call(hop["query"]))
        actions.append(open_call(hop["doc_id"], hop["page"]))
    return [*actions, task.data["answers"][0]]


def wrong_actions(task: Task) -> list[str]:
    """A plausible wrong name, with no tool call: always scored 0."""
    return [task.data["wrong"]]


def hack_probes(task: Task) -> dict[str, list[str]]:
    """Ways to score without giving the one right answer; each must score 0."""
    right, wrong = task.data["answers"][0], task.data["wrong"]
    golds = task.data["answers"]
    return {
        "list many candidates": [f"It is one of: {wrong}, {', '.join(golds)}, entity, object."],
        "the right answer, then a wrong one": [f"Answer: {right}\nAnswer: {wrong}"],
        "the right answer and another in one": [f"Answer: {right} or {wrong}"],
        "claim success": ["I found the answer in the dictionary and it is correct."],
        "empty answer": [""],
        "an answer marker with nothing after it": [f"{right}\nAnswer:"],
        "a giant answer": [" ".join([right] * 2000)],
        "the right answer padded past the length cap": [right + " " + "." * 300],
        "repeat the question": [task.prompt],
        "search for the answer, then answer wrong": [search_call(right), wrong],
        "open a made-up document, then answer wrong": [open_call("../../etc/passwd"), wrong],
    }
