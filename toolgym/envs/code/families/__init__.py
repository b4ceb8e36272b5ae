"""Templates for generated programming tasks, and the seeded draw over all of them.

Six families (strings, lists, arithmetic, parsing, counting, algorithms), each a
module of templates ``(rng) -> Spec``. :func:`draw` visits the templates in turn
and keeps a drawn task only if it is new in a way that matters: its constants
differ from every earlier task of its template, and neither its reference nor
any sibling's reference passes the other's tests. That last rule is what stops a
policy from passing a test-split task by replaying a train-split solution.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from toolgym.envs.code.families import algorithms, arithmetic, counting, lists, parsing, strings
from toolgym.envs.code.families.base import Case, Degenerate, Rendered, Spec, Template, render

__all__ = ["FAMILIES", "TEMPLATES", "Rendered", "Spec", "draw"]

FAMILIES: dict[str, list[Template]] = {
    "strings": strings.TEMPLATES,
    "lists": lists.TEMPLATES,
    "arithmetic": arithmetic.TEMPLATES,
    "parsing": parsing.TEMPLATES,
    "counting": counting.TEMPLATES,
    "algorithms": algorithms.TEMPLATES,
}
TEMPLATES: list[Template] = [t for family in FAMILIES.values() for t in family]

# Redraws of one template before it counts as used up (its constant space is small).
MAX_ATTEMPTS = 40


def draw(seed: int, n: int) -> list[tuple[Spec, Rendered]]:
    """Draw ``n`` distinct tasks, the same ones for the same seed.

    Args:
        seed: Any integer; each (seed, slot) pair seeds its own generator.
        n: How many tasks to draw.

    Returns:
        ``(spec, rendered)`` pairs in draw order.

    Raises:
        ValueError: Every template is used up before ``n`` tasks were found.
    """
    chosen: list[tuple[Spec, Rendered]] = []
    seen_keys: set[tuple[str, tuple[Any, ...]]] = set()
    seen_docs: set[str] = set()
    siblings: dict[str, list[Rendered]] = {}
    exhausted: set[int] = set()
    slot = 0
    while len(chosen) < n:
        if len(exhausted) == len(TEMPLATES):
            raise ValueError(f"Only {len(chosen)} distinct tasks exist; asked for {n}.")
        index = slot % len(TEMPLATES)
        slot += 1
        if index in exhausted:
            continue
        rng = random.Random(f"toolgym.code.generated:{seed}:{slot}")
        found = _draw_one(TEMPLATES[index], rng, seen_keys, seen_docs, siblings)
        if found is None:
            exhausted.add(index)
            continue
        spec, rendered = found
        seen_keys.add((spec.template, spec.key))
        seen_docs.add(spec.doc)
        siblings.setdefault(spec.template, []).append(rendered)
        chosen.append(found)
    return chosen


def _draw_one(
    template: Template,
    rng: random.Random,
    seen_keys: set[tuple[str, tuple[Any, ...]]],
    seen_docs: set[str],
    siblings: dict[str, list[Rendered]],
) -> tuple[Spec, Rendered] | None:
    for _ in range(MAX_ATTEMPTS):
        spec = template(rng)
        if (spec.template, spec.key) in seen_keys or spec.doc in seen_docs:
            continue
        try:
            rendered = render(spec)
        except Degenerate:
            continue
        if any(_interchangeable(rendered, other) for other in siblings.get(spec.template, [])):
            continue
        return spec, rendered
    return None


def _interchangeable(a: Rendered, b: Rendered) -> bool:
    """Whether either task's reference would pass the other's tests."""
    return _passes(a, b.cases) or _passes(b, a.cases)


def _passes(solution: Rendered, cases: list[Case]) -> bool:
    for case in cases:
        try:
            if solution.function(*copy.deepcopy(case.values)) != case.expected:
                return False
        except Exception:  # a sibling may reject another's inputs; that is a difference
            return False
    return True
