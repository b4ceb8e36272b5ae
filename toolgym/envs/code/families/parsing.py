"""Parsing templates: key-value strings, number lists, durations, expressions, versions."""

from __future__ import annotations

import random

from toolgym.envs.code.families.base import Spec, Template, pick_name, word


def parse_pairs(rng: random.Random) -> Spec:
    """Parse 'k=v;k2=v2' style text into a dict (separators vary)."""
    pair_sep = rng.choice(";,|&")
    kv_sep = rng.choice("=:")
    last_wins = rng.random() < 0.5
    update = "out[key] = int(value)" if last_wins else "out[key] = out.get(key, 0) + int(value)"
    repeat = "the last value wins" if last_wins else "its values are added up"
    keys = ["a", "b", "x", "id", "n", "size"]

    def record() -> str:
        pairs = [
            f"{rng.choice(keys)}{kv_sep}{rng.randint(-5, 99)}" for _ in range(rng.randint(1, 5))
        ]
        return pair_sep.join(pairs)

    return Spec(
        template="parsing.pairs",
        key=(pair_sep, kv_sep, last_wins),
        difficulty=2,
        name=pick_name(rng, "parse_pairs", "parse_settings", "read_fields"),
        params="text: str",
        returns="dict[str, int]",
        doc=f"text holds key{kv_sep}value pairs separated by {pair_sep!r}, for example "
        f"'k{kv_sep}1{pair_sep}k2{kv_sep}-3'. Values are integers. Return a dict from key "
        f"to int value; when a key repeats, {repeat}. Empty pieces (such as a trailing "
        f"{pair_sep!r}) are ignored and an empty text gives {{}}.",
        body=f"""\
    out = {{}}
    for piece in text.split({pair_sep!r}):
        if not piece:
            continue
        key, value = piece.split({kv_sep!r}, 1)
        {update}
    return out
""",
        inputs=[("",), (f"a{kv_sep}1{pair_sep}a{kv_sep}2{pair_sep}",)]
        + [(record(),) for _ in range(7)],
    )


_REDUCERS = {
    "sum": "sum(values)",
    "largest value (0 if there are none)": "max(values, default=0)",
    "smallest value (0 if there are none)": "min(values, default=0)",
    "number of even values": "sum(1 for v in values if v % 2 == 0)",
}


def reduce_numbers(rng: random.Random) -> Spec:
    """Parse separated integers and reduce them (sum, max, ...)."""
    sep = rng.choice([",", ";", "|", "/"])
    label = rng.choice(sorted(_REDUCERS))

    def record() -> str:
        fields = [
            str(rng.randint(-30, 30)) if rng.random() < 0.8 else ""
            for _ in range(rng.randint(1, 7))
        ]
        return sep.join(f" {f} " if f and rng.random() < 0.3 else f for f in fields)

    return Spec(
        template="parsing.reduce_numbers",
        key=(sep, label),
        difficulty=1,
        name=pick_name(rng, "parse_and_reduce", "field_stat", "numbers_summary"),
        params="text: str",
        returns="int",
        doc=f"text holds integers separated by {sep!r}; fields may have spaces around "
        f"them and empty fields are skipped. Return the {label}.",
        body=f"""\
    values = [int(f) for f in text.split({sep!r}) if f.strip()]
    return {_REDUCERS[label]}
""",
        inputs=[("",), (sep.join(["4", "", "-7", "10"]),)] + [(record(),) for _ in range(7)],
    )


def durations(rng: random.Random) -> Spec:
    """Add up 'H:MM' durations, answering in minutes or as 'H:MM'."""
    sep = rng.choice([",", ";", " + ", " "])
    as_text = rng.random() < 0.5
    result = "f'{total // 60}:{total % 60:02d}'" if as_text else "total"
    returns = "str" if as_text else "int"
    answer = "as 'H:MM' (hours not padded, minutes two digits)" if as_text else "in minutes"

    def record() -> str:
        return sep.join(
            f"{rng.randint(0, 3)}:{rng.randint(0, 59):02d}" for _ in range(rng.randint(1, 4))
        )

    return Spec(
        template="parsing.durations",
        key=(sep, as_text),
        difficulty=2,
        name=pick_name(rng, "total_time", "sum_durations", "add_times"),
        params="text: str",
        returns=returns,
        doc=f"text holds one or more durations 'H:MM' separated by {sep!r}, e.g. "
        f"{sep.join(['1:30', '0:45'])!r}. Return their total {answer}.",
        body=f"""\
    total = 0
    for part in text.split({sep!r}):
        hours, minutes = part.split(':')
        total += int(hours) * 60 + int(minutes)
    return {result}
""",
        inputs=[("0:00",), ("0:59",)] + [(record(),) for _ in range(7)],
    )


_LEFT_TO_RIGHT = """\
    total, number, op = 0, 0, '+'
    for ch in expr.replace(' ', '') + '+':
        if ch.isdigit():
            number = number * 10 + int(ch)
            continue
        if op == '+':
            total += number
        elif op == '-':
            total -= number
        else:
            total *= number
        op, number = ch, 0
    return total
"""

_PRECEDENCE = """\
    total, term, number, op = 0, 0, 0, '+'
    for ch in expr.replace(' ', '') + '+':
        if ch.isdigit():
            number = number * 10 + int(ch)
            continue
        if op == {times!r}:
            term *= number
        else:
            total += term
            term = number if op == '+' else -number
        op, number = ch, 0
    return total + term
"""


def expression(rng: random.Random) -> Spec:
    """Evaluate '+', '-' and a multiplication sign, with or without precedence."""
    times = rng.choice(["*", "x"])
    standard = rng.random() < 0.5
    order = (
        f"{times!r} binds tighter than '+' and '-', as in ordinary arithmetic"
        if standard
        else "there is no precedence: operators apply strictly from left to right, so "
        f"'2+3{times}4' is 20"
    )

    def record() -> str:
        parts = [str(rng.randint(0, 12))]
        for _ in range(rng.randint(1, 4)):
            parts += [rng.choice(["+", "-", times, times]), str(rng.randint(0, 12))]
        return rng.choice(["", " "]).join(parts)

    return Spec(
        template="parsing.expression",
        key=(times, standard),
        difficulty=3 if standard else 2,
        name=pick_name(rng, "evaluate_expression", "calc", "compute"),
        params="expr: str",
        returns="int",
        doc=f"expr is an arithmetic expression of non-negative integers with '+', '-' and "
        f"{times!r} (multiplication), possibly with spaces around the operators; "
        f"{order}. Return its value. Do not use eval.",
        body=_PRECEDENCE.format(times=times) if standard else _LEFT_TO_RIGHT,
        inputs=[("7",), (f"2+3{times}4",), (f"10 - 2 {times} 3 + 1",)]
        + [(record(),) for _ in range(7)],
    )


def best_scorer(rng: random.Random) -> Spec:
    """Parse 'name:score' entries and pick the highest or lowest."""
    pair_sep = rng.choice([",", ";", "|"])
    kv_sep = rng.choice([":", "="])
    highest = rng.random() < 0.5
    better = ">" if highest else "<"
    which = "highest" if highest else "lowest"
    names = ["ann", "bob", "cy", "dee", "eve", "fay", "gus"]

    def record() -> str:
        picked = rng.sample(names, rng.randint(1, 5))
        return pair_sep.join(f"{n}{kv_sep}{rng.randint(0, 9)}" for n in picked)

    return Spec(
        template="parsing.best_scorer",
        key=(pair_sep, kv_sep, highest),
        difficulty=2,
        name=pick_name(rng, "top_player", "pick_winner", "best_entry"),
        params="text: str",
        returns="str",
        doc=f"text lists entries name{kv_sep}score separated by {pair_sep!r}, scores being "
        f"integers. Return the name with the {which} score; on a tie, the one listed "
        "first. An empty text gives ''.",
        body=f"""\
    best_name, best_score = '', None
    for entry in text.split({pair_sep!r}):
        if not entry:
            continue
        name, score = entry.split({kv_sep!r})
        if best_score is None or int(score) {better} best_score:
            best_name, best_score = name, int(score)
    return best_name
""",
        inputs=[("",)] + [(record(),) for _ in range(8)],
    )


_INT_STATS = {
    "sum": "sum(found)",
    "count": "len(found)",
    "largest (0 if none)": "max(found, default=0)",
}


def numbers_in_text(rng: random.Random) -> Spec:
    """Extract the integers embedded in text and reduce them."""
    signed = rng.random() < 0.5
    label = rng.choice(sorted(_INT_STATS))
    sign = (
        "optionally preceded by '-' (a negative number)"
        if signed
        else "('-' is not part of a number)"
    )

    def record() -> str:
        bits = [
            rng.choice(
                [word(rng, 1, 4), str(rng.randint(0, 99)), "-" + str(rng.randint(1, 50)), " ", "--"]
            )
            for _ in range(rng.randint(2, 7))
        ]
        return "".join(bits)

    grab = (
        "        if ch == '-' and i + 1 < len(text) and text[i + 1].isdigit():\n"
        "            j = i + 1\n"
        if signed
        else ""
    )
    return Spec(
        template="parsing.numbers_in_text",
        key=(signed, label),
        difficulty=3 if signed else 2,
        name=pick_name(rng, "numbers_in_text", "scan_numbers", "extract_ints"),
        params="text: str",
        returns="int",
        doc=f"The numbers in text are the maximal runs of digits, {sign}. Return the "
        f"{label.split(' (')[0]} of those numbers{label[len(label.split(' (')[0]) :]}.",
        body=f"""\
    found = []
    i = 0
    while i < len(text):
        ch = text[i]
        j = i
{grab}        if text[j].isdigit():
            k = j
            while k < len(text) and text[k].isdigit():
                k += 1
            found.append(int(text[i:k]))
            i = k
        else:
            i += 1
    return {_INT_STATS[label]}
""",
        inputs=[("no digits",), ("a1b22c-3",)] + [(record(),) for _ in range(7)],
    )


def compare_versions(rng: random.Random) -> Spec:
    """Compare version strings part by part."""
    sep = rng.choice([".", "-", "_"])
    newer = rng.random() < 0.5

    def version() -> str:
        return sep.join(str(rng.randint(0, 12)) for _ in range(rng.randint(1, 4)))

    result = "a if key(a) >= key(b) else b" if newer else "(key(a) > key(b)) - (key(a) < key(b))"
    returns = "str" if newer else "int"
    goal = (
        "Return the newer of the two version strings (a if they are equal)"
        if newer
        else "Return 1 if a is newer than b, -1 if it is older, and 0 if they are equal"
    )
    return Spec(
        template="parsing.compare_versions",
        key=(sep, newer),
        difficulty=2,
        name=pick_name(rng, "compare_versions", "newer_version", "version_order"),
        params="a: str, b: str",
        returns=returns,
        doc=f"Versions are non-negative integers separated by {sep!r}, such as "
        f"{sep.join(['1', '10', '2'])!r}. They are compared part by part as numbers, a "
        f"missing part counting as 0 (so {sep.join(['1', '0'])!r} equals '1'). {goal}.",
        body=f"""\
    def key(v):
        parts = [int(p) for p in v.split({sep!r})]
        while parts and parts[-1] == 0:
            parts.pop()
        return parts
    return {result}
""",
        inputs=[("1", sep.join(["1", "0"])), (sep.join(["1", "2"]), sep.join(["1", "10"]))]
        + [(version(), version()) for _ in range(7)],
    )


TEMPLATES: list[Template] = [
    parse_pairs,
    reduce_numbers,
    durations,
    expression,
    best_scorer,
    numbers_in_text,
    compare_versions,
]
