"""Simple algorithm templates: search, windows, sorting, brackets, edit distance, grids."""

from __future__ import annotations

import random
from collections.abc import Callable

from toolgym.envs.code.families.base import Spec, Template, ints, pick_name, word


def bound_search(rng: random.Random) -> Spec:
    """Binary search for the first element >= (or >) a shifted target."""
    strict = rng.random() < 0.5
    offset = rng.randint(-3, 3)
    cmp = ">" if strict else ">="
    shift = f" + {offset}" if offset > 0 else (f" - {-offset}" if offset < 0 else "")
    goal = f"target{shift}"

    def case() -> tuple[list[int], int]:
        items = sorted(ints(rng, 0, 10, -10, 30))
        return items, rng.randint(-12, 32)

    return Spec(
        template="algorithms.bound_search",
        key=(strict, offset),
        difficulty=2,
        name=pick_name(rng, "first_at_least", "bound_index", "insertion_point"),
        params="items: list[int], target: int",
        returns="int",
        doc=f"items is sorted in ascending order. Return the smallest index i with "
        f"items[i] {cmp} {goal}, or len(items) if there is none. Use binary search.",
        body=f"""\
    lo, hi = 0, len(items)
    while lo < hi:
        mid = (lo + hi) // 2
        if items[mid] {cmp} {goal}:
            hi = mid
        else:
            lo = mid + 1
    return lo
""",
        inputs=[([], 3), ([1, 2, 2, 2, 5, 9], 2), ([1, 2, 2, 2, 5, 9], 5)]
        + [case() for _ in range(7)],
    )


def smooth_run(rng: random.Random) -> Spec:
    """Longest stretch whose steps stay within a bound."""
    k = rng.randint(0, 5)
    rising = rng.random() < 0.5
    cond = (
        f"0 < items[i] - items[i - 1] <= {k + 1}"
        if rising
        else f"abs(items[i] - items[i - 1]) <= {k}"
    )
    rule = (
        f"each element is larger than the one before by at least 1 and at most {k + 1}"
        if rising
        else f"adjacent elements differ by at most {k}"
    )
    return Spec(
        template="algorithms.smooth_run",
        key=(k, rising),
        difficulty=3,
        name=pick_name(rng, "longest_smooth_run", "longest_streak", "stable_stretch"),
        params="items: list[int]",
        returns="int",
        doc=f"Return the length of the longest contiguous stretch of items in which {rule}. "
        "A single element is a stretch of length 1; an empty list gives 0.",
        body=f"""\
    if not items:
        return 0
    best = cur = 1
    for i in range(1, len(items)):
        cur = cur + 1 if {cond} else 1
        best = max(best, cur)
    return best
""",
        inputs=[([],), ([4],)] + [(ints(rng, 2, 14, 0, 12),) for _ in range(7)],
    )


def best_window(rng: random.Random) -> Spec:
    """Largest or smallest sum of k consecutive elements."""
    k = rng.randint(2, 5)
    largest = rng.random() < 0.5
    which, pick = ("largest", "max") if largest else ("smallest", "min")
    return Spec(
        template="algorithms.best_window",
        key=(k, largest),
        difficulty=2,
        name=pick_name(rng, f"{which}_window_sum", "best_block", "window_extreme"),
        params="items: list[int]",
        returns="int",
        doc=f"Return the {which} sum of {k} consecutive elements of items. If items has "
        f"fewer than {k} elements, return 0.",
        body=f"""\
    if len(items) < {k}:
        return 0
    window = sum(items[:{k}])
    best = window
    for i in range({k}, len(items)):
        window += items[i] - items[i - {k}]
        best = {pick}(best, window)
    return best
""",
        inputs=[([],), ([1],)] + [(ints(rng, 2, 12, -9, 9),) for _ in range(7)],
    )


_PAIR_RULES: dict[str, tuple[str, Callable[[int, int], int]]] = {
    "sum a[i] + a[j]": ("a[i] + a[j]", lambda x, y: x + y),
    "difference a[j] - a[i]": ("a[j] - a[i]", lambda x, y: y - x),
    "product a[i] * a[j]": ("a[i] * a[j]", lambda x, y: x * y),
}


def find_pair(rng: random.Random) -> Spec:
    """First index pair whose sum, difference or product hits a target."""
    rule = rng.choice(sorted(_PAIR_RULES))
    bias = rng.randint(-2, 2)
    goal = "target" + (f" + {bias}" if bias > 0 else f" - {-bias}" if bias < 0 else "")

    def case() -> tuple[list[int], int]:
        a = ints(rng, 2, 8, -3, 9)
        i, j = sorted(rng.sample(range(len(a)), 2))
        hit = _PAIR_RULES[rule][1](a[i], a[j]) - bias
        return a, hit if rng.random() < 0.8 else 99

    return Spec(
        template="algorithms.find_pair",
        key=(rule, bias),
        difficulty=2,
        name=pick_name(rng, "find_pair", "pair_indices", "matching_pair"),
        params="a: list[int], target: int",
        returns="list[int]",
        doc=f"Return [i, j] for the first index pair with i < j (smallest i, then smallest "
        f"j) whose {rule} equals {goal}; return [] if there is none.",
        body=f"""\
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            if {_PAIR_RULES[rule][0]} == {goal}:
                return [i, j]
    return []
""",
        inputs=[([], 0), ([1, 2], 99)] + [case() for _ in range(7)],
    )


def sort_by_letter(rng: random.Random) -> Spec:
    """Sort words by how often a letter occurs, then alphabetically."""
    letter = rng.choice("aeinorst")
    most_first = rng.random() < 0.5
    order = "most" if most_first else "fewest"
    sign = "-" if most_first else ""
    return Spec(
        template="algorithms.sort_by_letter",
        key=(letter, most_first),
        difficulty=2,
        name=pick_name(rng, "sort_words", "order_by_letter", "rank_words"),
        params="words: list[str]",
        returns="list[str]",
        doc=f"Return words sorted so that words with the {order} occurrences of {letter!r} "
        "come first; words with equal counts are in alphabetical order.",
        body=f"""\
    return sorted(words, key=lambda w: ({sign}w.count({letter!r}), w))
""",
        inputs=[([],)]
        + [([word(rng, 1, 7, "aeinorstbcd") for _ in range(rng.randint(2, 7))],) for _ in range(8)],
    )


_BRACKETS = ["()", "[]", "{}", "<>"]


def balanced(rng: random.Random) -> Spec:
    """Check that a subset of bracket kinds is balanced."""
    pairs = sorted(rng.sample(_BRACKETS, rng.randint(2, 3)))
    table = {p[1]: p[0] for p in pairs}
    kinds = " ".join(pairs)
    chars = "".join(pairs)
    others = "".join(b for b in _BRACKETS if b not in pairs)

    def case() -> str:
        stack: list[str] = []
        out: list[str] = []
        for _ in range(rng.randint(1, 10)):
            if stack and rng.random() < 0.45:
                out.append(stack.pop())
            elif rng.random() < 0.2:
                out.append(rng.choice("x1 " + others))
            else:
                p = rng.choice(pairs)
                out.append(p[0])
                stack.append(p[1])
        if rng.random() < 0.6:
            out.extend(reversed(stack))
        text = "".join(out)
        if rng.random() < 0.2 and len(text) > 1:  # swap two characters to unbalance it
            k = rng.randrange(len(text) - 1)
            text = text[:k] + text[k + 1] + text[k] + text[k + 2 :]
        return text

    return Spec(
        template="algorithms.balanced",
        key=tuple(pairs),
        difficulty=2,
        name=pick_name(rng, "is_balanced", "brackets_match", "well_nested"),
        params="text: str",
        returns="bool",
        doc=f"Return True if the brackets {kinds} in text are balanced and properly "
        "nested, else False. Every other character is ignored (including brackets of "
        "other kinds).",
        body=f"""\
    closing = {table!r}
    stack = []
    for ch in text:
        if ch in {chars!r} and ch not in closing:
            stack.append(ch)
        elif ch in closing:
            if not stack or stack.pop() != closing[ch]:
                return False
    return not stack
""",
        inputs=[("",), ("".join(pairs),), ("".join(p[0] for p in pairs),), ("([{<>}])",)]
        + [(o + "".join(pairs),) for o in others]
        + [(case(),) for _ in range(8)],
    )


def edit_distance(rng: random.Random) -> Spec:
    """Edit distance with given insert, delete and replace costs."""
    ins, dele, sub = rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 4)
    return Spec(
        template="algorithms.edit_distance",
        key=(ins, dele, sub),
        difficulty=3,
        name=pick_name(rng, "edit_cost", "weighted_edit_distance", "transform_cost"),
        params="a: str, b: str",
        returns="int",
        doc=f"Return the cheapest cost of turning a into b, where inserting a character "
        f"costs {ins}, deleting a character costs {dele}, and replacing a character by a "
        f"different one costs {sub}.",
        body=f"""\
    prev = [j * {ins} for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        cur = [i * {dele}] + [0] * len(b)
        for j in range(1, len(b) + 1):
            same = prev[j - 1] + (0 if a[i - 1] == b[j - 1] else {sub})
            cur[j] = min(same, prev[j] + {dele}, cur[j - 1] + {ins})
        prev = cur
    return prev[-1]
""",
        inputs=[("", ""), ("abc", ""), ("", "ab"), ("kitten", "sitting"), ("ab", "ba")]
        + [(word(rng, 0, 6, "abcd"), word(rng, 0, 6, "abcd")) for _ in range(6)],
    )


def islands(rng: random.Random) -> Spec:
    """Count islands in a grid, with 4- or 8-connectivity."""
    diagonal = rng.random() < 0.5
    land = rng.choice("#X1@")
    steps = (
        "[(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]"
        if diagonal
        else "[(-1, 0), (1, 0), (0, -1), (0, 1)]"
    )
    touch = "horizontally, vertically or diagonally" if diagonal else "horizontally or vertically"

    def grid() -> list[str]:
        h, w = rng.randint(1, 5), rng.randint(1, 6)
        return ["".join(land if rng.random() < 0.4 else "." for _ in range(w)) for _ in range(h)]

    return Spec(
        template="algorithms.islands",
        key=(diagonal, land),
        difficulty=3,
        name=pick_name(rng, "count_islands", "count_regions", "land_masses"),
        params="grid: list[str]",
        returns="int",
        doc=f"grid is a list of equal-length rows; {land!r} marks land and '.' water. "
        f"Land cells that touch {touch} belong to the same island. Return the number of "
        "islands.",
        body=f"""\
    seen = set()
    count = 0
    for r0 in range(len(grid)):
        for c0 in range(len(grid[r0])):
            if grid[r0][c0] != {land!r} or (r0, c0) in seen:
                continue
            count += 1
            stack = [(r0, c0)]
            seen.add((r0, c0))
            while stack:
                r, c = stack.pop()
                for dr, dc in {steps}:
                    nr, nc = r + dr, c + dc
                    inside = 0 <= nr < len(grid) and 0 <= nc < len(grid[nr])
                    if inside and grid[nr][nc] == {land!r} and (nr, nc) not in seen:
                        seen.add((nr, nc))
                        stack.append((nr, nc))
    return count
""",
        inputs=[([],), ([f"{land}.{land}", f".{land}."],), ([f"{land}{land}.", f"..{land}"],)]
        + [(grid(),) for _ in range(7)],
    )


TEMPLATES: list[Template] = [
    bound_search,
    smooth_run,
    best_window,
    find_pair,
    sort_by_letter,
    balanced,
    edit_distance,
    islands,
]
