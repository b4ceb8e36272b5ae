"""Arithmetic templates: multiples, digits, bases, recurrences, polynomials."""

from __future__ import annotations

import random

from toolgym.envs.code.families.base import Spec, Template, pick_name


def _naturals(rng: random.Random, hi: int, n: int = 8) -> list[tuple[int]]:
    return [(0,), (1,)] + [(rng.randint(2, hi),) for _ in range(n)]


def sum_multiples(rng: random.Random) -> Spec:
    """Sum of the numbers below n divisible by a or b."""
    a, b = sorted(rng.sample(range(2, 10), 2))
    return Spec(
        template="arithmetic.sum_multiples",
        key=(a, b),
        difficulty=1,
        name=pick_name(rng, "sum_of_multiples", "multiples_total", "add_multiples"),
        params="n: int",
        returns="int",
        doc=f"Return the sum of all integers x with 0 < x < n that are divisible by {a} "
        f"or by {b} (or both). Return 0 when there are none.",
        body=f"""\
    return sum(x for x in range(1, n) if x % {a} == 0 or x % {b} == 0)
""",
        inputs=_naturals(rng, 200),
    )


_DIGIT_OPS = {
    "the sum of its digits": ("total += d", "0"),
    "the number of its nonzero digits": ("total += d != 0", "0"),
    "the largest of its digits": ("total = max(total, d)", "0"),
}


def digits_in_base(rng: random.Random) -> Spec:
    """A statistic of the digits of n written in base b."""
    base = rng.randint(2, 9)
    label = rng.choice(sorted(_DIGIT_OPS))
    update, start = _DIGIT_OPS[label]
    return Spec(
        template="arithmetic.digits_in_base",
        key=(base, label),
        difficulty=2,
        name=pick_name(rng, f"base{base}_digit_stat", "digit_summary", "digits_report"),
        params="n: int",
        returns="int",
        doc=f"Write the non-negative integer n in base {base} and return {label} "
        "(as a base-10 int). For n = 0 there are no nonzero digits and the result is 0.",
        body=f"""\
    total = {start}
    while n > 0:
        d = n % {base}
        {update}
        n //= {base}
    return int(total)
""",
        inputs=_naturals(rng, 5000),
    )


def collatz_steps(rng: random.Random) -> Spec:
    """Steps of a Collatz-like map to reach 1, with a step cap."""
    d = rng.choice([2, 3])
    a, c = rng.randint(1, 5), rng.randint(1, 5)
    cap = rng.choice([30, 50, 100])
    return Spec(
        template="arithmetic.collatz_steps",
        key=(d, a, c, cap),
        difficulty=3,
        name=pick_name(rng, "steps_to_one", "orbit_length", "hailstone_steps"),
        params="n: int",
        returns="int",
        doc=f"Starting from the positive integer n, repeat: if n is divisible by {d}, "
        f"replace n by n // {d}; otherwise replace n by {a} * n + {c}. Return the number "
        f"of replacements made until n equals 1 (0 if n is already 1). If n has not "
        f"reached 1 after {cap} replacements, return -1.",
        body=f"""\
    steps = 0
    while n != 1:
        if steps == {cap}:
            return -1
        n = n // {d} if n % {d} == 0 else {a} * n + {c}
        steps += 1
    return steps
""",
        inputs=[(1,), (2,), (3,)] + [(rng.randint(4, 60),) for _ in range(8)],
    )


def count_coprime(rng: random.Random) -> Spec:
    """Count the x <= n coprime with (or sharing a factor with) k."""
    k = rng.randint(2, 40)
    coprime = rng.random() < 0.5
    cond = f"math.gcd(x, {k}) == 1" if coprime else f"math.gcd(x, {k}) > 1"
    relation = "are coprime with" if coprime else "share a common factor greater than 1 with"
    return Spec(
        template="arithmetic.count_coprime",
        key=(k, coprime),
        difficulty=2,
        name=pick_name(rng, "count_coprime" if coprime else "count_sharing", "gcd_count"),
        params="n: int",
        returns="int",
        doc=f"Return how many integers x with 1 <= x <= n {relation} {k}.",
        body=f"""\
    return sum(1 for x in range(1, n + 1) if {cond})
""",
        inputs=_naturals(rng, 120),
        imports="import math\n\n\n",
    )


def _poly_text(coeffs: list[int]) -> str:
    terms: list[str] = []
    for power in range(len(coeffs) - 1, -1, -1):
        c = coeffs[power]
        if c == 0:
            continue
        var = {0: "", 1: "x"}.get(power, f"x**{power}")
        mag = str(abs(c)) if (abs(c) != 1 or not var) else ""
        body = f"{mag}*{var}" if mag and var else mag + var
        sign = "-" if c < 0 else "+"
        terms.append(f"{sign} {body}" if terms else ("-" if c < 0 else "") + body)
    return " ".join(terms)


def polynomial(rng: random.Random) -> Spec:
    """Evaluate a fixed integer polynomial."""
    degree = rng.randint(1, 3)
    coeffs = [rng.randint(-5, 5) for _ in range(degree)] + [rng.choice([-3, -2, -1, 1, 2, 3])]
    expr = " + ".join(f"{c} * x**{p}" for p, c in enumerate(coeffs) if c)
    return Spec(
        template="arithmetic.polynomial",
        key=tuple(coeffs),
        difficulty=1,
        name=pick_name(rng, "evaluate", "poly", "f"),
        params="x: int",
        returns="int",
        doc=f"Return the value of the polynomial {_poly_text(coeffs)} at the integer x.",
        body=f"""\
    return {expr}
""",
        inputs=[(0,), (1,), (-1,)] + [(rng.randint(-12, 12),) for _ in range(6)],
    )


def scale_clamp(rng: random.Random) -> Spec:
    """Scale by p/q with floor division, then clamp."""
    p, q = rng.randint(2, 9), rng.randint(2, 7)
    lo = rng.randint(-20, 0)
    hi = rng.randint(5, 40)
    return Spec(
        template="arithmetic.scale_clamp",
        key=(p, q, lo, hi),
        difficulty=1,
        name=pick_name(rng, "scale_and_clamp", "rescale", "bounded_scale"),
        params="x: int",
        returns="int",
        doc=f"Compute (x * {p}) // {q} (floor division) and clamp it to the range "
        f"[{lo}, {hi}]: values below {lo} become {lo}, values above {hi} become {hi}.",
        body=f"""\
    return min({hi}, max({lo}, (x * {p}) // {q}))
""",
        inputs=[(0,)] + [(rng.randint(-60, 100),) for _ in range(9)],
    )


def recurrence(rng: random.Random) -> Spec:
    """The n-th term of a second-order linear recurrence."""
    p, q = rng.choice([(1, 1), (2, 1), (1, 2), (3, -1), (2, -1), (1, -1), (3, 1), (-1, 2)])
    a0, a1 = rng.randint(0, 3), rng.randint(1, 4)
    return Spec(
        template="arithmetic.recurrence",
        key=(p, q, a0, a1),
        difficulty=3,
        name=pick_name(rng, "sequence_term", "nth_term", "linear_recurrence"),
        params="n: int",
        returns="int",
        doc=f"A sequence is defined by a(0) = {a0}, a(1) = {a1}, and "
        f"a(k) = {p} * a(k - 1) + {q} * a(k - 2) for k >= 2. Return a(n) for n >= 0.",
        body=f"""\
    prev, cur = {a0}, {a1}
    if n == 0:
        return prev
    for _ in range(n - 1):
        prev, cur = cur, {p} * cur + {q} * prev
    return cur
""",
        inputs=[(0,), (1,), (2,)] + [(rng.randint(3, 20),) for _ in range(6)],
    )


def to_base(rng: random.Random) -> Spec:
    """Write n in base b, zero-padded to a width."""
    base = rng.randint(2, 9)
    width = rng.randint(1, 8)
    return Spec(
        template="arithmetic.to_base",
        key=(base, width),
        difficulty=2,
        name=pick_name(rng, f"to_base{base}", "encode_number", "format_in_base"),
        params="n: int",
        returns="str",
        doc=f"Return the digits of the non-negative integer n written in base {base}, "
        f"padded on the left with '0' to at least {width} characters.",
        body=f"""\
    digits = ''
    while n > 0:
        digits = str(n % {base}) + digits
        n //= {base}
    return digits.rjust({width}, '0')
""",
        inputs=_naturals(rng, 3000),
    )


TEMPLATES: list[Template] = [
    sum_multiples,
    digits_in_base,
    collatz_steps,
    count_coprime,
    polynomial,
    scale_clamp,
    recurrence,
    to_base,
]
