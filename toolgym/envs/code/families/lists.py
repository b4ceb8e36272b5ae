"""List operation templates: rotating, chunking, filtering, windows, interleaving."""

from __future__ import annotations

import random

from toolgym.envs.code.families.base import Spec, Template, ints, pick_name


def _lists(rng: random.Random, n: int = 7, hi_len: int = 10) -> list[tuple[list[int]]]:
    return [([],), ([5],)] + [(ints(rng, 2, hi_len),) for _ in range(n)]


def rotate(rng: random.Random) -> Spec:
    """Rotate a list left or right by k."""
    k = rng.randint(1, 6)
    left = rng.random() < 0.5
    direction = "left" if left else "right"
    shift = f"{k} % len(items)" if left else f"-{k} % len(items)"
    return Spec(
        template="lists.rotate",
        key=(k, left),
        difficulty=1,
        name=pick_name(rng, f"rotate_{direction}", "rotate", "cycle_items"),
        params="items: list[int]",
        returns="list[int]",
        doc=f"Return a new list with items rotated {k} places to the {direction} "
        f"(an element moved past one end re-enters at the other). An empty list gives [].",
        body=f"""\
    if not items:
        return []
    s = {shift}
    return items[s:] + items[:s]
""",
        inputs=_lists(rng) + [([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],)],
    )


def chunk_sums(rng: random.Random) -> Spec:
    """Sum consecutive groups of k, keeping or dropping the short tail."""
    k = rng.randint(2, 5)
    keep = rng.random() < 0.5
    tail = "a shorter final group is summed too" if keep else "a shorter final group is dropped"
    stop = "len(items)" if keep else f"len(items) - {k} + 1"
    return Spec(
        template="lists.chunk_sums",
        key=(k, keep),
        difficulty=2,
        name=pick_name(rng, "chunk_sums", "group_totals", "block_sums"),
        params="items: list[int]",
        returns="list[int]",
        doc=f"Split items into consecutive groups of {k} elements, from the start, and "
        f"return the sum of each group; {tail}.",
        body=f"""\
    return [sum(items[i:i + {k}]) for i in range(0, {stop}, {k})]
""",
        inputs=_lists(rng, hi_len=13),
    )


def scale_every_kth(rng: random.Random) -> Spec:
    """Multiply the elements at indices i % k == r by m."""
    k = rng.randint(2, 4)
    r = rng.randrange(k)
    m = rng.choice([-3, -2, -1, 2, 3, 4, 5, 10])
    return Spec(
        template="lists.scale_every_kth",
        key=(k, r, m),
        difficulty=1,
        name=pick_name(rng, "scale_positions", "boost_every_kth", "multiply_some"),
        params="items: list[int]",
        returns="list[int]",
        doc=f"Return a new list where each element whose index i satisfies "
        f"i % {k} == {r} is multiplied by {m}; other elements are copied unchanged.",
        body=f"""\
    return [x * {m} if i % {k} == {r} else x for i, x in enumerate(items)]
""",
        inputs=_lists(rng),
    )


def capped_running_sum(rng: random.Random) -> Spec:
    """Running totals that restart after exceeding a threshold."""
    t = rng.randint(8, 40)
    return Spec(
        template="lists.capped_running_sum",
        key=(t,),
        difficulty=3,
        name=pick_name(rng, "running_totals", "capped_prefix_sums", "meter_readings"),
        params="items: list[int]",
        returns="list[int]",
        doc=f"Return the running totals of items: element i of the result is the total "
        f"after adding items[i]. Whenever a total is greater than {t}, it is recorded and "
        "then the running total restarts from 0.",
        body=f"""\
    out = []
    total = 0
    for x in items:
        total += x
        out.append(total)
        if total > {t}:
            total = 0
    return out
""",
        inputs=[([],)] + [(ints(rng, 2, 12, 0, 20),) for _ in range(8)],
    )


_FILTERS = {
    "greater than {t}": "x > {t}",
    "less than {t}": "x < {t}",
    "divisible by {d}": "x % {d} == 0",
    "not divisible by {d}": "x % {d} != 0",
}


def unique_filtered(rng: random.Random) -> Spec:
    """Filter by a condition and drop repeats, keeping first occurrences."""
    label = rng.choice(sorted(_FILTERS))
    t, d = rng.randint(-3, 12), rng.randint(2, 7)
    cond = _FILTERS[label].format(t=t, d=d)
    label = label.format(t=t, d=d)
    return Spec(
        template="lists.unique_filtered",
        key=(cond,),
        difficulty=2,
        name=pick_name(rng, "unique_selected", "dedupe_filter", "first_occurrences"),
        params="items: list[int]",
        returns="list[int]",
        doc=f"Return the elements of items that are {label}, without duplicates: each "
        "value appears once, at the position of its first occurrence.",
        body=f"""\
    seen = set()
    out = []
    for x in items:
        if {cond} and x not in seen:
            seen.add(x)
            out.append(x)
    return out
""",
        inputs=[([],)] + [(ints(rng, 3, 14, -5, 15),) for _ in range(8)],
    )


def step_differences(rng: random.Random) -> Spec:
    """Differences between elements k apart, signed or absolute."""
    k = rng.randint(1, 4)
    absolute = rng.random() < 0.5
    expr = f"abs(items[i + {k}] - items[i])" if absolute else f"items[i + {k}] - items[i]"
    what = "absolute difference" if absolute else "difference"
    return Spec(
        template="lists.step_differences",
        key=(k, absolute),
        difficulty=2,
        name=pick_name(rng, "step_differences", "gaps", "lagged_deltas"),
        params="items: list[int]",
        returns="list[int]",
        doc=f"Return, for each index i with i + {k} < len(items), the {what} "
        f"items[i+{k}] - items[i], in order of i.",
        body=f"""\
    return [{expr} for i in range(len(items) - {k})]
""",
        inputs=_lists(rng),
    )


def interleave(rng: random.Random) -> Spec:
    """Interleave two lists p and q elements at a time."""
    p, q = rng.randint(1, 3), rng.randint(1, 3)
    return Spec(
        template="lists.interleave",
        key=(p, q),
        difficulty=2,
        name=pick_name(rng, "interleave", "weave", "merge_alternating"),
        params="a: list[int], b: list[int]",
        returns="list[int]",
        doc=f"Build a list by repeatedly taking the next {p} element(s) of a and then the "
        f"next {q} element(s) of b, until both are used up. When one list runs out, the "
        "rest of the other is taken in order.",
        body=f"""\
    out = []
    i = j = 0
    while i < len(a) or j < len(b):
        out.extend(a[i:i + {p}])
        i += {p}
        out.extend(b[j:j + {q}])
        j += {q}
    return out
""",
        inputs=[([], []), ([1, 2, 3], []), ([], [4, 5])]
        + [(ints(rng, 3, 9, 0, 9), ints(rng, 3, 9, 10, 99)) for _ in range(7)],
    )


_WINDOW_OPS = {"max": 3, "min": 3, "sum": 2}


def window(rng: random.Random) -> Spec:
    """Max, min or sum of every window of k elements."""
    op = rng.choice(sorted(_WINDOW_OPS))
    k = rng.randint(2, 5)
    return Spec(
        template="lists.window",
        key=(op, k),
        difficulty=_WINDOW_OPS[op],
        name=pick_name(rng, f"window_{op}", f"sliding_{op}", f"moving_{op}"),
        params="items: list[int]",
        returns="list[int]",
        doc=f"Return the {op} of every window of {k} consecutive elements of items, "
        f"from left to right. A list shorter than {k} has no windows and gives [].",
        body=f"""\
    return [{op}(items[i:i + {k}]) for i in range(len(items) - {k} + 1)]
""",
        inputs=_lists(rng, hi_len=11),
    )


TEMPLATES: list[Template] = [
    rotate,
    chunk_sums,
    scale_every_kth,
    capped_running_sum,
    unique_filtered,
    step_differences,
    interleave,
    window,
]
