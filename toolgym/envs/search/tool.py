"""The ``search`` and ``open`` tools: BM25 search over the dictionary, and paged reading.

Both run ``python3 -I -S /opt/search/searchd.py MODE`` in the sandbox with a
JSON request on stdin (no shell, so nothing in a query is interpreted) and
turn its JSON reply into the observation text here. ``searchd.py`` keeps the
BM25 index in a resident server started on the first search of an episode
(see its docstring for why and how it restarts). Every failure (unknown
document, page out of range, bad ``k``, time limit, a broken reply) comes back
as observation text, never as an exception.
"""

from __future__ import annotations

import json
import re
from typing import Any

from toolgym.sandbox.base import Sandbox
from toolgym.tools import FunctionTool, ToolContext, ToolResult, tool
from toolgym.tools import output as notes

SEARCHD = "/opt/search/searchd.py"
MAX_K = 20
OUTPUT_BYTES = 65_536


def format_results(query: str, reply: dict[str, Any]) -> str:
    """The observation of a search: one numbered line per hit, then its snippet.

    Example:
        >>> print(format_results("canine", {"results": [
        ...     {"id": "dog", "title": "dog", "score": 9.1, "snippet": "#1 (noun) a canine"}]}))
        1. dog (title: dog)
           #1 (noun) a canine
        [1 result for 'canine'; read one with open(doc_id)]
    """
    results = reply.get("results", [])
    if not results:
        return f"No documents match {query!r}. Try other or fewer words."
    lines = []
    for rank, hit in enumerate(results, start=1):
        lines.append(f"{rank}. {hit['id']} (title: {hit['title']})")
        lines.append(f"   {hit['snippet']}")
    plural = "" if len(results) == 1 else "s"
    lines.append(f"[{len(results)} result{plural} for {query!r}; read one with open(doc_id)]")
    return "\n".join(lines)


def format_page(reply: dict[str, Any]) -> str:
    """The observation of an open: a header line, the page, and how to read on.

    Example:
        >>> print(format_page({"id": "dog", "title": "dog", "page": 1, "pages": 2, "text": "dog"}))
        [dog] page 1 of 2
        dog
        [more: open("dog", page=2)]
    """
    page, pages = reply["page"], reply["pages"]
    lines = [f"[{reply['id']}] page {page} of {pages}", reply["text"]]
    if page < pages:
        lines.append(f"[more: open({reply['id']!r}, page={page + 1})]".replace("'", '"'))
    return "\n".join(lines)


def format_error(reply: dict[str, Any]) -> str:
    """``Error: ...`` with the close ids, if any, and what to do."""
    text = f"Error: {reply['error']}."
    if reply.get("suggestions"):
        text += " Close ids: " + ", ".join(reply["suggestions"]) + "."
    if "no document" in reply["error"]:
        text += " Use search(query) to find document ids."
    return text


async def _run(sandbox: Sandbox, mode: str, request: dict[str, Any], timeout_s: float,
               python: str) -> dict[str, Any] | ToolResult:
    """Run ``searchd.py mode``; return its reply, or the failure as a tool result."""
    state = "/tmp/.toolgym-search-" + re.sub(r"\W", "", sandbox.id)[:16]
    result = await sandbox.aexec([python, "-I", "-S", SEARCHD, mode], stdin=json.dumps(request),
                                 env={"TOOLGYM_SEARCH_STATE": state}, timeout=timeout_s,
                                 output_bytes=OUTPUT_BYTES)
    if result.timed_out:
        return ToolResult(notes.timeout_note(timeout_s, f"the {mode}"), timed_out=True)
    try:
        reply = json.loads(result.stdout.strip().splitlines()[-1])
        if not isinstance(reply, dict):
            raise ValueError(reply)
    except (ValueError, IndexError):
        detail = notes.join(result.stdout[-500:], result.stderr[-500:],
                            notes.exit_note(result.exit_code))
        return ToolResult(f"Error: the {mode} failed.\n{detail}", error=True)
    if "error" in reply:
        return ToolResult(format_error(reply), error=True)
    return reply


def search_tool(*, timeout_s: float = 30.0, python: str = "python3") -> FunctionTool:
    """Make ``search(query, k=5)``.

    Args:
        timeout_s: Limit of one call, the first one's server start included.
        python: The interpreter in the sandbox.

    Example:
        >>> search_tool().signature
        'search(query: str, k: int = 5)'
    """

    @tool
    async def search(context: ToolContext, query: str, k: int = 5) -> ToolResult:
        """Search the dictionary (one document per word or phrase) with BM25 keyword ranking.

        Returns the best documents: their ids, titles and the line that matches best.

        Args:
            query: Keywords, e.g. words of a definition.
            k: How many results to return, 1 to 20.
        """
        if not 1 <= k <= MAX_K:
            return ToolResult(f"Error: k must be between 1 and {MAX_K}, got {k}.", error=True)
        if not query.strip():
            return ToolResult("Error: the query is empty; give some keywords.", error=True)
        reply = await _run(context.sandbox, "search", {"query": query, "k": k}, timeout_s, python)
        return reply if isinstance(reply, ToolResult) else ToolResult(format_results(query, reply))

    search.timeout_s = timeout_s  # type: ignore[attr-defined]
    return search


def open_tool(*, timeout_s: float = 30.0, python: str = "python3") -> FunctionTool:
    """Make ``open(doc_id, page=1)``.

    Example:
        >>> open_tool().signature
        'open(doc_id: str, page: int = 1)'
    """

    @tool(name="open")
    async def open_doc(context: ToolContext, doc_id: str, page: int = 1) -> ToolResult:
        """Read a document of the dictionary by its id, one page (up to 1500 characters) at a time.

        Args:
            doc_id: The id that search returned, e.g. "domestic_dog".
            page: Which page, from 1; the reply says how many there are.
        """
        reply = await _run(context.sandbox, "open", {"doc_id": doc_id, "page": page}, timeout_s,
                           python)
        return reply if isinstance(reply, ToolResult) else ToolResult(format_page(reply))

    open_doc.timeout_s = timeout_s  # type: ignore[attr-defined]
    return open_doc
