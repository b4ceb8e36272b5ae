"""Counting templates: words, characters, frequencies, pairs, patterns, runs."""

from __future__ import annotations

import random

from toolgym.envs.code.families.base import Spec, Template, ints, pick_name, sentence, word

_LENGTH_OPS = {
    "longer than {n} characters": ">",
    "shorter than {n} characters": "<",
    "exactly {n} characters long": "==",
}


def count_words(rng: random.Random) -> Spec:
    """Count words longer than, shorter than or exactly n characters."""
    label = rng.choice(sorted(_LENGTH_OPS))
    n = rng.randint(2, 6)
    return Spec(
        template="counting.words",
        key=(label, n),
        difficulty=1,
        name=pick_name(rng, "count_words", "word_tally", "how_many_words"),
        params="text: str",
        returns="int",
        doc=f"Words in text are separated by whitespace. Return how many words are "
        f"{label.format(n=n)}.",
        body=f"""\
    return sum(1 for w in text.split() if len(w) {_LENGTH_OPS[label]} {n})
""",
        inputs=[("",)] + [(sentence(rng, 1, 9),) for _ in range(8)],
    )


def count_chars(rng: random.Random) -> Spec:
    """Count the characters of text that are among some letters."""
    chosen = "".join(sorted(rng.sample("abcdefghilmnorstu", rng.randint(2, 5))))
    case_blind = rng.random() < 0.5
    subject = "text.lower()" if case_blind else "text"
    note = " Upper- and lowercase count alike." if case_blind else " Only lowercase letters count."
    return Spec(
        template="counting.chars",
        key=(chosen, case_blind),
        difficulty=1,
        name=pick_name(rng, "count_letters", "letter_hits", "tally_chars"),
        params="text: str",
        returns="int",
        doc=f"Return how many characters of text are one of the letters "
        f"{', '.join(map(repr, chosen))}.{note}",
        body=f"""\
    return sum(1 for ch in {subject} if ch in {chosen!r})
""",
        inputs=[("",), ("ABC abc STU stu",)] + [(sentence(rng, 1, 6).title(),) for _ in range(7)],
    )


_TIES = {"the smallest": "min", "the largest": "max"}


def most_common(rng: random.Random) -> Spec:
    """The most or least frequent value, with a tie rule."""
    most = rng.random() < 0.5
    tie = rng.choice(sorted(_TIES))
    which = "most" if most else "least"
    best = "max" if most else "min"
    return Spec(
        template="counting.most_common",
        key=(most, tie),
        difficulty=2,
        name=pick_name(rng, f"{which}_frequent", "mode_value", "frequency_pick"),
        params="items: list[int]",
        returns="int",
        doc=f"items is a non-empty list. Return the value that occurs {which} often; "
        f"if several values share that count, return {tie} of them.",
        body=f"""\
    counts = {{}}
    for x in items:
        counts[x] = counts.get(x, 0) + 1
    target = {best}(counts.values())
    return {_TIES[tie]}(x for x, c in counts.items() if c == target)
""",
        inputs=[([4],), ([3, 1, 3, 1, 2],)] + [(ints(rng, 1, 12, 0, 6),) for _ in range(7)],
    )


_PAIR_OPS = {"sum": "a[i] + a[j]", "product": "a[i] * a[j]", "difference": "a[j] - a[i]"}


def count_pairs(rng: random.Random) -> Spec:
    """Count pairs whose sum, product or difference is divisible by k."""
    op = rng.choice(sorted(_PAIR_OPS))
    k = rng.randint(2, 9)
    detail = " (the later one minus the earlier one)" if op == "difference" else ""
    return Spec(
        template="counting.pairs",
        key=(op, k),
        difficulty=2,
        name=pick_name(rng, "count_pairs", "divisible_pairs", "pair_count"),
        params="a: list[int]",
        returns="int",
        doc=f"Return the number of index pairs (i, j) with i < j such that the {op} of "
        f"a[i] and a[j]{detail} is divisible by {k}.",
        body=f"""\
    n = len(a)
    return sum(1 for i in range(n) for j in range(i + 1, n) if ({_PAIR_OPS[op]}) % {k} == 0)
""",
        inputs=[([],)] + [(ints(rng, 2, 10, -5, 20),) for _ in range(8)],
    )


def count_pattern(rng: random.Random) -> Spec:
    """Count occurrences of a pattern, overlapping or not."""
    alphabet = rng.choice(["ab", "abc"])
    pattern = word(rng, 2, 3, alphabet=alphabet)
    overlapping = rng.random() < 0.5
    step = "1" if overlapping else f"{len(pattern)}"
    mode = (
        "Overlapping occurrences all count ('aa' occurs twice in 'aaa')."
        if overlapping
        else "Occurrences are counted left to right without overlapping: after a match "
        "the search continues after its end ('aa' occurs once in 'aaa')."
    )
    return Spec(
        template="counting.pattern",
        key=(pattern, overlapping),
        difficulty=2,
        name=pick_name(rng, "count_occurrences", "pattern_hits", "find_count"),
        params="text: str",
        returns="int",
        doc=f"Return how many times {pattern!r} occurs in text. {mode}",
        body=f"""\
    count = i = 0
    while i + {len(pattern)} <= len(text):
        if text[i:i + {len(pattern)}] == {pattern!r}:
            count += 1
            i += {step}
        else:
            i += 1
    return count
""",
        inputs=[("",), (pattern * 3,), (pattern[0] * 5,)]
        + [(word(rng, 4, 16, alphabet),) for _ in range(6)],
    )


def residues(rng: random.Random) -> Spec:
    """Histogram of remainders modulo k."""
    k = rng.randint(2, 7)
    every = rng.random() < 0.5
    start = f"{{r: 0 for r in range({k})}}" if every else "{}"
    which = (
        f"every remainder 0..{k - 1} is a key, with 0 when it never occurs"
        if every
        else "only remainders that occur are keys"
    )
    return Spec(
        template="counting.residues",
        key=(k, every),
        difficulty=2,
        name=pick_name(rng, f"mod{k}_histogram", "remainder_counts", "bucket_by_remainder"),
        params="items: list[int]",
        returns="dict[int, int]",
        doc=f"Return a dict mapping each remainder x % {k} (Python's %, never negative "
        f"here) to how many items have it; {which}.",
        body=f"""\
    counts = {start}
    for x in items:
        counts[x % {k}] = counts.get(x % {k}, 0) + 1
    return counts
""",
        inputs=[([],)] + [(ints(rng, 1, 10, -10, 30),) for _ in range(8)],
    )


def runs(rng: random.Random) -> Spec:
    """Count runs of at least k equal characters, or their total length."""
    k = rng.randint(2, 4)
    total = rng.random() < 0.5
    add = "length" if total else "1"
    what = "the total number of characters in" if total else "how many there are of"
    return Spec(
        template="counting.runs",
        key=(k, total),
        difficulty=3,
        name=pick_name(rng, "long_runs", "streaks", "repeat_blocks"),
        params="text: str",
        returns="int",
        doc=f"A run is a maximal block of equal adjacent characters. Considering only runs "
        f"of length {k} or more, return {what} those runs.",
        body=f"""\
    result = 0
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[j] == text[i]:
            j += 1
        length = j - i
        if length >= {k}:
            result += {add}
        i = j
    return result
""",
        inputs=[("",), ("aabbbcccc",)] + [(word(rng, 3, 16, "ab"),) for _ in range(7)],
    )


TEMPLATES: list[Template] = [
    count_words,
    count_chars,
    most_common,
    count_pairs,
    count_pattern,
    residues,
    runs,
]
